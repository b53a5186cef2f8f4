"""The gateway end to end on a private mosquitto over loopback (bounded in count and time)."""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from feeds import topics
from feeds.broker import EmbeddedBroker
from feeds.config import GatewayConfig
from feeds.gateway import Gateway
from feeds.mqtt import client as mqtt_client
from feeds.transports import make_gateway
from matching.engine import Engine
from matching.instruments import Registry
from matching.messages import NewOrderSingle
from testkit.mqtt import two_broker_engine

pytestmark = pytest.mark.network
REG = Registry.load_default()


@pytest.fixture(scope="module")
def mqtt():
    with EmbeddedBroker() as broker:
        yield broker


def client_for(port):
    return mqtt_client("127.0.0.1", port)


def order(cl, acct, side, qty, price, symbol="TB3M", **kw):
    return json.dumps({"msg": "new_order", "cl_ord_id": cl, "account": acct, "symbol": symbol,
                       "side": side, "qty": qty, "price": price, **kw}).encode()


async def with_gateway(mqtt, body, timeout=20, transport="link", **config):
    """Run ``body(client, gateway)`` against a live gateway on ``transport``; always shut
    it down."""
    engine = two_broker_engine()
    gw = make_gateway(engine, "127.0.0.1", mqtt.port,
                      GatewayConfig(client_id=f"engine-{time.time_ns()}", **config),
                      transport=transport)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        async with asyncio.timeout(timeout):
            await gw.ready.wait()
            async with client_for(mqtt.port) as client:
                return await body(client, gw)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def collect(client, n, match=lambda topic: True):
    out = []
    async for m in client.messages:
        if match(m.topic.value):
            out.append((m.topic.value, json.loads(m.payload)))
            if len(out) == n:
                return out


def test_order_fill_reaches_both_brokers_the_tape_and_depth(mqtt, transport):
    async def body(client, gw):
        await client.subscribe(topics.exec_reports("alpha"), qos=1)
        await client.subscribe(topics.exec_reports("beta"), qos=1)
        await client.subscribe(topics.md("TB3M", "trades"), qos=1)
        await client.publish(topics.orders("alpha"), order("s1", 1, "sell", "2", "99.100"), qos=1)
        await client.publish(topics.orders("beta"), order("b1", 2, "buy", "1.5", "99.150"), qos=1)
        return await collect(client, 5)

    msgs = asyncio.run(with_gateway(mqtt, body, transport=transport))
    got = [(t.rsplit("/", 1)[-1], m.get("exec_type"), m.get("ord_status")) for t, m in msgs]
    assert got == [("alpha", "new", "new"), ("beta", "new", "new"),
                   ("alpha", "trade", "partially_filled"), ("beta", "trade", "filled"),
                   ("trades", None, None)]
    tape = msgs[4][1]
    assert (tape["price"], tape["qty"], tape["aggressor"]) == ("99.100", "1.5000", "buy")
    assert msgs[3][1]["leaves_qty"] == "0.0000" and msgs[2][1]["cum_qty"] == "1.5000"


def test_bad_messages_are_rejected_to_the_sender_and_the_gateway_goes_on(mqtt, transport):
    bad = [b"not json", order("f", 1, "buy", "1", 99.1), order("u", 1, "buy", "1", "1", "NOPE"),
           order("x", 2, "buy", "1", "99.000"), b'{"msg":"cancel"}']

    async def body(client, gw):
        await client.subscribe(topics.exec_reports("alpha"), qos=1)
        for payload in bad:
            await client.publish(topics.orders("alpha"), payload, qos=1)
        await client.publish(topics.orders("alpha"), order("ok", 1, "buy", "1", "99.000"), qos=1)
        return await collect(client, len(bad) + 1), gw.stats

    msgs, stats = asyncio.run(with_gateway(mqtt, body, transport=transport))
    reasons = [m["ord_rej_reason"] for _, m in msgs[:-1]]
    assert reasons == ["MALFORMED_JSON", "INVALID_FIELD", "UNKNOWN_SYMBOL", "UNKNOWN_ACCOUNT",
                       "INVALID_FIELD"]
    assert msgs[1][1]["cl_ord_id"] == "f"              # the ClOrdID survives a bad field
    assert msgs[-1][1]["exec_type"] == "new" and stats.decode_rejects == 3


def test_message_on_a_topic_with_no_valid_broker_is_counted_not_lost(mqtt, transport):
    async def body(client, gw):
        await client.publish("tokenbook/v1/orders/no spaces", order("z", 1, "buy", "1", "99"),
                             qos=1)
        await client.subscribe(topics.exec_reports("alpha"), qos=1)
        await client.publish(topics.orders("alpha"), order("ok", 1, "buy", "1", "99.000"), qos=1)
        await collect(client, 1)
        return gw.stats

    stats = asyncio.run(with_gateway(mqtt, body, transport=transport))
    assert stats.unattributable == 1 and stats.received == 2


def test_reports_keep_order_and_depth_rebuilds_the_book(mqtt, transport):
    n = 120

    async def body(client, gw):
        await client.subscribe(topics.exec_reports("alpha"), qos=1)
        await client.subscribe(topics.md("TB6M", "depth"), qos=1)
        for i in range(n):
            side, px = ("buy", f"{98.000 - (i % 10) * 0.001:.3f}") if i % 2 else \
                ("sell", f"{98.100 + (i % 10) * 0.001:.3f}")
            await client.publish(topics.orders("alpha"),
                                 order(f"o{i}", 1, side, "1", px, "TB6M"), qos=1)
        reports, depth = [], []
        async for m in client.messages:
            doc = json.loads(m.payload)
            (reports if "exec_type" in doc else depth).append(doc)
            if len(reports) == n and sum(len(d["levels"]) for d in depth) >= 20 and \
                    gw.cycle.depth["TB6M"].seq == depth[-1]["seq"]:
                break
        return reports, depth, gw.engine.books["TB6M"]

    reports, depth, book = asyncio.run(with_gateway(mqtt, body, transport=transport,
                                                    timeout=30))
    assert [r["cl_ord_id"] for r in reports] == [f"o{i}" for i in range(n)]
    assert [d["seq"] for d in depth] == list(range(1, len(depth) + 1))
    levels = {}
    for d in depth:
        for side, price, qty, count in d["levels"]:
            if qty == "0.0000":
                levels.pop((side, price), None)
            else:
                levels[(side, price)] = (qty, count)
    inst = REG["TB6M"]
    expect = {("buy" if s == 1 else "sell", str(inst.ticks_to_price(p))):
              (str(inst.lots_to_qty(q)), c)
              for s in (1, 2) for p, q, c in book.depth(s, 1000)}
    assert levels == expect


def test_status_is_retained_online_then_offline_after_shutdown(mqtt, transport):
    async def body(client, gw):
        await client.subscribe(topics.STATUS, qos=1)
        return (await collect(client, 1))[0][1]["status"]

    assert asyncio.run(with_gateway(mqtt, body, transport=transport)) == "online"

    async def after():
        async with client_for(mqtt.port) as client:
            await client.subscribe(topics.STATUS, qos=1)
            async with asyncio.timeout(5):
                return (await collect(client, 1))[0][1]["status"]

    assert asyncio.run(after()) == "offline"


BROKER_PROCESS = """
import json, sys, time
import paho.mqtt.client as m
c = m.Client(m.CallbackAPIVersion.VERSION2, client_id="alpha-proc", protocol=m.MQTTv5)
c.will_set("tokenbook/v1/presence/alpha", b"offline", qos=1, retain=True)
c.connect("127.0.0.1", int(sys.argv[1]))
c.loop_start()
c.publish("tokenbook/v1/presence/alpha", b"online", qos=1, retain=True).wait_for_publish(5)
order = {"msg": "new_order", "cl_ord_id": "cod1", "account": 1, "symbol": "TB3M",
         "side": "buy", "qty": "1", "price": "99.000", "time_in_force": "gtc"}
c.publish("tokenbook/v1/orders/alpha", json.dumps(order), qos=1).wait_for_publish(5)
print("sent", flush=True)
time.sleep(60)
"""


def test_cancel_on_disconnect_when_a_broker_process_dies(mqtt, transport):
    import signal
    import subprocess
    import sys

    async def body(client, gw):
        await client.subscribe(topics.exec_reports("alpha"), qos=1)
        proc = subprocess.Popen([sys.executable, "-c", BROKER_PROCESS,  # noqa: ASYNC220
                                 str(mqtt.port)],
                                stdout=subprocess.PIPE)
        try:
            first = await collect(client, 1)                  # the New report
            assert first[0][1]["exec_type"] == "new"
            assert any(o.broker == "alpha" for o in gw.engine.orders.values())
            proc.send_signal(signal.SIGKILL)                  # no DISCONNECT: the will fires
            return first, await collect(client, 1)
        finally:
            proc.kill()
            proc.wait()

    _first, after = asyncio.run(with_gateway(mqtt, body, transport=transport,
                                             cancel_on_disconnect="*"))
    report = after[0][1]
    assert (report["exec_type"], report["cl_ord_id"]) == ("canceled", "cod1")


def test_a_fresh_gateway_ignores_a_stale_retained_offline_presence(mqtt):
    """``serve --cancel-on-disconnect alpha`` started after alpha's last will fired (the
    broker keeps that ``offline`` retained) must not cancel alpha's recovered orders."""
    engine = two_broker_engine()
    ack = engine.submit("alpha", NewOrderSingle("keep", 1, "TB3M", "buy", "1", price="99.000",
                                                time_in_force="gtc"))
    assert ack.reports[0][1].exec_type == "new"

    async def body():
        async with client_for(mqtt.port) as client:
            await client.publish(topics.presence("alpha"), b"offline", qos=1, retain=True)
            await client.subscribe(topics.exec_reports("alpha"), qos=1)
            await client.subscribe(topics.exec_reports("beta"), qos=1)
            gw = Gateway(engine, "127.0.0.1", mqtt.port, GatewayConfig(
                client_id=f"engine-{time.time_ns()}", cancel_on_disconnect="alpha"))
            stop = asyncio.Event()
            task = asyncio.create_task(gw.run(stop))
            try:
                async with asyncio.timeout(20):
                    await gw.ready.wait()
                    # The retained presence reached the gateway on subscribe, before this.
                    await client.publish(topics.orders("beta"),
                                         order("b1", 2, "buy", "1", "98.000"), qos=1)
                    return await collect(client, 1), gw.stats.reports
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
                await client.publish(topics.presence("alpha"), b"", qos=1, retain=True)

    [(topic, doc)], reports = asyncio.run(body())
    assert topic == topics.exec_reports("beta") and doc["cl_ord_id"] == "b1" and reports == 1
    assert [o.cl_ord_id for o in engine.orders.values() if o.broker == "alpha"] == ["keep"]


def test_broker_client_raises_a_cancel_reject_and_streams_it(mqtt):
    from feeds.client import BrokerClient, CancelRejected

    async def body(client, gw):
        async with BrokerClient("alpha", "127.0.0.1", mqtt.port,
                                client_id=f"alpha-{time.time_ns()}") as c:
            ack = await c.submit(NewOrderSingle("k1", 1, "TB3M", "buy", "1", price="99.000",
                                                time_in_force="gtc"))
            with pytest.raises(CancelRejected) as unknown:
                await c.cancel("k2", "nope", "TB3M")
            with pytest.raises(CancelRejected) as off_tick:
                await c.replace("k3", "k1", "TB3M", "99.0001", "1")
            canceled = await c.cancel("k4", "k1", "TB3M")
            with pytest.raises(CancelRejected) as late:
                await c.cancel("k5", "k1", "TB3M")
            await asyncio.sleep(0.2)
            return ack, unknown.value.reject, off_tick.value.reject, canceled, \
                late.value.reject, c.pending_reports()

    ack, unknown, off_tick, canceled, late, stream = asyncio.run(with_gateway(mqtt, body))
    assert ack.exec_type == "new" and canceled.exec_type == "canceled"
    assert (unknown.cxl_rej_reason, unknown.ord_status, unknown.order_id) == (
        "UNKNOWN_ORDER", "rejected", None)
    assert (off_tick.cxl_rej_reason, off_tick.ord_status, off_tick.order_id) == (
        "OTHER", "new", ack.order_id)
    assert off_tick.text.startswith("INVALID_PRICE") and off_tick.cxl_rej_response_to == \
        "replace"
    assert (late.cxl_rej_reason, late.ord_status) == ("TOO_LATE_TO_CANCEL", "canceled")
    assert [type(r).__name__ for r in stream] == [
        "ExecutionReport", "OrderCancelReject", "OrderCancelReject", "ExecutionReport",
        "OrderCancelReject"]


def test_gateway_writes_periodic_snapshots_that_recover_the_state(mqtt, transport, tmp_path):
    from matching.journal import Journal, latest_snapshot

    async def body(client, gw):
        gw.engine.journal = Journal(tmp_path / "journal.log")
        await client.subscribe(topics.exec_reports("alpha"), qos=1)
        for i in range(12):
            await client.publish(topics.orders("alpha"),
                                 order(f"p{i}", 1, "buy", "1", "99.000"), qos=1)
        await collect(client, 12)
        return gw.engine

    engine = asyncio.run(with_gateway(mqtt, body, transport=transport,
                                      snapshot_dir=tmp_path / "snaps", snapshot_every=5))
    seq, _ = latest_snapshot(tmp_path / "snaps")
    assert 5 <= seq <= 12
    rec = Engine.recover(REG, snapshot_dir=tmp_path / "snaps",
                         journal_path=tmp_path / "journal.log", clock=time.time_ns)
    assert rec.seq == engine.seq == 12 and rec.state_hash() == engine.state_hash()


# ------------------------------------------------------------------ operator session control
def admin(action, symbol="", reason="", request_id="", **extra):
    return json.dumps({"action": action, "symbol": symbol, "reason": reason,
                       "request_id": request_id, **extra}).encode()


async def next_on(client, topic, pred=lambda m: True):
    """The next message on ``topic`` that satisfies ``pred`` (others are skipped)."""
    async for m in client.messages:
        if m.topic.value == topic:
            doc = json.loads(m.payload)
            if pred(doc):
                return doc


def test_halt_rejects_new_orders_with_the_reason_and_resume_reopens(mqtt, transport):
    async def body(client, gw):
        for t in (topics.ADMIN_REPLIES, topics.md("TB3M", "state"), topics.exec_reports("alpha")):
            await client.subscribe(t, qos=1)
        await client.publish(topics.ADMIN, admin("halt", "TB3M", "issuer notice", "h1"), qos=1)
        reply = await next_on(client, topics.ADMIN_REPLIES)
        state = await next_on(client, topics.md("TB3M", "state"), lambda d: d["state"] == "halted")
        await client.publish(topics.orders("alpha"), order("h-o1", 1, "buy", "1", "99.000"), qos=1)
        refused = await next_on(client, topics.exec_reports("alpha"))
        await client.publish(topics.ADMIN, admin("resume", "TB3M", "", "r1"), qos=1)
        resumed = await next_on(client, topics.ADMIN_REPLIES)
        await client.publish(topics.orders("alpha"), order("h-o2", 1, "buy", "1", "99.000"), qos=1)
        taken = await next_on(client, topics.exec_reports("alpha"))
        return reply, state, refused, resumed, taken, gw.engine.session.state["TB6M"].value

    reply, state, refused, resumed, taken, other = asyncio.run(
        with_gateway(mqtt, body, transport=transport))
    assert reply["request_id"] == "h1" and reply["accepted"] and reply["seq"] == 1
    assert state == {"symbol": "TB3M", "state": "halted", "reason": "issuer notice", "seq": 1,
                     "epoch": 0}
    assert refused["ord_rej_reason"] == "MARKET_NOT_OPEN" and "issuer notice" in refused["text"]
    assert resumed["accepted"] and resumed["seq"] == 3
    assert taken["exec_type"] == "new" and taken["cl_ord_id"] == "h-o2"
    assert other == "continuous"                      # a halt of one bill leaves the rest


def test_close_expires_resting_day_orders_and_publishes_closed_states(mqtt, transport):
    async def body(client, gw):
        for t in (topics.ADMIN_REPLIES, topics.md("BD5Y", "state"), topics.exec_reports("alpha")):
            await client.subscribe(t, qos=1)
        await client.publish(topics.orders("alpha"), order("d1", 1, "buy", "1", "99.000", "BD5Y",
                                                           time_in_force="day"), qos=1)
        await client.publish(topics.orders("alpha"), order("g1", 1, "buy", "1", "99.000", "BD5Y",
                                                           time_in_force="gtc"), qos=1)
        acks = [await next_on(client, topics.exec_reports("alpha")) for _ in range(2)]
        await client.publish(topics.ADMIN, admin("close", reason="end of day"), qos=1)
        expired = await next_on(client, topics.exec_reports("alpha"))
        reply = await next_on(client, topics.ADMIN_REPLIES)
        state = await next_on(client, topics.md("BD5Y", "state"), lambda d: d["state"] == "closed")
        return acks, expired, reply, state, sorted(o.cl_ord_id for o in gw.engine.orders.values())

    acks, expired, reply, state, live = asyncio.run(with_gateway(mqtt, body, transport=transport))
    assert [a["exec_type"] for a in acks] == ["new", "new"]
    assert (expired["cl_ord_id"], expired["exec_type"], expired["ord_status"]) == \
        ("d1", "expired", "expired")
    assert reply["accepted"] and reply["symbol"] == "" and state["reason"] == "end of day"
    assert live == ["g1"]                               # GTC outlives the session


def test_bad_operator_commands_are_refused_and_journal_nothing(mqtt, transport):
    bad = [b"not json", admin("liquidate", "TB3M", request_id="b2"),
           admin("halt", "NOPE", request_id="b3"), admin("halt", "TB3M", request_id="b4", x=1),
           admin("halt", "TB 3M", request_id="b5")]

    async def body(client, gw):
        await client.subscribe(topics.ADMIN_REPLIES, qos=1)
        for payload in bad:
            await client.publish(topics.ADMIN, payload, qos=1)
        replies = [await next_on(client, topics.ADMIN_REPLIES) for _ in bad]
        return replies, gw.engine.seq, gw.stats.admin_refused, gw.engine.session.state["TB3M"].value

    replies, seq, refused, state = asyncio.run(with_gateway(mqtt, body, transport=transport))
    assert [r["request_id"] for r in replies] == ["", "b2", "b3", "b4", "b5"]
    assert not any(r["accepted"] for r in replies) and all(r["text"] for r in replies)
    assert "unknown instrument 'NOPE'" in replies[2]["text"]
    assert seq == 0 and refused == 5 and state == "continuous"


def test_tokenbook_admin_prints_the_reply_and_exits_by_its_verdict(mqtt, transport, capsys):
    from feeds.cli import main

    def admin_cli(*argv):            # the real command line, on a thread of its own
        return asyncio.to_thread(main, ["admin", *argv, "--reason", "auction call",
                                        "--broker", f"mqtt://127.0.0.1:{mqtt.port}",
                                        "--timeout", "5"])

    async def body(client, gw):
        halted = await admin_cli("halt", "GOLD")
        unknown = await admin_cli("halt", "NOPE")
        status = gw.engine.trading_status("GOLD")
        return halted, unknown, status.state, status.reason

    halted, unknown, state, why = asyncio.run(with_gateway(mqtt, body, transport=transport))
    out = capsys.readouterr().out.splitlines()
    assert (halted, unknown, state, why) == (0, 1, "halted", "auction call")
    assert out[0] == "accepted: halt GOLD (auction call) (sequence 1)"
    assert out[1] == "REFUSED: refused: unknown instrument 'NOPE'"

"""Faults survived, nothing lost: small runs of reliability/faults.py, each bounded in time.

- kill -9 of ``tokenbook serve`` under load, restarted on the same --data;
- mosquitto SIGKILLed mid-stream and started again on the same port;
- a market-data subscriber that subscribed with QoS 1 and never reads;
- the journal's disk fills up (ENOSPC) mid-stream;

each on both MQTT transports of the gateway (``transport``: aiomqtt and link).

The checks compare what clients received with a fresh replay of the engine's journal from
its first snapshot (see ``reliability.faults.verify``).
"""
from __future__ import annotations

import asyncio
import time

import pytest

from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle
from feeds.transports import make_gateway
from matching.engine import Engine
from matching.ledger import Ledger
from reliability import faults
from testkit.mqtt import run

pytestmark = pytest.mark.network


def test_kill_9_under_load_loses_nothing_acknowledged(transport):
    r = run(faults.kills_under_load(kills=2, rate=250, seed=11, transport=transport),
            timeout=60)
    assert r["kills"] == 2 and r["orders_sent"] > 200
    assert r["unanswered"] == 0, r
    assert r["acked_checked"] == r["answered"] > 200
    assert r["lost"] == 0 and r["fills_lost"] == 0 and r["duplicated"] == 0, r
    # Reports of the cycle that died between commit and publish go out again at restart:
    # every report of every client's orders reached it, resting-side fills included.
    assert r["reports_unseen"] == 0 and r["reports_seen"] == r["reports_engine"], r
    assert r["fills_seen"] > 50                     # the flow really trades
    assert r["state_hash_equal"] and r["ledger_mismatches"] == 0 and r["ledger_conserved"]
    assert r["snapshots"] >= 2                      # recovery started from a later snapshot
    assert r["resends_original"] == r["resends_checked"] == 20
    assert r["not_in_journal"] == 0 and r["ok"]


def test_broker_killed_and_restarted_on_the_same_port_mid_stream(transport):
    r = run(faults.broker_restart(restarts=1, rate=250, seconds=3.0, seed=12,
                                  transport=transport), timeout=60)
    assert r["orders_sent"] > 200 and r["client_reconnects"] >= 3
    assert r["unanswered"] == 0 and r["not_in_journal"] == 0, r
    assert r["duplicate_inputs"] == 0 and r["duplicated"] == 0
    # Every report the engine made for these brokers reached them, passive fills too.
    assert r["reports_unseen"] == 0 and r["reports_seen"] == r["reports_engine"], r
    assert r["lost"] == 0 and r["state_hash_equal"] and r["ok"]


def test_stalled_market_data_subscriber_does_not_stall_the_engine(transport):
    r = run(faults.slow_subscriber(orders=500, seed=13, transport=transport), timeout=60)
    assert r["acked_with_stall"] == 500
    assert r["stalled_still_connected"]              # it was there all along, not read
    assert r["broker_dropped_for_stalled"] > 0       # mosquitto dropped for it instead
    assert r["ratio"] >= 0.4, r                      # ~1.0 measured; noisy 2-core machine


def test_disk_full_refuses_instead_of_acknowledging(transport):
    r = run(faults.disk_full(before=80, after=40, seed=14, transport=transport), timeout=60)
    assert r["acked_before_failure"] == 80
    assert r["acked_after_failure"] == 0
    assert r["refused_journal_unavailable"] == r["sent_after_failure"] == 40
    assert r["status"] == "not_accepting" and "No space left" in r["status_text"]
    assert r["resends_after_failure_original"] == r["resends_checked"] == 5
    assert r["lost_after_restart"] == 0 and r["state_hash_equal"] and r["ok"]


def test_gateway_publishes_what_it_made_while_disconnected(transport):
    """Unit-level: outcomes made while the broker is gone wait in the outbox, and the
    gateway comes back by itself (run() does not return on a lost connection)."""
    async def body():
        with faults.Mosquitto() as broker:
            ledger = faults.demo_ledger(faults.REG)
            gw = make_gateway(Engine(faults.REG, ledger, clock=time.time_ns), "127.0.0.1",
                              broker.port, GatewayConfig(client_id="outbox-gw",
                                                         hold_reports=0.2, reconnect_max=0.2),
                              transport=transport)
            stop = asyncio.Event()
            task = asyncio.create_task(gw.run(stop))
            await asyncio.wait_for(gw.ready.wait(), 10)
            broker.kill()
            for _ in range(100):
                if not gw.connected:
                    break
                await asyncio.sleep(0.02)
            assert not gw.connected and not task.done()
            from matching.messages import NewOrderSingle
            gw.engine.submit("alpha", NewOrderSingle("x1", 1001, "TB3M", "buy", "1",
                                                     price="99.270"))
            x2 = (b'{"msg":"new_order","cl_ord_id":"x2","account":1001,"symbol":"TB3M",'
                  b'"side":"buy","qty":"1","price":"99.270"}')
            made = gw.cycle.process([("tokenbook/v1/orders/alpha", x2)], time.time_ns())
            gw.cycle.outbox.restore(made)         # no connection: it waits, as in run()
            waiting = len(gw.cycle.outbox)
            broker.start()
            async with faults.mqtt.client("127.0.0.1", broker.port) as c:
                await c.subscribe("tokenbook/v1/exec/alpha", qos=1)
                await c.publish("tokenbook/v1/presence/alpha", b"online", qos=1)
                got = await asyncio.wait_for(anext(aiter(c.messages)), 10)
            stop.set()
            await asyncio.wait_for(task, 10)
            return waiting, got, gw.stats.reconnects
    waiting, got, reconnects = run(body(), timeout=30)
    assert waiting >= 1 and reconnects >= 1
    assert b'"x2"' in got.payload


def test_resend_of_an_input_lost_with_the_journal_is_refused_not_answered():
    """After a failed commit, a resend of an input that never became durable is refused
    JOURNAL_UNAVAILABLE rather than answered from the engine's memory."""
    import errno
    import os
    import tempfile

    import matching.journal as jmod
    from matching.journal import Journal

    with tempfile.TemporaryDirectory() as d:
        j = Journal(os.path.join(d, "j.log"))
        eng = Engine(faults.REG, faults.demo_ledger(faults.REG), clock=time.time_ns, journal=j)
        gw = GatewayCycle(eng)
        real = jmod.os.pwrite

        def full(*a):
            raise OSError(errno.ENOSPC, "No space left on device")

        order = (b'{"msg":"new_order","cl_ord_id":"z1","account":1001,"symbol":"TB3M",'
                 b'"side":"buy","qty":"1","price":"99.270"}')
        jmod.os.pwrite = full
        try:
            first = gw.process([("tokenbook/v1/orders/alpha", order)], time.time_ns())
            second = gw.process([("tokenbook/v1/orders/alpha", order)], time.time_ns())  # resend
        finally:
            jmod.os.pwrite = real
        j.close()
    assert not gw.accepting and [s.kind for s in first] == ["status"]
    execs = [s for s in first + second if s.kind == "exec"]
    assert len(execs) == 1 and b"JOURNAL_UNAVAILABLE" in execs[0].payload
    assert b'"new"' not in execs[0].payload and isinstance(eng.ledger, Ledger)


def test_a_resent_cancel_after_a_journal_failure_gets_an_order_cancel_reject():
    """FIX: a refused cancel or replace is answered with an OrderCancelReject (35=9),
    never an execution report, journal failure included. A cancel and a replace whose
    commit failed, resent (PossDup, or the same content) in the same cycle and in a
    later one, are refused JOURNAL_UNAVAILABLE as cancel_rejects with the order's
    current status; the order is untouched."""
    import errno
    import json
    import os
    import tempfile

    import matching.journal as jmod
    from matching.journal import Journal

    def wire(doc):
        return ("tokenbook/v1/orders/alpha", json.dumps(doc).encode())

    bid = {"msg": "new_order", "cl_ord_id": "b1", "account": 1001, "symbol": "TB3M",
           "side": "buy", "qty": "1", "price": "99.270", "time_in_force": "gtc"}
    cancel = {"msg": "cancel", "cl_ord_id": "x1", "orig_cl_ord_id": "nope", "symbol": "TB3M"}
    replace = {"msg": "replace", "cl_ord_id": "r1", "orig_cl_ord_id": "b1",
               "symbol": "TB3M", "price": "99.2705", "qty": "1"}      # off tick: refused
    with tempfile.TemporaryDirectory() as d:
        j = Journal(os.path.join(d, "j.log"))
        eng = Engine(faults.REG, faults.demo_ledger(faults.REG), clock=time.time_ns, journal=j)
        gw = GatewayCycle(eng)
        placed = gw.process([wire(bid)], time.time_ns())
        real = jmod.os.pwrite

        def full(*a):
            raise OSError(errno.ENOSPC, "No space left on device")

        jmod.os.pwrite = full
        try:
            same = gw.process([wire(cancel), wire({**cancel, "poss_dup": True}),
                               wire(replace), wire(replace)], time.time_ns())
            later = gw.process([wire({**cancel, "poss_dup": True}), wire(replace)],
                               time.time_ns())
        finally:
            jmod.os.pwrite = real
        j.close()
    assert [json.loads(p.payload)["exec_type"] for p in placed if p.kind == "exec"] == ["new"]
    answers = [json.loads(p.payload) for p in same + later if p.kind == "exec"]
    assert len(answers) == 4, answers            # the two resends of each cycle
    for a in answers:
        assert a["msg"] == "cancel_reject", a
        assert a["cxl_rej_reason"] == "OTHER" and a["text"].startswith("JOURNAL_UNAVAILABLE")
    assert [(a["cl_ord_id"], a["cxl_rej_response_to"], a["ord_status"], a.get("order_id"))
            for a in answers] == [("x1", "cancel", "rejected", None),
                                  ("r1", "replace", "new", "1")] * 2
    assert eng.orders[1].leaves and not gw.accepting

"""Market data across restarts of the venue, and one engine per data directory.

In process (cycle + engine + recovery, no broker): after a crash the gateway's retained
snapshots, BBOs and states show the recovered books, at a higher sequence, in a new epoch,
and a market-data view fed the stream across the restart follows it. Against a private
mosquitto: ``tokenbook serve`` killed -9 and started again on the same ``--data``, and a
second ``tokenbook serve`` on a data directory in use.
"""
from __future__ import annotations

import asyncio
import json
import os
import time

import pytest

from feeds import topics
from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle
from feeds.watch import BookView, MarketView
from matching import recovery
from matching.engine import Engine
from matching.instruments import Registry
from reliability import faults, integrity
from testkit.mqtt import connect, run, two_broker_engine

REG = Registry.load_default()
MD = integrity.MD


def open_venue(data):
    return recovery.open_engine(Engine, data, REG, new_ledger=lambda: two_broker_engine().ledger,
                                fsync="none")


def crash(engine: Engine) -> None:
    """A kill -9: descriptors closed (the locks go), no final snapshot."""
    os.close(engine.journal.fd)
    engine.journal.fd = -1
    engine.data_dir.close()


#: Depth snapshots every cycle: these tests read the books out of one cycle's market data.
EVERY_CYCLE = GatewayConfig(depth_snapshot_interval=0)


def order(broker, cl, side, qty="2", price="99.000", symbol="TB3M", acct=None, **kw):
    acct = acct or {"alpha": 1, "beta": 2}[broker]
    return topics.orders(broker), json.dumps({
        "msg": "new_order", "cl_ord_id": cl, "account": acct, "symbol": symbol,
        "side": side, "qty": qty, "price": price, **kw}).encode()


def md_docs(pubs, symbol="TB3M"):
    """``{channel: last doc}`` of ``symbol``'s market data in ``pubs``."""
    out = {}
    for p in pubs:
        parsed = topics.parse_md_topic(p.topic)
        if parsed is not None and parsed[0] == symbol:
            out[parsed[1]] = json.loads(p.payload)
    return out


def feed(view: MarketView, pubs) -> None:
    for p in pubs:
        view.on_message(p.topic, p.payload)


def ladder(engine: Engine, symbol: str, side: int):
    inst = engine.instruments[symbol]
    return [(str(inst.ticks_to_price(p)), str(inst.lots_to_qty(q)), c)
            for p, q, c in engine.books[symbol].depth(side, 100)]


def test_after_a_crash_the_retained_market_data_shows_the_recovered_books(tmp_path):
    engine, recovered = open_venue(tmp_path)
    cycle = GatewayCycle(engine, EVERY_CYCLE, recovered=recovered)
    view = MarketView()                         # a subscriber that stays through it all
    feed(view, cycle.retained(1))
    run1 = cycle.process([order("alpha", "b1", "buy", time_in_force="gtc"),
                          order("beta", "a1", "sell", price="99.100", time_in_force="gtc")], 2)
    run1 += cycle.process([order("alpha", "b2", "buy", "1", "98.990", time_in_force="gtc")], 3)
    feed(view, run1)
    before = md_docs(run1)
    assert before["snapshot"]["bids"][0] == ["99.000", "2.0000", 1]
    assert before["snapshot"]["epoch"] == before["depth"]["epoch"] == 1
    published = {topics.parse_md_topic(p.topic)[0]: json.loads(p.payload)["seq"]
                 for p in run1 if p.topic.endswith("/depth")}
    crash(engine)

    engine, recovered = open_venue(tmp_path)
    assert engine.epoch == 2 and len(engine.books["TB3M"]) == 3
    cycle = GatewayCycle(engine, EVERY_CYCLE, recovered=recovered)
    retained = cycle.retained(4)
    assert all(p.retain for p in retained)
    after = md_docs(retained)
    assert set(after) == {*MD, "reference", "stats"}   # reference data, day statistics
    snap, bbo, state = after["snapshot"], after["bbo"], after["state"]
    assert (snap["bids"], snap["asks"]) == (before["snapshot"]["bids"],
                                            before["snapshot"]["asks"])
    assert snap["seq"] > before["snapshot"]["seq"] and snap["epoch"] == 2
    assert (bbo["bid"], bbo["bid_qty"], bbo["ask"], bbo["ask_qty"]) == (
        "99.000", "2.0000", "99.100", "2.0000")
    assert bbo["seq"] == snap["seq"] and bbo["epoch"] == 2
    assert state["state"] == "continuous" and state["epoch"] == 2
    for symbol in engine.symbols:                # no symbol's sequence goes backwards
        s = md_docs(retained, symbol)["snapshot"]
        assert s["seq"] > published.get(symbol, 0) and s["epoch"] == 2

    # The view saw a restart, not a gap, and is in sync with the recovered book again.
    feed(view, retained)
    run2 = cycle.process([order("beta", "a2", "sell", "1", "99.000")], 5)
    feed(view, run2)
    depth = md_docs(run2)["depth"]
    assert depth["seq"] == snap["seq"] + 1 and depth["epoch"] == 2
    trade = md_docs(run2)["trades"]
    assert trade["epoch"] == 2 and trade["qty"] == "1.0000"
    b = view.books["TB3M"]
    assert b.in_sync and b.epoch == 2 and b.restarts == 1 and b.gaps == 0
    assert b.ladder("buy") == ladder(engine, "TB3M", 1)
    assert b.ladder("sell") == ladder(engine, "TB3M", 2)
    engine.close()


def _snap(seq, epoch, bids=()):
    return {"symbol": "TB3M", "seq": seq, "epoch": epoch, "bids": list(bids), "asks": []}


def _depth(seq, epoch, price="98.000", qty="1.0000"):
    return {"symbol": "TB3M", "seq": seq, "epoch": epoch,
            "levels": [["buy", price, qty, 1 if qty != "0" else 0]]}


def test_the_view_tells_a_restart_from_a_gap_and_resyncs_from_either():
    b = BookView("TB3M")
    b.on_snapshot(_snap(4, 1, [("99.000", "1.0000", 1)]))
    b.on_depth(_depth(5, 1))
    assert b.in_sync and b.seq == 5 and b.epoch == 1
    b.on_depth(_depth(7, 1, "97.000"))                  # 6 never came: a gap
    assert not b.in_sync and b.gaps == 1
    b.on_snapshot(_snap(6, 1))                          # older than what was seen
    assert not b.in_sync
    b.on_snapshot(_snap(7, 1, [("99.000", "1.0000", 1), ("98.000", "1.0000", 1),
                               ("97.000", "1.0000", 1)]))
    assert b.in_sync and b.resyncs == 1 and len(b.ladder("buy")) == 3

    # The venue restarts: a new epoch is a restart (not a gap), out of sync until the new
    # epoch's snapshot; what an older epoch still says is ignored.
    b.on_depth(_depth(12, 2, "96.000"))
    assert not b.in_sync and b.restarts == 1 and b.gaps == 1
    b.on_depth(_depth(8, 1, "95.000"))
    b.on_snapshot(_snap(30, 1))
    assert not b.in_sync and b.epoch == 2
    b.on_snapshot(_snap(12, 2, [("99.000", "1.0000", 1), ("96.000", "1.0000", 1)]))
    assert b.in_sync and b.resyncs == 2 and b.seq == 12
    assert [p for p, _, _ in b.ladder("buy")] == ["99.000", "96.000"]
    b.on_state({"symbol": "TB3M", "state": "halted", "reason": "old", "seq": 3, "epoch": 1})
    assert b.state == "continuous"                      # a stale state is not applied
    b.on_depth(_depth(13, 2, "99.000", "0"))
    assert b.in_sync and b.seq == 13 and [p for p, _, _ in b.ladder("buy")] == ["96.000"]

    # A restart with a retained snapshot first (the gateway's first connect): in sync at
    # once, even without a single depth update of the new epoch.
    b.on_snapshot(_snap(15, 3))
    assert b.in_sync and b.restarts == 2 and b.epoch == 3 and b.ladder("buy") == []


def test_a_view_never_says_in_sync_before_a_snapshot():
    view = MarketView()
    view.on_message(topics.md("TB3M", "depth"), json.dumps(_depth(3, 1)).encode())
    assert not view.books["TB3M"].in_sync and view.books["TB3M"].ladder("buy") == []
    view.on_message(topics.md("TB3M", "snapshot"), json.dumps(_snap(2, 1)).encode())
    assert not view.books["TB3M"].in_sync                # older than the depth seen
    view.on_message(topics.md("TB3M", "snapshot"), json.dumps(_snap(3, 1)).encode())
    assert view.books["TB3M"].in_sync


# ---------------------------------------------------------------------- a real server
async def _until(client, pred, timeout: float = 10.0):
    """The first message ``pred(topic, doc)`` accepts (its (topic, doc))."""
    async with asyncio.timeout(timeout):
        async for m in client.messages:
            doc = json.loads(m.payload)
            if pred(m.topic.value, doc):
                return m.topic.value, doc
    raise AssertionError("message stream ended")


async def _ask(client, msg, cl_ord_id: str, timeout: float = 15.0) -> dict:
    """Send an order until its first report comes (the gateway announces itself online
    just before it subscribes, so the first copy may find no subscriber): resends get the
    original outcome."""
    async with asyncio.timeout(timeout):
        while True:
            await client.publish(*msg, qos=1)
            try:
                _, doc = await _until(client, lambda t, d: d["cl_ord_id"] == cl_ord_id, 1.0)
                return doc
            except TimeoutError:
                continue


async def _retained(broker, epoch: int, symbol: str = "TB3M") -> dict:
    """A fresh subscriber's retained snapshot, BBO and state of ``symbol`` of ``epoch``."""
    return (await integrity.retained_md(broker.port, epoch, (symbol,)))[symbol]


@pytest.mark.network
def test_serve_killed_9_and_restarted_retains_the_live_order_in_a_new_epoch(mqtt_broker,
                                                                              tmp_path):
    server = faults.Server(mqtt_broker.url, tmp_path / "data")
    alpha_bid = order("alpha", "k1", "buy", "2.5", "99.015", acct=1001, time_in_force="gtc")

    async def body():
        t0 = time.time_ns()
        server.start()
        await server.wait_online(t0)
        view = MarketView()
        async with connect(mqtt_broker) as c, connect(mqtt_broker) as watcher:
            await watcher.subscribe(f"{topics.ROOT}/md/TB3M/#", qos=1)
            await c.subscribe(topics.exec_reports("alpha"), qos=1)
            new = await _ask(c, alpha_bid, "k1")
            await c.publish(topics.orders("alpha"), b"{not json", qos=1)
            _, bad = await _until(c, lambda t, d: d["exec_type"] == "rejected")
            first = await _retained(mqtt_broker, 1)
            assert first["snapshot"]["bids"] == [["99.015", "2.5000", 1]]

            async def watch_feed():
                async for m in watcher.messages:
                    view.on_message(m.topic.value, m.payload)
            watching = asyncio.create_task(watch_feed())
            try:
                await asyncio.sleep(0.3)                 # the watcher took the retained copies
                assert view.books["TB3M"].in_sync and view.books["TB3M"].epoch == 1
                server.kill()                            # kill -9: no snapshot, no goodbye
                t1 = time.time_ns()
                server.start()
                await server.wait_online(t1)
                second = await _retained(mqtt_broker, 2)
                new2 = await _ask(c, order("alpha", "k2", "buy", "1", "99.010", acct=1001,
                                           time_in_force="gtc"), "k2")
                await c.publish(topics.orders("alpha"), b"{still not json", qos=1)
                _, bad2 = await _until(c, lambda t, d: d["exec_type"] == "rejected")
                await asyncio.sleep(0.3)                 # the watcher saw k2's depth
            finally:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
        return first, second, new, bad, bad2, new2, view

    try:
        first, second, new, bad, bad2, new2, view = run(body(), timeout=60)
    finally:
        server.kill()
    snap, bbo, state = second["snapshot"], second["bbo"], second["state"]
    assert snap["bids"] == first["snapshot"]["bids"] and snap["asks"] == []
    assert snap["seq"] > first["snapshot"]["seq"] and snap["epoch"] == 2
    assert (bbo["bid"], bbo["bid_qty"], bbo["seq"]) == ("99.015", "2.5000", snap["seq"])
    assert state["state"] == "continuous" and state["epoch"] == 2
    assert first["state"]["epoch"] == first["bbo"]["epoch"] == 1
    # Exec ids are unique across the restart: E ids are engine state, R ids carry the epoch.
    assert (bad["exec_id"], bad2["exec_id"]) == ("R1.1", "R2.1")
    assert new["exec_id"] != new2["exec_id"] and new2["exec_type"] == "new"
    # A watcher connected across the restart resynced by itself and follows the new epoch.
    b = view.books["TB3M"]
    assert b.in_sync and b.epoch == 2 and b.restarts == 1
    assert b.ladder("buy") == [("99.015", "2.5000", 1), ("99.010", "1.0000", 1)]
    assert b.seq == snap["seq"] + 1


@pytest.mark.network
def test_a_second_serve_on_the_same_data_refuses_and_the_first_goes_on(mqtt_broker,
                                                                       tmp_path):
    data = tmp_path / "data"
    server = faults.Server(mqtt_broker.url, data)

    async def body():
        t0 = time.time_ns()
        server.start()
        await server.wait_online(t0)
        second = await asyncio.to_thread(integrity.attempt_serve, mqtt_broker.url, data,
                                         "--fsync", "group", timeout=30)
        async with connect(mqtt_broker) as c:
            await c.subscribe(topics.exec_reports("alpha"), qos=1)
            report = await _ask(c, order("alpha", "l1", "buy", "1", "99.000", acct=1001), "l1")
        return second, report

    try:
        second, report = run(body(), timeout=60)
        assert server.terminate() == 0                  # the first shut down cleanly
    finally:
        server.kill()
    assert second.returncode != 0
    assert "Traceback" not in second.stderr
    last = second.line
    assert last.startswith("tokenbook serve: data directory ") and "in use" in last
    assert f"pid {server.proc.pid}" in last
    assert report["exec_type"] == "new"                 # the first served on, undisturbed
    assert (data / "epoch").read_text() == "1\n"        # the refused start took no epoch

"""The gateway's cycle and outbox without a broker: batches in, publishes out.

Each test drives ``GatewayCycle.process(batch, now_ns)`` directly with (topic, payload)
pairs and checks what it would publish, and when.
"""
from __future__ import annotations

import errno
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from feeds import topics
from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle
from feeds.outbox import Outbox, Publish
from matching.engine import Engine
from matching.journal import Journal, latest_snapshot
from matching.messages import NewOrderSingle
from matching.schedule import SessionSchedule
from testkit.mqtt import two_broker_engine


def ns(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(
        tzinfo=UTC).timestamp()) * 10**9


class Clock:
    def __init__(self, text: str = "2026-12-07 10:00"):
        self.t = ns(text)

    def __call__(self) -> int:
        return self.t


def engine(clock=None, journal=None) -> Engine:
    """alpha owns account 1, beta account 2; both funded and whitelisted everywhere."""
    return two_broker_engine(clock=clock or Clock(), journal=journal)


def order(broker, cl, side, qty="1", price="99.000", symbol="TB3M", **kw):
    acct = {"alpha": 1, "beta": 2}[broker]
    return topics.orders(broker), json.dumps({
        "msg": "new_order", "cl_ord_id": cl, "account": acct, "symbol": symbol,
        "side": side, "qty": qty, "price": price, **kw}).encode()


def admin(action, symbol="", reason="", request_id="r"):
    return topics.ADMIN, json.dumps({"action": action, "symbol": symbol, "reason": reason,
                                     "request_id": request_id}).encode()


def docs(pubs, kind=None, topic=None):
    return [json.loads(p.payload) for p in pubs
            if (kind is None or p.kind == kind) and (topic is None or p.topic == topic)]


def test_reports_come_out_only_once_the_journal_made_them_durable(tmp_path):
    journal = Journal(tmp_path / "j.log")
    eng = engine(journal=journal)
    cycle = GatewayCycle(eng, GatewayConfig(drop_copy="*"))
    pubs = cycle.process([order("alpha", "s1", "sell", "2"), order("beta", "b1", "buy")], 1)
    assert journal.durable_seq == 2 and journal.pending == 0
    execs = docs(pubs, "exec")
    assert max(r["seq"] for r in execs) <= journal.durable_seq
    assert [(p.topic.rsplit("/", 1)[-1], d["exec_type"]) for p, d in
            zip([p for p in pubs if p.kind == "exec"], execs, strict=False)] == [
        ("alpha", "new"), ("beta", "new"), ("alpha", "trade"), ("beta", "trade")]
    # Each report also on its broker's drop copy, in the same order.
    assert [p.topic for p in pubs if p.kind == "dropcopy"] == [
        topics.dropcopy(b) for b in ("alpha", "beta", "alpha", "beta")]
    assert [p.topic for p in pubs if p.kind not in ("exec", "dropcopy")] == [
        topics.md("TB3M", "trades"), topics.md("TB3M", "stats"), topics.md("TB3M", "depth"),
        topics.md("TB3M", "snapshot"), topics.md("TB3M", "bbo")]
    st = cycle.stats
    assert (st.acks, st.trades, st.volume_lots, st.cycles) == (2, 1, {"TB3M": 10_000}, 1)
    [bought] = [d for d in execs if d["exec_type"] == "trade" and d["side"] == "buy"]
    assert st.settled_cash["TB3M"] == Decimal(bought["settl_amount"]).scaleb(6) > 0
    journal.close()


def test_bad_and_unattributable_messages_are_answered_or_counted():
    cycle = GatewayCycle(engine())
    pubs = cycle.process([(topics.orders("alpha"), b"not json"),
                          ("tokenbook/v1/orders/no spaces", b"{}")], 1)
    [rej] = docs(pubs, "exec")
    assert rej["ord_rej_reason"] == "MALFORMED_JSON"
    assert (cycle.stats.decode_rejects, cycle.stats.unattributable) == (1, 1)


def test_a_journal_failure_refuses_orders_and_says_not_accepting(tmp_path, monkeypatch):
    import matching.journal as jmod
    journal = Journal(tmp_path / "j.log")
    cycle = GatewayCycle(engine(journal=journal))

    def full(*a):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(jmod.os, "pwrite", full)
    first = cycle.process([order("alpha", "a1", "buy"), admin("halt", "TB3M")], 5)
    assert not cycle.accepting
    [status] = [p for p in first if p.kind == "status"]
    doc = json.loads(status.payload)
    assert status.retain and {k: doc[k] for k in ("status", "text", "time")} == {
        "status": "not_accepting", "text": cycle.status_text,
        "time": "1970-01-01T00:00:00.000000005Z"}
    assert doc["instance"] == cycle.config.instance         # which engine says so
    assert "No space left" in cycle.status_text
    assert not docs(first, "exec")                      # a1 was not durable: no New report
    [reply] = docs(first, "admin")
    assert not reply["accepted"] and reply["text"].startswith("not confirmed")
    second = cycle.process([order("alpha", "a2", "buy")], 6)
    [rej] = docs(second, "exec")
    assert rej["ord_rej_reason"] == "JOURNAL_UNAVAILABLE" and rej["cl_ord_id"] == "a2"
    assert json.loads(cycle.retained(7)[0].payload)["status"] == "not_accepting"
    monkeypatch.undo()
    journal.close()


def test_an_operator_halt_is_journaled_replied_and_its_state_retained():
    cycle = GatewayCycle(engine())
    pubs = cycle.process([admin("halt", "TB3M", "issuer notice", "h1")], 1)
    [reply] = docs(pubs, "admin")
    assert (reply["request_id"], reply["accepted"], reply["seq"]) == ("h1", True, 1)
    [state] = [p for p in pubs if p.topic == topics.md("TB3M", "state")]
    assert state.retain and json.loads(state.payload) == {
        "symbol": "TB3M", "state": "halted", "reason": "issuer notice", "seq": 1,
        "epoch": 0}
    [rej] = docs(cycle.process([order("alpha", "o1", "buy")], 2), "exec")
    assert rej["ord_rej_reason"] == "MARKET_NOT_OPEN"
    again = {p.topic: json.loads(p.payload) for p in cycle.retained(3)}
    assert again[topics.md("TB3M", "state")]["state"] == "halted"
    assert again[topics.md("TB6M", "state")]["state"] == "continuous"
    bad = docs(cycle.process([admin("halt", "NOPE", request_id="b")], 4), "admin")
    assert not bad[0]["accepted"] and cycle.stats.admin_refused == 1


def test_a_schedule_boundary_becomes_one_input_at_the_injected_time():
    clock = Clock("2026-12-07 07:00")                   # Monday, before the open
    cycle = GatewayCycle(engine(clock), GatewayConfig(
        schedule=SessionSchedule.parse("08:00-16:30"), clock=clock))
    first = cycle.process([], clock())
    assert json.loads(next(p for p in first if p.topic == topics.md("TB3M", "state"))
                      .payload)["state"] == "closed"    # a new venue: Friday's close
    clock.t = ns("2026-12-07 08:00")
    assert cycle.process([], ns("2026-12-07 07:59")) == []      # not yet, by the given now
    opened = cycle.process([], ns("2026-12-07 08:00"))
    [reply] = docs(opened, "admin")
    assert (reply["request_id"], reply["action"], reply["accepted"]) == ("schedule", "open", True)
    assert {json.loads(p.payload)["state"] for p in opened if p.topic.endswith("/state")} == \
        {"continuous"}


def test_gtd_expiry_follows_the_injected_now_not_the_engines_clock():
    clock = Clock("2026-12-07 10:00")
    eng = engine(clock)
    cycle = GatewayCycle(eng)
    at = ns("2026-12-07 11:00")
    [ack] = docs(cycle.process([order("alpha", "g1", "buy", time_in_force="gtd",
                                      expire_time=at)], clock()), "exec")
    assert ack["exec_type"] == "new"
    clock.t = at + 10**9                                # the engine's clock is past it
    assert cycle.process([], at - 1) == []              # the cycle's now is not: no input
    [expired] = docs(cycle.process([], at), "exec")
    assert (expired["cl_ord_id"], expired["exec_type"]) == ("g1", "expired")


def test_a_held_brokers_reports_wait_for_its_presence_online():
    cycle = GatewayCycle(engine(), GatewayConfig(hold_reports=2.0))
    cycle.process([order("alpha", "s1", "sell")], 1)    # alpha rests an order
    cycle.connected(100.0, 99.0)                        # a reconnect: alpha may be away
    assert set(cycle.outbox.held) == {"alpha"}
    pubs = cycle.process([order("beta", "b1", "buy")], 2)
    assert {p.broker for p in pubs if p.kind == "exec"} == {"beta"}
    assert len(cycle.outbox) == 1                       # alpha's fill waits
    released = cycle.process([(topics.presence("alpha"), b"online")], 3)
    [fill] = docs(released, "exec")
    assert (fill["cl_ord_id"], fill["exec_type"]) == ("s1", "trade")
    assert not cycle.outbox.held and len(cycle.outbox) == 0


def test_holds_end_at_their_deadline_and_keep_each_brokers_order():
    cycle = GatewayCycle(engine(), GatewayConfig(hold_reports=2.0))
    cycle.process([order("alpha", "s1", "sell", "3")], 1)
    cycle.connected(100.0, 99.0)
    cycle.process([order("beta", "b1", "buy")], 2)      # alpha: one fill held
    cycle.outbox.release_due(101.0)
    assert cycle.outbox.held                            # not yet
    cycle.outbox.release_due(102.0)
    pubs = cycle.process([order("beta", "b2", "buy")], 3)
    alpha = [d["cum_qty"] for d in docs(pubs, "exec") if d["cl_ord_id"] == "s1"]
    assert alpha == ["1.0000", "2.0000"]                # the held fill first


def test_snapshots_every_n_inputs(tmp_path):
    journal = Journal(tmp_path / "j.log")
    cycle = GatewayCycle(engine(journal=journal), GatewayConfig(
        snapshot_dir=tmp_path / "snaps", snapshot_every=3))
    cycle.process([order("alpha", f"p{i}", "buy") for i in range(2)], 1)
    assert latest_snapshot(tmp_path / "snaps") is None
    cycle.process([order("alpha", "p2", "buy")], 2)
    assert latest_snapshot(tmp_path / "snaps")[0] == 3
    journal.close()


def test_recovered_reports_go_out_first_marked_poss_resend():
    eng = engine()
    out = eng.submit("alpha", NewOrderSingle("r1", 1, "TB3M", "buy", "1", price="99.000"))
    cycle = GatewayCycle(eng, recovered=[out])
    [again] = docs(cycle.process([], 1), "exec")
    assert again["cl_ord_id"] == "r1" and again["poss_resend"] is True


# ------------------------------------------------------------------ the outbox alone
def pub(n, kind="exec", broker="alpha", retain=False):
    return Publish(f"t/{n}", str(n).encode(), retain, kind, broker)


def test_outbox_restores_in_order_and_drops_stale_retained_on_reconnect():
    box = Outbox(resend_window=10.0)
    for n, kind in enumerate(("exec", "md", "trade", "status")):
        box.put(pub(n, kind, retain=kind in ("md", "status")))
    taken = box.take()
    box.restore(taken[2:])                              # the connection died after two
    box.delivered(taken[:2], 50.0)
    assert box.reconnected(lost_at=55.0) == 1           # t/0 was acknowledged 5 s before
    assert [p.topic for p in box.take()] == ["t/0", "t/2"]   # stale status dropped


def test_outbox_resend_window_forgets_what_is_older_than_the_window():
    box = Outbox(resend_window=10.0, resend_max=2)
    box.delivered([pub(1), pub(2), pub(3)], 0.0)        # resend_max keeps the last two
    box.delivered([pub(4)], 20.0)                       # and the window ages out the rest
    assert box.reconnected(lost_at=21.0) == 1
    assert [p.topic for p in box.take()] == ["t/4"]


@pytest.mark.parametrize("cod, cancelled", [("*", True), ("alpha", True), ("beta", False)])
def test_cancel_on_disconnect_by_presence_offline(cod, cancelled):
    cycle = GatewayCycle(engine(), GatewayConfig(cancel_on_disconnect=cod))
    cycle.process([order("alpha", "c1", "buy", time_in_force="gtc")], 1)
    pubs = cycle.process([(topics.presence("alpha"), b"offline")], 2)
    got = [(d["cl_ord_id"], d["exec_type"]) for d in docs(pubs, "exec")]
    assert got == ([("c1", "canceled")] if cancelled else [])


def test_a_retained_offline_presence_never_cancels():
    """A stale ``offline`` stored from before this gateway started reaches it on subscribe
    (retained): not a disconnect. A live one (the last will firing now) is."""
    cycle = GatewayCycle(engine(), GatewayConfig(cancel_on_disconnect="alpha"))
    cycle.process([order("alpha", "c1", "buy", time_in_force="gtc")], 1)
    assert docs(cycle.process([(topics.presence("alpha"), b"offline", True)], 2), "exec") == []
    assert cycle.engine.has_live_orders("alpha")
    [cancel] = docs(cycle.process([(topics.presence("alpha"), b"offline", False)], 3), "exec")
    assert (cancel["cl_ord_id"], cancel["exec_type"], cancel["text"]) == (
        "c1", "canceled", "CANCEL_ON_DISCONNECT")


def test_a_retained_online_presence_still_releases_held_reports():
    cycle = GatewayCycle(engine(), GatewayConfig(hold_reports=2.0))
    cycle.process([order("alpha", "s1", "sell")], 1)
    cycle.connected(100.0, 99.0)
    cycle.process([order("beta", "b1", "buy")], 2)
    [fill] = docs(cycle.process([(topics.presence("alpha"), b"online", True)], 3), "exec")
    assert fill["cl_ord_id"] == "s1"


def test_a_refused_cancel_goes_out_as_a_cancel_reject_and_is_counted():
    cycle = GatewayCycle(engine())
    cycle.process([order("alpha", "a1", "buy", time_in_force="gtc")], 1)
    cancel = (topics.orders("alpha"), json.dumps({
        "msg": "cancel", "cl_ord_id": "c1", "orig_cl_ord_id": "nope", "symbol": "TB3M"}).encode())
    replace = (topics.orders("alpha"), json.dumps({
        "msg": "replace", "cl_ord_id": "r1", "orig_cl_ord_id": "a1", "symbol": "TB3M",
        "price": "99.0001", "qty": "1"}).encode())
    pubs = cycle.process([cancel, replace], 2)
    got = [(p.topic, d["msg"], d["cxl_rej_reason"], d["ord_status"])
           for p, d in zip(pubs, docs(pubs), strict=True) if p.kind == "exec"]
    assert got == [(topics.exec_reports("alpha"), "cancel_reject", "UNKNOWN_ORDER", "rejected"),
                   (topics.exec_reports("alpha"), "cancel_reject", "OTHER", "new")]
    assert cycle.stats.cancel_rejects == 2 and cycle.stats.acks == cycle.stats.reports == 1
    assert cycle.stats.reject_reasons == {"UNKNOWN_ORDER": 1, "INVALID_PRICE": 1}
    # A resend of the refused cancel gets the same cancel reject, marked PossResend.
    [again] = docs(cycle.process([cancel], 3), "exec")
    assert again["msg"] == "cancel_reject" and again["poss_resend"] is True


def test_the_engine_status_time_is_a_utc_timestamp():
    cycle = GatewayCycle(engine())
    status = json.loads(cycle.retained(1_796_234_400_123_456_789)[0].payload)
    assert status["time"] == "2026-12-02T18:00:00.123456789Z"
    assert json.loads(cycle.status("offline", "engine gone").payload)["time"] == ""


def test_the_cycle_imports_no_mqtt_library():
    """The seam for a sans-I/O transport: cycle, outbox and config load without aiomqtt/paho."""
    import os
    import subprocess
    import sys
    code = ("import sys, feeds.cycle, feeds.outbox, feeds.config; "
            "print(sorted(m for m in sys.modules if m.startswith(('aiomqtt', 'paho'))))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env).stdout
    assert out.strip() == "[]"


def test_depth_snapshot_is_republished_at_most_every_interval_and_after_the_last_change():
    """Increments and the BBO go every cycle; the retained full-depth snapshot of a book
    that changed goes at most every depth_snapshot_interval, and an idle cycle past the
    interval publishes the last change, so a late subscriber's snapshot is never stale
    for longer than that."""
    cycle = GatewayCycle(engine(), GatewayConfig(depth_snapshot_interval=0.5))
    snap = topics.md("TB3M", "snapshot")
    second = 10**9

    def snapshots(pubs):
        return [json.loads(p.payload)["seq"] for p in pubs if p.topic == snap]

    first = cycle.process([order("alpha", "b1", "buy", price="98.000")], 1 * second)
    assert snapshots(first) == [docs(first, topic=topics.md("TB3M", "depth"))[0]["seq"]]
    soon = cycle.process([order("alpha", "b2", "buy", price="98.100")], second + second // 10)
    assert snapshots(soon) == [] and docs(soon, topic=topics.md("TB3M", "bbo"))
    assert snapshots(cycle.process([], second + second // 5)) == []     # still inside
    late = cycle.process([], 2 * second)                                 # idle, past it
    depth_seq = docs(soon, topic=topics.md("TB3M", "depth"))[0]["seq"]
    assert snapshots(late) == [depth_seq]
    assert json.loads(next(p for p in late if p.topic == snap).payload)["bids"][0][0] == "98.100"
    assert snapshots(cycle.process([], 3 * second)) == []               # nothing changed


def test_day_statistics_are_republished_at_most_every_interval_and_after_the_last_fill():
    """The retained md/{symbol}/stats goes with the first cycle's fills, then at most every
    stats_interval; an idle cycle past it publishes the figures of the last fill."""
    cycle = GatewayCycle(engine(), GatewayConfig(stats_interval=0.5))
    stats = topics.md("TB3M", "stats")
    second = 10**9

    def trade(n, at):
        return cycle.process([order("alpha", f"s{n}", "sell", price="99.000"),
                              order("beta", f"b{n}", "buy", price="99.000")], at)

    first = trade(1, second)
    assert [d["trade_count"] for d in docs(first, topic=stats)] == [1]
    soon = trade(2, second + second // 10)
    assert docs(soon, topic=topics.md("TB3M", "trades")) and docs(soon, topic=stats) == []
    assert docs(cycle.process([], second + second // 5), topic=stats) == []   # still inside
    late = cycle.process([], 2 * second)                                       # idle, past it
    assert [(d["trade_count"], d["volume"]) for d in docs(late, topic=stats)] == [(2, "2.0000")]
    assert docs(cycle.process([], 3 * second), topic=stats) == []              # nothing new
    every = GatewayCycle(engine(), GatewayConfig(stats_interval=0))
    for n in range(3):
        pubs = every.process([order("alpha", f"s{n}", "sell"), order("beta", f"b{n}", "buy")],
                             second + n)
        assert [d["trade_count"] for d in docs(pubs, topic=stats)] == [n + 1]

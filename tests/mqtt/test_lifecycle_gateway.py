"""The gateway's side of a security's life, without a broker: the timetable's inputs sent
journaled when due (and once, in date order, after a restart), corporate actions on the
holders' exec topics, the operator's lifecycle commands, and an engine fault stopping the
gateway from accepting instead of killing it.
"""
from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

from feeds import topics
from feeds.cycle import GatewayCycle
from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import Journal
from matching.ledger import CASH, Ledger

ISSUER = 9000


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


class Clock:
    def __init__(self, text: str):
        self.t = ns(text)

    def set(self, text: str) -> None:
        self.t = ns(text)

    def __call__(self) -> int:
        return self.t


def instruments():
    return [dataclasses.replace(i, issuer_account=ISSUER) if i.maturity else i
            for i in Registry.load_default()]


def ledger() -> Ledger:
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta"), (ISSUER, "treasury")):
        led.open_account(acct, broker, "institutional")
        led.deposit(acct, CASH, 10**13)
        for inst in Registry.load_default():
            if acct != ISSUER:
                led.deposit(acct, inst.symbol, 10**4)
            led.whitelist(acct, inst.symbol)
    return led


def docs(pubs, kind=None, topic=None):
    return [json.loads(p.payload) for p in pubs
            if (kind is None or p.kind == kind) and (topic is None or p.topic == topic)]


def order(broker, cl, side, symbol="TB3M", price="99.900"):
    return topics.orders(broker), json.dumps({
        "msg": "new_order", "cl_ord_id": cl, "account": {"alpha": 1, "beta": 2}[broker],
        "symbol": symbol, "side": side, "qty": "1", "price": price,
        "time_in_force": "gtc"}).encode()


def test_the_timetable_records_and_pays_a_coupon_when_due_and_only_once():
    clock = Clock("2026-12-14T20:00:00")
    eng = Engine(instruments(), ledger(), clock=clock)
    cycle = GatewayCycle(eng)
    assert not docs(cycle.process([], 1))                      # nothing due yet
    clock.set("2026-12-15T00:00:01")
    pubs = cycle.process([], 2)
    replies = docs(pubs, "admin")
    assert [(r["action"], r["symbol"], r["accepted"]) for r in replies] == [
        ("record", "BD3Y", True), ("pay_coupon", "BD3Y", True)]
    [alpha] = docs(pubs, "exec", topics.exec_reports("alpha"))
    assert {k: alpha[k] for k in ("msg", "action", "symbol", "account", "qty", "amount",
                                  "record_date", "payment_date")} == {
        "msg": "corporate_action", "action": "coupon", "symbol": "BD3Y", "account": 1,
        "qty": "1.0000", "amount": "20.000000", "record_date": "2026-12-14",
        "payment_date": "2026-12-15"}
    assert alpha["seq"] == replies[1]["seq"]
    assert cycle.stats.coupons_paid == {"BD3Y": 40_000_000}
    assert not docs(cycle.process([], 3), "admin")              # once
    # A new gateway on the same engine (a restart) does not pay it again either.
    assert not docs(GatewayCycle(eng).process([], 4), "admin")


def test_after_a_restart_the_missed_steps_are_applied_once_in_date_order(tmp_path):
    clock = Clock("2027-01-30T12:00:00")
    journal = Journal(tmp_path / "journal.log")
    eng = Engine(instruments(), ledger(), clock=clock, journal=journal)
    eng.write_snapshot(tmp_path / "snaps")
    cycle = GatewayCycle(eng)
    cycle.process([order("alpha", "s1", "sell")], 1)            # rests until maturity
    journal.close()
    clock.set("2027-02-02T09:00:00")                           # down over the maturity
    back = Engine.recover(instruments(), snapshot_dir=tmp_path / "snaps",
                          journal_path=tmp_path / "journal.log", clock=clock,
                          journal=Journal(tmp_path / "journal.log"))
    pubs = GatewayCycle(back).process([], 2)
    assert [(r["action"], r["symbol"]) for r in docs(pubs, "admin")] == [
        ("mature", "TB3M"), ("redeem", "TB3M")]
    expired = docs(pubs, "exec", topics.exec_reports("alpha"))
    assert [(d["msg"], d.get("text"), d.get("action")) for d in expired] == [
        ("exec_report", "MATURED", None), ("corporate_action", None, "redemption")]
    [state] = [p for p in pubs if p.topic == topics.md("TB3M", "state")]
    assert state.retain and json.loads(state.payload)["state"] == "matured"
    assert back.ledger.supply("TB3M") == 0
    again = GatewayCycle(back).process([], 3)
    assert not docs(again, "admin")
    back.journal.close()


def test_the_operator_may_send_a_lifecycle_step_and_a_refusal_says_why():
    clock = Clock("2027-02-01T08:00:00")
    eng = Engine(instruments(), ledger(), clock=clock)
    cycle = GatewayCycle(eng)                # started after TB3M's mature fell due
    cmd = json.dumps({"action": "redeem", "symbol": "TB6M", "request_id": "op1"}).encode()
    [reply] = docs(cycle.process([(topics.ADMIN, cmd)], 1), "admin")
    assert (reply["request_id"], reply["accepted"]) == ("op1", False)
    assert "must mature" in reply["text"]
    cmd = json.dumps({"action": "mature", "symbol": "TB3M", "request_id": "op2"}).encode()
    [reply] = docs(cycle.process([(topics.ADMIN, cmd)], 2), "admin")
    assert reply["accepted"] and eng.trading_status("TB3M").state == "matured"


def test_an_engine_fault_stops_the_gateway_accepting_with_the_reason():
    clock = Clock("2026-12-07T10:00:00")
    eng = Engine(instruments(), ledger(), clock=clock)
    cycle = GatewayCycle(eng)
    cycle.process([order("alpha", "s1", "sell")], 1)

    class Broken:
        def of_fill(self, *args):
            raise ZeroDivisionError("a bug in the fill")

    eng.economics["TB3M"] = Broken()
    eng.executions.economics = eng.economics
    pubs = cycle.process([order("beta", "b1", "buy")], 2)      # does not raise
    assert not cycle.accepting and cycle.status_text.startswith("engine fault: ")
    [status] = [p for p in pubs if p.kind == "status"]
    assert json.loads(status.payload)["status"] == "not_accepting"
    [rej] = docs(cycle.process([order("beta", "b2", "buy", "TB6M", "98.285")], 3), "exec")
    assert rej["ord_rej_reason"] == "ENGINE_FAULT"

"""The life of a security in the engine: last trading date, maturity, the clean refusal of
orders outside the life, and an engine fault stopping the engine rather than leaving a
half-applied input.

The clock is at the instruments' real dates: TB3M (instruments.toml) was issued on
2026-11-02 and matures on 2027-02-01, T+0, so its last trading date is 2027-01-31.
"""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from matching.engine import Engine
from matching.errors import EngineFault
from matching.instruments import Registry
from matching.ledger import CASH, Ledger
from matching.lifecycle import last_trading_date
from matching.messages import NewOrderSingle, OrderCancelReplaceRequest

REG = Registry.load_default()


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


class Clock:
    def __init__(self, text: str):
        self.now = ns(text)

    def set(self, text: str) -> None:
        self.now = ns(text)

    def __call__(self) -> int:
        return self.now


def make_engine(clock: Clock) -> Engine:
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta")):
        led.open_account(acct, broker, "institutional")
        led.deposit(acct, CASH, 1_000_000 * 10**6)
        for inst in REG:
            led.deposit(acct, inst.symbol, 100 * 10**4)
            led.whitelist(acct, inst.symbol)
    return Engine(REG, led, clock=clock)


def nos(cl, acct, side, qty="1", price="99.900", symbol="TB3M"):
    return NewOrderSingle(cl, acct, symbol, side, qty, price=price, time_in_force="gtc")


def test_default_last_trading_date_is_the_last_day_settling_before_maturity():
    assert last_trading_date(REG["TB3M"]) == datetime(2027, 1, 31).date()
    assert last_trading_date(REG["BD3Y"]) == datetime(2029, 6, 14).date()
    assert last_trading_date(REG["GOLD"]) is None


def test_trade_on_maturity_is_a_clean_instrument_matured_reject_state_unchanged():
    """The live defect: a buy crossing a resting sell on the maturity date raised
    ValueError from the fill's settlement arithmetic after it was journaled."""
    clock = Clock("2027-01-31T10:00:00")
    eng = make_engine(clock)
    twin = make_engine(clock)
    for e in (eng, twin):
        assert e.submit("alpha", nos("s1", 1, "sell")).reports[0][1].exec_type == "new"
    clock.set("2027-02-01T10:00:00")
    out = eng.submit("beta", nos("b1", 2, "buy"))
    [(broker, r)] = out.reports
    assert (broker, r.exec_type, r.ord_rej_reason) == ("beta", "rejected", "INSTRUMENT_MATURED")
    assert "2027-01-31" in r.text and not out.trades
    # Nothing but the sequence counters moved: the hash equals a twin's that got a plain
    # pre-trade reject at the same point.
    plain = twin.submit("beta", nos("b1", 2, "buy", symbol="NOPE"))
    assert plain.reports[0][1].ord_rej_reason == "UNKNOWN_SYMBOL"
    assert eng.state_hash() == twin.state_hash()
    assert len(eng.books["TB3M"]) == 1 and eng.ledger.reserved(2, CASH) == 0


def test_orders_after_the_last_trading_date_are_refused_and_replaces_too():
    clock = Clock("2027-01-31T23:59:59")
    eng = make_engine(clock)
    eng.submit("alpha", nos("s1", 1, "sell"))
    clock.set("2027-02-05T09:00:00")
    out = eng.submit("alpha", OrderCancelReplaceRequest("s2", "s1", "TB3M", "99.950", "1"))
    [(_, r)] = out.reports
    assert r.cxl_rej_reason == "OTHER" and r.text.startswith("INSTRUMENT_MATURED: ")
    assert r.ord_status == "new"


def test_a_trade_before_the_issue_date_is_refused_not_yet_issued():
    clock = Clock("2026-11-01T10:00:00")
    eng = make_engine(clock)
    r = eng.submit("alpha", nos("s1", 1, "sell")).reports[0][1]
    assert r.ord_rej_reason == "NOT_YET_ISSUED"


def test_an_exception_inside_a_fill_is_an_engine_fault_and_stops_the_engine():
    clock = Clock("2026-12-07T10:00:00")
    eng = make_engine(clock)
    eng.submit("alpha", nos("s1", 1, "sell"))

    class Broken:
        def of_fill(self, *args):
            raise ZeroDivisionError("a bug in the fill")

    eng.economics["TB3M"] = Broken()
    eng.executions.economics = eng.economics
    # (Compiled, the engine refuses the stand-in's type first: an exception all the same.)
    with pytest.raises(EngineFault, match=r"input 2 .* failed inside the engine"):
        eng.submit("beta", nos("b1", 2, "buy"))
    assert eng.fault is not None
    seq = eng.seq
    r = eng.submit("beta", nos("b2", 2, "buy", symbol="TB6M", price="98.285")).reports[0][1]
    assert (r.ord_rej_reason, eng.seq) == ("ENGINE_FAULT", seq)

"""Maturity, coupons with a record date, ex-coupon accrued and redemption, in the engine.

Dates are the instruments' real ones: BD3Y (4.00 %, 15 Jun / 15 Dec, maturity 2029-06-15,
record_lag 1 business day) records its first coupon's holders at the close of Monday
2026-12-14 and pays it on 2026-12-15; TB3M matures 2027-02-01.
"""
from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from matching import fixed_income as fi
from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger
from matching.lifecycle import coupon_schedule, in_ex_period
from matching.messages import CorporateAction, NewOrderSingle

ISSUER = 9000
USDC = 10**6          # minor units per USDC
TOKEN = 10**4         # lots per token


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


class Clock:
    def __init__(self, text: str):
        self.now = ns(text)

    def set(self, text: str) -> None:
        self.now = ns(text)

    def __call__(self) -> int:
        return self.now


def registry(**changes) -> list:
    """The default programme, every bill and bond paid from ISSUER (plus ``changes`` per
    symbol: a dict of fields)."""
    out = []
    for inst in Registry.load_default():
        if inst.maturity is not None:
            inst = dataclasses.replace(inst, issuer_account=ISSUER,
                                       **changes.get(inst.symbol, {}))
        out.append(inst)
    return out


def make_engine(clock: Clock, instruments=None, issuer_cash: int = 10_000_000 * USDC,
                tokens: int = 10 * TOKEN) -> Engine:
    instruments = instruments or registry()
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta"), (ISSUER, "treasury")):
        led.open_account(acct, broker, "institutional")
        led.deposit(acct, CASH, issuer_cash if acct == ISSUER else 1_000_000 * USDC)
        for inst in instruments:
            if acct != ISSUER:
                led.deposit(acct, inst.symbol, tokens)
            led.whitelist(acct, inst.symbol)
    return Engine(instruments, led, clock=clock)


def nos(cl, acct, side, price, qty="1", symbol="BD3Y", tif="gtc"):
    return NewOrderSingle(cl, acct, symbol, side, qty, price=price, time_in_force=tif)


def corporate(out) -> list[tuple[str, CorporateAction]]:
    return [(b, r) for b, r in out.reports if isinstance(r, CorporateAction)]


def cash(eng: Engine, acct: int) -> int:
    return eng.ledger.balance(acct, CASH)


# ---------------------------------------------------------------------- maturity
def test_mature_expires_every_resting_order_and_is_for_good():
    clock = Clock("2027-01-31T10:00:00")
    eng = make_engine(clock)
    eng.submit("alpha", nos("s1", 1, "sell", "99.990", symbol="TB3M"))
    eng.submit("beta", nos("b1", 2, "buy", "99.900", symbol="TB3M"))
    assert eng.ledger.reserved(2, CASH) > 0 and eng.ledger.reserved(1, "TB3M") > 0
    early = eng.lifecycle("mature", "TB3M")
    assert not early.sequenced and "trades until 2027-01-31" in early.refused
    clock.set("2027-02-01T00:00:00")
    out = eng.lifecycle("mature", "TB3M", reason="matured 2027-02-01")
    assert out.sequenced
    assert sorted((b, r.exec_type, r.ord_status, r.text) for b, r in out.reports) == [
        ("alpha", "expired", "expired", "MATURED"), ("beta", "expired", "expired", "MATURED")]
    assert len(eng.books["TB3M"]) == 0 and not eng.orders
    assert eng.ledger.reserved(2, CASH) == 0 and eng.ledger.reserved(1, "TB3M") == 0
    status = eng.trading_status("TB3M")
    assert (status.state, status.seq) == ("matured", out.seq)
    assert eng.lifecycle("mature", "TB3M").refused.endswith("has matured already")
    # Venue-wide actions pass a matured instrument by; it never reopens.
    eng.admin("close")
    eng.admin("open")
    assert eng.trading_status("TB3M").state == "matured"
    r = eng.submit("alpha", nos("s2", 1, "sell", "99.990", symbol="TB3M")).reports[0][1]
    assert r.ord_rej_reason == "INSTRUMENT_MATURED"


# ---------------------------------------------------------------------- coupons
def test_bd3y_pays_20_usdc_per_1000_face_token_per_coupon_at_4_percent():
    clock = Clock("2026-12-15T00:00:00")
    eng = make_engine(clock, tokens=1 * TOKEN)
    assert eng.lifecycle("record", "BD3Y").sequenced
    before = {a: cash(eng, a) for a in (1, 2, ISSUER)}
    out = eng.lifecycle("pay_coupon", "BD3Y")
    paid = corporate(out)
    assert [(b, r.account, r.qty, r.amount, r.record_date, r.payment_date)
            for b, r in paid] == [
        ("alpha", 1, "1.0000", "20.000000", "2026-12-14", "2026-12-15"),
        ("beta", 2, "1.0000", "20.000000", "2026-12-14", "2026-12-15")]
    assert all(r.seq == out.seq and r.action == "coupon" for _, r in paid)
    assert cash(eng, 1) - before[1] == 20 * USDC == cash(eng, 2) - before[2]
    assert before[ISSUER] - cash(eng, ISSUER) == 40 * USDC
    again = eng.lifecycle("pay_coupon", "BD3Y", "2026-12-15")
    assert not again.sequenced and "already paid" in again.refused


@pytest.mark.parametrize(("trade_at", "holder_of_record"), [
    ("2026-12-13T10:00:00", 2),       # before the record date: the buyer
    ("2026-12-14T16:00:00", 2),       # on it (T+0 settles on it): the buyer
    ("2026-12-15T09:00:00", 1),       # after it: the seller, who held at the record
])
def test_only_the_holder_of_record_is_paid_the_coupon(trade_at, holder_of_record):
    clock = Clock(trade_at)
    eng = make_engine(clock, tokens=0)
    eng.ledger.deposit(1, "BD3Y", 1 * TOKEN)      # one token, account 1's
    if trade_at >= "2026-12-15":
        clock.set("2026-12-15T00:00:00")
        eng.lifecycle("record", "BD3Y")
        clock.set(trade_at)
    eng.submit("alpha", nos("s1", 1, "sell", "99.760"))
    fill = eng.submit("beta", nos("b1", 2, "buy", "99.760"))
    assert fill.trades and eng.ledger.balance(2, "BD3Y") == 1 * TOKEN
    clock.set("2026-12-15T00:00:00")
    if trade_at < "2026-12-15":
        eng.lifecycle("record", "BD3Y")
    paid = corporate(eng.lifecycle("pay_coupon", "BD3Y"))
    assert [(r.account, r.amount) for _, r in paid] == [(holder_of_record, "20.000000")]


def test_reserved_lots_are_entitled_at_the_record_date():
    clock = Clock("2026-12-14T12:00:00")
    eng = make_engine(clock, tokens=1 * TOKEN)
    eng.submit("alpha", nos("s1", 1, "sell", "99.990"))       # holds the whole token
    assert eng.ledger.available(1, "BD3Y") == 0
    clock.set("2026-12-15T00:00:00")
    eng.lifecycle("record", "BD3Y")
    paid = corporate(eng.lifecycle("pay_coupon", "BD3Y"))
    assert (paid[0][1].account, paid[0][1].amount) == (1, "20.000000")


def test_an_under_funded_coupon_is_refused_whole_and_pays_nobody():
    clock = Clock("2026-12-15T00:00:00")
    eng = make_engine(clock, issuer_cash=30 * USDC, tokens=1 * TOKEN)   # owes 40
    eng.lifecycle("record", "BD3Y")
    state, seq = eng.state_hash(), eng.seq
    out = eng.lifecycle("pay_coupon", "BD3Y")
    assert not out.sequenced and not out.reports
    assert "refused whole" in out.refused and "needs 40.000000 USDC" in out.refused
    assert (eng.state_hash(), eng.seq) == (state, seq)
    eng.ledger.deposit(ISSUER, CASH, 10 * USDC)                # funded: it goes
    assert [r.amount for _, r in corporate(eng.lifecycle("pay_coupon", "BD3Y"))] == [
        "20.000000", "20.000000"]


def test_record_waits_for_the_close_of_the_record_date():
    clock = Clock("2026-12-14T23:59:59")
    eng = make_engine(clock)
    out = eng.lifecycle("record", "BD3Y")
    assert not out.sequenced and "has not closed" in out.refused
    assert not eng.lifecycle("pay_coupon", "BD3Y").sequenced


# ---------------------------------------------------------------------- ex-coupon
def test_fills_in_the_ex_period_carry_negative_accrued_and_the_buyer_is_not_entitled():
    """Gilt style: 7 business days' record lag (US calendar) and an ex period to the
    payment date. The
    ex accrued is -100 c DCF(settle, next coupon) (UK DMO, 'Formulae for calculating gilt
    prices from yields', ex-dividend accrued): 4 days of a 183-day half year at 4 % are
    -2 x 4/183 = -0.043715846995 per 100."""
    inst = registry(BD3Y={"record_lag": 7, "ex_coupon_days": 7, "calendar": "US"})
    bd3y = next(i for i in inst if i.symbol == "BD3Y")
    first = coupon_schedule(bd3y)[0]
    assert first.record_date == date(2026, 12, 4)             # 7 business days before
    assert in_ex_period(bd3y, date(2026, 12, 11)) == first
    assert in_ex_period(bd3y, date(2026, 12, 4)) is None
    clock = Clock("2026-12-05T00:00:00")
    eng = make_engine(clock, inst, tokens=0)
    eng.ledger.deposit(1, "BD3Y", 1 * TOKEN)
    eng.lifecycle("record", "BD3Y")
    clock.set("2026-12-11T10:00:00")
    eng.submit("alpha", nos("s1", 1, "sell", "99.760"))
    fill = eng.submit("beta", nos("b1", 2, "buy", "99.760"))
    buyer = next(r for b, r in fill.reports if b == "beta" and r.exec_type == "trade")
    assert Decimal(buyer.accrued_interest) == Decimal("-0.437158")   # per 1000-face token
    assert Decimal(buyer.settl_amount) == Decimal("997.600000") - Decimal("0.437158")
    clock.set("2026-12-15T00:00:00")
    paid = corporate(eng.lifecycle("pay_coupon", "BD3Y"))
    assert [(r.account, r.amount) for _, r in paid] == [(1, "20.000000")]


# ---------------------------------------------------------------------- redemption
def _four_week_bill():
    """A UST 4-week bill at a 0.970 % discount rate: price 99.924556 (31 CFR 356 App. B,
    P = 100 (1 - d t / 360), t = 28 days)."""
    base = next(i for i in registry() if i.symbol == "TB3M")
    return dataclasses.replace(
        base, symbol="UST4W", isin="US912797AB10", name="UST 4-week bill",
        tick_size=Decimal("0.000001"), reference_price=Decimal("99.924556"),
        issue_date=date(2026, 12, 1), maturity=date(2026, 12, 29),
        yield_convention="discount", day_count="ACT/360")


def test_a_ust_4_week_bill_bought_at_99_924556_redeems_at_1000_per_1000_face():
    bill = _four_week_bill()
    assert fi.bill_price_from_discount(Decimal("0.0097"), bill.issue_date,
                                       bill.maturity).quantize(Decimal("1e-6")) == \
        bill.reference_price
    clock = Clock("2026-12-01T14:00:00")
    eng = make_engine(clock, [bill], tokens=0)
    eng.ledger.deposit(ISSUER, "UST4W", 5 * TOKEN)             # the issue, not yet sold
    eng.submit("treasury", nos("i1", ISSUER, "sell", "99.924556", "5", "UST4W"))
    fill = eng.submit("beta", nos("b1", 2, "buy", "99.924556", "1", "UST4W"))
    bought = next(r for b, r in fill.reports if b == "beta" and r.exec_type == "trade")
    assert bought.settl_amount == "999.245560"
    cash_total = eng.ledger.total(CASH)
    clock.set("2026-12-29T00:00:00")
    assert eng.lifecycle("redeem", "UST4W").refused.endswith("before it is redeemed")
    matured = eng.lifecycle("mature", "UST4W")
    assert [(b, r.text) for b, r in matured.reports] == [("treasury", "MATURED")]
    out = eng.lifecycle("redeem", "UST4W")
    paid = {r.account: r for _, r in corporate(out)}
    assert (paid[2].action, paid[2].qty, paid[2].amount, paid[2].principal) == (
        "redemption", "1.0000", "1000.000000", "1000.000000")
    assert paid[ISSUER].qty == "4.0000"                        # its unsold tokens, burned
    assert eng.ledger.supply("UST4W") == 0 and eng.ledger.total(CASH) == cash_total
    assert cash(eng, 2) == 1_000_000 * USDC - 999_245_560 + 1000 * USDC
    assert "redeemed already" in eng.lifecycle("redeem", "UST4W").refused
    assert "redeemed already" in eng.lifecycle("mature", "UST4W").refused


def test_a_bond_redeems_at_face_plus_the_final_coupon_to_the_holder_of_record():
    clock = Clock("2029-06-15T00:00:00")
    eng = make_engine(clock, tokens=1 * TOKEN)
    cash_total = eng.ledger.total(CASH)
    for action, coupon in (("record", "2029-06-15"), ("mature", ""), ("redeem", "")):
        out = eng.lifecycle(action, "BD3Y", coupon)
        assert out.sequenced, out.refused
    paid = sorted((r.account, r.amount, r.principal, r.coupon, r.record_date)
                  for _, r in corporate(out))
    assert paid == [(1, "1020.000000", "1000.000000", "20.000000", "2029-06-14"),
                    (2, "1020.000000", "1000.000000", "20.000000", "2029-06-14")]
    assert eng.ledger.supply("BD3Y") == 0 and eng.ledger.total(CASH) == cash_total


def test_an_under_funded_redemption_is_refused_whole():
    clock = Clock("2027-02-01T00:00:00")
    eng = make_engine(clock, issuer_cash=1500 * USDC, tokens=1 * TOKEN)   # owes 2000
    eng.lifecycle("mature", "TB3M")
    state = eng.state_hash()
    out = eng.lifecycle("redeem", "TB3M")
    assert not out.sequenced and "needs 2000.000000 USDC" in out.refused
    assert eng.state_hash() == state and eng.ledger.supply("TB3M") == 2 * TOKEN

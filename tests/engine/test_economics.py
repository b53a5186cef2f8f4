"""The engine's money fast paths equal the exact fixed-income arithmetic they cache."""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from math import ceil

from hypothesis import given, settings
from hypothesis import strategies as st

from matching import fixed_income as fi
from matching.economics import Economics, _half_even
from matching.instruments import Registry

REG = Registry.load_default()
SYMBOLS = [i.symbol for i in REG]


def _ns(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, 12, tzinfo=UTC).timestamp()) * 10**9


def _worst_case_by_formula(inst, ticks: int, lots: int) -> int:
    """The documented rule, spelled out in Fractions: limit price plus the accrued
    ceiling (a full coupon, 32/30 of one off ICMA), plus half a minor unit per lot."""
    qty = Fraction(lots, 10 ** inst.token_decimals)
    price = Fraction(inst.tick_size) * ticks
    if inst.kind == "commodity":
        exact = qty * price
    else:
        coupon = Fraction(0)
        if inst.kind == "bond":
            coupon = 100 * Fraction(inst.coupon_rate) / inst.coupon_frequency
            if "ICMA" not in inst.day_count.upper():
                coupon = coupon * Fraction(32, 30)
        exact = qty * Fraction(inst.face_value) * (price + coupon) / 100
    return ceil(exact * 10 ** inst.cash_decimals + Fraction(lots, 2))


@settings(max_examples=300, deadline=None)
@given(symbol=st.sampled_from(SYMBOLS), offset=st.integers(-500, 500),
       lots=st.integers(1, 10**12))
def test_worst_case_cash_is_the_documented_ceiling(symbol, offset, lots):
    inst = REG[symbol]
    ticks = max(1, inst.reference_ticks() + offset)
    assert Economics(inst).worst_case_cash(ticks, lots) == _worst_case_by_formula(
        inst, ticks, lots)


@settings(max_examples=300, deadline=None)
@given(symbol=st.sampled_from(SYMBOLS), offset=st.integers(-300, 300),
       lots=st.integers(1, 10**10), days=st.integers(0, 400))
def test_fill_economics_equal_trade_economics(symbol, offset, lots, days):
    inst = REG[symbol]
    ticks = max(1, inst.reference_ticks() + offset)
    start = inst.issue_date or date(2026, 1, 1)
    trade_day = date.fromordinal(start.toordinal() + days)
    settle = fi.settlement_date(trade_day, inst.settlement_lag)
    if inst.maturity is not None and not inst.issue_date <= settle < inst.maturity:
        return
    econ = Economics(inst)
    got = econ.of_fill(ticks, lots, _ns(trade_day))
    want = fi.trade_economics(inst, ticks, lots, settle)
    assert got.settlement_amount == want.settlement_amount
    assert got.price == str(want.price) and got.qty == str(want.qty)
    assert got.settlement_cash == str(Decimal(want.settlement_amount).scaleb(-inst.cash_decimals))
    if want.accrued_cash is None:
        assert got.accrued_cash is None
    else:
        assert got.accrued_cash == str(Decimal(want.accrued_cash).scaleb(-inst.cash_decimals))
    # Reserving the worst case for the fill's lots at its price always covers the fill.
    assert econ.worst_case_cash(ticks, lots) >= got.settlement_amount
    # Cached terms answer the next fill at the same price and day identically.
    assert econ.of_fill(ticks, lots, _ns(trade_day)) == got


@given(num=st.integers(-10**30, 10**30), den=st.integers(1, 10**15))
def test_half_even_rounds_like_round_of_a_fraction(num, den):
    assert _half_even(num, den) == round(Fraction(num, den))


def test_half_even_ties_go_to_even():
    assert [_half_even(n, 2) for n in (1, 3, 5, -1, -3)] == [0, 2, 2, 0, -2]


def test_avg_px_of_a_round_price_is_a_plain_decimal():
    inst = REG["TB3M"]
    ticks = inst.price_to_ticks(Decimal(100))
    assert Economics(inst).avg_px(ticks * 7, 7) == "100"


@given(symbol=st.sampled_from(SYMBOLS), ticks=st.integers(1, 10**7), lots=st.integers(1, 10**9))
def test_avg_px_of_whole_ticks_matches_the_engine_cache(symbol, ticks, lots):
    from matching.orders import Conversions
    inst = REG[symbol]
    assert Conversions(inst).avg(ticks) == Economics(inst).avg_px(ticks * lots, lots)

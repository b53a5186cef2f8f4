"""Fixed-income arithmetic against hand calculations, textbook answers and properties."""
from datetime import date, timedelta
from decimal import Decimal as D
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import fixed_income as fi

ISSUE, MAT = date(2026, 6, 15), date(2029, 6, 15)        # a 3-year 4% semi-annual bond


def close(a, b, tol="1e-20"):
    return abs(D(a) - D(b)) < D(tol)


def test_accrued_interest_act_act_icma_by_hand():
    # 15 Jun -> 25 Nov 2026 is 163 days of the 183-day period 15 Jun -> 15 Dec;
    # AI = 100 * 4% / 2 * 163 / 183 = 1.781420765027322...
    ai = fi.accrued_interest(D("0.04"), 2, ISSUE, MAT, date(2026, 11, 25))
    assert close(ai, D(2) * 163 / 183)


def test_accrued_is_zero_on_coupon_date():
    assert fi.accrued_interest(D("0.04"), 2, ISSUE, MAT, date(2026, 12, 15)) == 0
    assert fi.accrued_interest(D("0.04"), 2, ISSUE, MAT, date(2027, 6, 15)) == 0


def test_coupon_schedule_runs_back_from_maturity_keeping_month_end():
    dates = fi.coupon_dates(date(2026, 2, 28), date(2028, 8, 31), 2)
    assert dates == [date(2026, 8, 31), date(2027, 2, 28), date(2027, 8, 31), date(2028, 2, 29),
                     date(2028, 8, 31)]


def test_thirty_360_bond_basis_by_hand():
    # 31 Jan -> 31 Mar: D1 = 30, D2 = 31 -> 30 because D1 >= 30: 60 days of 360.
    assert close(fi.day_count_fraction(date(2026, 1, 31), date(2026, 3, 31), "30/360"),
                 D(60) / 360)
    assert close(fi.day_count_fraction(date(2026, 1, 1), date(2026, 7, 1), "ACT/360"),
                 D(181) / 360)
    assert fi.day_count_fraction(date(2026, 1, 1), date(2027, 1, 1), "ACT/365") == 1


def test_textbook_two_year_six_percent_bond_at_eight_percent():
    # Fabozzi, Bond Markets, Analysis and Strategies: a 6% 2-year semi-annual bond at an
    # 8% yield is worth 3/1.04 + 3/1.04^2 + 3/1.04^3 + 103/1.04^4 = 96.3701 on a coupon date.
    p = fi.bond_clean_price(D("0.08"), D("0.06"), 2, date(2026, 1, 1), date(2028, 1, 1),
                            date(2026, 1, 1))
    exact = sum(Fraction(3) / Fraction(104, 100) ** k for k in (1, 2, 3)) + \
        Fraction(103) / Fraction(104, 100) ** 4
    assert abs(p - D(exact.numerator) / D(exact.denominator)) < D("1e-25")
    assert p.quantize(D("0.0001")) == D("96.3701")


def test_bond_at_par_on_a_coupon_date_yields_its_coupon():
    y = fi.bond_yield(D(100), D("0.045"), 2, date(2026, 5, 15), date(2036, 5, 15),
                      date(2026, 11, 15))
    assert abs(y - D("0.045")) < D("1e-12")


def test_bill_yield_and_discount_by_hand():
    # 90 days at 98.75: y = (100/98.75 - 1) * 365/90 = 1.25/98.75 * 365/90.
    y = fi.bill_yield_from_price(D("98.75"), date(2026, 1, 1), date(2026, 4, 1))
    assert close(y, D("1.25") / D("98.75") * 365 / 90)
    # US bank discount: 91 days at 5% -> 100 * (1 - 0.05 * 91 / 360) = 98.736111...
    p = fi.bill_price_from_discount(D("0.05"), date(2026, 1, 1), date(2026, 4, 2))
    assert close(p, 100 - D(5) * 91 / 360)


def test_bill_settling_on_maturity_has_no_yield():
    with pytest.raises(ValueError, match="not before maturity"):
        fi.bill_yield_from_price(D(100), date(2027, 2, 1), date(2027, 2, 1))


def test_settlement_amount_rounds_once_half_to_even():
    # 0.5 token x 1000 face x (99.001 + 0) / 100 = 495.005 -> 6 decimals exact: no rounding.
    assert fi.settlement_amount(D("0.5"), D(1000), D("99.001"), D(0), 6) == 495_005_000
    # 0.0001 token x 1000 x 99.0005/100 = 0.0990005 -> 2 decimals: 0.10 (half-even of 9.90005)
    assert fi.settlement_amount(D("0.0001"), D(1000), D("99.0005"), D(0), 2) == 10
    # exactly half a cent: 0.125 -> 0.12 (to even), 0.135 -> 0.14
    assert fi.settlement_amount(D("0.125"), None, D(1), D(0), 2) == 12
    assert fi.settlement_amount(D("0.135"), None, D(1), D(0), 2) == 14


yields = st.decimals(min_value=D("-0.01"), max_value=D("0.25"), places=6)
settles = st.integers(0, 3 * 365 - 1).map(lambda d: ISSUE + timedelta(days=d))


@settings(max_examples=60, deadline=None)
@given(yields, settles)
def test_bond_price_yield_round_trip(y, settle):
    p = fi.bond_clean_price(y, D("0.04"), 2, ISSUE, MAT, settle)
    assert abs(fi.bond_yield(p, D("0.04"), 2, ISSUE, MAT, settle) - y) < D("1e-10")


@settings(max_examples=60, deadline=None)
@given(yields, yields, settles)
def test_bond_price_falls_as_yield_rises(y1, y2, settle):
    if y1 == y2:
        return
    lo, hi = sorted((y1, y2))
    assert (fi.bond_clean_price(lo, D("0.04"), 2, ISSUE, MAT, settle)
            > fi.bond_clean_price(hi, D("0.04"), 2, ISSUE, MAT, settle))


@settings(max_examples=80, deadline=None)
@given(settles)
def test_accrued_grows_within_a_period_and_stays_below_a_coupon(settle):
    ai = fi.accrued_interest(D("0.04"), 2, ISSUE, MAT, settle)
    assert 0 <= ai < 2
    nxt = settle + timedelta(days=1)
    prev, next_cpn = fi.previous_and_next_coupon(ISSUE, MAT, 2, settle)
    if nxt < next_cpn:
        assert fi.accrued_interest(D("0.04"), 2, ISSUE, MAT, nxt) > ai


@settings(max_examples=80, deadline=None)
@given(st.decimals(min_value=D("-0.005"), max_value=D("0.3"), places=6),
       st.integers(1, 364))
def test_bill_price_yield_round_trip(y, days):
    s, m = date(2026, 11, 25), date(2026, 11, 25) + timedelta(days=days)
    p = fi.bill_price_from_yield(y, s, m)
    assert abs(fi.bill_yield_from_price(p, s, m) - y) < D("1e-30")

"""Coupon schedules with long first coupons, odd last periods and the end-of-month rule,
against the US Treasury's published examples (31 CFR 356 Appendix B) and the ISDA/ICMA
Actual/Actual paper."""
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction as F
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import fixed_income as fi
from matching.coupons import accrual_fraction, add_months, bond, schedule


def test_long_first_coupon_pays_the_treasury_amount():
    # 31 CFR 356 Appendix B, I.A.4 "Long First Payment Period": a 5-year 2-month 7 7/8 %
    # note issued 3 December 1990, first interest 15 August 1991, pays $55.210597810 per
    # $1,000: 74 days of the 184-day half-year 15 Aug 1990 - 15 Feb 1991 plus a full
    # half-year (ICMA Rule 251's quasi-coupon periods).
    b = bond(Decimal("0.07875"), 2, date(1990, 12, 3), date(1996, 2, 15),
             first_coupon=date(1991, 8, 15))
    first = schedule(b)[0]
    assert (first.start, first.end) == (date(1990, 12, 3), date(1991, 8, 15))
    assert first.quasi == (date(1990, 8, 15), date(1991, 2, 15), date(1991, 8, 15))
    assert first.amount == F(7875, 1000) * (F(74, 2 * 184) + F(1, 2))
    # The Appendix multiplies a daily interest decimal rounded to nine places
    # (0.213994565 x 74 = 15.835597810); exactly it is 15.835597826..., and both pay $55.21.
    treasury = F("39.375") + F("0.213994565") * 74
    assert treasury == F("55.210597810")
    assert abs(first.amount * 10 - treasury) < F(1, 10**7)
    assert round(first.amount * 10, 2) == round(treasury, 2) == F("55.21")
    assert [p.amount for p in schedule(b)[1:]] == [F(7875, 2000)] * 9


def test_long_first_coupon_period_is_not_an_invented_short_one():
    # Without first_coupon, the same dates give a short first coupon on 15 Feb 1991:
    # the defect the explicit first coupon removes.
    assert fi.coupon_dates(date(1990, 12, 3), date(1996, 2, 15), 2)[0] == date(1991, 2, 15)
    assert fi.coupon_dates(date(1990, 12, 3), date(1996, 2, 15), 2,
                           first_coupon=date(1991, 8, 15))[0] == date(1991, 8, 15)


def test_accrued_interest_across_two_half_years_of_a_long_first_period():
    # 31 CFR 356 Appendix B, I.D example (2): a 10 3/4 % bond issued 2 July 1985, first
    # interest 15 February 1986, reopened 4 November 1985: 44 days of a 181-day half-year
    # plus 81 days of a 184-day one = $36.72798 per $1,000 (rounded to five places).
    ai = fi.accrued_interest_exact(Decimal("0.1075"), 2, date(1985, 7, 2), date(2005, 8, 15),
                                   date(1985, 11, 4), first_coupon=date(1986, 2, 15))
    assert ai == F(1075, 100) / 2 * (F(44, 181) + F(81, 184))
    assert fi.round_cash(ai * 10 * 10**5, "half_up") == 3_672_798


def test_long_first_period_icma_fraction_matches_the_isda_paper():
    # ISDA, "The Actual/Actual Day Count Fraction" (1999), long first calculation period:
    # 15 Aug 2002 - 15 Jul 2003, semi-annual, ICMA 0.915760869565 (153/368 + 1/2).
    b = bond(Decimal("0.10"), 2, date(2002, 8, 15), date(2005, 7, 15),
             first_coupon=date(2003, 7, 15))
    first = schedule(b)[0]
    assert accrual_fraction(b, first, first.start, first.end) == F(153, 368) + F(1, 2)
    assert round(first.amount / 10, 12) == F("0.915760869565")


def test_short_final_period_uses_the_notional_period_after_it():
    # ISDA 1999 paper, short final calculation period: 30 Jan 2000 - 30 Jun 2000 in the
    # notional period to 30 Jul 2000, ICMA 0.417582417582 (152/364).
    b = bond(Decimal("0.10"), 2, date(1999, 7, 30), date(2000, 6, 30),
             penultimate_coupon=date(2000, 1, 30))
    last = schedule(b)[-1]
    assert (last.start, last.end, last.quasi) == (
        date(2000, 1, 30), date(2000, 6, 30), (date(2000, 1, 30), date(2000, 7, 30)))
    assert accrual_fraction(b, last, last.start, last.end) == F(152, 364)
    assert round(last.amount / 10, 12) == F("0.417582417582")


def test_long_final_quarterly_period_keeps_month_ends():
    # QuantLib test-suite/daycounters.cpp testActualActualIsma (end of month): quarterly
    # from 31 May 1999, first 31 Aug, penultimate 30 Nov 1999, maturity 30 Apr 2000:
    # the last period is 91/(91*4) + 61/(92*4) (quasi dates 29 Feb, 31 May 2000).
    b = bond(Decimal("0.04"), 4, date(1999, 5, 31), date(2000, 4, 30),
             first_coupon=date(1999, 8, 31), penultimate_coupon=date(1999, 11, 30))
    last = schedule(b)[-1]
    assert last.quasi == (date(1999, 11, 30), date(2000, 2, 29), date(2000, 5, 31))
    assert accrual_fraction(b, last, last.start, last.end) == F(91, 364) + F(61, 368)


def test_end_of_month_is_a_per_bond_setting():
    # 31 CFR 356 App. B I.A.1 names "May 31 to November 30" a regular half-year: a note
    # maturing 30 November with the end-of-month rule pays 31 May; without it, 30 May.
    eom = fi.coupon_dates(date(2026, 11, 30), date(2028, 11, 30), 2)
    assert eom == [date(2027, 5, 31), date(2027, 11, 30), date(2028, 5, 31),
                   date(2028, 11, 30)]
    plain = fi.coupon_dates(date(2026, 11, 30), date(2028, 11, 30), 2, end_of_month=False)
    assert plain == [date(2027, 5, 30), date(2027, 11, 30), date(2028, 5, 30),
                     date(2028, 11, 30)]


def test_a_first_coupon_off_the_cycle_runs_the_schedule_forward():
    # first coupon 15 Jan 2027, maturity 30 Jun 2029: coupons every six months from the
    # first; the last period (15 Jan 2029 - 30 Jun 2029) is odd.
    dates = fi.coupon_dates(date(2026, 9, 1), date(2029, 6, 30), 2,
                            first_coupon=date(2027, 1, 15))
    assert dates == [date(2027, 1, 15), date(2027, 7, 15), date(2028, 1, 15),
                     date(2028, 7, 15), date(2029, 1, 15), date(2029, 6, 30)]


def test_a_first_coupon_off_the_penultimate_cycle_is_refused():
    with pytest.raises(ValueError, match="not a whole number of 6-month periods"):
        bond(Decimal("0.04"), 2, date(2026, 1, 1), date(2030, 6, 30),
             first_coupon=date(2026, 9, 1), penultimate_coupon=date(2029, 12, 30))


def test_schedule_dates_out_of_order_are_refused():
    with pytest.raises(ValueError, match=r"first_coupon .* must be after issue"):
        bond(Decimal("0.04"), 2, date(2026, 1, 1), date(2030, 1, 1),
             first_coupon=date(2025, 7, 1))
    with pytest.raises(ValueError, match=r"penultimate_coupon .* must lie between"):
        bond(Decimal("0.04"), 2, date(2026, 1, 1), date(2030, 1, 1),
             penultimate_coupon=date(2030, 1, 1))


# ---------------------------------------------------------------- properties
@st.composite
def odd_bonds(draw):
    """A semi-annual or quarterly bond with an explicit (often long) first coupon."""
    freq = draw(st.sampled_from([2, 4]))
    step = 12 // freq
    maturity = date(2030, 1, 1) + timedelta(days=draw(st.integers(0, 365)))
    n = draw(st.integers(2, 10))
    first = add_months(maturity, -step * n, eom=True)
    issue = first - timedelta(days=draw(st.integers(1, 2 * 30 * step)))
    conv = draw(st.sampled_from(["ACT/ACT ICMA", "30/360", "ACT/ACT ISDA", "30E/360"]))
    return bond(Decimal("0.05"), freq, issue, maturity, conv, first_coupon=first)


@settings(max_examples=80, deadline=None)
@given(odd_bonds(), st.integers(0, 10**6))
def test_accrued_runs_from_zero_to_the_first_coupon_over_a_long_period(b, k):
    first = schedule(b)[0]
    assert accrual_fraction(b, first, first.start, first.start) == 0
    days = (first.end - first.start).days
    s = first.start + timedelta(days=k % days)
    t = s + timedelta(days=1)
    a_s = accrual_fraction(b, first, first.start, s)
    a_t = accrual_fraction(b, first, first.start, t)
    assert a_t >= a_s
    if b.day_count == "ACT/ACT ICMA":     # the coupon is exactly the accrual to its date
        assert 100 * b.coupon_rate * accrual_fraction(b, first, first.start, first.end) \
            == first.amount


@settings(max_examples=60, deadline=None)
@given(odd_bonds(), st.integers(0, 10**6),
       st.decimals(min_value=Decimal("0"), max_value=Decimal("0.2"), places=4))
def test_price_yield_round_trip_in_a_long_first_period(b, k, y):
    first = schedule(b)[0]
    s = first.start + timedelta(days=k % (first.end - first.start).days)
    kw = {"first_coupon": b.first_coupon}
    p = fi.bond_clean_price(y, b.coupon_rate, b.frequency, b.issue, b.maturity, s,
                            b.day_count, **kw)
    assert abs(fi.bond_yield(p, b.coupon_rate, b.frequency, b.issue, b.maturity, s,
                             b.day_count, **kw) - y) < Decimal("1e-20")


def test_long_first_dividend_follows_the_dmo_formula():
    # UK DMO, "Methodology for calculating the first dividend payment and the accrued
    # interest for 2% Index-linked Treasury Stock 2035" (2002): issued 11 July 2002,
    # dividends 26 Jan / 26 Jul, no dividend on 26 July 2002 but a long first one on
    # 26 January 2003 of (r1/s1 + 1) x c/2 per 100 (real terms, before the RPI ratio),
    # r1 = 15 days from issue to the quasi-coupon date 26 Jul 2002, s1 = 181 days in the
    # quasi-coupon period 26 Jan - 26 Jul 2002 holding the issue date.
    b = bond(Decimal("0.02"), 2, date(2002, 7, 11), date(2035, 7, 26),
             first_coupon=date(2003, 1, 26))
    first = schedule(b)[0]
    assert first.quasi == (date(2002, 1, 26), date(2002, 7, 26), date(2003, 1, 26))
    r1, s1 = (date(2002, 7, 26) - date(2002, 7, 11)).days, \
        (date(2002, 7, 26) - date(2002, 1, 26)).days
    assert (r1, s1) == (15, 181)
    assert first.amount == (F(r1, s1) + 1) * 2 / 2


@st.composite
def any_bonds(draw):
    """Any schedule: maybe a first coupon (on or off the cycle), maybe a penultimate."""
    freq = draw(st.sampled_from([1, 2, 4, 12]))
    step = 12 // freq
    issue = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 730)))
    maturity = add_months(issue, step * draw(st.integers(1, 40))) \
        + timedelta(days=draw(st.integers(-20, 20)))
    kw = {"end_of_month": draw(st.booleans())}
    if draw(st.booleans()):
        kw["first_coupon"] = issue + timedelta(
            days=draw(st.integers(1, max(1, (maturity - issue).days))))
    elif draw(st.booleans()) and (maturity - issue).days > 2:
        kw["penultimate_coupon"] = issue + timedelta(
            days=draw(st.integers(1, (maturity - issue).days - 1)))
    conv = draw(st.sampled_from(["ACT/ACT ICMA", "30/360 US", "ACT/365F", "ACT/ACT ISDA"]))
    return bond(Decimal("0.06"), freq, issue, maturity, conv, **kw)


@settings(max_examples=300, deadline=None)
@given(any_bonds())
def test_every_schedule_tiles_the_bond_life_with_covering_quasi_periods(b):
    periods = schedule(b)
    assert periods[0].start == b.issue and periods[-1].end == b.maturity
    for p, q in pairwise(periods):
        assert p.end == q.start
    for p in periods:
        assert p.start < p.end
        assert p.quasi[0] <= p.start < p.quasi[1] and p.quasi[-2] < p.end <= p.quasi[-1]
        assert list(p.quasi) == sorted(set(p.quasi))
        assert p.amount >= 0
        if p.regular:
            assert p.amount == 100 * b.coupon_rate / b.frequency
    if b.first_coupon is not None:
        assert periods[0].end == b.first_coupon
    if b.penultimate_coupon is not None:
        assert periods[-1].start == b.penultimate_coupon
    if b.day_count == "ACT/ACT ICMA":     # every coupon is its own accrual, period by period
        for p in periods:
            assert 100 * b.coupon_rate * accrual_fraction(b, p, p.start, p.end) == p.amount


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([1, 2, 4, 12]), st.integers(0, 3000), st.integers(1, 5000))
def test_without_explicit_dates_the_schedule_is_the_old_backward_one(freq, start, days):
    # The rule before first/penultimate coupons existed: every 12/f months back from
    # maturity, month ends kept when maturity is one, first period short.
    issue = date(2026, 1, 1) + timedelta(days=start)
    maturity = issue + timedelta(days=days)
    old, k = [], 0
    while (d := add_months(maturity, -(12 // freq) * k, eom=True)) > issue:
        old.append(d)
        k += 1
    assert fi.coupon_dates(issue, maturity, freq) == old[::-1]

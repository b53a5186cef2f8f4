"""Fixed-income arithmetic against published examples, hand calculations and properties."""
from datetime import date, timedelta
from decimal import Decimal as D
from decimal import localcontext
from fractions import Fraction as F

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from matching import fixed_income as fi
from matching.instruments import Instrument, Registry

REG = Registry.load_default()
ISSUE, MAT = date(2026, 6, 15), date(2029, 6, 15)        # BD3Y: 4 % semi-annual
TODAY = date(2026, 11, 25)


def close(a, b, tol="1e-30"):
    """Equal within ``tol``, compared exactly (test-side Decimal arithmetic would round)."""
    return abs(F(a) - F(b)) < F(tol)


def dec(q: F) -> D:
    """A Fraction as a 40-digit Decimal, as the module reports rates."""
    with localcontext(prec=40):
        return D(q.numerator) / D(q.denominator)


# ---------------------------------------------------------------- day counts
def test_act_act_icma_regular_period_is_exactly_half_a_year():
    # ISDA, "The Actual/Actual Day Count Fraction" (1999), example 1, as in QuantLib's
    # test-suite/daycounters.cpp: 1 Nov 2003 - 1 May 2004, semi-annual -> ICMA 0.5.
    period = (date(2003, 11, 1), date(2004, 5, 1))
    assert fi.day_count_fraction(*period, "ACT/ACT ICMA", period, 2) == F(1, 2)


def test_thirty_360_bond_basis_follows_the_isda_rules():
    # ISDA 2006 Section 4.16(f): D1 = min(D1, 30); D2 -> 30 only when D2 = 31 and D1 >= 30.
    def days(a, b):
        return fi.day_count_fraction(a, b, "30/360") * 360
    assert days(date(2026, 1, 31), date(2026, 3, 31)) == 60      # 30 -> 30
    assert days(date(2026, 1, 30), date(2026, 3, 31)) == 60      # 30 -> 30
    assert days(date(2026, 1, 29), date(2026, 3, 31)) == 62      # 29 -> 31 stays
    assert days(date(2026, 2, 28), date(2026, 3, 31)) == 33      # no February rule


def test_actual_day_counts_are_exact_fractions():
    assert fi.day_count_fraction(date(2026, 1, 1), date(2026, 7, 1), "ACT/360") == F(181, 360)
    assert fi.day_count_fraction(date(2026, 1, 1), date(2027, 1, 1), "ACT/365") == 1
    assert fi.day_count_fraction(date(2028, 1, 1), date(2029, 1, 1), "ACT/365F") == F(366, 365)


def test_unknown_day_count_is_refused():
    with pytest.raises(ValueError, match="unknown day-count convention 'ACT/364'"):
        fi.day_count_fraction(TODAY, MAT, "ACT/364")


# ---------------------------------------------------------------- T-bills
def test_us_treasury_26_week_bill_auction_price_and_investment_rate():
    # Published auction result (The Bond Buyer, "26-week T-bills go at 1.115% high rate on
    # Aug 28"): 182-day bill, discount 1.115 % -> price 99.436306, coupon equivalent 1.137 %.
    s = date(2017, 8, 31)
    m = s + timedelta(days=182)
    price = fi.bill_price_from_discount(D("0.01115"), s, m)
    assert price.quantize(D("0.000001")) == D("99.436306")
    # Investment rate for a bill of half a year or less = money-market yield on ACT/365.
    assert (fi.bill_yield_from_price(D("99.436306"), s, m) * 100).quantize(D("0.001")) \
        == D("1.137")


def test_us_treasury_13_week_bill_auction_price_and_investment_rate():
    # The Bond Buyer, "Weekly T-bills go at 0.920%, 1.050% high rates on May 22" (2017):
    # 91-day bill, discount 0.920 % -> price 99.767444, coupon equivalent 0.935 %.
    s = date(2017, 5, 25)
    m = s + timedelta(days=91)
    assert fi.bill_price_from_discount(D("0.0092"), s, m).quantize(D("0.000001")) \
        == D("99.767444")
    assert (fi.bill_yield_from_price(D("99.767444"), s, m) * 100).quantize(D("0.001")) \
        == D("0.935")


def test_money_market_yield_by_hand():
    # 90 days at 98.75: y = (100/98.75 - 1) * 365/90 = 1.25/98.75 * 365/90 = 0.0513361...
    s, m = date(2026, 1, 1), date(2026, 4, 1)
    assert close(fi.bill_yield_from_price(D("98.75"), s, m), F(125, 9875) * F(365, 90))
    # the same bill on an ACT/360 basis: 1.25/98.75 * 360/90
    assert close(fi.bill_yield_from_price(D("98.75"), s, m, "ACT/360"),
                 F(125, 9875) * 4)


def test_bill_settling_on_maturity_has_no_yield():
    with pytest.raises(ValueError, match="not before maturity"):
        fi.bill_yield_from_price(D(100), date(2027, 2, 1), date(2027, 2, 1))


def test_float_rates_and_prices_are_refused():
    with pytest.raises(TypeError, match="not float"):
        fi.bill_price_from_yield(0.04, TODAY, date(2027, 2, 1))
    with pytest.raises(TypeError, match="not float"):
        fi.bond_yield(99.5, D("0.04"), 2, ISSUE, MAT, TODAY)
    with pytest.raises(TypeError, match="not float"):
        fi.settlement_amount(D(1), D(1000), 99.5, D(0), 6)


# ---------------------------------------------------------------- coupon schedule, accrued
def test_coupon_schedule_runs_back_from_maturity_keeping_month_end():
    dates = fi.coupon_dates(date(2026, 2, 28), date(2028, 8, 31), 2)
    assert dates == [date(2026, 8, 31), date(2027, 2, 28), date(2027, 8, 31),
                     date(2028, 2, 29), date(2028, 8, 31)]


def test_coupon_dates_are_not_moved_off_weekends():
    # BD10Y pays on 15 Nov 2026, a Sunday: tokens settle every day, dates stay unadjusted.
    assert date(2026, 11, 15).weekday() == 6
    assert date(2026, 11, 15) in fi.coupon_dates(date(2026, 5, 15), date(2036, 5, 15), 2)


def test_short_first_coupon_is_paid_pro_rata():
    # ISDA 1999 Actual/Actual paper, "short first calculation period": annual coupon,
    # accrual 1 Feb 1999 - 1 Jul 1999 in the notional period 1 Jul 1998 - 1 Jul 1999:
    # ICMA fraction 150/365 = 0.410958904110. At 10 %: 10 * 150/365 per 100.
    flows = fi.coupon_amounts(D("0.10"), 1, date(1999, 2, 1), date(2002, 7, 1))
    assert flows[0] == (date(1999, 7, 1), F(10) * F(150, 365))
    assert round(flows[0][1] / 10, 12) == F(410958904110, 10**12)
    assert [a for _, a in flows[1:]] == [10, 10, 10]


def test_accrued_interest_act_act_icma_by_hand():
    # BD3Y on 2026-11-25: 15 Jun -> 25 Nov is 163 days of the 183-day period to 15 Dec;
    # AI = 100 * 4 % / 2 * 163/183 = 1.781420765027322...
    assert fi.accrued_interest_exact(D("0.04"), 2, ISSUE, MAT, TODAY) == F(2 * 163, 183)
    assert close(fi.accrued_interest(D("0.04"), 2, ISSUE, MAT, TODAY), F(326, 183))


def test_excel_accrint_example_thirty_360_from_an_off_cycle_issue():
    # Microsoft Excel ACCRINT documentation example: issue 1-Mar-2008, first interest
    # 31-Aug-2008, settlement 1-May-2008, 10 %, par 1000, semi-annual, basis 0 (30/360)
    # -> 16.666667 (60 days of 360 at 10 % on 1000).
    ai = fi.accrued_interest_exact(D("0.10"), 2, date(2008, 3, 1), date(2010, 8, 31),
                                   date(2008, 5, 1), "30/360")
    assert ai * 10 == F(50, 3)
    assert round(ai * 10, 6) == F(16666667, 10**6)


def test_accrued_is_zero_on_coupon_date():
    for d in fi.coupon_dates(ISSUE, MAT, 2)[:-1]:
        assert fi.accrued_interest_exact(D("0.04"), 2, ISSUE, MAT, d) == 0


def test_accrued_is_zero_on_the_issue_date():
    assert fi.accrued_interest_exact(D("0.04"), 2, ISSUE, MAT, ISSUE) == 0


def test_settlement_outside_the_bond_life_is_refused():
    for settle in (ISSUE - timedelta(days=1), MAT):
        with pytest.raises(ValueError, match="outside the bond's life"):
            fi.accrued_interest(D("0.04"), 2, ISSUE, MAT, settle)


# ---------------------------------------------------------------- bond price and yield
def test_excel_price_example_thirty_360():
    # Microsoft Excel PRICE documentation example: settlement 15-Feb-2008, maturity
    # 15-Nov-2017, 5.75 %, yield 6.50 %, redemption 100, semi-annual, basis 0 -> 94.63436162.
    p = fi.bond_clean_price(D("0.065"), D("0.0575"), 2, date(2007, 11, 15), date(2017, 11, 15),
                            date(2008, 2, 15), "30/360")
    assert p.quantize(D("0.00000001")) == D("94.63436162")


def test_excel_yield_example_thirty_360():
    # Microsoft Excel YIELD documentation example: settlement 15-Feb-2008, maturity
    # 15-Nov-2016, 5.75 %, price 95.04287, redemption 100, semi-annual, basis 0 -> 6.5 %.
    y = fi.bond_yield(D("95.04287"), D("0.0575"), 2, date(2006, 11, 15), date(2016, 11, 15),
                      date(2008, 2, 15), "30/360")
    assert y.quantize(D("0.0000001")) == D("0.0650000")


def test_four_period_bond_on_a_coupon_date_by_hand():
    # 6 % 2-year semi-annual bond at an 8 % yield on a coupon date (w = 1):
    # 3/1.04 + 3/1.04^2 + 3/1.04^3 + 103/1.04^4 = 96.370118...
    p = fi.bond_clean_price(D("0.08"), D("0.06"), 2, date(2026, 1, 1), date(2028, 1, 1),
                            date(2026, 1, 1))
    exact = sum(F(3) / F(104, 100) ** k for k in (1, 2, 3)) + F(103) / F(104, 100) ** 4
    assert close(p, exact, "1e-35")
    assert p.quantize(D("0.0001")) == D("96.3701")


def test_bond_at_par_on_a_coupon_date_yields_its_coupon():
    y = fi.bond_yield(D(100), D("0.045"), 2, date(2026, 5, 15), date(2036, 5, 15),
                      date(2026, 11, 15))
    assert abs(y - D("0.045")) < D("1e-22")


def test_last_coupon_period_uses_the_same_compound_formula():
    # BD3Y settling 2029-03-15, 92 of 182 days before the final 15 Jun 2029 payment of
    # 102: dirty = 102 / (1 + y/2)^(92/182), not the money-market 102 / (1 + y/2 * 92/182).
    s = date(2029, 3, 15)
    y = D("0.05")
    dirty = fi.bond_dirty_price(y, D("0.04"), 2, ISSUE, MAT, s)
    with fi._ctx():
        expected = 102 / (1 + y / 2) ** (D(92) / D(182))
    assert close(dirty, expected)
    assert dirty != 102 / (1 + y / 2 * D(92) / D(182))


def test_no_yield_for_a_price_beyond_the_bracket():
    with pytest.raises(ValueError, match="no yield"):
        fi.bond_yield(D("1000"), D("0.04"), 2, ISSUE, MAT, TODAY)


# ---------------------------------------------------------------- settlement and rounding
def test_settlement_amount_rounds_once_half_to_even():
    # 0.5 token x 1000 face x 99.001 / 100 = 495.005 USDC: exact in 6 decimals.
    assert fi.settlement_amount(D("0.5"), D(1000), D("99.001"), D(0), 6) == 495_005_000
    # exactly half a cent: 0.125 -> 0.12 (to even), 0.135 -> 0.14
    assert fi.settlement_amount(D("0.125"), None, D(1), D(0), 2) == 12
    assert fi.settlement_amount(D("0.135"), None, D(1), D(0), 2) == 14


def test_a_half_cent_tie_in_accrued_interest_is_found_exactly_and_goes_to_even():
    # 0.0183 token of BD3Y at 103.000 on 2026-11-25, cash in cents:
    # 0.0183 x 1000 / 100 = 0.183; 0.183 x 103 = 18.849; 0.183 x 326/183 = 0.326;
    # total 19.175 exactly -> 1917.5 cents -> 1918 (even). Accrued rounded to 40 digits
    # first would give 19.17499... -> 1917: why the accrued stays a Fraction.
    ai = fi.accrued_interest_exact(D("0.04"), 2, ISSUE, MAT, TODAY)
    assert fi.settlement_amount(D("0.0183"), D(1000), D("103.000"), ai, 2) == 1918
    assert fi.settlement_amount(D("0.0183"), D(1000), D("103.000"),
                                fi.accrued_interest(D("0.04"), 2, ISSUE, MAT, TODAY), 2) == 1917


def test_trade_economics_of_a_bond_fill_by_hand():
    # BD3Y, 1.5 token at 99.760 on 2026-11-25, USDC with 6 decimals:
    # principal 1.5 x 1000 x 99.76/100 = 1496.400000; accrued 15 x 326/183 = 26.7213114754...
    # -> total 1523.1213114754... -> 1523121311 minor units (one half-even rounding).
    inst = REG["BD3Y"]
    e = fi.trade_economics(inst, 99760, 15000, TODAY)
    assert (e.price, e.qty) == (D("99.760"), D("1.5000"))
    assert e.accrued_per_100 == D("1.781420765027")
    assert e.settlement_amount == 1_523_121_311
    assert e.accrued_cash == 26_721_311 and e.principal_cash == 1_496_400_000
    assert e.principal_cash + e.accrued_cash == e.settlement_amount
    assert D("0.0409") < e.yield_ < D("0.0411") and e.settle_date == TODAY


def test_trade_economics_of_a_bill_fill_by_hand():
    # TB3M, 2 tokens at 99.270: 2 x 1000 x 99.27/100 = 1985.40 USDC, no accrued;
    # yield (100/99.27 - 1) x 365/68 = 0.0394719689...
    e = fi.trade_economics(REG["TB3M"], 99270, 20000, TODAY)
    assert e.settlement_amount == 1_985_400_000 and e.accrued_cash == 0
    assert e.yield_ == dec((F(100_000, 99_270) - 1) * F(365, 68)).quantize(D("1e-12"))


def test_trade_economics_of_gold_has_no_yield_or_accrued():
    e = fi.trade_economics(REG["GOLD"], 11000, 5000, TODAY)      # 0.5 g at 110.00
    assert e.settlement_amount == 55_000_000
    assert (e.yield_, e.accrued_per_100, e.accrued_cash) == (None, None, None)


def test_a_discount_quoted_bill_reports_its_discount_rate():
    bill = Instrument("TBD", "US0378331005", "discount bill", "tbill", 4, D("0.001"),
                      D("99.000"), D("2"), D("0.0001"), frozenset({"retail"}),
                      face_value=D(100), issue_date=date(2026, 11, 2),
                      maturity=date(2027, 2, 1), yield_convention="discount")
    e = fi.trade_economics(bill, 99000, 1, TODAY)
    assert e.yield_ == dec(F(1, 100) * F(360, 68)).quantize(D("1e-12"))   # (1 - 99/100) x 360/68


def test_a_matured_bill_cannot_trade():
    with pytest.raises(ValueError, match="outside TB3M's life"):
        fi.trade_economics(REG["TB3M"], 99270, 1, date(2027, 2, 1))


# ---------------------------------------------------------------- properties
yields = st.decimals(min_value=D("-0.01"), max_value=D("0.25"), places=6)


@st.composite
def bonds(draw):
    """A fixed-coupon bond (possibly with a short first period) and a settlement date."""
    freq = draw(st.sampled_from([1, 2, 4, 12]))
    issue = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 364)))
    maturity = fi.add_months(issue, 12 * draw(st.integers(1, 12)) + draw(st.integers(0, 11)))
    coupon = draw(st.decimals(min_value=D(0), max_value=D("0.12"), places=4))
    conv = draw(st.sampled_from(["ACT/ACT ICMA", "30/360", "ACT/365F", "ACT/360"]))
    settle = issue + timedelta(days=draw(st.integers(0, (maturity - issue).days - 1)))
    return coupon, freq, issue, maturity, settle, conv


@settings(max_examples=60, deadline=None)
@given(yields, bonds())
def test_bond_price_yield_round_trip(y, bond):
    c, f, i, m, s, conv = bond
    p = fi.bond_clean_price(y, c, f, i, m, s, conv)
    assert abs(fi.bond_yield(p, c, f, i, m, s, conv) - y) < D("1e-20")


@settings(max_examples=60, deadline=None)
@given(yields, yields, bonds())
def test_bond_price_falls_as_yield_rises(y1, y2, bond):
    assume(y1 != y2)
    lo, hi = sorted((y1, y2))
    at_lo, at_hi = fi.bond_clean_price(lo, *bond), fi.bond_clean_price(hi, *bond)
    _c, _f, _i, maturity, settle, _conv = bond
    # A day before maturity 30/360 may count no day at all (the 30th to the 31st): the
    # last flow is then not discounted and the price is the same at every yield.
    if (maturity - settle).days >= 2:
        assert at_lo > at_hi
    else:
        assert at_lo >= at_hi


@settings(max_examples=60, deadline=None)
@given(yields, bonds())
def test_dirty_price_is_clean_plus_accrued(y, bond):
    c, f, i, m, s, conv = bond
    dirty = fi.bond_dirty_price(y, c, f, i, m, s, conv)
    assert close(dirty, F(fi.bond_clean_price(y, c, f, i, m, s, conv))
                 + fi.accrued_interest_exact(c, f, i, m, s, conv))


@settings(max_examples=60, deadline=None)
@given(bonds(), st.integers(0, 200))
def test_accrued_is_zero_on_every_coupon_date(bond, k):
    c, f, i, m, _, conv = bond
    dates = fi.coupon_dates(i, m, f)[:-1]
    assume(dates)
    assert fi.accrued_interest_exact(c, f, i, m, dates[k % len(dates)], conv) == 0


@settings(max_examples=80, deadline=None)
@given(bonds())
def test_accrued_grows_within_a_period_and_never_exceeds_a_coupon(bond):
    c, f, i, m, s, conv = bond
    assume(c > 0)
    ai = fi.accrued_interest_exact(c, f, i, m, s, conv)
    _prev, nxt = fi.previous_and_next_coupon(i, m, f, s)
    full = 100 * F(c) / f
    if conv == "ACT/ACT ICMA":
        assert 0 <= ai < full
    else:                               # a long month or a 365/360 year accrues a little more
        assert 0 <= ai <= full * F(11, 10)
    tomorrow = s + timedelta(days=1)
    if tomorrow < nxt:
        later = fi.accrued_interest_exact(c, f, i, m, tomorrow, conv)
        assert later >= ai and (later > ai or conv == "30/360")   # 30/360 skips the 31st


@settings(max_examples=80, deadline=None)
@given(st.decimals(min_value=D("-0.005"), max_value=D("0.3"), places=6), st.integers(1, 364),
       st.sampled_from(["ACT/365F", "ACT/360"]))
def test_bill_price_yield_round_trip(y, days, basis):
    s, m = TODAY, TODAY + timedelta(days=days)
    p = fi.bill_price_from_yield(y, s, m, basis)
    assert abs(fi.bill_yield_from_price(p, s, m, basis) - y) < D("1e-35")


@settings(max_examples=80, deadline=None)
@given(st.decimals(min_value=D("0"), max_value=D("0.2"), places=6), st.integers(1, 364))
def test_bill_discount_round_trip_and_discount_below_yield(dr, days):
    s, m = TODAY, TODAY + timedelta(days=days)
    p = fi.bill_price_from_discount(dr, s, m)
    assert abs(fi.bill_discount_from_price(p, s, m) - dr) < D("1e-35")
    if dr > 0:                          # a discount rate always understates the yield
        assert fi.bill_yield_from_price(p, s, m, "ACT/360") > dr


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(["TB3M", "TB6M", "TB12M", "BD3Y", "BD5Y", "BD10Y", "GOLD"]),
       st.integers(-3000, 3000), st.integers(1, 10**7), st.integers(0, 300))
def test_settlement_is_the_exact_amount_rounded_once(symbol, dticks, lots, day):
    inst = REG[symbol]
    ticks = inst.reference_ticks() + dticks
    settle = TODAY + timedelta(days=day)
    if inst.maturity is not None and settle >= inst.maturity:
        return
    e = fi.trade_economics(inst, ticks, lots, settle)
    qty, price = F(inst.lots_to_qty(lots)), F(inst.ticks_to_price(ticks))
    if inst.kind == "commodity":
        exact = qty * price
    else:
        ai = (fi.accrued_interest_exact(inst.coupon_rate, inst.coupon_frequency,
                                        inst.issue_date, inst.maturity, settle, inst.day_count)
              if inst.kind == "bond" else 0)
        exact = qty * F(inst.face_value) * (price + ai) / 100
    exact *= 10 ** inst.cash_decimals
    assert abs(e.settlement_amount - exact) <= F(1, 2)
    assert e.settlement_amount == round(exact)


def test_a_february_coupon_does_not_roll_the_first_period_past_issue():
    """Maturity 28 Aug: the coupon before it is 28 Feb (a month end), but the period
    before that starts 28 Aug (counted back from maturity), not 31 Aug: settling on the
    issue date accrues nothing, never a negative amount."""
    issue, maturity = date(2026, 8, 28), date(2027, 8, 28)
    assert fi.previous_and_next_coupon(issue, maturity, 2, issue) == (
        date(2026, 8, 28), date(2027, 2, 28))
    assert fi.accrued_interest_exact(D(1), 2, issue, maturity, issue) == 0
    assert fi.accrued_interest_exact(D(1), 2, issue, maturity, date(2026, 8, 29)) > 0

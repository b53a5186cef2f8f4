"""Bill investment rates (31 CFR 356 Appendix B VI) and the yield conventions of odd and
last coupon periods (Microsoft Excel ODDFPRICE / ODDLPRICE / ODDLYIELD examples)."""
from datetime import date
from decimal import Decimal as D
from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import fixed_income as fi
from matching.yields import investment_rate_year


# ---------------------------------------------------------------- T-bills
def test_discount_rate_to_price_appendix_b_example():
    # 31 CFR 356 App. B VI.A: bill issued 24 Nov 1989, due 22 Feb 1990 (90 days), 7.610 %
    # discount -> 98.097500 per 100.
    p = fi.bill_price_from_discount(D("0.0761"), date(1989, 11, 24), date(1990, 2, 22))
    assert p == D("98.0975")


def test_price_to_discount_rate_appendix_b_example():
    # VI.C: 26-week bill, 30 Dec 1982 - 30 Jun 1983 (182 days), price 95.934567 -> 8.042 %.
    dr = fi.bill_discount_from_price(D("95.934567"), date(1982, 12, 30), date(1983, 6, 30))
    assert (dr * 100).quantize(D("0.001")) == D("8.042")
    assert dr.quantize(D("1e-9")) == D("0.080415158")


def test_investment_rate_of_a_bill_of_half_a_year_or_less():
    # VI.D.1: cash management bill 1 Jun - 21 Jun 1990 (20 days), price 99.559444,
    # y = 365 -> 8.076 %.
    i = fi.bill_investment_rate(D("99.559444"), date(1990, 6, 1), date(1990, 6, 21))
    assert (i * 100).quantize(D("0.001")) == D("8.076")


def test_investment_rate_of_a_52_week_bill_solves_the_quadratic():
    # VI.D.2: 52-week bill 7 Jun 1990 - 6 Jun 1991 (364 days), price 92.265000 (7.65 %
    # discount), y = 365: i = (-b + sqrt(b^2 - 4ac)) / 2a = .082373244 = 8.237 %.
    s, m = date(1990, 6, 7), date(1991, 6, 6)
    assert fi.bill_price_from_discount(D("0.0765"), s, m) == D("92.265")
    i = fi.bill_investment_rate(D("92.265"), s, m)
    assert i.quantize(D("1e-9")) == D("0.082373244")
    assert (i * 100).quantize(D("0.001")) == D("8.237")
    # the money-market formula would overstate it: compounding at the half-year is lost
    assert fi.bill_yield_from_price(D("92.265"), s, m) > i


@pytest.mark.parametrize("issue,days", [
    # VI.D.1's definition of y: issue 28 Feb 2019 -> 365 (no 29 Feb before 28 Feb 2020);
    # issue 1 Mar 2019 -> 366 (the year to 1 Mar 2020 holds 29 Feb 2020).
    (date(2019, 2, 28), 365), (date(2019, 3, 1), 366), (date(1990, 6, 7), 365),
])
def test_investment_rate_year_has_366_days_when_it_holds_29_february(issue, days):
    assert investment_rate_year(issue) == days


def test_a_366_day_year_changes_the_investment_rate():
    # the same 91-day bill at 99 issued on 1 Mar 2019 (y = 366) and on 1 Mar 2018 (365)
    leap = fi.bill_investment_rate(D(99), date(2019, 3, 1), date(2019, 5, 31))
    common = fi.bill_investment_rate(D(99), date(2018, 3, 1), date(2018, 5, 31))
    # i = (100 - P)/P * y/r: 1/99 * 366/91 against 1/99 * 365/91
    assert abs(F(leap) - F(366, 99 * 91)) < F(1, 10**38)
    assert abs(F(common) - F(365, 99 * 91)) < F(1, 10**38)


@settings(max_examples=100, deadline=None)
@given(st.decimals(min_value=D("0.0001"), max_value=D("0.25"), places=6),
       st.integers(1, 364), st.integers(0, 800))
def test_investment_rate_round_trips_through_price(i, days, offset):
    s = date(2024, 1, 1).fromordinal(date(2024, 1, 1).toordinal() + offset)
    m = s.fromordinal(s.toordinal() + days)
    p = fi.bill_price_from_investment_rate(i, s, m)
    assert abs(fi.bill_investment_rate(p, s, m) - i) < D("1e-30")


def test_an_investment_rate_quoted_bill_reports_it():
    from matching.instruments import Registry
    reg = Registry()
    reg.add_toml({"instrument": [{
        "symbol": "UST52W", "isin": "US0378331005", "kind": "tbill", "face_value": "100",
        "token_decimals": 4, "tick_size": "0.000001", "issue_date": date(1990, 6, 7),
        "maturity": date(1991, 6, 6), "day_count": "ACT/360",
        "yield_convention": "investment_rate", "min_order_qty": "0.0001", "band_pct": "20",
        "reference_price": "92.265", "eligibility": ["retail"]}]}, "test")
    inst = reg["UST52W"]
    y = fi.instrument_yield(inst, inst.price_to_ticks("92.265"), date(1990, 6, 7))
    assert y == D("0.082373244125")


# ---------------------------------------------------------------- last and odd periods
def test_simple_yield_in_an_odd_last_period_matches_excel_oddlprice():
    # Microsoft Excel ODDLPRICE documentation example: settlement 7 Feb 2008, maturity
    # 15 Jun 2008, last interest 15 Oct 2007, 3.75 %, yield 4.05 %, semi-annual, basis 0
    # (30/360 US) -> 99.87828601.
    kw = {"penultimate_coupon": date(2007, 10, 15)}
    args = (D("0.0375"), 2, date(2007, 4, 15), date(2008, 6, 15), date(2008, 2, 7),
            "30/360 US")
    simple = fi.bond_clean_price(D("0.0405"), *args, last_period="simple", **kw)
    assert simple.quantize(D("0.00000001")) == D("99.87828601")
    compound = fi.bond_clean_price(D("0.0405"), *args, last_period="compound", **kw)
    assert compound != simple and abs(compound - simple) < D("0.01")


def test_simple_yield_in_a_short_last_period_matches_excel_oddlyield():
    # Excel ODDLYIELD documentation example: settlement 20 Apr 2008, maturity 15 Jun 2008,
    # last interest 24 Dec 2007, 3.75 %, price 99.875, semi-annual, basis 0 -> 4.5192 %.
    y = fi.bond_yield(D("99.875"), D("0.0375"), 2, date(2007, 6, 24), date(2008, 6, 15),
                      date(2008, 4, 20), "30/360 US", penultimate_coupon=date(2007, 12, 24),
                      last_period="simple")
    assert (y * 100).quantize(D("0.0001")) == D("4.5192")


def test_simple_last_period_yield_is_the_us_street_money_market_formula():
    # SIFMA / Excel PRICE with one coupon left: dirty = (100 + C/f) / (1 + DSR/E * y/f).
    # BD3Y-like 4 % bond settling 15 Mar 2029, 92 days before the 15 Jun 2029 maturity in a
    # 182-day period: dirty = 102 / (1 + 92/182 * y/2).
    issue, mat, s, y = date(2026, 6, 15), date(2029, 6, 15), date(2029, 3, 15), D("0.05")
    dirty = fi.bond_dirty_price(y, D("0.04"), 2, issue, mat, s, last_period="simple")
    with fi._ctx():
        assert dirty == 102 / (1 + D(92) / D(182) * y / 2)
    before = date(2028, 12, 14)     # two coupons left: compounding either way
    assert fi.bond_dirty_price(y, D("0.04"), 2, issue, mat, before, last_period="simple") \
        == fi.bond_dirty_price(y, D("0.04"), 2, issue, mat, before)


def test_short_first_coupon_price_matches_excel_oddfprice():
    # Excel ODDFPRICE documentation example: settlement 11 Nov 2008, maturity 1 Mar 2021,
    # issue 15 Oct 2008, first coupon 1 Mar 2009, 7.85 %, yield 6.25 %, semi-annual,
    # basis 1 (actual/actual) -> 113.597717.
    p = fi.bond_clean_price(D("0.0625"), D("0.0785"), 2, date(2008, 10, 15), date(2021, 3, 1),
                            date(2008, 11, 11), first_coupon=date(2009, 3, 1))
    assert p.quantize(D("0.000001")) == D("113.597717")


def test_an_unknown_last_period_convention_is_refused():
    with pytest.raises(ValueError, match="last_period must be one of"):
        fi.bond_clean_price(D("0.05"), D("0.04"), 2, date(2026, 6, 15), date(2029, 6, 15),
                            date(2029, 3, 15), last_period="money_market")

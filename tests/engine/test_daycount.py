"""Day-count conventions against the published tables of ISDA and ICMA."""
from datetime import date
from fractions import Fraction as F

import pytest

from matching.daycount import (
    DAY_COUNTS,
    AmbiguousDayCount,
    canonical_day_count,
    day_count_fraction,
    days_30_360,
)


def D(y, m, d):
    return date(y, m, d)


# ISDA, "30/360 Day Count Conventions" (2008-12-22, the spreadsheet of worked examples for
# the 2006 Definitions Section 4.16(f)-(h)); the same rows are QuantLib's
# test-suite/daycounters.cpp testThirty360_BondBasis / _EurobondBasis / _ISDA.
ISDA_BOND_BASIS = [
    (D(2006, 8, 20), D(2007, 2, 20), 180), (D(2006, 8, 31), D(2007, 2, 28), 178),
    (D(2007, 2, 28), D(2007, 8, 31), 183), (D(2007, 8, 31), D(2008, 2, 29), 179),
    (D(2008, 2, 29), D(2008, 8, 31), 182), (D(2008, 8, 31), D(2009, 2, 28), 178),
    (D(2006, 1, 31), D(2006, 2, 28), 28), (D(2006, 1, 30), D(2006, 2, 28), 28),
    (D(2006, 2, 28), D(2006, 3, 3), 5), (D(2006, 2, 14), D(2006, 2, 28), 14),
    (D(2006, 9, 30), D(2006, 10, 31), 30), (D(2006, 10, 31), D(2006, 11, 28), 28),
    (D(2007, 8, 31), D(2008, 2, 28), 178), (D(2008, 2, 28), D(2008, 8, 28), 180),
    (D(2008, 2, 28), D(2008, 8, 30), 182), (D(2008, 2, 28), D(2008, 8, 31), 183),
    (D(2007, 2, 26), D(2008, 2, 28), 362), (D(2007, 2, 26), D(2008, 2, 29), 363),
    (D(2008, 2, 29), D(2009, 2, 28), 359), (D(2008, 2, 28), D(2008, 3, 30), 32),
    (D(2008, 2, 28), D(2008, 3, 31), 33),
]
ISDA_EUROBOND_BASIS = [
    (D(2006, 2, 28), D(2006, 8, 31), 182), (D(2006, 8, 31), D(2007, 2, 28), 178),
    (D(2007, 2, 28), D(2007, 8, 31), 182), (D(2007, 8, 31), D(2008, 2, 29), 179),
    (D(2008, 2, 29), D(2008, 8, 31), 181), (D(2011, 8, 31), D(2012, 2, 29), 179),
    (D(2006, 1, 31), D(2006, 2, 28), 28), (D(2006, 2, 28), D(2006, 3, 3), 5),
    (D(2006, 9, 30), D(2006, 10, 31), 30), (D(2008, 2, 28), D(2008, 8, 31), 182),
    (D(2008, 2, 29), D(2009, 2, 28), 359), (D(2008, 2, 28), D(2008, 3, 31), 32),
]
# 30E/360 ISDA, example 3 of the spreadsheet, termination date 29 February 2008.
ISDA_30E_360_ISDA = [
    (D(2006, 1, 31), D(2006, 2, 28), 30), (D(2006, 1, 30), D(2006, 2, 28), 30),
    (D(2006, 2, 28), D(2006, 3, 3), 3), (D(2006, 2, 14), D(2006, 2, 28), 16),
    (D(2006, 9, 30), D(2006, 10, 31), 30), (D(2006, 10, 31), D(2006, 11, 28), 28),
    (D(2007, 8, 31), D(2008, 2, 28), 178), (D(2008, 2, 28), D(2008, 8, 28), 180),
    (D(2008, 2, 28), D(2008, 8, 30), 182), (D(2008, 2, 28), D(2008, 8, 31), 182),
    (D(2007, 2, 28), D(2008, 2, 28), 358), (D(2007, 2, 28), D(2008, 2, 29), 359),
    (D(2008, 2, 29), D(2009, 2, 28), 360), (D(2008, 2, 29), D(2008, 3, 30), 30),
    (D(2008, 2, 29), D(2008, 3, 31), 30),
]


@pytest.mark.parametrize("start,end,days", ISDA_BOND_BASIS)
def test_thirty_360_bond_basis_matches_the_isda_2008_examples(start, end, days):
    assert days_30_360(start, end, "30/360") == days
    assert day_count_fraction(start, end, "30/360") == F(days, 360)


@pytest.mark.parametrize("start,end,days", ISDA_EUROBOND_BASIS)
def test_thirty_e_360_eurobond_basis_matches_the_isda_2008_examples(start, end, days):
    assert day_count_fraction(start, end, "30E/360") == F(days, 360)


@pytest.mark.parametrize("start,end,days", ISDA_30E_360_ISDA)
def test_thirty_e_360_isda_matches_the_isda_2008_examples(start, end, days):
    assert day_count_fraction(start, end, "30E/360 ISDA", maturity=D(2008, 2, 29)) \
        == F(days, 360)


def test_thirty_e_360_isda_keeps_a_february_termination_date():
    # Example 2 of the ISDA spreadsheet, termination date 29 February 2012: every
    # period counts 180 days except the last, which ends on the termination date.
    maturity = D(2012, 2, 29)
    assert days_30_360(D(2011, 2, 28), D(2011, 8, 31), "30E/360 ISDA", maturity) == 180
    assert days_30_360(D(2010, 8, 31), D(2011, 2, 28), "30E/360 ISDA", maturity) == 180
    assert days_30_360(D(2011, 8, 31), maturity, "30E/360 ISDA", maturity) == 179


def _plain(y1, m1, d1, y2, m2, d2):
    return 360 * (y2 - y1) + 30 * (m2 - m1) + (d2 - d1)


@pytest.mark.parametrize("start,end,as_if", [
    # OpenGamma Strata DayCountTest data_30U360, end-of-month column (THIRTY_U_360_EOM):
    # the last day of February counts as the 30th.
    (D(2012, 2, 29), D(2012, 3, 28), (2012, 2, 30, 2012, 3, 28)),
    (D(2012, 2, 29), D(2012, 3, 31), (2012, 2, 30, 2012, 3, 30)),
    (D(2012, 2, 29), D(2013, 2, 28), (2012, 2, 30, 2013, 2, 30)),
    (D(2011, 2, 28), D(2012, 2, 28), (2011, 2, 30, 2012, 2, 28)),
    (D(2011, 2, 28), D(2012, 2, 29), (2011, 2, 30, 2012, 2, 30)),
    (D(2012, 2, 29), D(2016, 2, 29), (2012, 2, 30, 2016, 2, 30)),
    (D(2012, 5, 30), D(2013, 8, 31), (2012, 5, 30, 2013, 8, 30)),
    (D(2012, 5, 29), D(2013, 8, 31), (2012, 5, 29, 2013, 8, 31)),
    (D(2011, 12, 28), D(2012, 2, 29), (2011, 12, 28, 2012, 2, 29)),
])
def test_thirty_360_us_applies_the_end_of_february_rule(start, end, as_if):
    assert days_30_360(start, end, "30/360 US") == _plain(*as_if)
    # ... which the bond basis does not: 28 Feb 2011 -> 28 Feb 2012 is 360 there
    assert days_30_360(D(2011, 2, 28), D(2012, 2, 28), "30/360") == 360


# ISDA, "EMU and Market Conventions: Recent Developments" (1998) / "The Actual/Actual Day
# Count Fraction" (1999) examples, as tabulated in QuantLib test-suite/daycounters.cpp.
@pytest.mark.parametrize("start,end,value", [
    (D(2003, 11, 1), D(2004, 5, 1), "0.497724380567"),
    (D(1999, 2, 1), D(1999, 7, 1), "0.410958904110"),
    (D(1999, 7, 1), D(2000, 7, 1), "1.001377348600"),
    (D(2002, 8, 15), D(2003, 7, 15), "0.915068493151"),
    (D(2003, 7, 15), D(2004, 1, 15), "0.504004790778"),
    (D(1999, 7, 30), D(2000, 1, 30), "0.503892506924"),
    (D(2000, 1, 30), D(2000, 6, 30), "0.415300546448"),
])
def test_act_act_isda_matches_the_isda_examples(start, end, value):
    # the paper prints 11-12 decimals (1.00137734860 for 184/365 + 182/366)
    got = day_count_fraction(start, end, "ACT/ACT ISDA")
    assert abs(got - F(value)) < F(1, 10**11)


def test_act_act_isda_splits_days_by_calendar_year():
    # 1 Nov 2003 - 1 May 2004: 61 days of 2003 over 365 plus 121 days of 2004 over 366.
    assert day_count_fraction(D(2003, 11, 1), D(2004, 5, 1), "ACT/ACT ISDA") \
        == F(61, 365) + F(121, 366)


@pytest.mark.parametrize("start,end,period_end,freq,days,basis", [
    # OpenGamma Strata DayCountTest data_ACT365L (ISDA 2006 4.16(i)): annual coupons look
    # for 29 February in (start, period end]; others at the period end's year.
    (D(2011, 12, 28), D(2012, 2, 28), D(2012, 2, 28), 1, 62, 365),
    (D(2011, 12, 28), D(2012, 2, 28), D(2012, 2, 29), 1, 62, 366),
    (D(2011, 12, 28), D(2012, 2, 28), D(2012, 3, 1), 1, 62, 366),
    (D(2011, 12, 28), D(2012, 2, 29), D(2012, 2, 29), 1, 63, 366),
    (D(2011, 12, 28), D(2012, 2, 28), D(2012, 2, 28), 2, 62, 366),
    (D(2011, 12, 28), D(2012, 2, 29), D(2012, 3, 1), 2, 63, 366),
    (D(2010, 12, 28), D(2011, 2, 28), D(2011, 2, 28), 2, 62, 365),
    (D(2010, 12, 28), D(2011, 2, 28), D(2011, 3, 1), 2, 62, 365),
])
def test_act_365l_uses_366_in_a_leap_year(start, end, period_end, freq, days, basis):
    assert day_count_fraction(start, end, "ACT/365L", (start, period_end), freq) \
        == F(days, basis)


def test_act_act_icma_regular_period_is_exactly_one_coupon():
    # ISDA 1999 example 1 (ICMA column): 1 Nov 2003 - 1 May 2004 semi-annual -> 0.5.
    period = (D(2003, 11, 1), D(2004, 5, 1))
    assert day_count_fraction(*period, "ACT/ACT ICMA", period, 2) == F(1, 2)


@pytest.mark.parametrize("alias", ["ACT/ACT", "act/act", "Actual/Actual", "A/A"])
def test_the_ambiguous_act_act_alias_is_refused(alias):
    with pytest.raises(AmbiguousDayCount, match=r"ambiguous.*ACT/ACT ICMA.*ACT/ACT ISDA"):
        canonical_day_count(alias)


def test_every_convention_has_its_own_explicit_name():
    assert set(DAY_COUNTS) == {"ACT/365F", "ACT/360", "ACT/365L", "ACT/ACT ISDA",
                               "ACT/ACT ICMA", "30/360", "30/360 US", "30E/360",
                               "30E/360 ISDA"}
    assert canonical_day_count("30U/360") == "30/360 US"
    assert canonical_day_count("act/act icma") == "ACT/ACT ICMA"
    with pytest.raises(ValueError, match="unknown day-count convention 'ACT/364'"):
        canonical_day_count("ACT/364")

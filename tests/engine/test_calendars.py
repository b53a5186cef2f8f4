"""Business-day calendars as data, T+n settlement and the ISDA business-day conventions."""
from datetime import date

import pytest

from matching import fixed_income as fi
from matching.calendars import (
    EVERY_DAY,
    CalendarError,
    add_business_days,
    adjust,
    business_days_before,
    calendar_from_toml,
    is_business_day,
    load_calendar,
)

US_2026 = [  # OPM's 2026 federal holidays (5 U.S.C. 6103), plus Good Friday (SIFMA)
    date(2026, 1, 1), date(2026, 1, 19), date(2026, 2, 16), date(2026, 4, 3),
    date(2026, 5, 25), date(2026, 6, 19), date(2026, 7, 3), date(2026, 9, 7),
    date(2026, 10, 12), date(2026, 11, 11), date(2026, 11, 26), date(2026, 12, 25)]


def test_us_calendar_closes_on_the_federal_holidays_and_good_friday():
    us = load_calendar("US")
    assert sorted(d for d in us.holidays if d.year == 2026) == US_2026
    # a Saturday holiday is observed the Friday before, a Sunday one the Monday after
    assert date(2027, 6, 18) in us.holidays and date(2027, 7, 5) in us.holidays
    assert date(2027, 12, 24) in us.holidays
    assert us.covers(date(2027, 12, 31)) and not us.covers(date(2028, 1, 3))


def test_pakistan_calendar_closes_on_the_national_days_and_eid():
    pk = load_calendar("PK")
    for d in (date(2026, 2, 5), date(2026, 3, 23), date(2026, 8, 14), date(2026, 12, 25),
              date(2026, 7, 1), date(2027, 3, 23), date(2027, 11, 9)):
        assert not pk.is_business_day(d), d
    assert pk.is_business_day(date(2026, 3, 24))
    assert not pk.is_business_day(date(2026, 3, 21))          # a Saturday
    names = dict(pk.names)
    assert names[date(2026, 8, 14)] == "Independence Day"


def test_t_plus_one_skips_the_weekend_and_the_holiday():
    # Thursday 2 July 2026, T+1 in the US: Friday 3 July is Independence Day (observed),
    # so settlement is Monday 6 July.
    assert add_business_days(date(2026, 7, 2), 1, "US") == date(2026, 7, 6)
    assert add_business_days(date(2026, 7, 2), 2, "US") == date(2026, 7, 7)
    assert fi.settlement_date(date(2026, 7, 2), 1, "US") == date(2026, 7, 6)
    # T+0 on a holiday settles on the next business day; without a calendar, every day is
    assert add_business_days(date(2026, 7, 3), 0, "US") == date(2026, 7, 6)
    assert fi.settlement_date(date(2026, 7, 3), 0) == date(2026, 7, 3)
    assert fi.settlement_date(date(2026, 7, 3), 2) == date(2026, 7, 5)


def test_business_days_before_counts_back_over_holidays():
    # record date one business day before Friday 27 Nov 2026: Thanksgiving (26 Nov) is
    # closed, so Wednesday 25 Nov; seven business days before Mon 16 Nov 2026 (gilt style)
    assert business_days_before(date(2026, 11, 27), 1, "US") == date(2026, 11, 25)
    assert business_days_before(date(2026, 11, 16), 7, "US") == date(2026, 11, 4)
    assert business_days_before(date(2026, 11, 16), 0, "US") == date(2026, 11, 16)
    with pytest.raises(ValueError, match="n >= 0"):
        business_days_before(date(2026, 11, 16), -1, "US")


@pytest.mark.parametrize("d,rule,want", [
    # ISDA 2006 Definitions Section 4.12. Sunday 31 May 2026: following -> Mon 1 Jun;
    # modified following stays in May -> Fri 29 May; preceding -> Fri 29 May.
    (date(2026, 5, 31), "following", date(2026, 6, 1)),
    (date(2026, 5, 31), "modified_following", date(2026, 5, 29)),
    (date(2026, 5, 31), "preceding", date(2026, 5, 29)),
    (date(2026, 5, 31), "none", date(2026, 5, 31)),
    # Sunday 1 Nov 2026: preceding would leave November -> modified preceding Mon 2 Nov
    (date(2026, 11, 1), "modified_preceding", date(2026, 11, 2)),
    (date(2026, 11, 1), "preceding", date(2026, 10, 30)),
    # Sunday 15 Nov 2026 (BD10Y's coupon): Monday 16 Nov under both following rules
    (date(2026, 11, 15), "following", date(2026, 11, 16)),
    (date(2026, 11, 15), "modified_following", date(2026, 11, 16)),
    # Memorial Day (Mon 25 May 2026) rolls to Tuesday
    (date(2026, 5, 25), "following", date(2026, 5, 26)),
])
def test_business_day_conventions(d, rule, want):
    assert adjust(d, rule, "US") == want


def test_unknown_calendar_and_rule_are_refused():
    with pytest.raises(CalendarError, match="unknown calendar 'XX'"):
        load_calendar("XX")
    with pytest.raises(CalendarError, match="unknown business-day rule 'nearest'"):
        adjust(date(2026, 5, 31), "nearest", "US")


def test_a_calendar_file_is_checked():
    good = {"name": "T", "covers": [2026, 2026],
            "holidays": [{"date": date(2026, 1, 2), "name": "x"}]}
    cal = calendar_from_toml(good, "t.toml")
    assert not is_business_day(date(2026, 1, 2), cal)
    assert is_business_day(date(2026, 1, 5), cal)
    for bad, why in (({**good, "holidays": [{"date": date(2027, 1, 2), "name": "x"}]},
                      "outside covers"),
                     ({**good, "weekend": ["Friday"]}, "'weekend' must list"),
                     ({**good, "holidays": [{"date": "2026-01-02", "name": "x"}]},
                      "holiday 0 must be"),
                     ({**good, "extra": 1}, "unknown key")):
        with pytest.raises(CalendarError, match=why):
            calendar_from_toml(bad, "t.toml")


def test_the_every_day_calendar_has_no_closed_day():
    assert all(EVERY_DAY.is_business_day(date(2026, 12, d)) for d in range(19, 32))
    assert load_calendar(None) is EVERY_DAY

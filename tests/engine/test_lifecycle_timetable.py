"""The dates of a security's life and the timetable that says which lifecycle step is due:
business days, record dates, the last trading date from instruments.toml, due order."""
from __future__ import annotations

import dataclasses
import doctest
import tomllib
from datetime import date

import pytest

import matching.lifecycle
import matching.timetable
from matching.instruments import InstrumentError, Registry
from matching.lifecycle import business_days_before, day_start_ns, last_trading_date, record_cut
from matching.timetable import Timetable, steps_of

REG = Registry.load_default()
BILL = """
[[instrument]]
symbol = "TBX"
isin = "XS000TB3M269"
kind = "tbill"
face_value = "1000"
token_decimals = 4
tick_size = "0.001"
issue_date = 2026-11-02
maturity = 2027-02-01
reference_price = "99.270"
band_pct = "2"
eligibility = ["retail"]
"""


def load(extra: str) -> Registry:
    reg = Registry()
    reg.add_toml(tomllib.loads(BILL + extra), "test")
    return reg


@pytest.mark.parametrize("module", [matching.lifecycle, matching.timetable])
def test_the_docstring_examples_hold(module):
    assert doctest.testmod(module).failed == 0


def test_record_dates_count_business_days_of_the_instruments_calendar():
    monday = date(2026, 12, 14)
    assert business_days_before(monday, 0, "US") == monday
    assert business_days_before(monday, 1, "US") == date(2026, 12, 11)       # Friday
    assert business_days_before(date(2026, 12, 15), 7, "US") == date(2026, 12, 4)
    assert business_days_before(date(2026, 11, 27), 1, "US") == date(2026, 11, 25)
    # No calendar: tokens settle on-chain every day.
    assert business_days_before(monday, 1) == date(2026, 12, 13)


def test_the_record_is_taken_at_the_close_of_the_record_date_settlement_lag_aside():
    bd3y = REG["BD3Y"]
    assert record_cut(bd3y, date(2026, 12, 14)) == date(2026, 12, 15)
    t1 = dataclasses.replace(bd3y, settlement_lag=1)
    # T+1: a trade on the 14th settles on the 15th, after the record date.
    assert record_cut(t1, date(2026, 12, 14)) == date(2026, 12, 14)


def test_an_explicit_last_trading_date_and_the_life_fields_are_checked():
    reg = load('last_trading_date = 2027-01-15\nrecord_lag = 0\nissuer_account = 77\n')
    inst = reg["TBX"]
    assert (last_trading_date(inst), inst.record_lag, inst.issuer_account) == (
        date(2027, 1, 15), 0, 77)
    with pytest.raises(InstrumentError, match="last_trading_date"):
        load("last_trading_date = 2027-02-01\n")
    with pytest.raises(InstrumentError, match="issuer_account"):
        load("issuer_account = -1\n")
    with pytest.raises(InstrumentError, match="must equal record_lag"):
        load("ex_coupon_days = 7\nrecord_lag = 3\n")
    assert load("ex_coupon_days = 7\n")["TBX"].record_lag == 7


def test_steps_come_due_in_date_order_record_before_pay_mature_before_redeem():
    steps = steps_of(REG["BD3Y"])
    first = [(s.action, s.coupon_date) for s in steps[:2]]
    assert first == [("record", "2026-12-15"), ("pay_coupon", "2026-12-15")]
    assert [s.action for s in steps[-3:]] == ["record", "mature", "redeem"]
    assert steps == sorted(steps) and steps[-1].at == day_start_ns(date(2029, 6, 15))
    assert [s.action for s in steps_of(REG["TB3M"])] == ["mature", "redeem"]
    assert steps_of(REG["GOLD"]) == []


def test_the_timetable_skips_what_fell_due_before_the_venue_and_what_is_done():
    since = day_start_ns(date(2026, 12, 15)) + 1          # after BD3Y's record and pay
    table = Timetable(REG, since)
    assert not [s for s in table.steps if s.symbol == "BD3Y" and s.coupon_date == "2026-12-15"]
    now = day_start_ns(date(2027, 2, 1))
    done: set = set()
    due = table.due(now, lambda s: s in done)
    assert [(s.action, s.symbol) for s in due] == [("mature", "TB3M"), ("redeem", "TB3M")]
    done.add(due[0])
    assert table.due(now, lambda s: s in done) == [due[1]]
    assert table.next_at() is not None and table.next_at() > now

"""The timetable drives the closing call (matching/schedule.py): a pre_open before the
close starts it, the close uncrosses it, retains the closing price, then DAY orders
expire; on both books."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger
from matching.messages import NewOrderSingle
from matching.schedule import ScheduleError, SessionSchedule

REG = Registry.load_default()
DAY = int(datetime(2026, 11, 25, tzinfo=UTC).timestamp()) * 10**9      # a Wednesday
SPEC = "07:45/08:00-16:25/16:30 mon-fri"


def make_ledger():
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta")):
        led.open_account(acct, broker, "retail")
        led.deposit(acct, CASH, 100_000 * 10**6)
        for inst in REG:
            led.deposit(acct, inst.symbol, 50 * 10**4)
            led.whitelist(acct, inst.symbol)
    return led


def test_a_closing_call_time_adds_a_pre_open_between_the_open_and_the_close():
    schedule = SessionSchedule.parse(SPEC)
    assert str(schedule) == "07:45/08:00-16:25/16:30 mon,tue,wed,thu,fri UTC"
    day = schedule.boundaries(DAY, DAY + 86_400 * 10**9 - 1)
    assert [(datetime.fromtimestamp(t // 10**9, UTC).strftime("%H:%M"), a) for t, a in day] \
        == [("07:45", "pre_open"), ("08:00", "open"), ("16:25", "pre_open"), ("16:30", "close")]


@pytest.mark.parametrize("spec", ["08:00-07:00/16:30", "08:00-16:30/16:30",
                                  "08:00-16:40/16:30"])
def test_a_closing_call_outside_the_session_is_refused(spec):
    with pytest.raises(ScheduleError):
        SessionSchedule.parse(spec)


@pytest.mark.parametrize("book_engine", ["core", "reference"])
def test_the_timetable_runs_the_closing_call_then_the_uncross_then_day_expiry(book_engine):
    schedule = SessionSchedule.parse(SPEC)
    day = schedule.boundaries(DAY, DAY + 86_400 * 10**9 - 1)
    clock_now = [DAY]
    eng = Engine(REG, make_ledger(), clock=lambda: clock_now[0], book_engine=book_engine)

    def order(cl, acct, side, qty, price, tif="day"):
        return eng.submit("alpha" if acct == 1 else "beta",
                          NewOrderSingle(cl, acct, "TB3M", side, qty, price=price,
                                         time_in_force=tif))

    for at, action in day:
        clock_now[0] = at
        eng.admin(action, "", f"scheduled {action}", now=at)
        if action == "open":
            order("gtc", 2, "sell", "1", "99.500", "gtc")          # out of the cross, stays
        elif action == "pre_open" and at > day[1][0]:       # the closing call
            assert eng.trading_status("TB3M").state == "pre_open"
            clock_now[0] = at + 1
            order("b", 1, "buy", "2", "99.020")
            order("s", 2, "sell", "1", "99.000")
            assert eng.books["TB3M"].in_call and len(eng.books["TB3M"]) == 3   # no trade
    assert eng.trading_status("TB3M").state == "closed"
    # One lot pairs; the surplus is on the buy side at 99.000 and 99.020 alike, both
    # within the cap (reference + 1%): the highest, 99.020 (market pressure, rule 3).
    assert eng.closing_price("TB3M") == (99_020, "auction")
    # The rest of the DAY buy expired with the close; the GTC sell is the only order left.
    assert [o.cl_ord_id for o in eng.orders.values()] == ["gtc"]

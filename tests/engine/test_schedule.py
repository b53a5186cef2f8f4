"""The trading day's timetable: boundaries in UTC, and the gateway that applies them."""
from datetime import UTC, datetime, time

import msgspec
import pytest

from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle
from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import Journal, write_snapshot
from matching.ledger import CASH, Ledger
from matching.messages import NewOrderSingle
from matching.schedule import ScheduleError, SessionSchedule
from matching.session import TradingState

REG = Registry.load_default()


def ns(text: str) -> int:
    """'2026-12-07 08:00' UTC (a Monday) as ns since the epoch."""
    return int(datetime.strptime(text, "%Y-%m-%d %H:%M").replace(
        tzinfo=UTC).timestamp()) * 10**9


# ---------------------------------------------------------------------- the timetable
def test_a_session_spec_names_pre_open_open_close_and_days():
    s = SessionSchedule.parse("07:45/08:00-16:30 mon-fri")
    assert (s.pre_open, s.open, s.close, s.weekdays) == (time(7, 45), time(8), time(16, 30),
                                                         (0, 1, 2, 3, 4))
    assert SessionSchedule.parse("08:00-16:30").weekdays == (0, 1, 2, 3, 4)
    assert SessionSchedule.parse("09:00-17:00 fri-mon").weekdays == (4, 5, 6, 0)
    assert SessionSchedule.parse("00:00-23:59 sun").weekdays == (6,)
    assert str(s) == "07:45/08:00-16:30 mon,tue,wed,thu,fri UTC"


@pytest.mark.parametrize("spec", ["16:30-08:00", "08:00-08:00", "08:30/08:00-16:30",
                                  "8-16", "08:00-16:30 funday", "24:00-25:00", ""])
def test_an_impossible_session_is_refused_with_why(spec):
    with pytest.raises(ScheduleError):
        SessionSchedule.parse(spec)


def test_boundaries_come_in_order_on_trading_days_only():
    s = SessionSchedule.parse("07:45/08:00-16:30 mon-fri")
    week = s.boundaries(ns("2026-12-07 00:00") - 1, ns("2026-12-13 23:59"))   # Mon..Sun
    assert len(week) == 15 and [a for _, a in week[:3]] == ["pre_open", "open", "close"]
    assert [t for t, _ in week] == sorted(t for t, _ in week)
    assert week[-1] == (ns("2026-12-11 16:30"), "close")                       # Friday
    # Half-open: a boundary exactly at the start was already applied, one at the end is due.
    assert s.boundaries(ns("2026-12-07 08:00"), ns("2026-12-07 16:30")) == [
        (ns("2026-12-07 16:30"), "close")]
    assert s.boundaries(ns("2026-12-12 00:00"), ns("2026-12-13 23:59")) == []  # weekend


def test_catching_up_applies_one_close_then_where_the_day_stands():
    s = SessionSchedule.parse("08:00-16:30")
    # Down from Monday 15:00 to Tuesday 09:00: Monday's close, then Tuesday's open.
    assert [a for _, a in s.catch_up(ns("2026-12-07 15:00"), ns("2026-12-08 09:00"))] == [
        "close", "open"]
    # Down over a close only.
    assert [a for _, a in s.catch_up(ns("2026-12-07 15:00"), ns("2026-12-07 17:00"))] == [
        "close"]
    # Down a whole week: still one close (it expires every DAY order), then today's open.
    assert [a for _, a in s.catch_up(ns("2026-12-07 15:00"), ns("2026-12-15 09:00"))] == [
        "close", "open"]
    assert s.catch_up(ns("2026-12-07 09:00"), ns("2026-12-07 10:00")) == []
    assert s.current(ns("2026-12-12 12:00")) == (ns("2026-12-11 16:30"), "close")  # Saturday


# ---------------------------------------------------------------------- the gateway
class Clock:
    def __init__(self, text):
        self.t = ns(text)

    def __call__(self):
        return self.t

    def set(self, text):
        self.t = ns(text)


def _ledger():
    led = Ledger()
    led.open_account(1, "alpha")
    led.deposit(1, CASH, 10**12)
    led.whitelist(1, "TB3M")
    return led


def _order(cl, tif):
    return NewOrderSingle(cl, 1, "TB3M", "buy", "1", price="99.000", time_in_force=tif)


class _Gateway:
    """The gateway's cycle on the test clock; keeps everything it would publish."""
    def __init__(self, eng, clock):
        self.cycle = GatewayCycle(eng, GatewayConfig(
            schedule=SessionSchedule.parse("08:00-16:30"), clock=clock))
        self.clock, self.sent = clock, []

    def _process(self, batch):
        self.sent += self.cycle.process(batch, self.clock())


def _replies(gw):
    return [msgspec.json.decode(s.payload) for s in gw.sent if s.topic.endswith("replies")]


def test_the_gateway_opens_and_closes_the_day_on_the_engines_clock():
    clock = Clock("2026-12-07 07:00")                          # Monday, before the open
    eng = Engine(REG, _ledger(), clock=clock)
    gw = _Gateway(eng, clock)
    gw._process([])
    assert eng.session.state["TB3M"] is TradingState.CLOSED            # a new venue: Friday's close
    assert eng.submit("alpha", _order("early", "day")).reports[0][1].ord_rej_reason == \
        "MARKET_NOT_OPEN"
    clock.set("2026-12-07 08:00")
    gw._process([])
    assert eng.session.state["TB3M"] is TradingState.CONTINUOUS
    day = eng.submit("alpha", _order("d1", "day")).reports[0][1]
    gtc = eng.submit("alpha", _order("g1", "gtc")).reports[0][1]
    assert day.exec_type == gtc.exec_type == "new"
    clock.set("2026-12-07 16:31")
    seq = eng.seq
    gw._process([])
    assert eng.seq == seq + 1                                  # the close is one journaled input
    assert eng.session.state["TB3M"] is TradingState.CLOSED
    live = {o.cl_ord_id for o in eng.orders.values()}
    assert live == {"g1"}                                      # DAY expired, GTC kept
    replies = _replies(gw)
    assert [(r["request_id"], r["action"], r["accepted"]) for r in replies] == [
        ("schedule", "close", True), ("schedule", "open", True), ("schedule", "close", True)]
    gw._process([])                                            # nothing more is due
    assert eng.seq == seq + 1


def test_a_close_missed_while_down_still_expires_day_orders(tmp_path):
    clock = Clock("2026-12-07 15:00")
    journal = Journal(tmp_path / "j.log")
    eng = Engine(REG, _ledger(), clock=clock, journal=journal)
    write_snapshot(tmp_path / "snaps", 0, Engine(REG, _ledger(), clock=clock).snapshot())
    assert eng.submit("alpha", _order("d1", "day")).reports[0][1].exec_type == "new"
    eng.commit()
    journal.close()                                            # the process dies at 15:00
    clock.set("2026-12-08 09:00")                              # back on Tuesday morning
    rec = Engine.recover(REG, snapshot_dir=tmp_path / "snaps", journal_path=tmp_path / "j.log",
                         clock=clock)
    assert [o.cl_ord_id for o in rec.orders.values()] == ["d1"]
    gw = _Gateway(rec, clock)
    gw._process([])
    assert not rec.orders                                      # Monday's close expired it
    assert rec.session.state["TB3M"] is TradingState.CONTINUOUS        # Tuesday is open
    assert [r["action"] for r in _replies(gw)] == ["close", "open"]

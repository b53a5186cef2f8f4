"""The venue's trading day: when the session pre-opens, opens and closes (UTC), and on
which weekdays.

A schedule only says *when*. The gateway turns every boundary it passes into the same
operator input an operator would send (pre_open, open, close: journaled, so a replay
needs no clock), and after a restart it applies what it missed while down: a close that
passed still expires the DAY orders and ends the trading day.

Written ``[HH:MM/]HH:MM-[HH:MM/]HH:MM[ days]``: ``08:00-16:30`` (Monday to Friday),
``07:45/08:00-16:30 mon-fri``, ``00:00-23:59 mon-sun``; a time before the close,
``08:00-16:25/16:30``, starts the closing call (a ``pre_open`` between open and close:
orders rest for the closing uncross the ``close`` runs before DAY orders expire).
Sessions lie within one UTC day (open before close); holidays are an operator's
``close``/``open``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

__all__ = ["SessionSchedule", "ScheduleError", "DAY_NAMES"]

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NS = 1_000_000_000
_SPEC = re.compile(r"(?:(\d\d:\d\d)/)?(\d\d:\d\d)-(?:(\d\d:\d\d)/)?(\d\d:\d\d)"
                   r"(?:\s+(\w{3})(?:-(\w{3}))?)?")


class ScheduleError(ValueError):
    """A session schedule that cannot be: bad syntax, or times out of order."""


def _clock(text: str) -> time:
    try:
        return datetime.strptime(text, "%H:%M").time()
    except ValueError:
        raise ScheduleError(f"{text!r} is not a time of day HH:MM (UTC)") from None


def _day(name: str) -> int:
    try:
        return DAY_NAMES.index(name.lower())
    except ValueError:
        raise ScheduleError(f"{name!r} is not a weekday: one of {', '.join(DAY_NAMES)}") \
            from None


@dataclass(frozen=True)
class SessionSchedule:
    """Daily session boundaries in UTC on ``weekdays`` (0 = Monday)."""
    open: time
    close: time
    pre_open: time | None = None
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4)
    #: The closing call's start (a ``pre_open`` after the open, before the close).
    closing_call: time | None = None

    def __post_init__(self):
        if not self.open < self.close:
            raise ScheduleError(f"the session opens at {self.open:%H:%M}, after its close "
                                f"at {self.close:%H:%M}: a session lies within one UTC day")
        if self.pre_open is not None and not self.pre_open < self.open:
            raise ScheduleError(f"pre-open at {self.pre_open:%H:%M} is not before the open "
                                f"at {self.open:%H:%M}")
        if self.closing_call is not None and not self.open < self.closing_call < self.close:
            raise ScheduleError(f"the closing call at {self.closing_call:%H:%M} is not "
                                f"between the open at {self.open:%H:%M} and the close at "
                                f"{self.close:%H:%M}")
        if not self.weekdays or any(not 0 <= d <= 6 for d in self.weekdays):
            raise ScheduleError(f"weekdays must be some of 0 (Monday) .. 6, got {self.weekdays}")

    @classmethod
    def parse(cls, spec: str) -> SessionSchedule:
        """``[HH:MM/]HH:MM-[HH:MM/]HH:MM[ ddd[-ddd]]``; the days default to mon-fri."""
        m = _SPEC.fullmatch(spec.strip())
        if m is None:
            raise ScheduleError(f"{spec!r} is not a session: write [pre-open/]open-"
                                "[closing-call/]close [days], e.g. '07:45/08:00-16:25/16:30 "
                                "mon-fri' (UTC)")
        pre, opening, call, closing, first, last = m.groups()
        days: tuple[int, ...]
        if first is None:
            days = (0, 1, 2, 3, 4)
        else:
            a = _day(first)
            b = _day(last) if last else a
            days = tuple(range(a, b + 1)) if a <= b else tuple(range(a, 7)) + tuple(range(b + 1))
        return cls(_clock(opening), _clock(closing), _clock(pre) if pre else None, days,
                   _clock(call) if call else None)

    def __str__(self) -> str:
        pre = f"{self.pre_open:%H:%M}/" if self.pre_open else ""
        call = f"{self.closing_call:%H:%M}/" if self.closing_call else ""
        return (f"{pre}{self.open:%H:%M}-{call}{self.close:%H:%M} "
                f"{','.join(DAY_NAMES[d] for d in self.weekdays)} UTC")

    def _day_boundaries(self, day: datetime) -> list[tuple[int, str]]:
        if day.weekday() not in self.weekdays:
            return []
        out = []
        for at, action in ((self.pre_open, "pre_open"), (self.open, "open"),
                           (self.closing_call, "pre_open"), (self.close, "close")):
            if at is not None:
                moment = datetime.combine(day.date(), at, tzinfo=UTC)
                out.append((int(moment.timestamp()) * _NS, action))
        return out

    def boundaries(self, after_ns: int, until_ns: int) -> list[tuple[int, str]]:
        """Every ``(time_ns, action)`` with ``after_ns < time_ns <= until_ns``, in order.
        A span longer than two weeks is cut to its last two (what a restart needs)."""
        if until_ns <= after_ns:
            return []
        after_ns = max(after_ns, until_ns - 14 * 86_400 * _NS)
        day = datetime.fromtimestamp(after_ns // _NS, UTC).replace(
            hour=0, minute=0, second=0, microsecond=0)
        end = datetime.fromtimestamp(until_ns // _NS, UTC)
        out: list[tuple[int, str]] = []
        while day <= end:
            out.extend(b for b in self._day_boundaries(day) if after_ns < b[0] <= until_ns)
            day += timedelta(days=1)
        return out

    def catch_up(self, after_ns: int, until_ns: int) -> list[tuple[int, str]]:
        """What to apply now for the boundaries passed in ``(after_ns, until_ns]``: one
        close if any close passed (it expires DAY orders and ends the trading day), then
        the latest boundary if it was not that close. Nothing when none passed."""
        passed = self.boundaries(after_ns, until_ns)
        if not passed:
            return []
        closes = [b for b in passed if b[1] == "close"]
        out = [closes[-1]] if closes else []
        if passed[-1][1] != "close":
            out.append(passed[-1])
        return out

    def current(self, now_ns: int) -> tuple[int, str] | None:
        """The latest boundary at or before ``now_ns`` (within two weeks): the state the
        venue should be in now."""
        passed = self.boundaries(now_ns - 14 * 86_400 * _NS, now_ns)
        return passed[-1] if passed else None

"""The lifecycle timetable, sans-I/O: given the instruments and the time, which lifecycle
inputs (``record``, ``pay_coupon``, ``mature``, ``redeem``) are due.

Every step of every bill and bond has a due time (00:00 UTC of a day, from
``matching.lifecycle``): a coupon's ``record`` at the close of the last trade date
settling on its record date, its ``pay_coupon`` on the payment date (never before its
record), ``mature`` the day after the last trading date, ``redeem`` on the maturity date
(after ``mature`` and the final coupon's record). At one instant they go in that order.
The caller (the gateway) sends what ``due`` returns through ``Engine.lifecycle``,
journaled; what the engine has done is the engine's state (``done``), so a step is applied
once, and after a restart everything missed comes due at once, in date order. Steps due
before the venue started (``since``) are never sent: the venue does not pay what fell due
before it existed.

>>> from matching.instruments import Registry
>>> from matching.lifecycle import day_start_ns
>>> from datetime import date
>>> t = Timetable(Registry.load_default(), since=day_start_ns(date(2026, 12, 1)))
>>> [(d.action, d.symbol, d.coupon_date) for d in
...  t.due(day_start_ns(date(2026, 12, 16)), lambda d: False)]
[('record', 'BD3Y', '2026-12-15'), ('pay_coupon', 'BD3Y', '2026-12-15')]
"""
from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta

from matching.lifecycle import (
    coupon_schedule,
    day_start_ns,
    last_trading_date,
    record_cut,
)

__all__ = ["Due", "Timetable", "steps_of"]

_RANK = {"record": 0, "pay_coupon": 1, "mature": 2, "redeem": 3}


@dataclass(frozen=True, order=True)
class Due:
    """One lifecycle step: at ``at`` (ns), ``action`` on ``symbol`` (``coupon_date``: the
    payment date of the coupon it is for, ISO; empty for mature and redeem)."""
    at: int
    rank: int
    symbol: str
    action: str
    coupon_date: str = ""


def steps_of(inst) -> list[Due]:
    """Every lifecycle step of a bill or bond, in due order (none for a commodity)."""
    if inst.maturity is None:
        return []
    symbol = inst.symbol
    out: list[Due] = []
    final_cut = 0
    for c in coupon_schedule(inst):
        cut = day_start_ns(record_cut(inst, c.record_date))
        iso = c.payment_date.isoformat()
        out.append(Due(cut, _RANK["record"], symbol, "record", iso))
        if c.final:
            final_cut = cut
        else:
            out.append(Due(max(cut, day_start_ns(c.payment_date)), _RANK["pay_coupon"],
                           symbol, "pay_coupon", iso))
    last = last_trading_date(inst)
    assert last is not None
    mature_at = day_start_ns(last + timedelta(days=1))
    out.append(Due(mature_at, _RANK["mature"], symbol, "mature"))
    out.append(Due(max(mature_at, final_cut, day_start_ns(inst.maturity)), _RANK["redeem"],
                   symbol, "redeem"))
    return sorted(out)


class Timetable:
    """The steps of ``instruments`` due after ``since``; ``due(now, done)`` says which are
    due now and not done. O(log n) per call when nothing is pending."""

    def __init__(self, instruments: Iterable, since: int):
        steps = sorted(s for inst in instruments for s in steps_of(inst))
        recorded_before = {(s.symbol, s.coupon_date) for s in steps
                           if s.action == "record" and s.at <= since}
        # A coupon whose holders were fixed before the venue existed is not its to pay.
        self.steps = [s for s in steps if s.at > since and not (
            s.action in ("pay_coupon", "redeem")
            and (s.symbol, s.coupon_date) in recorded_before)]
        self._times = [s.at for s in self.steps]
        self._next = 0
        self.pending: list[Due] = []

    def add(self, inst, since: int) -> None:
        """The steps of ``inst`` (listed at run time: a new issue) due after ``since``."""
        later = sorted(self.steps[self._next:] + [s for s in steps_of(inst) if s.at > since])
        self.steps = self.steps[:self._next] + later
        self._times = [s.at for s in self.steps]

    def due(self, now: int, done: Callable[[Due], bool]) -> list[Due]:
        """The steps due at ``now`` that ``done`` says were not done, in due order."""
        end = bisect.bisect_right(self._times, now, self._next)
        if end > self._next:
            self.pending.extend(self.steps[self._next:end])
            self._next = end
        if self.pending:
            self.pending = [s for s in self.pending if not done(s)]
        return list(self.pending)

    def next_at(self) -> int | None:
        """When the next step falls due (None: no step left)."""
        return self._times[self._next] if self._next < len(self._times) else None

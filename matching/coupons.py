"""Coupon schedules: regular, short and long first periods, odd last periods, accrued interest.

Schedule (ICMA Rule 251; the US Treasury's, 31 CFR 356 Appendix B section I):
- Regular coupon dates run back from an anchor in steps of 12/f months: the
  ``penultimate_coupon`` when given (the period from it to maturity is then an odd last
  period), else maturity. With ``end_of_month`` (default) an anchor on a month end keeps
  every date on a month end; without it dates keep the anchor's day (clipped to short
  months).
- The first period runs from issue to the first regular date after it (a SHORT first
  coupon), or to ``first_coupon`` when given, which may make it LONG. A ``first_coupon``
  off the backward cycle (and no penultimate date) anchors the cycle instead: dates run
  forward from it and the last period is odd.
- Every period carries its quasi-coupon dates: the regular cycle extended past an odd
  period's ends. A regular period is its own single quasi-coupon period.

Amounts per 100 of face: ``100 c / f`` in a regular period; ``100 c * DCF(start, end)`` in
an irregular one. Accrued interest at settlement ``s`` in the period [start, end):
``AI = 100 c * DCF(start, s)``. Under ACT/ACT ICMA the DCF of an irregular period sums
over its quasi-coupon periods Q_i: ``days(Q_i held) / (f * days(Q_i))`` (Rule 251.1(iii));
the US Treasury's long-coupon rule (App. B I.A.4) is the same sum.

Dates here are unadjusted: accrual never moves. Payment dates are rolled by the
instrument's business-day rule in ``coupon_schedule``.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from fractions import Fraction
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING

from matching.calendars import adjust, business_days_before
from matching.daycount import (
    THIRTY_360_FAMILY,
    canonical_day_count,
    day_count_fraction,
    days_30_360,
)
from matching.exact import exact

if TYPE_CHECKING:
    from matching.instruments import Instrument

__all__ = ["Bond", "CouponPeriod", "Coupon", "add_months", "bond", "schedule",
           "period_at", "accrual_fraction", "periods_between", "coupon_schedule",
           "max_coupon_per_100", "bond_of"]


def add_months(d: date, months: int, eom: bool = False) -> date:
    """``d`` moved by whole months; with ``eom`` a month-end date stays at month end."""
    m = d.month - 1 + months
    year, month = d.year + m // 12, m % 12 + 1
    last = calendar.monthrange(year, month)[1]
    if eom and d.day == calendar.monthrange(d.year, d.month)[1]:
        return date(year, month, last)
    return date(year, month, min(d.day, last))


@dataclass(frozen=True)
class Bond:
    """What fixes a fixed-coupon bond's schedule and accrual (hashable: schedules cache)."""
    coupon_rate: Fraction
    frequency: int
    issue: date
    maturity: date
    day_count: str = "ACT/ACT ICMA"      # canonical name
    first_coupon: date | None = None
    penultimate_coupon: date | None = None
    end_of_month: bool = True


@dataclass(frozen=True)
class CouponPeriod:
    """One accrual period [start, end) and the quasi-coupon dates covering it."""
    start: date                      # issue date or the previous coupon date
    end: date                        # this coupon's date, unadjusted
    quasi: tuple[date, ...]          # q0 <= start < q1 < ... < qk, qk >= end
    amount: Fraction                 # the coupon per 100 of face, exact

    @property
    def regular(self) -> bool:
        return self.quasi == (self.start, self.end)


@dataclass(frozen=True)
class Coupon:
    """A coupon as the timetable and the ledger see it."""
    accrual_start: date
    accrual_end: date                # unadjusted coupon date
    payment_date: date               # accrual_end rolled by the business-day rule
    record_date: date                # record_lag business days before payment_date
    amount_per_100: Fraction         # exact; cash = lots x face x amount / 100, rounded once
    regular: bool


def _step(frequency: int) -> int:
    if isinstance(frequency, bool) or frequency not in (1, 2, 4, 12):
        raise ValueError(f"coupon frequency must be 1, 2, 4 or 12, got {frequency!r}")
    return 12 // frequency


def bond(coupon_rate, frequency: int, issue: date, maturity: date,
         convention: str = "ACT/ACT ICMA", *, first_coupon: date | None = None,
         penultimate_coupon: date | None = None, end_of_month: bool = True) -> Bond:
    """A checked Bond (ValueError on dates out of order or off the cycle)."""
    _step(frequency)
    if not issue < maturity:
        raise ValueError(f"issue {issue} must be before maturity {maturity}")
    if first_coupon is not None and not issue < first_coupon <= maturity:
        raise ValueError(f"first_coupon {first_coupon} must be after issue {issue} and "
                         f"not after maturity {maturity}")
    if penultimate_coupon is not None:
        if not issue < penultimate_coupon < maturity:
            raise ValueError(f"penultimate_coupon {penultimate_coupon} must lie between "
                             f"issue {issue} and maturity {maturity}")
        if first_coupon is not None and first_coupon > penultimate_coupon:
            raise ValueError(f"first_coupon {first_coupon} is after penultimate_coupon "
                             f"{penultimate_coupon}")
    b = Bond(exact(coupon_rate, "coupon_rate"), frequency, issue, maturity,
             canonical_day_count(convention), first_coupon, penultimate_coupon,
             bool(end_of_month))
    schedule(b)                       # refuses a first coupon off the penultimate's cycle
    return b


def bond_of(inst: Instrument) -> Bond:
    """The Bond of a bond instrument (its schedule settings included)."""
    _, issue, maturity = inst.debt_terms()
    return bond(inst.coupon_rate, inst.coupon_frequency, issue, maturity, inst.day_count,
                first_coupon=inst.first_coupon, penultimate_coupon=inst.penultimate_coupon,
                end_of_month=inst.end_of_month)


@lru_cache(maxsize=4096)
def schedule(b: Bond) -> tuple[CouponPeriod, ...]:
    """Every coupon period of ``b`` in date order (rules in the module docstring)."""
    step, eom = _step(b.frequency), b.end_of_month

    def roll(anchor: date, k: int) -> date:
        return add_months(anchor, step * k, eom)

    anchor = b.penultimate_coupon or b.maturity
    back: list[date] = []             # regular dates from the anchor down to the first
    k = 0
    while (d := roll(anchor, -k)) > b.issue and (b.first_coupon is None
                                                 or d >= b.first_coupon):
        back.append(d)
        k += 1
    odd_last = b.penultimate_coupon is not None
    if b.first_coupon is not None and (not back or back[-1] != b.first_coupon):
        if odd_last:
            raise ValueError(f"first_coupon {b.first_coupon} is not a whole number of "
                             f"{step}-month periods before penultimate_coupon "
                             f"{b.penultimate_coupon}")
        anchor, regular = b.first_coupon, list[date]()  # the cycle runs forward from it
        while (d := roll(anchor, len(regular))) < b.maturity:
            regular.append(d)
        k_first, k_last, odd_last = 0, len(regular) - 1, True
    else:
        regular = back[::-1]
        k_first, k_last = 1 - len(back), 0
    dates = [*regular, b.maturity] if odd_last else regular
    quasi_first, j = [dates[0]], k_first - 1          # back from the first coupon date
    while quasi_first[0] > b.issue:
        quasi_first.insert(0, roll(anchor, j))
        j -= 1
    periods = [_period(b, b.issue, dates[0], tuple(quasi_first))]
    for i in range(1, len(dates)):
        start, end = dates[i - 1], dates[i]
        quasi = [start, end]
        if odd_last and i == len(dates) - 1:          # forward from the last regular date
            quasi, j = [start], k_last + 1
            while quasi[-1] < end:
                quasi.append(roll(anchor, j))
                j += 1
        periods.append(_period(b, start, end, tuple(quasi)))
    return tuple(periods)


def _period(b: Bond, start: date, end: date, quasi: tuple[date, ...]) -> CouponPeriod:
    p = CouponPeriod(start, end, quasi, Fraction(0))
    amount = (100 * b.coupon_rate / b.frequency if p.regular
              else 100 * b.coupon_rate * accrual_fraction(b, p, start, end))
    return CouponPeriod(start, end, quasi, amount)


def period_at(b: Bond, settle: date) -> tuple[int, CouponPeriod]:
    """The index and period with start <= settle < end (on a coupon date, the period
    starting there); ValueError outside [issue, maturity)."""
    if not b.issue <= settle < b.maturity:
        raise ValueError(f"settlement {settle} is outside the bond's life "
                         f"{b.issue}..{b.maturity}")
    for i, p in enumerate(schedule(b)):
        if settle < p.end:
            return i, p
    raise AssertionError("unreachable: settle < maturity")


def _overlaps(p: CouponPeriod, a: date, z: date):
    """(q_i, q_i+1, lo, hi) for each quasi-coupon period meeting [a, z]."""
    for qi, qj in pairwise(p.quasi):
        lo, hi = max(a, qi), min(z, qj)
        if lo < hi:
            yield qi, qj, lo, hi


def accrual_fraction(b: Bond, p: CouponPeriod, a: date, z: date) -> Fraction:
    """Year fraction from ``a`` to ``z`` inside period ``p`` in the bond's day count:
    ICMA sums over quasi-coupon periods; the others count the dates directly."""
    if b.day_count == "ACT/ACT ICMA":
        return sum((Fraction((hi - lo).days, b.frequency * (qj - qi).days)
                    for qi, qj, lo, hi in _overlaps(p, a, z)), Fraction(0))
    return day_count_fraction(a, z, b.day_count, (p.start, p.end), b.frequency, b.maturity)


def periods_between(b: Bond, p: CouponPeriod, a: date, z: date) -> Fraction:
    """Time from ``a`` to ``z`` inside ``p`` in coupon periods, the exponent of the street
    yield (ICMA Rule 803): a whole quasi-coupon period is 1; a part of one is its share of
    days, counted 30/360 (``1 - A/E`` with E = 360/f) for 30/360 bonds, actual otherwise."""
    total = Fraction(0)
    for qi, qj, lo, hi in _overlaps(p, a, z):
        if lo == qi and hi == qj:
            total += 1
        elif b.day_count in THIRTY_360_FAMILY:
            def d30(x: date, qi: date = qi) -> Fraction:
                return Fraction(days_30_360(qi, x, b.day_count, b.maturity) * b.frequency,
                                360)
            total += (1 if hi == qj else d30(hi)) - d30(lo)
        else:
            total += Fraction((hi - lo).days, (qj - qi).days)
    return total


def max_coupon_per_100(b: Bond) -> Fraction:
    """The largest coupon of the schedule per 100 (a long first one may near two)."""
    return max(p.amount for p in schedule(b))


def coupon_schedule(inst: Instrument, record_lag: int | None = None) -> tuple[Coupon, ...]:
    """Every coupon of a bond instrument with its payment and record dates.

    Payment date: the coupon date rolled by ``inst.business_day_rule`` on
    ``inst.calendar`` (unadjusted by default: tokens pay every day). Record date:
    ``record_lag`` business days of that calendar before the payment date (default
    ``inst.record_lag``, 0 when the instrument has none).

    >>> from matching.instruments import Registry
    >>> first = coupon_schedule(Registry.load_default()["BD3Y"])[0]
    >>> first.payment_date, first.amount_per_100
    (datetime.date(2026, 12, 15), Fraction(2, 1))
    """
    b = bond_of(inst)
    cal, rule = inst.calendar, inst.business_day_rule
    lag = getattr(inst, "record_lag", 0) if record_lag is None else record_lag
    out = []
    for p in schedule(b):
        pay = adjust(p.end, rule, cal)
        out.append(Coupon(p.start, p.end, pay, business_days_before(pay, lag, cal),
                          p.amount, p.regular))
    return tuple(out)

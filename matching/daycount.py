"""Day-count conventions: the exact year fraction between two dates.

Every convention has one canonical name (``DAY_COUNTS``) and a few accepted spellings.
The bare "ACT/ACT" is refused: ICMA (bonds, per coupon period) and ISDA (swaps, per
calendar year) differ by up to a day's interest in most periods, so a file must say
which it means.

Formulas, year fraction from D1 (Y1-M1-D1) to D2, ``d`` actual days:

- ACT/365F (ISDA 2006 Section 4.16(d)): ``d/365``.
- ACT/360 (4.16(e)): ``d/360``.
- ACT/365L (4.16(i); ICMA Rule 251.1(i)): ``d/365``, or ``d/366`` when the end of the
  coupon period is in a leap year; for annual coupons, 366 when 29 February falls in
  (D1, period end].
- ACT/ACT ISDA (4.16(b)): days in a leap year / 366 + days in a common year / 365.
- ACT/ACT ICMA (ICMA Rule 251.1(iii)): ``d / (f * days of the quasi-coupon period)``,
  summed over the quasi-coupon periods an irregular period spans (matching.coupons).
- 30/360, bond basis (4.16(f)): ``(360(Y2-Y1) + 30(M2-M1) + D2-D1)/360`` with
  D1 = min(D1, 30), and D2 -> 30 when D2 = 31 and D1 >= 30.
- 30/360 US (SIFMA Standard Securities Calculation Methods, the end-of-February rule):
  bond basis, and first: D2 -> 30 when D1 and D2 are both the last day of February;
  D1 -> 30 when D1 is the last day of February.
- 30E/360, Eurobond basis (4.16(g)): D1 = 31 -> 30; D2 = 31 -> 30.
- 30E/360 ISDA (4.16(h)): D1 a month's last day -> 30; D2 a month's last day -> 30,
  except D2 in February when it is the termination (maturity) date.
"""
from __future__ import annotations

import calendar
from datetime import date
from fractions import Fraction

__all__ = ["DAY_COUNTS", "THIRTY_360_FAMILY", "canonical_day_count", "day_count_fraction",
           "days_30_360", "act_act_isda", "AmbiguousDayCount"]

#: Canonical day-count names and the spellings accepted for each.
DAY_COUNTS = {
    "ACT/365F": ("ACT/365F", "ACT/365", "ACT/365 FIXED", "A/365F"),
    "ACT/360": ("ACT/360", "A/360"),
    "ACT/365L": ("ACT/365L", "ACT/365 LEAP"),
    "ACT/ACT ISDA": ("ACT/ACT ISDA", "ACTUAL/ACTUAL ISDA", "ACT/ACT HISTORICAL"),
    "ACT/ACT ICMA": ("ACT/ACT ICMA", "ACT/ACT ISMA", "ACT/ACT BOND", "ACTUAL/ACTUAL ICMA"),
    "30/360": ("30/360", "30/360 BOND", "BOND BASIS", "30/360 ISDA"),
    "30/360 US": ("30/360 US", "30U/360", "30/360 SIA", "30/360 SIFMA"),
    "30E/360": ("30E/360", "EUROBOND BASIS", "30/360 ICMA", "30S/360"),
    "30E/360 ISDA": ("30E/360 ISDA", "GERMAN"),
}
#: Conventions that count days as 30-day months (their coupon periods count 360/f days).
THIRTY_360_FAMILY = frozenset({"30/360", "30/360 US", "30E/360", "30E/360 ISDA"})
_ALIASES = {alias: name for name, aliases in DAY_COUNTS.items() for alias in aliases}
_AMBIGUOUS = {"ACT/ACT", "ACTUAL/ACTUAL", "A/A"}


class AmbiguousDayCount(ValueError):
    """A day-count name that means different conventions in different markets."""


def canonical_day_count(convention: str) -> str:
    """The canonical name of a day-count convention; ValueError if unknown or ambiguous."""
    key = " ".join(str(convention).upper().split())
    if key in _AMBIGUOUS:
        raise AmbiguousDayCount(
            f"day count {convention!r} is ambiguous: write 'ACT/ACT ICMA' (per coupon "
            f"period, ICMA Rule 251) or 'ACT/ACT ISDA' (per calendar year, ISDA 4.16(b))")
    name = _ALIASES.get(key)
    if name is None:
        raise ValueError(f"unknown day-count convention {convention!r}; "
                         f"known: {', '.join(DAY_COUNTS)}")
    return name


def _last_of_month(d: date) -> bool:
    return d.day == calendar.monthrange(d.year, d.month)[1]


def _last_of_february(d: date) -> bool:
    return d.month == 2 and _last_of_month(d)


def days_30_360(start: date, end: date, convention: str = "30/360",
                maturity: date | None = None) -> int:
    """Days from ``start`` to ``end`` counted in 30-day months under ``convention`` (one of
    THIRTY_360_FAMILY; ``maturity`` is the termination date 30E/360 ISDA needs)."""
    d1, d2 = start.day, end.day
    if convention == "30/360":
        d1 = min(d1, 30)
        if d2 == 31 and d1 >= 30:
            d2 = 30
    elif convention == "30/360 US":
        if _last_of_february(start) and _last_of_february(end):
            d2 = 30
        if _last_of_february(start):
            d1 = 30
        if d2 == 31 and d1 >= 30:
            d2 = 30
        d1 = min(d1, 30)
    elif convention == "30E/360":
        d1, d2 = min(d1, 30), min(d2, 30)
    elif convention == "30E/360 ISDA":
        if _last_of_month(start):
            d1 = 30
        if _last_of_month(end) and not (end.month == 2 and end == maturity):
            d2 = 30
    else:
        raise ValueError(f"{convention!r} is not a 30/360 convention")
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def act_act_isda(start: date, end: date) -> Fraction:
    """ACT/ACT ISDA: each calendar year's days over that year's length (365 or 366)."""
    if end <= start:
        return Fraction((end - start).days, 365) if end == start else -act_act_isda(end, start)
    total, cursor = Fraction(0), start
    while cursor < end:
        year_end = date(cursor.year + 1, 1, 1)
        stop = min(end, year_end)
        total += Fraction((stop - cursor).days, 366 if calendar.isleap(cursor.year) else 365)
        cursor = stop
    return total


def _act_365l(start: date, end: date, period_end: date, frequency: int) -> Fraction:
    days = (end - start).days
    if frequency == 1:
        leap = any(calendar.isleap(y) and start < date(y, 2, 29) <= period_end
                   for y in range(start.year, period_end.year + 1))
    else:
        leap = calendar.isleap(period_end.year)
    return Fraction(days, 366 if leap else 365)


def day_count_fraction(start: date, end: date, convention: str,
                       period: tuple[date, date] | None = None, frequency: int = 2,
                       maturity: date | None = None) -> Fraction:
    """Exact year fraction from ``start`` to ``end`` (formulas in the module docstring).

    ``period`` is the coupon (or quasi-coupon) period holding the dates: ACT/ACT ICMA
    divides by its length, ACT/365L looks at its end (``end`` when not given).
    ``frequency`` is coupons a year (ICMA, ACT/365L); ``maturity`` the termination date
    (30E/360 ISDA). Other conventions ignore them.

    >>> day_count_fraction(date(2003, 11, 1), date(2004, 5, 1), "ACT/ACT ISDA")
    Fraction(66491, 133590)
    """
    conv = canonical_day_count(convention)
    if conv in THIRTY_360_FAMILY:
        return Fraction(days_30_360(start, end, conv, maturity), 360)
    days = (end - start).days
    if conv == "ACT/365F":
        return Fraction(days, 365)
    if conv == "ACT/360":
        return Fraction(days, 360)
    if conv == "ACT/ACT ISDA":
        return act_act_isda(start, end)
    if conv == "ACT/365L":
        return _act_365l(start, end, period[1] if period else end, frequency)
    if period is None:
        raise ValueError("ACT/ACT ICMA needs the coupon period holding the dates")
    return Fraction(days, frequency * (period[1] - period[0]).days)

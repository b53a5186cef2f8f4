"""Prices from yields and yields from prices: coupon bonds and T-bills.

Rates are 40-digit Decimals (a yield is a rate, not money); prices are per 100 of face.

Coupon bonds, street convention (ICMA Rule 803; Excel PRICE, ODDFPRICE, ODDLPRICE), with
``v = 1/(1 + y/f)`` and ``t_k`` the time in coupon periods from settlement to the k-th
remaining coupon (``matching.coupons.periods_between``: ``DSC/E`` to the next one, plus
one per regular period and an odd period's share of its quasi-coupon periods)::

    compound:  P_dirty = sum_k C_k v**t_k + 100 v**t_n
    simple (last period only, the US street convention; Excel ODDLPRICE / PRICE N = 1):
               P_dirty = (C_n + 100) / (1 + t_n y/f)

``last_period="compound"`` keeps the first formula to maturity (the DMO's and ICMA's);
``"simple"`` switches in the last coupon period. Clean = dirty - AI. Yield from clean
price: Illinois (bracketed regula falsi) on [-50 %, 200 %]; the price falls strictly as
the yield rises, so the root is unique.

T-bills: money-market yield ``P = 100 / (1 + y d/B)`` (B = 365 or 360); bank discount
``P = 100 (1 - dr d/360)``; the US investment rate (coupon-equivalent yield, 31 CFR 356
Appendix B section VI.D): for ``r`` days to maturity of at most half a year
``i = (100 - P)/P * y/r``; beyond, ``P [1 + (r - y/2) i/y] (1 + i/2) = 100`` solved as
``i = (-b + sqrt(b**2 - 4ac)) / 2a``, ``a = r/2y - 0.25``, ``b = r/y``, ``c = (P-100)/P``;
``y`` is 366 when the year after the issue date holds a 29 February, else 365.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

from matching.coupons import (
    Bond,
    accrual_fraction,
    add_months,
    bond,
    period_at,
    periods_between,
    schedule,
)
from matching.daycount import canonical_day_count, day_count_fraction
from matching.exact import ctx, dec, exact

__all__ = ["LAST_PERIOD_YIELDS", "bond_dirty_price", "bond_clean_price", "bond_yield",
           "bill_price_from_yield", "bill_yield_from_price", "bill_price_from_discount",
           "bill_discount_from_price", "bill_investment_rate",
           "bill_price_from_investment_rate", "investment_rate_year"]

LAST_PERIOD_YIELDS = ("compound", "simple")
YIELD_BRACKET = (Decimal("-0.5"), Decimal(2))


@dataclass(frozen=True)
class _BondAt:
    """What pricing a bond at one settlement date needs, computed once per solve."""
    flows: tuple[Decimal, ...]   # C_1 .. C_n, redemption added to C_n
    times: tuple[Decimal, ...]   # t_1 .. t_n in coupon periods
    accrued: Decimal
    frequency: int
    simple: bool                 # one flow left and the simple last-period yield
    gaps: tuple[int | Decimal, ...]  # t_(k+1) - t_k (1 for a regular period), 0 at the end

    def dirty(self, y) -> Decimal:
        with ctx():
            rate = dec(exact(y, "yield")) / self.frequency
            if self.simple:
                return self.flows[0] / (1 + self.times[0] * rate)
            v = 1 / (1 + rate)
            acc = Decimal(0)                 # Horner over the gaps: sum C_k v^(t_k - t_1)
            for cf, gap in zip(reversed(self.flows), reversed(self.gaps), strict=True):
                acc = acc * (v if gap == 1 else v ** gap) + cf
            return acc * v ** self.times[0]

    def clean(self, y) -> Decimal:
        with ctx():
            return self.dirty(y) - self.accrued


def _bond_at(b: Bond, settle: date, last_period: str = "compound") -> _BondAt:
    if last_period not in LAST_PERIOD_YIELDS:
        raise ValueError(f"last_period must be one of {LAST_PERIOD_YIELDS}, "
                         f"got {last_period!r}")
    i, p = period_at(b, settle)
    periods = schedule(b)[i:]
    t = periods_between(b, p, settle, p.end)
    flows, times = [p.amount], [t]
    for q in periods[1:]:
        t += periods_between(b, q, q.start, q.end)
        flows.append(q.amount)
        times.append(t)
    flows[-1] += 100
    accrued = 100 * b.coupon_rate * accrual_fraction(b, p, p.start, settle)
    simple = last_period == "simple" and len(flows) == 1
    gaps = [later - t for t, later in pairwise(times)] + [Fraction(0)]
    return _BondAt(tuple(dec(f) for f in flows), tuple(dec(x) for x in times),
                   dec(accrued), b.frequency, simple,
                   tuple(int(g) if g.denominator == 1 else dec(g) for g in gaps))


def _bond(coupon_rate, frequency, issue, maturity, convention, kw) -> tuple[Bond, str]:
    last = kw.pop("last_period", "compound")
    return bond(coupon_rate, frequency, issue, maturity, convention, **kw), last


def bond_dirty_price(y, coupon_rate, frequency: int, issue: date, maturity: date,
                     settle: date, convention: str = "ACT/ACT ICMA", **schedule_kw) -> Decimal:
    """Dirty price per 100 from yield ``y`` (module docstring). ``schedule_kw``:
    first_coupon, penultimate_coupon, end_of_month (matching.coupons.bond), last_period."""
    b, last = _bond(coupon_rate, frequency, issue, maturity, convention, dict(schedule_kw))
    return _bond_at(b, settle, last).dirty(y)


def bond_clean_price(y, coupon_rate, frequency: int, issue: date, maturity: date,
                     settle: date, convention: str = "ACT/ACT ICMA", **schedule_kw) -> Decimal:
    """Clean price per 100 from yield ``y``: dirty price minus accrued interest."""
    b, last = _bond(coupon_rate, frequency, issue, maturity, convention, dict(schedule_kw))
    return _bond_at(b, settle, last).clean(y)


def bond_yield(clean, coupon_rate, frequency: int, issue: date, maturity: date,
               settle: date, convention: str = "ACT/ACT ICMA", **schedule_kw) -> Decimal:
    """Yield to maturity of a clean price, to 1e-24: Illinois method on [-50 %, 200 %].

    ValueError if the price has no yield in that bracket (e.g. 0 or absurdly high).
    """
    b, last = _bond(coupon_rate, frequency, issue, maturity, convention, dict(schedule_kw))
    return solve_yield(_bond_at(b, settle, last), clean)


def solve_yield(at: _BondAt, clean) -> Decimal:
    """The yield at which ``at`` prices to ``clean`` (Illinois method)."""
    target = dec(exact(clean, "clean price"))
    if target <= 0:
        raise ValueError(f"clean price {clean} must be positive")
    tol = Decimal("1e-24")
    with ctx():
        a, b = YIELD_BRACKET
        fa, fb = at.clean(a) - target, at.clean(b) - target
        if not fa >= 0 >= fb:
            raise ValueError(f"clean price {clean} has no yield in [-50%, 200%]")
        if fa == 0:
            return a
        if fb == 0:
            return b
        last, side = None, 0
        for _ in range(300):
            c = (a * fb - b * fa) / (fb - fa)
            fc = at.clean(c) - target
            if fc == 0 or (last is not None and abs(c - last) < tol):
                return c
            last = c
            if (fc > 0) == (fa > 0):           # c replaces a; halve the stale end
                a, fa = c, fc
                if side == -1:
                    fb /= 2
                side = -1
            else:
                b, fb = c, fc
                if side == 1:
                    fa /= 2
                side = 1
        raise ArithmeticError(f"yield of {clean} did not converge")  # pragma: no cover


# ---------------------------------------------------------------------- T-bills
def _bill_fraction(settle: date, maturity: date, day_count: str) -> Fraction:
    if not settle < maturity:
        raise ValueError(f"settlement {settle} is not before maturity {maturity}")
    conv = canonical_day_count(day_count)
    if conv not in ("ACT/365F", "ACT/360"):
        raise ValueError(f"a bill's yield basis is ACT/365F or ACT/360, not {day_count!r}")
    return day_count_fraction(settle, maturity, conv)


def bill_price_from_yield(y, settle: date, maturity: date, day_count: str = "ACT/365F") -> Decimal:
    """Money-market yield: ``P = 100 / (1 + y * d/B)``, B = 365 (ACT/365F) or 360."""
    t = _bill_fraction(settle, maturity, day_count)
    return dec(100 / (1 + exact(y, "yield") * t))


def bill_yield_from_price(price, settle: date, maturity: date,
                          day_count: str = "ACT/365F") -> Decimal:
    """Inverse of ``bill_price_from_yield``: ``y = (100/P - 1) * B/d``."""
    t = _bill_fraction(settle, maturity, day_count)
    p = exact(price, "price")
    if p <= 0:
        raise ValueError(f"price {price} must be positive")
    return dec((100 / p - 1) / t)


def bill_price_from_discount(dr, settle: date, maturity: date) -> Decimal:
    """Bank discount basis, US style, ACT/360: ``P = 100 * (1 - dr * d/360)``
    (31 CFR 356 Appendix B section VI.A)."""
    t = _bill_fraction(settle, maturity, "ACT/360")
    return dec(100 * (1 - exact(dr, "discount rate") * t))


def bill_discount_from_price(price, settle: date, maturity: date) -> Decimal:
    """Inverse of ``bill_price_from_discount``: ``dr = (1 - P/100) * 360/d`` (VI.C)."""
    t = _bill_fraction(settle, maturity, "ACT/360")
    return dec((1 - exact(price, "price") / 100) / t)


def investment_rate_year(issue: date) -> int:
    """``y`` of 31 CFR 356 App. B VI.D: 366 when the year from ``issue`` holds a 29 Feb."""
    end = add_months(issue, 12)
    return 366 if any(calendar.isleap(yr) and issue < date(yr, 2, 29) <= end
                      for yr in (issue.year, issue.year + 1)) else 365


def bill_investment_rate(price, settle: date, maturity: date,
                         issue: date | None = None) -> Decimal:
    """US investment rate (coupon-equivalent yield) of a bill price (module docstring);
    the year ``y`` is counted from ``issue`` (default: the settlement date).

    >>> i = bill_investment_rate(Decimal("92.265"), date(1990, 6, 7), date(1991, 6, 6))
    >>> i.quantize(Decimal("1e-9"))                     # 31 CFR 356 App. B VI.D.2
    Decimal('0.082373244')
    """
    if not settle < maturity:
        raise ValueError(f"settlement {settle} is not before maturity {maturity}")
    p = exact(price, "price")
    if p <= 0:
        raise ValueError(f"price {price} must be positive")
    r, y = (maturity - settle).days, investment_rate_year(issue or settle)
    if 2 * r <= y:
        return dec((100 - p) / p * Fraction(y, r))
    a, b, c = Fraction(r, 2 * y) - Fraction(1, 4), Fraction(r, y), (p - 100) / p
    with ctx():
        disc = dec(b * b - 4 * a * c).sqrt()
        return (disc - dec(b)) / dec(2 * a)


def bill_price_from_investment_rate(i, settle: date, maturity: date,
                                    issue: date | None = None) -> Decimal:
    """Inverse of ``bill_investment_rate``: ``P = 100 / (1 + i r/y)`` up to half a year,
    ``P = 100 / ([1 + (r - y/2) i/y] (1 + i/2))`` beyond."""
    if not settle < maturity:
        raise ValueError(f"settlement {settle} is not before maturity {maturity}")
    rate = exact(i, "investment rate")
    r, y = (maturity - settle).days, investment_rate_year(issue or settle)
    if 2 * r <= y:
        return dec(100 / (1 + rate * Fraction(r, y)))
    return dec(100 / ((1 + (r - Fraction(y, 2)) * rate / y) * (1 + rate / 2)))

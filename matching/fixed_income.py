"""Fixed-income arithmetic in exact decimals: day counts, bills, coupon bonds, settlement.

Formulas (price per 100 of face, y as a decimal rate, f coupon frequency):
- T-bill, money-market yield (ACT/365): ``P = 100 / (1 + y * d / 365)``, d = days to
  maturity from settlement; discount rate (ACT/360): ``P = 100 * (1 - dr * d / 360)``.
- Coupon bond, accrued interest (ACT/ACT ICMA): ``AI = 100 * c / f * days(prev, settle) /
  days(prev, next)``. Coupon dates run back from maturity in steps of 12/f months,
  end-of-month kept.
- Coupon bond, dirty price from yield (street convention, ICMA Rule 803)::

      w = days(settle, next) / days(prev, next)
      P_dirty = sum_{k=1..n} (100 c / f) / (1 + y/f)^(k-1+w) + 100 / (1 + y/f)^(n-1+w)

  with n the coupons left. The same formula is used in the last coupon period.
  Clean = dirty - AI. Yield from price: bisection on the monotone price(y), 200 steps.
- Settlement amount of a fill: ``qty * face * (clean + AI) / 100`` for bills and bonds,
  ``qty * price`` for commodity tokens, computed exactly and rounded **once**, half to even,
  to the cash token's minor unit.
No binary float is used: Decimal with 40 significant digits.
"""
from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

__all__ = [
    "day_count_fraction", "add_months", "coupon_dates", "previous_and_next_coupon",
    "accrued_interest", "bond_dirty_price", "bond_clean_price", "bond_yield",
    "bill_price_from_yield", "bill_yield_from_price", "bill_price_from_discount",
    "bill_discount_from_price", "settlement_amount",
]

HUNDRED = Decimal(100)
PRECISION = 40


def _ctx():
    """A decimal context of PRECISION significant digits for one computation."""
    return localcontext(prec=PRECISION)


def add_months(d: date, months: int, eom: bool = False) -> date:
    """``d`` moved by whole months; ``eom`` keeps month-end dates at month end."""
    m = d.month - 1 + months
    year, month = d.year + m // 12, m % 12 + 1
    last = calendar.monthrange(year, month)[1]
    if eom and d.day == calendar.monthrange(d.year, d.month)[1]:
        return date(year, month, last)
    return date(year, month, min(d.day, last))


def day_count_fraction(start: date, end: date, convention: str,
                       period: tuple[date, date] | None = None, frequency: int = 2) -> Decimal:
    """Year fraction between two dates.

    ACT/365F: days/365. ACT/360: days/360. 30/360 (bond basis, ISDA): 360*(Y2-Y1) +
    30*(M2-M1) + (D2-D1) with D1 = min(D1, 30) and D2 = 30 when D2 = 31 and D1 >= 30.
    ACT/ACT ICMA: days / (frequency * days of the coupon ``period`` holding them).
    """
    with _ctx():
        days = Decimal((end - start).days)
        conv = convention.upper()
        if conv in ("ACT/365", "ACT/365F", "ACT/365 FIXED"):
            return days / 365
        if conv == "ACT/360":
            return days / 360
        if conv in ("30/360", "30/360 BOND"):
            d1, d2 = min(start.day, 30), end.day
            if d2 == 31 and d1 >= 30:
                d2 = 30
            return Decimal(360 * (end.year - start.year) + 30 * (end.month - start.month)
                           + (d2 - d1)) / 360
        if conv in ("ACT/ACT", "ACT/ACT ICMA"):
            if period is None:
                raise ValueError("ACT/ACT ICMA needs the coupon period holding the dates")
            return days / (frequency * (period[1] - period[0]).days)
        raise ValueError(f"unknown day-count convention {convention!r}")


def coupon_dates(issue: date, maturity: date, frequency: int) -> list[date]:
    """Coupon dates after ``issue`` up to and including maturity, generated back from it."""
    if frequency not in (1, 2, 4, 12):
        raise ValueError(f"coupon frequency must be 1, 2, 4 or 12, got {frequency}")
    step = 12 // frequency
    out, k = [], 0
    while True:
        d = add_months(maturity, -step * k, eom=True)
        if d <= issue:
            break
        out.append(d)
        k += 1
    return out[::-1]


def previous_and_next_coupon(issue: date, maturity: date, frequency: int,
                             settle: date) -> tuple[date, date]:
    """The coupon period holding ``settle``: previous (or issue) and next coupon date.

    On a coupon date the period that starts there is returned, so accrued interest is 0.
    """
    if not issue <= settle < maturity:
        raise ValueError(f"settlement {settle} is outside the bond's life {issue}..{maturity}")
    dates = coupon_dates(issue, maturity, frequency)
    step = 12 // frequency
    prev = add_months(dates[0], -step, eom=True)   # regular (notional) first period
    for d in dates:
        if settle < d:
            return prev, d
        prev = d
    raise AssertionError("unreachable: settle < maturity")


def accrued_interest(coupon_rate: Decimal, frequency: int, issue: date, maturity: date,
                     settle: date, convention: str = "ACT/ACT ICMA") -> Decimal:
    """Accrued interest per 100 of face at ``settle``; 0 on a coupon date."""
    prev, nxt = previous_and_next_coupon(issue, maturity, frequency, settle)
    start = max(prev, issue)
    with _ctx():
        frac = day_count_fraction(start, settle, convention, (prev, nxt), frequency)
        return HUNDRED * Decimal(coupon_rate) * frac


def bond_dirty_price(y: Decimal, coupon_rate: Decimal, frequency: int, issue: date,
                     maturity: date, settle: date) -> Decimal:
    """Dirty price per 100 from yield ``y`` (street convention; see the module docstring)."""
    prev, nxt = previous_and_next_coupon(issue, maturity, frequency, settle)
    dates = coupon_dates(issue, maturity, frequency)
    n = sum(1 for d in dates if d > settle)
    with _ctx():
        w = Decimal((nxt - settle).days) / Decimal((nxt - prev).days)
        v = 1 / (1 + Decimal(y) / frequency)
        cpn = HUNDRED * Decimal(coupon_rate) / frequency
        pv = sum(cpn * v ** (k - 1 + w) for k in range(1, n + 1))
        return pv + HUNDRED * v ** (n - 1 + w)


def bond_clean_price(y: Decimal, coupon_rate: Decimal, frequency: int, issue: date,
                     maturity: date, settle: date, convention: str = "ACT/ACT ICMA") -> Decimal:
    with _ctx():
        return (bond_dirty_price(y, coupon_rate, frequency, issue, maturity, settle)
                - accrued_interest(coupon_rate, frequency, issue, maturity, settle, convention))


def bond_yield(clean: Decimal, coupon_rate: Decimal, frequency: int, issue: date,
               maturity: date, settle: date, convention: str = "ACT/ACT ICMA") -> Decimal:
    """Yield to maturity from a clean price: Newton steps from the coupon rate, guarded by
    a bisection bracket on [-50%, +200%] (price falls as yield rises). Accurate to 1e-12."""
    lo, hi = Decimal("-0.5"), Decimal("2")
    target = Decimal(clean)

    def excess(y):
        return bond_clean_price(y, coupon_rate, frequency, issue, maturity, settle,
                                convention) - target
    with _ctx():
        if not excess(hi) <= 0 <= excess(lo):
            raise ValueError(f"clean price {clean} has no yield in [-50%, 200%]")
        y, h = Decimal(coupon_rate), Decimal("1e-9")
        for _ in range(100):
            f = excess(y)
            if f > 0:
                lo = y
            else:
                hi = y
            slope = (excess(y + h) - f) / h
            step = f / slope if slope else Decimal(0)
            nxt = y - step
            if not lo < nxt < hi:          # Newton left the bracket: bisect instead
                nxt = (lo + hi) / 2
            if abs(nxt - y) < Decimal("1e-13"):
                return nxt
            y = nxt
        return y


def _bill_days(settle: date, maturity: date) -> int:
    days = (maturity - settle).days
    if days <= 0:
        raise ValueError(f"settlement {settle} is not before maturity {maturity}")
    return days


def bill_price_from_yield(y: Decimal, settle: date, maturity: date) -> Decimal:
    """Money-market yield on ACT/365: ``P = 100 / (1 + y * d / 365)``."""
    with _ctx():
        return HUNDRED / (1 + Decimal(y) * _bill_days(settle, maturity) / 365)


def bill_yield_from_price(price: Decimal, settle: date, maturity: date) -> Decimal:
    """Inverse of ``bill_price_from_yield``: ``y = (100 / P - 1) * 365 / d``."""
    with _ctx():
        return (HUNDRED / Decimal(price) - 1) * 365 / _bill_days(settle, maturity)


def bill_price_from_discount(dr: Decimal, settle: date, maturity: date) -> Decimal:
    """Bank discount basis on ACT/360: ``P = 100 * (1 - dr * d / 360)``."""
    with _ctx():
        return HUNDRED * (1 - Decimal(dr) * _bill_days(settle, maturity) / 360)


def bill_discount_from_price(price: Decimal, settle: date, maturity: date) -> Decimal:
    with _ctx():
        return (1 - Decimal(price) / HUNDRED) * 360 / _bill_days(settle, maturity)


def settlement_amount(qty_tokens: Decimal, face: Decimal | None, price: Decimal,
                      accrued: Decimal, cash_decimals: int) -> int:
    """Cash of a fill in minor units, rounded once, half to even.

    Bills and bonds (``face`` given, ``price`` per 100): ``qty * face * (price + accrued)
    / 100``. Commodity tokens (``face`` None, ``price`` per token): ``qty * price``.
    """
    with _ctx():
        if face is None:
            exact = Decimal(qty_tokens) * Decimal(price)
        else:
            exact = Decimal(qty_tokens) * Decimal(face) * (Decimal(price) + Decimal(accrued)) / HUNDRED
        minor = exact.scaleb(cash_decimals)
        return int(minor.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def settlement_date(trade_date: date, lag_days: int) -> date:
    """Trade date plus the settlement lag in calendar days (T+0 is the tokenized default)."""
    return trade_date + timedelta(days=lag_days)

"""Fixed-income arithmetic: day counts, T-bills, coupon bonds, and the cash of a fill.

Units: prices per 100 of face, rates as decimal fractions (0.045 is 4.5 %), dates unadjusted.

Exactness. Day-count fractions, coupons, accrued interest and settlement amounts are
exact ``Fraction``s. Prices from yields and yields from prices need non-integer powers, so
they are Decimals of 40 significant digits (a yield is a rate, not money). No binary float
is accepted anywhere (TypeError).

Rounding rule (the only one): the cash of a fill is computed exactly and rounded ONCE,
ROUND_HALF_EVEN, to the cash token's minor unit, on the fill's total
(``qty * face * (clean + accrued) / 100``; ``qty * price`` for a commodity token).
Informational parts (accrued cash) are rounded the same way on their own; the principal
is the total minus the accrued, so the parts always add up to what settles.

Formulas (``f`` coupons a year, ``c`` coupon rate, ``y`` yield, ``d`` days):
- Day counts, year fraction from d1 to d2: ACT/365F ``d/365``; ACT/360 ``d/360``;
  30/360 bond basis (ISDA 2006 4.16(f)) ``(360(Y2-Y1) + 30(M2-M1) + D2-D1)/360`` with
  D1 = min(D1, 30) and D2 = 30 when D2 = 31 and D1 >= 30; ACT/ACT ICMA (ICMA Rule 251)
  ``d / (f * days of the regular coupon period holding the dates)``.
- T-bill, money-market yield on the bill's basis B (365 for ACT/365F, 360 for ACT/360):
  ``P = 100 / (1 + y * d/B)``. Bank discount rate, US style: ``P = 100 * (1 - dr * d/360)``.
- Coupon schedule: generated back from maturity in steps of 12/f months, unadjusted, kept
  at month end when maturity is a month end. An off-cycle issue date gives a SHORT first
  period (never a long one) paying ``100 * c * DCF(issue, first coupon)``; every other
  coupon is ``100 * c / f``.
- Accrued interest: ``AI = 100 * c * DCF(max(prev coupon, issue), settle)``; 0 on a
  coupon date (the period starting there is used).
- Dirty price, street convention (ICMA Rule 803; Excel PRICE for N > 1), ``v = 1/(1+y/f)``,
  ``w = 1 - A/E`` the part of the regular period left (A days accrued, E days in the
  period, both counted 30/360 for a 30/360 bond, actual otherwise)::

      P_dirty = v**w * (sum_k C_k * v**(k-1) + 100 * v**(n-1)),   k = 1..n coupons left

  The SAME compound formula is used in the last coupon period (no money-market switch).
  Clean = dirty - AI. Yield from clean price: Illinois (bracketed regula falsi) on
  [-50 %, 200 %]; price falls strictly as yield rises, so the root is unique.
"""
from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matching.instruments import Instrument

__all__ = [
    "DAY_COUNTS", "canonical_day_count", "day_count_fraction", "add_months",
    "coupon_dates", "previous_and_next_coupon", "coupon_amounts", "accrued_interest",
    "accrued_interest_exact", "bond_dirty_price", "bond_clean_price", "bond_yield",
    "bill_price_from_yield", "bill_yield_from_price", "bill_price_from_discount",
    "bill_discount_from_price", "settlement_amount", "round_half_even", "settlement_date",
    "TradeEconomics", "trade_economics",
]

PRECISION = 40
HUNDRED = Decimal(100)
YIELD_BRACKET = (Decimal("-0.5"), Decimal(2))

#: Canonical day-count names and the spellings accepted for each.
DAY_COUNTS = {
    "ACT/365F": ("ACT/365F", "ACT/365", "ACT/365 FIXED", "A/365F"),
    "ACT/360": ("ACT/360", "A/360"),
    "30/360": ("30/360", "30/360 BOND", "BOND BASIS", "30U/360"),
    "ACT/ACT ICMA": ("ACT/ACT ICMA", "ACT/ACT ISMA", "ACT/ACT", "ACT/ACT BOND"),
}
_ALIASES = {alias: name for name, aliases in DAY_COUNTS.items() for alias in aliases}


def _ctx():
    """A decimal context of PRECISION significant digits, half-even, for one computation."""
    return localcontext(prec=PRECISION, rounding=ROUND_HALF_EVEN)


def _exact(x, what: str = "value") -> Fraction:
    """A Decimal, int, str or Fraction as an exact Fraction; floats and bools refused."""
    if isinstance(x, float) or isinstance(x, bool):
        raise TypeError(f"{what} must be a Decimal, int, decimal string or Fraction, "
                        f"not {type(x).__name__} ({x!r})")
    if isinstance(x, str):
        x = Decimal(x)
    if isinstance(x, Decimal) and not x.is_finite():
        raise ValueError(f"{what} {x} is not finite")
    if not isinstance(x, (Decimal, int, Fraction)):
        raise TypeError(f"{what} must be a Decimal, int, decimal string or Fraction, "
                        f"not {type(x).__name__}")
    return Fraction(x)


def _dec(q: Fraction) -> Decimal:
    """A Fraction as a Decimal of PRECISION digits (exact when it terminates that soon)."""
    with _ctx():
        return Decimal(q.numerator) / Decimal(q.denominator)


def canonical_day_count(convention: str) -> str:
    """The canonical name of a day-count convention; ValueError if unknown."""
    name = _ALIASES.get(" ".join(str(convention).upper().split()))
    if name is None:
        raise ValueError(f"unknown day-count convention {convention!r}; "
                         f"known: {', '.join(DAY_COUNTS)}")
    return name


def add_months(d: date, months: int, eom: bool = False) -> date:
    """``d`` moved by whole months; with ``eom`` a month-end date stays at month end."""
    m = d.month - 1 + months
    year, month = d.year + m // 12, m % 12 + 1
    last = calendar.monthrange(year, month)[1]
    if eom and d.day == calendar.monthrange(d.year, d.month)[1]:
        return date(year, month, last)
    return date(year, month, min(d.day, last))


def _days_30_360(start: date, end: date) -> int:
    """30/360 bond basis day count (ISDA 2006 Section 4.16(f))."""
    d1, d2 = min(start.day, 30), end.day
    if d2 == 31 and d1 >= 30:
        d2 = 30
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def day_count_fraction(start: date, end: date, convention: str,
                       period: tuple[date, date] | None = None, frequency: int = 2) -> Fraction:
    """Exact year fraction from ``start`` to ``end`` (formulas in the module docstring).

    ACT/ACT ICMA needs the regular coupon ``period`` holding both dates and the coupon
    ``frequency``; the other conventions ignore them.
    """
    conv = canonical_day_count(convention)
    if conv == "30/360":
        return Fraction(_days_30_360(start, end), 360)
    days = (end - start).days
    if conv == "ACT/365F":
        return Fraction(days, 365)
    if conv == "ACT/360":
        return Fraction(days, 360)
    if period is None:
        raise ValueError("ACT/ACT ICMA needs the coupon period holding the dates")
    return Fraction(days, frequency * (period[1] - period[0]).days)


# ---------------------------------------------------------------------- coupon schedule
def _check_frequency(frequency: int) -> int:
    if isinstance(frequency, bool) or frequency not in (1, 2, 4, 12):
        raise ValueError(f"coupon frequency must be 1, 2, 4 or 12, got {frequency!r}")
    return 12 // frequency


def coupon_dates(issue: date, maturity: date, frequency: int) -> list[date]:
    """Coupon dates after ``issue`` up to and including maturity, generated back from it."""
    step = _check_frequency(frequency)
    if not issue < maturity:
        raise ValueError(f"issue {issue} must be before maturity {maturity}")
    out, k = [], 0
    while (d := add_months(maturity, -step * k, eom=True)) > issue:
        out.append(d)
        k += 1
    return out[::-1]


def _notional_start(maturity: date, frequency: int, n_coupons: int) -> date:
    """The start of the first coupon period, counted back from maturity like every coupon
    date (ICMA Rule 251: periods run back from maturity, the end-of-month rule applying
    only when maturity is a month end). Stepping back from the first coupon instead would
    roll a non-month-end bond's 28 February to 31 August, after its issue date."""
    return add_months(maturity, -(12 // frequency) * n_coupons, eom=True)


def previous_and_next_coupon(issue: date, maturity: date, frequency: int,
                             settle: date) -> tuple[date, date]:
    """The regular coupon period holding ``settle``: (previous coupon, next coupon).

    In a short first period the previous date is the notional one a full period before
    the first coupon. On a coupon date the period starting there is returned.
    """
    if not issue <= settle < maturity:
        raise ValueError(f"settlement {settle} is outside the bond's life {issue}..{maturity}")
    dates = coupon_dates(issue, maturity, frequency)
    prev = _notional_start(maturity, frequency, len(dates))
    for d in dates:
        if settle < d:
            return prev, d
        prev = d
    raise AssertionError("unreachable: settle < maturity")


def coupon_amounts(coupon_rate, frequency: int, issue: date, maturity: date,
                   convention: str = "ACT/ACT ICMA") -> list[tuple[date, Fraction]]:
    """Every coupon per 100 of face, exact: ``100 c / f``, the short first one pro rata."""
    c = _exact(coupon_rate, "coupon_rate")
    dates = coupon_dates(issue, maturity, frequency)
    out = [(d, 100 * c / frequency) for d in dates]
    notional = _notional_start(maturity, frequency, len(dates))
    if notional < issue:          # short first period
        frac = day_count_fraction(issue, dates[0], convention, (notional, dates[0]), frequency)
        out[0] = (dates[0], 100 * c * frac)
    return out


def accrued_interest_exact(coupon_rate, frequency: int, issue: date, maturity: date,
                           settle: date, convention: str = "ACT/ACT ICMA") -> Fraction:
    """Accrued interest per 100 of face at ``settle``, exact; 0 on a coupon date."""
    prev, nxt = previous_and_next_coupon(issue, maturity, frequency, settle)
    frac = day_count_fraction(max(prev, issue), settle, convention, (prev, nxt), frequency)
    return 100 * _exact(coupon_rate, "coupon_rate") * frac


def accrued_interest(coupon_rate, frequency: int, issue: date, maturity: date,
                     settle: date, convention: str = "ACT/ACT ICMA") -> Decimal:
    """``accrued_interest_exact`` as a 40-digit Decimal (for display and yields)."""
    return _dec(accrued_interest_exact(coupon_rate, frequency, issue, maturity, settle,
                                       convention))


# ---------------------------------------------------------------------- coupon bonds
@dataclass(frozen=True)
class _BondAt:
    """What pricing a bond at one settlement date needs, computed once per solve."""
    flows: tuple[Decimal, ...]   # C_1 .. C_n, redemption added to C_n
    w: Decimal                   # part of the current regular period left
    accrued: Decimal
    frequency: int

    def dirty(self, y) -> Decimal:
        with _ctx():
            v = 1 / (1 + _dec(_exact(y, "yield")) / self.frequency)
            acc = Decimal(0)
            for cf in reversed(self.flows):          # Horner: sum C_k v^(k-1)
                acc = acc * v + cf
            return v ** self.w * acc

    def clean(self, y) -> Decimal:
        with _ctx():
            return self.dirty(y) - self.accrued


def _bond_at(coupon_rate, frequency: int, issue: date, maturity: date, settle: date,
             convention: str) -> _BondAt:
    prev, nxt = previous_and_next_coupon(issue, maturity, frequency, settle)
    flows = [amt for d, amt in coupon_amounts(coupon_rate, frequency, issue, maturity,
                                              convention) if d > settle]
    flows[-1] += 100
    if canonical_day_count(convention) == "30/360":
        w = 1 - Fraction(_days_30_360(prev, settle) * frequency, 360)
    else:
        w = Fraction((nxt - settle).days, (nxt - prev).days)
    accrued = accrued_interest_exact(coupon_rate, frequency, issue, maturity, settle,
                                     convention)
    return _BondAt(tuple(_dec(f) for f in flows), _dec(w), _dec(accrued), frequency)


def bond_dirty_price(y, coupon_rate, frequency: int, issue: date, maturity: date,
                     settle: date, convention: str = "ACT/ACT ICMA") -> Decimal:
    """Dirty price per 100 from yield ``y`` (street convention; module docstring)."""
    return _bond_at(coupon_rate, frequency, issue, maturity, settle, convention).dirty(y)


def bond_clean_price(y, coupon_rate, frequency: int, issue: date, maturity: date,
                     settle: date, convention: str = "ACT/ACT ICMA") -> Decimal:
    """Clean price per 100 from yield ``y``: dirty price minus accrued interest."""
    return _bond_at(coupon_rate, frequency, issue, maturity, settle, convention).clean(y)


def bond_yield(clean, coupon_rate, frequency: int, issue: date, maturity: date,
               settle: date, convention: str = "ACT/ACT ICMA") -> Decimal:
    """Yield to maturity of a clean price, to 1e-24: Illinois method on [-50 %, 200 %].

    ValueError if the price has no yield in that bracket (e.g. 0 or absurdly high).
    """
    bond = _bond_at(coupon_rate, frequency, issue, maturity, settle, convention)
    target = _dec(_exact(clean, "clean price"))
    if target <= 0:
        raise ValueError(f"clean price {clean} must be positive")
    tol = Decimal("1e-24")
    with _ctx():
        a, b = YIELD_BRACKET
        fa, fb = bond.clean(a) - target, bond.clean(b) - target
        if not fa >= 0 >= fb:
            raise ValueError(f"clean price {clean} has no yield in [-50%, 200%]")
        if fa == 0:
            return a
        if fb == 0:
            return b
        last, side = None, 0
        for _ in range(300):
            c = (a * fb - b * fa) / (fb - fa)
            fc = bond.clean(c) - target
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
    return _dec(100 / (1 + _exact(y, "yield") * t))


def bill_yield_from_price(price, settle: date, maturity: date,
                          day_count: str = "ACT/365F") -> Decimal:
    """Inverse of ``bill_price_from_yield``: ``y = (100/P - 1) * B/d``."""
    t = _bill_fraction(settle, maturity, day_count)
    p = _exact(price, "price")
    if p <= 0:
        raise ValueError(f"price {price} must be positive")
    return _dec((100 / p - 1) / t)


def bill_price_from_discount(dr, settle: date, maturity: date) -> Decimal:
    """Bank discount basis, US style, ACT/360: ``P = 100 * (1 - dr * d/360)``."""
    t = _bill_fraction(settle, maturity, "ACT/360")
    return _dec(100 * (1 - _exact(dr, "discount rate") * t))


def bill_discount_from_price(price, settle: date, maturity: date) -> Decimal:
    """Inverse of ``bill_price_from_discount``: ``dr = (1 - P/100) * 360/d``."""
    t = _bill_fraction(settle, maturity, "ACT/360")
    return _dec((1 - _exact(price, "price") / 100) / t)


# ---------------------------------------------------------------------- settlement
def round_half_even(x: Fraction) -> int:
    """The integer nearest ``x``, ties to even (the one rounding of cash)."""
    return round(Fraction(x))


def settlement_amount(qty_tokens, face, price, accrued, cash_decimals: int) -> int:
    """Cash of a fill in minor units: exact, then ONE half-even rounding.

    Bills and bonds (``face`` given, ``price`` and ``accrued`` per 100):
    ``qty * face * (price + accrued) / 100``. Commodity tokens (``face`` None, ``price``
    per token): ``qty * price``. ``accrued`` may be exact (Fraction) or Decimal.
    """
    qty, px = _exact(qty_tokens, "quantity"), _exact(price, "price")
    if face is None:
        exact = qty * px
    else:
        exact = qty * _exact(face, "face") * (px + _exact(accrued, "accrued")) / 100
    return round_half_even(exact * 10 ** cash_decimals)


def settlement_date(trade_date: date, lag_days: int) -> date:
    """Trade date plus the settlement lag in calendar days (T+0 is the tokenized default;
    tokens settle on-chain every day, so no business-day calendar applies)."""
    return trade_date + timedelta(days=lag_days)


# ---------------------------------------------------------------------- trade economics
@dataclass(frozen=True)
class TradeEconomics:
    """What a fill means in money. Cash figures are ints in the cash token's minor units."""
    price: Decimal                    # clean price: per 100 of face, per token for commodity
    qty: Decimal                      # tokens
    accrued_per_100: Decimal | None   # bonds: exact accrued to 12 places; bills 0; commodity None
    accrued_cash: int | None          # the accrued part of the settlement (informational)
    principal_cash: int               # settlement_amount - accrued_cash
    settlement_amount: int            # what the ledger moves: the ONE rounding
    yield_: Decimal | None            # rate to 12 places in the instrument's convention
    settle_date: date


@lru_cache(maxsize=65536)
def instrument_yield(inst: Instrument, price_ticks: int, settle: date) -> Decimal | None:
    """Yield of a price in the instrument's convention, to 12 decimal places (a rate).

    Bills: money-market yield on their day count, or the discount rate when
    ``yield_convention`` is "discount". Bonds: street yield to maturity. None for commodity
    tokens and for a bond price with no yield in [-50 %, 200 %].
    """
    price = inst.ticks_to_price(price_ticks)
    if inst.kind not in ("tbill", "bond"):
        return None
    _, issue, maturity = inst.debt_terms()
    try:
        if inst.kind == "tbill":
            if inst.yield_convention == "discount":
                y = bill_discount_from_price(price, settle, maturity)
            else:
                y = bill_yield_from_price(price, settle, maturity, inst.day_count)
        else:
            y = bond_yield(price, inst.coupon_rate, inst.coupon_frequency, issue, maturity,
                           settle, inst.day_count)
    except ValueError:
        if inst.kind == "bond" and issue <= settle < maturity:
            return None               # a price beyond the yield bracket: no yield to show
        raise
    return y.quantize(Decimal("1e-12"), rounding=ROUND_HALF_EVEN)


def trade_economics(inst: Instrument, price_ticks: int, qty_lots: int,
                    settle: date) -> TradeEconomics:
    """Price, quantity, accrued, cash and yield of a fill of ``qty_lots`` at ``price_ticks``.

    ValueError when a bill or bond settles outside its life (before issue, on or after
    maturity): a matured instrument cannot trade.
    """
    price, qty = inst.ticks_to_price(price_ticks), inst.lots_to_qty(qty_lots)
    minor = 10 ** inst.cash_decimals
    if inst.kind == "commodity":
        amount = settlement_amount(qty, None, price, 0, inst.cash_decimals)
        return TradeEconomics(price, qty, None, None, amount, amount, None, settle)
    face, issue, maturity = inst.debt_terms()
    if not issue <= settle < maturity:
        raise ValueError(f"settlement {settle} is outside {inst.symbol}'s life "
                         f"{issue}..{maturity}")
    accrued = Fraction(0)
    if inst.kind == "bond":
        accrued = accrued_interest_exact(inst.coupon_rate, inst.coupon_frequency, issue,
                                         maturity, settle, inst.day_count)
    amount = settlement_amount(qty, face, price, accrued, inst.cash_decimals)
    accrued_cash = round_half_even(Fraction(qty) * Fraction(face) * accrued
                                   / 100 * minor)
    return TradeEconomics(
        price=price, qty=qty,
        accrued_per_100=_dec(accrued).quantize(Decimal("1e-12"), rounding=ROUND_HALF_EVEN),
        accrued_cash=accrued_cash, principal_cash=amount - accrued_cash,
        settlement_amount=amount, yield_=instrument_yield(inst, price_ticks, settle),
        settle_date=settle)

"""Fixed-income arithmetic: the public face of day counts, calendars, coupon schedules,
yields, and the cash of a fill.

Units: prices per 100 of face, rates as decimal fractions (0.045 is 4.5 %).

The parts, each citing its sources (docs/fixed-income.md lists every formula):
- ``matching.daycount``: ACT/365F, ACT/360, ACT/365L, ACT/ACT ISDA, ACT/ACT ICMA, 30/360,
  30/360 US, 30E/360, 30E/360 ISDA; the bare "ACT/ACT" is refused as ambiguous.
- ``matching.calendars``: business-day calendars as TOML data, T+n, date rolling.
- ``matching.coupons``: schedules with short and long first coupons, odd last periods and
  the end-of-month rule; coupon amounts and accrued interest.
- ``matching.yields``: bond price/yield (compound, or simple in the last period) and
  T-bill yields (money market, discount, US investment rate).

Exactness. Day-count fractions, coupons, accrued interest and settlement amounts are
exact ``Fraction``s. Prices from yields and yields from prices are Decimals of 40
significant digits. No binary float is accepted anywhere (TypeError).

Rounding rule: the cash of a fill is computed exactly and rounded ONCE to the cash
token's minor unit, on the fill's total (``qty * face * (clean + accrued) / 100``;
``qty * price`` for a commodity token), by the instrument's rounding mode: ``half_even``
(the default), ``half_up`` ("normal rounding", 31 CFR 356 App. B) or ``truncate`` (toward
zero, as App. B I.B.3 truncates Ref CPI interpolations). Informational parts
(accrued cash) are rounded the same way on their own; the principal is the total minus
the accrued, so the parts always add up to what settles.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from functools import lru_cache
from itertools import pairwise
from typing import TYPE_CHECKING

from matching.calendars import add_business_days
from matching.coupons import (
    accrual_fraction,
    add_months,
    bond,
    bond_of,
    coupon_schedule,
    max_coupon_per_100,
    period_at,
    schedule,
)
from matching.daycount import DAY_COUNTS, canonical_day_count, day_count_fraction
from matching.exact import PRECISION, ctx, dec, exact
from matching.yields import (
    _bond_at,
    bill_discount_from_price,
    bill_investment_rate,
    bill_price_from_discount,
    bill_price_from_investment_rate,
    bill_price_from_yield,
    bill_yield_from_price,
    bond_clean_price,
    bond_dirty_price,
    bond_yield,
    solve_yield,
)

if TYPE_CHECKING:
    from matching.instruments import Instrument

__all__ = [
    "DAY_COUNTS", "canonical_day_count", "day_count_fraction", "add_months",
    "coupon_dates", "previous_and_next_coupon", "coupon_amounts", "accrued_interest",
    "accrued_interest_exact", "bond_dirty_price", "bond_clean_price", "bond_yield",
    "bill_price_from_yield", "bill_yield_from_price", "bill_price_from_discount",
    "bill_discount_from_price", "bill_investment_rate", "bill_price_from_investment_rate",
    "settlement_amount", "round_half_even", "round_cash", "ROUNDING_MODES",
    "settlement_date", "TradeEconomics", "trade_economics", "instrument_yield",
    "instrument_accrued", "instrument_clean_price", "interest_to_next_coupon",
    "coupon_cash", "redemption_cash", "coupon_schedule", "bond_of", "max_coupon_per_100",
    "PRECISION",
]

HUNDRED = Decimal(100)
ROUNDING_MODES = ("half_even", "half_up", "truncate")
_ctx, _exact, _dec = ctx, exact, dec


# ---------------------------------------------------------------------- coupon schedule
def coupon_dates(issue: date, maturity: date, frequency: int, **schedule_kw) -> list[date]:
    """Coupon dates after ``issue`` up to and including maturity (matching.coupons)."""
    return [p.end for p in schedule(bond(0, frequency, issue, maturity, **schedule_kw))]


def previous_and_next_coupon(issue: date, maturity: date, frequency: int, settle: date,
                             **schedule_kw) -> tuple[date, date]:
    """The quasi-coupon period holding ``settle``: (previous, next) coupon date.

    In a regular period, its two coupon dates; in a short first period the previous date
    is the notional one a full period before the first coupon; in a long first (or odd
    last) period, the quasi-coupon period of the regular cycle holding ``settle``. On a
    coupon date the period starting there is returned.
    """
    _, p = period_at(bond(0, frequency, issue, maturity, **schedule_kw), settle)
    for qi, qj in pairwise(p.quasi):
        if qi <= settle < qj:
            return qi, qj
    raise AssertionError("unreachable: the quasi dates cover the period")


def coupon_amounts(coupon_rate, frequency: int, issue: date, maturity: date,
                   convention: str = "ACT/ACT ICMA",
                   **schedule_kw) -> list[tuple[date, Fraction]]:
    """Every coupon per 100 of face, exact: ``100 c / f``, an irregular one pro rata."""
    b = bond(coupon_rate, frequency, issue, maturity, convention, **schedule_kw)
    return [(p.end, p.amount) for p in schedule(b)]


def accrued_interest_exact(coupon_rate, frequency: int, issue: date, maturity: date,
                           settle: date, convention: str = "ACT/ACT ICMA",
                           **schedule_kw) -> Fraction:
    """Accrued interest per 100 of face at ``settle``, exact; 0 on a coupon date."""
    b = bond(coupon_rate, frequency, issue, maturity, convention, **schedule_kw)
    _, p = period_at(b, settle)
    return 100 * b.coupon_rate * accrual_fraction(b, p, p.start, settle)


def accrued_interest(coupon_rate, frequency: int, issue: date, maturity: date,
                     settle: date, convention: str = "ACT/ACT ICMA", **schedule_kw) -> Decimal:
    """``accrued_interest_exact`` as a 40-digit Decimal (for display and yields)."""
    return _dec(accrued_interest_exact(coupon_rate, frequency, issue, maturity, settle,
                                       convention, **schedule_kw))


def instrument_accrued(inst: Instrument, settle: date) -> Fraction:
    """Accrued interest per 100 of a bond instrument at ``settle``, exact (its schedule)."""
    b = bond_of(inst)
    _, p = period_at(b, settle)
    return 100 * b.coupon_rate * accrual_fraction(b, p, p.start, settle)


def interest_to_next_coupon(inst: Instrument, settle: date) -> Fraction:
    """Interest per 100 from ``settle`` to the end of its coupon period, exact: what a
    buyer settling ex-coupon is paid back (accrued ``-100 c DCF(settle, next coupon)``)."""
    b = bond_of(inst)
    _, p = period_at(b, settle)
    return 100 * b.coupon_rate * accrual_fraction(b, p, settle, p.end)


def instrument_clean_price(inst: Instrument, y, settle: date) -> Decimal:
    """Clean price per 100 of a bond instrument at yield ``y`` in its own conventions
    (schedule, day count, last-period yield); the inverse of ``instrument_yield``."""
    return _bond_at(bond_of(inst), settle, inst.last_period_yield).clean(y)


def coupon_cash(inst: Instrument, lots: int, amount_per_100) -> int:
    """Cash in minor units of a coupon of ``amount_per_100`` on ``lots`` of ``inst``:
    ``lots x lot x face x amount / 100``, rounded once by the instrument's rounding."""
    face = Fraction(inst.debt_terms()[0])
    exact_cash = (Fraction(lots, 10 ** inst.token_decimals) * face * _exact(amount_per_100)
                  / 100 * 10 ** inst.cash_decimals)
    return round_cash(exact_cash, inst.rounding)


def redemption_cash(inst: Instrument, lots: int) -> int:
    """Face value of ``lots`` of a bill or bond in minor units (the final coupon apart)."""
    return coupon_cash(inst, lots, 100)


# ---------------------------------------------------------------------- settlement
def round_half_even(x: Fraction) -> int:
    """The integer nearest ``x``, ties to even (the default rounding of cash)."""
    return round(Fraction(x))


def round_cash(x, mode: str = "half_even") -> int:
    """``x`` rounded to an integer by ``mode`` (ROUNDING_MODES): ``half_even`` ties to
    even; ``half_up`` ties away from zero ("normal rounding"); ``truncate`` toward zero."""
    q = Fraction(x)
    if mode == "half_even":
        return round(q)
    if mode == "half_up":
        n = (2 * abs(q.numerator) + q.denominator) // (2 * q.denominator)
        return n if q >= 0 else -n
    if mode == "truncate":
        return int(q)
    raise ValueError(f"rounding mode must be one of {ROUNDING_MODES}, got {mode!r}")


def settlement_amount(qty_tokens, face, price, accrued, cash_decimals: int,
                      rounding: str = "half_even") -> int:
    """Cash of a fill in minor units: exact, then ONE rounding by ``rounding``.

    Bills and bonds (``face`` given, ``price`` and ``accrued`` per 100):
    ``qty * face * (price + accrued) / 100``. Commodity tokens (``face`` None, ``price``
    per token): ``qty * price``. ``accrued`` may be exact (Fraction) or Decimal.
    """
    qty, px = _exact(qty_tokens, "quantity"), _exact(price, "price")
    if face is None:
        exact = qty * px
    else:
        exact = qty * _exact(face, "face") * (px + _exact(accrued, "accrued")) / 100
    return round_cash(exact * 10 ** cash_decimals, rounding)


def settlement_date(trade_date: date, lag_days: int, calendar: str | None = None) -> date:
    """T+n: the trade date plus ``lag_days`` business days of ``calendar`` (None: every day
    is one, tokens settling on-chain; T+0 on a holiday settles the next business day)."""
    return add_business_days(trade_date, lag_days, calendar)


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

    Bills: money-market yield on their day count, the discount rate when
    ``yield_convention`` is "discount", the US investment rate when "investment_rate".
    Bonds: street yield to maturity (compound, or simple in the last period per
    ``last_period_yield``). None for commodity tokens and for a bond price with no yield
    in [-50 %, 200 %].
    """
    price = inst.ticks_to_price(price_ticks)
    if inst.kind not in ("tbill", "bond"):
        return None
    _, issue, maturity = inst.debt_terms()
    try:
        if inst.kind == "tbill":
            if inst.yield_convention == "discount":
                y = bill_discount_from_price(price, settle, maturity)
            elif inst.yield_convention == "investment_rate":
                y = bill_investment_rate(price, settle, maturity)
            else:
                y = bill_yield_from_price(price, settle, maturity, inst.day_count)
        else:
            at = _bond_at(bond_of(inst), settle, inst.last_period_yield)
            y = solve_yield(at, price)
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
        amount = settlement_amount(qty, None, price, 0, inst.cash_decimals, inst.rounding)
        return TradeEconomics(price, qty, None, None, amount, amount, None, settle)
    face, issue, maturity = inst.debt_terms()
    if not issue <= settle < maturity:
        raise ValueError(f"settlement {settle} is outside {inst.symbol}'s life "
                         f"{issue}..{maturity}")
    accrued = Fraction(0)
    if inst.kind == "bond":
        accrued = instrument_accrued(inst, settle)
    rounding = inst.rounding
    amount = settlement_amount(qty, face, price, accrued, inst.cash_decimals, rounding)
    accrued_cash = round_cash(Fraction(qty) * Fraction(face) * accrued / 100 * minor,
                              rounding)
    return TradeEconomics(
        price=price, qty=qty,
        accrued_per_100=_dec(accrued).quantize(Decimal("1e-12"), rounding=ROUND_HALF_EVEN),
        accrued_cash=accrued_cash, principal_cash=amount - accrued_cash,
        settlement_amount=amount, yield_=instrument_yield(inst, price_ticks, settle),
        settle_date=settle)

"""What a fill means in money: decimal price and quantity, accrued interest, cash, yield.

The engine asks two things of an instrument's economics: the decimals of each fill it
reports, and the worst-case cash a buy order must reserve. Fills at the same price and
settlement date repeat, so their yield (a bisection for bonds) is cached.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal, localcontext
from fractions import Fraction

from matching import fixed_income as fi
from matching.instruments import Instrument

__all__ = ["Economics", "FillEconomics"]

NS = 1_000_000_000


@dataclass(frozen=True)
class FillEconomics:
    price: str                 # clean price, decimal
    qty: str                   # tokens, decimal
    accrued_per_100: str | None
    accrued_cash: str | None   # cash of the accrued part of this fill
    settlement_cash: str       # cash of the fill, decimal in the cash token
    settlement_amount: int     # the same in minor units: what the ledger moves
    yield_pct: str | None      # the fill's yield in percent (bills and bonds)
    settle_date: date


def trade_date(now_ns: int) -> date:
    return datetime.fromtimestamp(now_ns // NS, tz=timezone.utc).date()


class Economics:
    """Money arithmetic of one instrument, on top of matching.fixed_income.

    Both questions the engine asks per order are linear in the quantity, so each is kept
    as an exact integer ratio and answered with integer arithmetic: no Decimal context,
    no Fraction on the hot path, and the same single rounding as fixed_income.
    """

    def __init__(self, inst: Instrument):
        self.inst = inst
        self.debt = inst.kind in ("tbill", "bond")
        # Worst-case cash per lot at ``t`` ticks is (A*t + B) / D minor units, exactly.
        tick = Fraction(inst.tick_size)
        scale = Fraction(10 ** inst.cash_decimals, 10 ** inst.token_decimals)
        if self.debt:
            full_coupon = Fraction(0)
            if inst.kind == "bond":
                full_coupon = 100 * Fraction(inst.coupon_rate) / inst.coupon_frequency
                if "ICMA" not in inst.day_count.upper():
                    full_coupon = full_coupon * 32 / 30
            per_tick = Fraction(inst.face_value) * tick / 100 * scale
            fixed = Fraction(inst.face_value) * full_coupon / 100 * scale
        else:
            per_tick, fixed = tick * scale, Fraction(0)
        den = per_tick.denominator * fixed.denominator
        self._wc = (per_tick.numerator * (den // per_tick.denominator),
                    fixed.numerator * (den // fixed.denominator), den)
        self._fills: dict[tuple[int, date], tuple] = {}
        self._avg_exp = Decimal(1).scaleb(inst.tick_size.as_tuple().exponent - 6)

    def yield_pct(self, ticks: int, settle: date) -> str | None:
        """Yield in percent to 4 decimals (cached in fixed_income.instrument_yield)."""
        try:
            y = fi.instrument_yield(self.inst, ticks, settle)
        except ValueError:
            return None
        return None if y is None else str((y * 100).quantize(Decimal("0.0001")))

    def _fill_terms(self, ticks: int, settle: date) -> tuple:
        """What every fill at ``ticks`` settling on ``settle`` shares, computed once:
        decimal strings, and cash and accrued per lot as exact integer ratios."""
        key = (ticks, settle)
        terms = self._fills.get(key)
        if terms is None:
            i = self.inst
            one = fi.trade_economics(i, ticks, 1, settle)       # raises outside the life
            scale = Fraction(10 ** i.cash_decimals, 10 ** i.token_decimals)
            price = Fraction(i.ticks_to_price(ticks))
            if self.debt:
                accrued = fi.accrued_interest_exact(
                    i.coupon_rate, i.coupon_frequency, i.issue_date, i.maturity, settle,
                    i.day_count) if i.kind == "bond" else Fraction(0)
                face = Fraction(i.face_value)
                cash = face * (price + accrued) / 100 * scale
                acc = face * accrued / 100 * scale
            else:
                cash, acc = price * scale, None
            terms = (str(one.price),
                     str(one.accrued_per_100) if one.accrued_per_100 is not None else None,
                     cash, acc,
                     None if one.yield_ is None else str((one.yield_ * 100).quantize(
                         Decimal("0.0001"))))
            if len(self._fills) > 65536:
                self._fills.clear()
            self._fills[key] = terms
        return terms

    def of_fill(self, ticks: int, lots: int, now_ns: int) -> FillEconomics:
        """The decimals and cash of one fill; equal to fixed_income.trade_economics."""
        i = self.inst
        settle = fi.settlement_date(trade_date(now_ns), i.settlement_lag)
        price, acc100, cash, acc, yld = self._fill_terms(ticks, settle)
        amount = _half_even(lots * cash.numerator, cash.denominator)
        return FillEconomics(
            price=price, qty=str(i.lots_to_qty(lots)), accrued_per_100=acc100,
            accrued_cash=(None if acc is None else str(Decimal(_half_even(
                lots * acc.numerator, acc.denominator)).scaleb(-i.cash_decimals))),
            settlement_cash=str(Decimal(amount).scaleb(-i.cash_decimals)),
            settlement_amount=amount, yield_pct=yld, settle_date=settle)

    def worst_case_cash(self, ticks: int, lots: int) -> int:
        """Cash a buy of ``lots`` at ``ticks`` or better can ever need, in minor units.

        Price at the limit, accrued at its ceiling over the order's life (a full coupon on
        ACT/ACT ICMA; 32/30 of one on the other day counts, whose periods can run long),
        plus half a minor unit per lot: that covers the half-even rounding of every fill
        the order could have, so a reservation never falls short of a settlement.
        Exactly ceil(lots * ((A*ticks + B)/D + 1/2)).
        """
        a, b, d = self._wc
        return -(-(lots * (2 * (a * ticks + b) + d)) // (2 * d))

    def avg_px(self, cum_value_ticks: int, cum_lots: int) -> str:
        """FIX AvgPx: the quantity-weighted fill price, to 6 decimals beyond the tick."""
        # 'f' keeps it a plain decimal: normalize() alone would print 100 as "1E+2".
        with localcontext() as ctx:
            ctx.prec = 40
            avg = self.inst.tick_size * Decimal(cum_value_ticks) / Decimal(cum_lots)
            return format(avg.quantize(self._avg_exp).normalize(), "f")


def _half_even(num: int, den: int) -> int:
    """num/den rounded to the nearest integer, ties to even (den > 0)."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q % 2):
        q += 1
    return q

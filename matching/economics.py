"""What a fill means in money: decimal price and quantity, accrued interest, cash, yield.

The engine asks two things of an instrument's economics: the decimals of each fill it
reports, and the worst-case cash a buy order must reserve. Fills at the same price and
settlement date repeat, so their yield (a bisection for bonds) is cached.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_CEILING, Decimal, localcontext

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
    """Money arithmetic of one instrument, on top of matching.fixed_income."""

    def __init__(self, inst: Instrument):
        self.inst = inst
        self.debt = inst.kind in ("tbill", "bond")
        self._minor = Decimal(1).scaleb(inst.cash_decimals)
        self._exp = Decimal(1).scaleb(-inst.cash_decimals)

    def _yield(self, ticks: int, settle: date) -> str | None:
        """Yield in percent to 4 decimals (cached in fixed_income.instrument_yield)."""
        try:
            y = fi.instrument_yield(self.inst, ticks, settle)
        except ValueError:
            return None
        return None if y is None else str((y * 100).quantize(Decimal("0.0001")))

    def of_fill(self, ticks: int, lots: int, now_ns: int) -> FillEconomics:
        i = self.inst
        settle = fi.settlement_date(trade_date(now_ns), i.settlement_lag)
        te = fi.trade_economics(i, ticks, lots, settle)
        return FillEconomics(
            price=str(te.price), qty=str(te.qty),
            accrued_per_100=str(te.accrued_per_100) if te.accrued_per_100 is not None else None,
            accrued_cash=(str(Decimal(te.accrued_cash).scaleb(-i.cash_decimals))
                          if te.accrued_cash is not None else None),
            settlement_cash=str(Decimal(te.settlement_amount).scaleb(-i.cash_decimals)),
            settlement_amount=te.settlement_amount,
            yield_pct=None if te.yield_ is None else str((te.yield_ * 100).quantize(
                Decimal("0.0001"))),
            settle_date=settle)

    def worst_case_cash(self, ticks: int, lots: int) -> int:
        """Cash a buy of ``lots`` at ``ticks`` or better can ever need, in minor units.

        Price at the limit, accrued at its ceiling over the order's life (a full coupon on
        ACT/ACT ICMA; 32/30 of one on the other day counts, whose periods can run long),
        plus half a minor unit per lot: that covers the half-even rounding of every fill
        the order could have, so a reservation never falls short of a settlement.
        """
        i = self.inst
        with localcontext() as ctx:
            ctx.prec = 40
            qty = i.lots_to_qty(lots)
            price = i.ticks_to_price(ticks)
            if self.debt:
                full_coupon = Decimal(0)
                if i.kind == "bond":
                    full_coupon = 100 * i.coupon_rate / i.coupon_frequency
                    if "ICMA" not in i.day_count.upper():
                        full_coupon = full_coupon * 32 / 30
                exact = qty * i.face_value * (price + full_coupon) / 100
            else:
                exact = qty * price
            minor = exact * self._minor + Decimal(lots) / 2
            return int(minor.to_integral_value(rounding=ROUND_CEILING))

    def avg_px(self, cum_value_ticks: int, cum_lots: int) -> str:
        """FIX AvgPx: the quantity-weighted fill price, to 6 decimals beyond the tick."""
        with localcontext() as ctx:
            ctx.prec = 40
            avg = self.inst.tick_size * Decimal(cum_value_ticks) / Decimal(cum_lots)
            exp = self.inst.tick_size.as_tuple().exponent - 6
            return str(avg.quantize(Decimal(1).scaleb(exp)).normalize())

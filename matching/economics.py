"""What a fill means in money: decimal price and quantity, accrued interest, cash, yield.

The engine asks two things of an instrument's economics: the decimals of each fill it
reports, and the worst-case cash a buy order must reserve. Fills at the same price and
settlement date repeat, so their yield (a bisection for bonds) is cached.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_CEILING, Decimal, localcontext
from functools import lru_cache

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
        self._yield = lru_cache(maxsize=4096)(self._yield_pct)
        self._accrued = lru_cache(maxsize=64)(self._accrued_per_100)
        # Worst case per lot, in exact minor units, before the price term: see worst_case_cash.
        self._minor = Decimal(1).scaleb(inst.cash_decimals)

    def _accrued_per_100(self, settle: date) -> Decimal:
        i = self.inst
        if i.kind != "bond":
            return Decimal(0)
        return fi.accrued_interest(i.coupon_rate, i.coupon_frequency, i.issue_date, i.maturity,
                                   settle, i.day_count)

    def _yield_pct(self, ticks: int, settle: date) -> str | None:
        i = self.inst
        price = i.ticks_to_price(ticks)
        try:
            if i.kind == "tbill":
                y = fi.bill_yield_from_price(price, settle, i.maturity)
            elif i.kind == "bond":
                y = fi.bond_yield(price, i.coupon_rate, i.coupon_frequency, i.issue_date,
                                  i.maturity, settle, i.day_count)
            else:
                return None
        except (ValueError, ArithmeticError):
            return None
        return str((y * 100).quantize(Decimal("0.0001")))

    def of_fill(self, ticks: int, lots: int, now_ns: int) -> FillEconomics:
        i = self.inst
        settle = fi.settlement_date(trade_date(now_ns), i.settlement_lag)
        price, qty = i.ticks_to_price(ticks), i.lots_to_qty(lots)
        accrued = self._accrued(settle) if self.debt else Decimal(0)
        amount = fi.settlement_amount(qty, i.face_value, price, accrued, i.cash_decimals)
        acc_cash = None
        if self.debt:
            with localcontext() as ctx:
                ctx.prec = 40
                acc_exact = qty * i.face_value * accrued / 100
            acc_cash = str(acc_exact.quantize(Decimal(1).scaleb(-i.cash_decimals)))
        return FillEconomics(
            price=str(price), qty=str(qty),
            accrued_per_100=str(accrued.quantize(Decimal("1e-10"))) if self.debt else None,
            accrued_cash=acc_cash,
            settlement_cash=str(Decimal(amount).scaleb(-i.cash_decimals)),
            settlement_amount=amount, yield_pct=self._yield(ticks, settle),
            settle_date=settle)

    def worst_case_cash(self, ticks: int, lots: int) -> int:
        """Cash a buy of ``lots`` at ``ticks`` or better can ever need, in minor units.

        Price at the limit, accrued at a full coupon period (its ceiling over the order's
        life), plus half a minor unit per lot: that covers the half-even rounding of every
        fill the order could have, so a reservation never falls short of a settlement.
        """
        i = self.inst
        with localcontext() as ctx:
            ctx.prec = 40
            qty = i.lots_to_qty(lots)
            price = i.ticks_to_price(ticks)
            if self.debt:
                full_coupon = (100 * i.coupon_rate / i.coupon_frequency
                               if i.kind == "bond" else Decimal(0))
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

"""What a fill means in money: decimal price and quantity, accrued interest, cash, yield.

The engine asks two things of an instrument's economics: the decimals of each fill it
reports, and the worst-case cash a buy order must reserve. Fills at the same price and
settlement date repeat, so their yield (a bisection for bonds) is cached.
"""
from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, localcontext
from fractions import Fraction

import cython

from matching import fixed_income as fi
from matching.instruments import Instrument
from matching.lifecycle import in_ex_period

__all__ = ["Economics", "FillEconomics"]

NS = 1_000_000_000


@cython.cclass
class FillEconomics:
    """The decimals and cash of one fill: what its two execution reports and its
    settlement carry. Compiled, an extension type with C slots (economics.pxd): one is
    made per fill."""
    __slots__ = ("price", "qty", "accrued_per_100", "accrued_cash", "settlement_cash",
                 "settlement_amount", "yield_pct", "settle_date")

    def __init__(self, price: str, qty: str, accrued_per_100: str | None,
                 accrued_cash: str | None, settlement_cash: str, settlement_amount: int,
                 yield_pct: str | None, settle_date: date):
        self.price = price                      # clean price, decimal
        self.qty = qty                          # tokens, decimal
        self.accrued_per_100 = accrued_per_100
        self.accrued_cash = accrued_cash        # cash of the accrued part of this fill
        self.settlement_cash = settlement_cash  # cash of the fill, decimal in the cash token
        self.settlement_amount = settlement_amount  # the same in minor units: the ledger's
        self.yield_pct = yield_pct              # the fill's yield in percent (debt only)
        self.settle_date = settle_date

    def _row(self) -> tuple:
        return (self.price, self.qty, self.accrued_per_100, self.accrued_cash,
                self.settlement_cash, self.settlement_amount, self.yield_pct,
                self.settle_date)

    def __eq__(self, other):
        return type(other) is type(self) and self._row() == other._row()

    def __repr__(self) -> str:
        return f"FillEconomics{self._row()!r}"


def accrued_per_100(inst: Instrument, settle: date) -> tuple[Fraction, bool]:
    """Accrued interest per 100 of face of a bill or bond settling on ``settle``, exact,
    and whether it is ex-coupon: the one place fills get accrued from. In an ex period
    (``matching.lifecycle.in_ex_period``: after the record date, before the payment date)
    it is negative, ``-100 c DCF(settle, next coupon)``, the cum accrued less the coupon
    the buyer will not receive (UK DMO, "Formulae for calculating gilt prices from
    yields", section 1: ex-dividend accrued interest)."""
    if inst.kind != "bond":
        return Fraction(0), False
    if in_ex_period(inst, settle) is None:
        return fi.instrument_accrued(inst, settle), False
    return -fi.interest_to_next_coupon(inst, settle), True


def _decimal_of(q: Fraction) -> Decimal:
    """``q`` to 12 decimal places, half-even (how fills report accrued per 100)."""
    with localcontext() as ctx:
        ctx.prec = 40
        return (Decimal(q.numerator) / Decimal(q.denominator)).quantize(Decimal("1e-12"))


def trade_date(now_ns: int) -> date:
    return datetime.fromtimestamp(now_ns // NS, tz=UTC).date()


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
                # the largest coupon: a regular one, or a long first one near two
                full_coupon = max(100 * Fraction(inst.coupon_rate) / inst.coupon_frequency,
                                  fi.max_coupon_per_100(fi.bond_of(inst)))
                if "ICMA" not in inst.day_count.upper():
                    full_coupon = full_coupon * 32 / 30
            face = Fraction(inst.debt_terms()[0])
            per_tick = face * tick / 100 * scale
            fixed = face * full_coupon / 100 * scale
        else:
            per_tick, fixed = tick * scale, Fraction(0)
        den = per_tick.denominator * fixed.denominator
        self._wc = (per_tick.numerator * (den // per_tick.denominator),
                    fixed.numerator * (den // fixed.denominator), den)
        self._fills: dict[tuple[int, date], tuple] = {}
        # avg_px in integers: the tick is T * 10**E; see _avg_fast.
        sign, digits, exponent = inst.tick_size.as_tuple()
        self._tick_coef = int("".join(map(str, digits))) if digits else 0
        self._tick_exp = exponent if type(exponent) is int else 1
        self._avg_exp = Decimal(1).scaleb(self._tick_exp - 6)
        # The settlement date of the last UTC day seen (a fill's date depends on its day
        # only), and the decimal places of quantities and cash for _fixed.
        self._settle_day: int | None = None
        self._settle: date | None = None
        self._avg_int = sign == 0 and self._tick_coef > 0 and self._tick_exp <= 0
        self._token_places = inst.token_decimals
        self._cash_places = inst.cash_decimals
        self._rounding = inst.rounding           # half_even takes the integer fast path

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
            acc100 = str(one.accrued_per_100) if one.accrued_per_100 is not None else None
            if self.debt:
                face_value = i.debt_terms()[0]
                accrued, ex = accrued_per_100(i, settle)
                if ex:
                    acc100 = str(_decimal_of(accrued))
                face = Fraction(face_value)
                cash = face * (price + accrued) / 100 * scale
                acc = face * accrued / 100 * scale
            else:
                cash, acc = price * scale, None
            # The ratios as (numerator, denominator) ints: Fraction's properties are Python.
            terms = (str(one.price), acc100,
                     (cash.numerator, cash.denominator),
                     None if acc is None else (acc.numerator, acc.denominator),
                     None if one.yield_ is None else str((one.yield_ * 100).quantize(
                         Decimal("0.0001"))))
            if len(self._fills) > 65536:
                self._fills.clear()
            self._fills[key] = terms
        return terms

    def of_fill(self, ticks: int, lots: int, now_ns: int) -> FillEconomics:
        """The decimals and cash of one fill at ``ticks`` x ``lots`` traded at ``now_ns``;
        equal to fixed_income.trade_economics (the engine's per-fill call)."""
        if type(now_ns) is int:
            day = now_ns // _DAY_NS
            settle = self._settle
            if day != self._settle_day or settle is None:
                settle = fi.settlement_date(trade_date(now_ns), self.inst.settlement_lag,
                                            self.inst.calendar)
                self._settle_day, self._settle = day, settle
        else:
            settle = fi.settlement_date(trade_date(now_ns), self.inst.settlement_lag,
                                        self.inst.calendar)
        price, acc100, cash, acc, yld = self._fill_terms(ticks, settle)
        places = self._cash_places
        if self._rounding == "half_even":
            amount = _half_even(lots * cash[0], cash[1])
            acc_amount = None if acc is None else _half_even(lots * acc[0], acc[1])
        else:
            amount = fi.round_cash(Fraction(lots * cash[0], cash[1]), self._rounding)
            acc_amount = None if acc is None else fi.round_cash(
                Fraction(lots * acc[0], acc[1]), self._rounding)
        return FillEconomics(
            price, _qty_str(self.inst, lots, self._token_places), acc100,
            None if acc_amount is None else _cash_str(acc_amount, places),
            _cash_str(amount, places), amount, yld, settle)

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
        if self._avg_int and type(cum_value_ticks) is int and type(cum_lots) is int \
                and 0 < cum_lots < _AVG_MAX_LOTS and 0 < cum_value_ticks < _AVG_MAX_VALUE:
            return _avg_fast(self._tick_coef * cum_value_ticks, cum_lots, 6 - self._tick_exp)
        # 'f' keeps it a plain decimal: normalize() alone would print 100 as "1E+2".
        with localcontext() as ctx:
            ctx.prec = 40
            avg = self.inst.tick_size * Decimal(cum_value_ticks) / Decimal(cum_lots)
            return format(avg.quantize(self._avg_exp).normalize(), "f")


_DAY_NS = 86_400 * NS
_FIXED_MAX = 10**18


def _fixed(n: int, places: int) -> str:
    """``str`` of the Decimal ``n * 10**-places``, for 0 <= n < 10**18 and 0 < places <= 6
    (plain notation with exactly ``places`` decimals: what Decimal prints there)."""
    s = str(n)
    if len(s) <= places:
        s = "0" * (places + 1 - len(s)) + s
    return s[:-places] + "." + s[-places:]


def _cash_str(amount: int, places: int) -> str:
    """``str(Decimal(amount).scaleb(-places))``."""
    if 0 < places <= 6 and type(amount) is int and 0 <= amount < _FIXED_MAX:
        return _fixed(amount, places)
    return str(Decimal(amount).scaleb(-places))


def _qty_str(inst: Instrument, lots: int, places: int) -> str:
    """``str(inst.lots_to_qty(lots))`` (``places`` is its token_decimals)."""
    if 0 < places <= 6 and type(lots) is int and 0 <= lots < _FIXED_MAX:
        return _fixed(lots, places)
    return str(inst.lots_to_qty(lots))


_AVG_MAX_LOTS = 10**15
_AVG_MAX_VALUE = 10**24


def _avg_fast(value: int, lots: int, places: int) -> str:
    """avg_px's Decimal steps in integers: ``value / lots * 10**(6 - places)`` (value is
    ticks x lots times the tick's coefficient, the tick's exponent is 6 - places) rounded
    half-even to ``places`` decimals (6 beyond the tick), normalized, 'f' format.

    Within avg_px's guards the quotient has far fewer than 40 digits and cannot lie
    within 10**-40 of a tie without being one, so its rounding to 40 digits before the
    quantize changes nothing: one rounding here gives the same digits.
    """
    c = _half_even(value * 1_000_000, lots)
    if c == 0:
        return "0"
    s = str(c)
    if len(s) <= places:
        s = "0" * (places + 1 - len(s)) + s
    frac = s[-places:].rstrip("0")
    return s[:-places] + "." + frac if frac else s[:-places]


def _half_even(num: int, den: int) -> int:
    """num/den rounded to the nearest integer, ties to even (den > 0)."""
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q % 2):
        q += 1
    return q

"""The dates and amounts of a security's life: last trading date, coupons, record dates.

Pure functions of an instrument, no engine state. Every other module gets coupon dates and
amounts through ``coupon_schedule`` and business days through ``business_days_before``:
both sit on the instrument's conventions (``matching.coupons.coupon_schedule``: long and
short first coupons, odd last periods, payment dates rolled on the instrument's calendar;
``matching.calendars``), and cash on its rounding mode (``fixed_income.coupon_cash``).

>>> from matching.instruments import Registry
>>> bd3y = Registry.load_default()["BD3Y"]
>>> first = coupon_schedule(bd3y)[0]
>>> first.payment_date, first.record_date, cash_of(bd3y, 10_000, first.per_100)
(datetime.date(2026, 12, 15), datetime.date(2026, 12, 14), 20000000)
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

from matching import calendars
from matching import coupons as cp
from matching import fixed_income as fi
from matching.instruments import Instrument

__all__ = ["CouponEvent", "coupon_schedule", "business_days_before", "last_trading_date",
           "first_trading_date", "record_cut", "cash_of", "face_per_100", "in_ex_period",
           "day_start_ns", "trade_day", "DAY_NS"]

NS = 1_000_000_000
DAY_NS = 86_400 * NS
_EPOCH = date(1970, 1, 1)


@dataclass(frozen=True)
class CouponEvent:
    """One coupon: when it is paid, whose it is (holders at the close of ``record_date``),
    and how much per 100 of face, exact. ``final``: paid with the redemption."""
    payment_date: date
    record_date: date
    per_100: Fraction
    final: bool


def business_days_before(day: date, n: int, calendar: str | None = None) -> date:
    """The date ``n`` business days of ``calendar`` before ``day`` (``day`` itself for 0;
    None: every day is one, tokens settling on-chain)."""
    return calendars.business_days_before(day, n, calendar)


def coupon_schedule(inst: Instrument) -> list[CouponEvent]:
    """Every coupon of a bond, in date order (none for a bill or a commodity token). The
    record date is ``record_lag`` business days of the instrument's calendar before the
    payment date (US style 0-1, gilts 7); the amount is the schedule's (a short or long
    first coupon pro rata)."""
    if inst.kind != "bond":
        return []
    maturity = inst.debt_terms()[2]
    return [CouponEvent(c.payment_date, c.record_date, Fraction(c.amount_per_100),
                        c.accrual_end == maturity)
            for c in cp.coupon_schedule(inst, inst.record_lag)]


def face_per_100() -> Fraction:
    """What redemption pays per 100 of face (at par)."""
    return Fraction(100)


def cash_of(inst: Instrument, lots: int, per_100: Fraction) -> int:
    """Cash minor units of ``per_100`` (per 100 of face) on ``lots`` of ``inst``, exact then
    rounded once by the instrument's rounding mode (``fixed_income.coupon_cash``)."""
    return fi.coupon_cash(inst, lots, per_100)


def last_trading_date(inst: Instrument) -> date | None:
    """The last day orders are taken: the explicit ``last_trading_date``, else the last
    trade date whose settlement date is before maturity (None: a commodity token)."""
    if inst.maturity is None:
        return None
    if inst.last_trading_date is not None:
        return inst.last_trading_date
    day = inst.maturity - timedelta(days=1)
    while fi.settlement_date(day, inst.settlement_lag, inst.calendar) >= inst.maturity:
        day -= timedelta(days=1)
    return day


def first_trading_date(inst: Instrument) -> date | None:
    """The first trade date whose settlement is on or after the issue date."""
    if inst.issue_date is None:
        return None
    day = inst.issue_date - timedelta(days=inst.settlement_lag)
    while fi.settlement_date(day, inst.settlement_lag, inst.calendar) < inst.issue_date:
        day += timedelta(days=1)
    return day


def record_cut(inst: Instrument, record_date: date) -> date:
    """The day at whose start (00:00 UTC) the holders of record are fixed: the close of
    the last trade date that settles on or before ``record_date``."""
    day = record_date
    while fi.settlement_date(day, inst.settlement_lag, inst.calendar) > record_date:
        day -= timedelta(days=1)
    return day + timedelta(days=1)


def in_ex_period(inst: Instrument, settle: date) -> CouponEvent | None:
    """The coupon a fill settling on ``settle`` is ex of, if any: with an ex period
    (``ex_coupon_days`` > 0), settlements after the record date and before the payment
    date trade without the coupon (the buyer is not entitled to it)."""
    if inst.ex_coupon_days <= 0:
        return None
    for c in coupon_schedule(inst):
        if c.record_date < settle < c.payment_date:
            return c
    return None


def trade_day(now_ns: int) -> date:
    """The UTC date of ``now_ns``."""
    return datetime.fromtimestamp(now_ns // NS, tz=UTC).date()


def day_start_ns(day: date) -> int:
    """00:00 UTC of ``day`` in ns since the epoch."""
    return (day - _EPOCH).days * DAY_NS

"""Reference data of each instrument, retained on ``tokenbook/v1/md/{symbol}/reference``.

What a broker needs to send a valid order and value a fill without the venue's
instruments file: tick, lot, minimum size, face, coupon, dates, day count, calendar,
settlement lag, the fee schedule (``fees``; absent when the instrument charges none), the
call-auction terms (``call_auction``: the volatility bands a fill may not cross, the
call durations) and the trading state now. Every decimal is a string from the
registry's ``Decimal`` or the schedule's exact integers (never a float); dates are ISO.
Published retained on every (re)connect and whenever the trading state changes, with the
engine seq and epoch it is valid at.
"""
from __future__ import annotations

from decimal import Decimal

import msgspec

__all__ = ["ReferenceData", "ReferenceFees", "reference_of", "fees_of"]


class ReferenceFees(msgspec.Struct):
    """An instrument's fee schedule (matching/fees.py) as decimal strings: rates in basis
    points of a fill's settlement cash, minimums in cash per fill; the ``retail_`` tier
    applies to retail accounts. ``account``: the venue's fee account they are paid into."""
    account: int
    maker_bps: str
    taker_bps: str
    minimum: str
    retail_maker_bps: str
    retail_taker_bps: str
    retail_minimum: str


class ReferenceData(msgspec.Struct, omit_defaults=True):
    """One instrument's static data and trading state. ``tick_size``: per 100 of face for
    bills and bonds, per token for a commodity; ``lot_size`` and ``min_order_qty`` in
    tokens; ``coupon_rate`` in percent a year (4.5 is 4.5 %)."""
    symbol: str                      # 55
    isin: str                        # 48 with 22=4
    name: str
    kind: str                        # tbill | bond | commodity
    tick_size: str
    lot_size: str
    min_order_qty: str
    cash_token: str
    day_count: str
    state: str                       # the trading state now (md/{symbol}/state)
    seq: int                         # engine seq it is valid at
    epoch: int
    face_value: str | None = None
    coupon_rate: str | None = None
    coupon_frequency: int | None = None
    issue_date: str | None = None
    maturity: str | None = None
    last_trading_date: str | None = None
    calendar: str | None = None
    settlement_lag: int = 0
    fees: ReferenceFees | None = None    # None: the instrument charges no fees
    call_auction: dict[str, str] | None = None   # matching/call_terms.py, as strings


def _plain(d: Decimal) -> str:
    """A Decimal as a plain decimal string: no exponent, no trailing zeros past the point."""
    text = format(d.normalize(), "f")
    return text


def fees_of(schedule, cash_decimals: int) -> ReferenceFees | None:
    """A ``matching.fees.FeeSchedule`` as reference data (None: no schedule). Rates are
    ints of 1/100 bp and minimums of the cash token's minor unit, so each string is exact."""
    if schedule is None:
        return None
    def bps(rate: int) -> str:
        return _plain(Decimal(rate).scaleb(-2))
    def cash(units: int) -> str:
        return _plain(Decimal(units).scaleb(-cash_decimals))
    inst, retail = schedule.institutional, schedule.retail
    return ReferenceFees(schedule.account, bps(inst.maker), bps(inst.taker),
                         cash(inst.minimum), bps(retail.maker), bps(retail.taker),
                         cash(retail.minimum))


def reference_of(inst, state: str, seq: int, epoch: int) -> ReferenceData:
    """The reference data of ``inst`` (a ``matching.instruments.Instrument``)."""
    debt = inst.face_value is not None
    return ReferenceData(
        inst.symbol, inst.isin, inst.name, inst.kind, _plain(inst.tick_size),
        _plain(Decimal(1).scaleb(-inst.token_decimals)), _plain(inst.min_order_qty),
        inst.cash_token, inst.day_count, state, seq, epoch,
        face_value=_plain(inst.face_value) if debt else None,
        coupon_rate=_plain(inst.coupon_rate * 100) if debt else None,
        coupon_frequency=inst.coupon_frequency if debt else None,
        issue_date=inst.issue_date.isoformat() if inst.issue_date else None,
        maturity=inst.maturity.isoformat() if inst.maturity else None,
        last_trading_date=(inst.last_trading_date.isoformat()
                           if inst.last_trading_date else None),
        calendar=inst.calendar, settlement_lag=inst.settlement_lag,
        fees=fees_of(getattr(inst, "fees", None), inst.cash_decimals),
        call_auction=inst.call_auction.as_strings() if hasattr(inst, "call_auction") else None)

"""Reference data of each instrument, retained on ``tokenbook/v1/md/{symbol}/reference``.

What a broker needs to send a valid order and value a fill without the venue's
instruments file: tick, lot, minimum size, face, coupon, dates, day count, calendar,
settlement lag, and the trading state now. Every decimal is a string from the registry's
``Decimal`` (never a float); dates are ISO. ``fees`` is left for the fee schedule (None
until the venue charges fees). Published retained on every (re)connect and whenever the
trading state changes, with the engine seq and epoch it is valid at.
"""
from __future__ import annotations

from decimal import Decimal

import msgspec

__all__ = ["ReferenceData", "reference_of"]


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
    fees: dict | None = None         # the fee schedule (filled by the fees feature)


def _plain(d: Decimal) -> str:
    """A Decimal as a plain decimal string: no exponent, no trailing zeros past the point."""
    text = format(d.normalize(), "f")
    return text


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
        calendar=inst.calendar, settlement_lag=inst.settlement_lag)

"""Codes shared by the Cython core, the reference book and everything above them.

Values follow FIX where FIX has a field for the concept (Side, OrdType,
TimeInForce), so a broker reading a raw event recognises them. The core
declares the same numbers in ``ext/core.pxd``; ``tests/book/test_codes.py`` pins
that the two agree.
"""
from __future__ import annotations

from enum import IntEnum

__all__ = [
    "Op", "Side", "OrdType", "TimeInForce", "StpMode", "EventType",
    "RejectReason", "CancelReason", "AmendPriority", "MAX_ORDER_QTY",
]

#: Largest quantity (in lots) one order may carry. Keeps every level total and
#: every notional sum far inside int64.
MAX_ORDER_QTY = 10**12


class Op(IntEnum):
    """Command kinds a book accepts."""
    NEW = 1
    CANCEL = 2
    AMEND = 3
    EXPIRE = 4


class Side(IntEnum):
    """FIX tag 54."""
    BUY = 1
    SELL = 2


class OrdType(IntEnum):
    """FIX tag 40."""
    MARKET = 1
    LIMIT = 2


class TimeInForce(IntEnum):
    """FIX tag 59."""
    DAY = 0
    GTC = 1
    IOC = 3
    FOK = 4
    GTD = 6
    GFA = 11    # FIX 59=B, good for auction: rests only in a call (docs/matching-rules.md)


class StpMode(IntEnum):
    """Self-trade prevention, chosen by the incoming (taker) order.

    Applies when the incoming order meets a resting order of the same non-zero
    account. Account 0 means "no account": never a self-trade.
    """
    NONE = 0
    CANCEL_RESTING = 1
    CANCEL_INCOMING = 2
    CANCEL_BOTH = 3
    DECREMENT_AND_CANCEL = 4


class EventType(IntEnum):
    ACCEPTED = 1
    REJECTED = 2
    TRADE = 3
    CANCELLED = 4
    AMENDED = 5
    EXPIRED = 6
    DECREMENTED = 7
    LEVEL = 8


class RejectReason(IntEnum):
    """Why a command changed nothing. 0 is never used."""
    UNKNOWN_ORDER = 1
    DUPLICATE_ORDER_ID = 2
    INVALID_ORDER_ID = 3
    INVALID_QUANTITY = 4
    PRICE_OUT_OF_RANGE = 5
    INVALID_SIDE = 6
    INVALID_ORDER_TYPE = 7
    INVALID_TIME_IN_FORCE = 8
    INVALID_EXPIRE_TIME = 9
    POST_ONLY_WOULD_TAKE = 10
    INVALID_POST_ONLY = 11
    INVALID_MIN_QTY = 12
    INVALID_STP_MODE = 13
    INVALID_ACCOUNT = 14
    UNKNOWN_COMMAND = 15
    BOOK_FULL = 16
    IMMEDIATE_IN_CALL = 17
    POST_ONLY_IN_CALL = 18
    AUCTION_ONLY = 19
    NOT_IN_CALL = 20


class CancelReason(IntEnum):
    """Why (part of) a live order was taken off the book."""
    USER = 1
    IOC_REMAINDER = 2
    FOK_NOT_FILLED = 3
    MIN_QTY_NOT_MET = 4
    MARKET_REMAINDER = 5
    SELF_TRADE = 6
    EXPIRED = 7
    AUCTION_REMAINDER = 8


class AmendPriority(IntEnum):
    """Carried in an AMENDED event's ``reason`` field."""
    KEPT = 1
    LOST = 2

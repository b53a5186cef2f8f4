"""JSON wire codec: strict decoding of order entry, encoding of reports and market data.

``decode_order_message`` never raises: any bytes give either a typed order message or a
``DecodeError`` with a reason and, when the bytes reveal it, the ClOrdID to answer.
"""
from __future__ import annotations

import re
from typing import Optional

import msgspec

from matching.messages import (
    NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest, OrderMessage,
)

__all__ = ["DecodeError", "decode_order_message", "encode", "DepthUpdate", "DepthSnapshot",
           "BBO", "EngineStatus", "MAX_MESSAGE_BYTES"]

MAX_MESSAGE_BYTES = 4096
_DECIMAL = re.compile(r"^[0-9]{1,15}(\.[0-9]{1,12})?$")
_CLORDID = re.compile(r"^[\x21-\x7e]{1,64}$")
_decoder = msgspec.json.Decoder(OrderMessage)
_encoder = msgspec.json.Encoder()


class DecodeError(msgspec.Struct, frozen=True):
    """Why a message is not a valid order message; ``cl_ord_id`` if one could be read."""
    reason: str
    text: str
    cl_ord_id: Optional[str] = None
    symbol: Optional[str] = None


class DepthUpdate(msgspec.Struct):
    """L2 increments of one publishing cycle: ``levels`` are [side, price, qty, count]."""
    symbol: str
    seq: int
    levels: list[tuple[str, str, str, int]]


class DepthSnapshot(msgspec.Struct):
    """The whole L2 book, valid at depth sequence ``seq``."""
    symbol: str
    seq: int
    bids: list[tuple[str, str, int]]
    asks: list[tuple[str, str, int]]


class BBO(msgspec.Struct):
    symbol: str
    seq: int
    bid: Optional[str] = None
    bid_qty: Optional[str] = None
    ask: Optional[str] = None
    ask_qty: Optional[str] = None


class EngineStatus(msgspec.Struct):
    status: str                   # online | offline | not_accepting
    text: str = ""
    time: int = 0


def encode(obj) -> bytes:
    return _encoder.encode(obj)


def _peek(payload: bytes) -> tuple[Optional[str], Optional[str]]:
    """Best-effort ClOrdID and symbol of a payload that failed strict decoding."""
    try:
        raw = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        return None, None
    if not isinstance(raw, dict):
        return None, None
    cl, sym = raw.get("cl_ord_id"), raw.get("symbol")
    cl = cl if isinstance(cl, str) and _CLORDID.match(cl) else None
    sym = sym if isinstance(sym, str) and len(sym) <= 64 else None
    return cl, sym


def decode_order_message(payload: bytes) -> OrderMessage | DecodeError:
    """Strictly decode one order-entry message; never raises."""
    if len(payload) > MAX_MESSAGE_BYTES:
        return DecodeError("MESSAGE_TOO_LARGE", f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        msg = _decoder.decode(payload)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        cl, sym = _peek(payload)
        reason = "INVALID_FIELD" if isinstance(exc, msgspec.ValidationError) else "MALFORMED_JSON"
        return DecodeError(reason, str(exc)[:200], cl, sym)
    except RecursionError:
        return DecodeError("MALFORMED_JSON", "nesting too deep")
    problem = _check(msg)
    if problem:
        return DecodeError("INVALID_FIELD", problem,
                           msg.cl_ord_id if _CLORDID.match(msg.cl_ord_id) else None,
                           msg.symbol if len(msg.symbol) <= 64 else None)
    return msg


def _check(msg) -> str | None:
    """Field rules JSON types cannot say: identifier charset, decimal strings, ranges."""
    if not _CLORDID.match(msg.cl_ord_id):
        return "cl_ord_id must be 1-64 printable ASCII characters"
    if not re.match(r"^[A-Za-z0-9_.-]{1,64}$", msg.symbol):
        return "symbol must be 1-64 letters, digits, '_', '.', '-'"
    if isinstance(msg, (OrderCancelRequest, OrderCancelReplaceRequest)):
        if not _CLORDID.match(msg.orig_cl_ord_id):
            return "orig_cl_ord_id must be 1-64 printable ASCII characters"
    decimals = []
    if isinstance(msg, NewOrderSingle):
        if not 0 < msg.account < 2**63:
            return "account must be a positive 63-bit integer"
        if msg.expire_time is not None and not 0 < msg.expire_time < 2**63:
            return "expire_time must be positive nanoseconds since the epoch"
        decimals = [("qty", msg.qty), ("price", msg.price), ("min_qty", msg.min_qty)]
    elif isinstance(msg, OrderCancelReplaceRequest):
        decimals = [("qty", msg.qty), ("price", msg.price)]
    for name, value in decimals:
        if value is not None and not _DECIMAL.match(value):
            return f"{name} must be a plain decimal string like '99.125', got {value[:40]!r}"
    return None

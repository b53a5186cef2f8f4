"""The engine's view of an order (LiveOrder) and exact wire-decimal <-> tick/lot
conversions per instrument (Conversions), with the wire strings of an order made once.

Compiled (orders.pxd): LiveOrder is an extension type with C fields that the GC does not
track; tens of thousands rest at once.
"""
from __future__ import annotations

from decimal import Decimal

import cython

from matching.constants import OrdType
from matching.economics import _qty_str
from matching.errors import EngineReject, Rejection

__all__ = ["LiveOrder", "Conversions", "id_str", "price_str", "qty_str_of"]

_LIMIT_CODE = int(OrdType.LIMIT)
_INVALID_PRICE = EngineReject.INVALID_PRICE.value
_INVALID_QUANTITY = EngineReject.INVALID_QUANTITY.value


@cython.no_gc
@cython.cclass
class LiveOrder:
    """The engine's view of one order: FIX identity, quantities and reservations.
    Compiled, an extension type with C fields (orders.pxd) that the GC does not track (ints
    and strings only), so resting orders do not lengthen a full GC pass (tracked, 30k of
    them stalled the gateway's loop ~60 ms per pass)."""
    __slots__ = ("order_id", "broker", "cl_ord_id", "account", "symbol", "side", "ord_type",
                 "price", "qty", "tif", "expire_time", "cum_qty", "cum_value", "leaves",
                 "reserved", "status", "orig_cl_ord_id", "id_str", "price_str", "qty_str")

    def __init__(self, order_id, broker, cl_ord_id, account, symbol, side, ord_type, price,
                 qty, tif, expire_time, cum_qty=0, cum_value=0, leaves=0, reserved=0,
                 status="new", orig_cl_ord_id=None):
        self.order_id = order_id
        self.broker = broker
        self.cl_ord_id = cl_ord_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.ord_type = ord_type
        self.price = price            # limit in ticks; for a market order, its band limit
        self.qty = qty                # total order quantity in lots (FIX OrderQty)
        self.tif = tif
        self.expire_time = expire_time
        self.cum_qty = cum_qty
        self.cum_value = cum_value    # sum of fill ticks x lots, for AvgPx (may pass 2**63)
        self.leaves = leaves
        self.reserved = reserved      # cash minor units (buy) or lots (sell) held for it
        self.status = status
        self.orig_cl_ord_id = orig_cl_ord_id
        # Wire strings of order_id, price and qty, made by the first report that needs
        # them (None: not yet, or changed since); derived, so not part of row().
        self.id_str = None
        self.price_str = None
        self.qty_str = None

    def row(self) -> tuple:
        """Every field in declaration order: what snapshots and the state hash keep, and
        what ``LiveOrder(*row)`` rebuilds."""
        return (self.order_id, self.broker, self.cl_ord_id, self.account, self.symbol,
                self.side, self.ord_type, self.price, self.qty, self.tif, self.expire_time,
                self.cum_qty, self.cum_value, self.leaves, self.reserved, self.status,
                self.orig_cl_ord_id)

    def __eq__(self, other):
        return type(other) is type(self) and self.row() == other.row()

    def __repr__(self) -> str:
        return f"LiveOrder{self.row()!r}"


_CONV_LIMIT = 1 << 16


class Conversions:
    """Exact wire-decimal <-> ticks/lots conversions of one instrument, memoised.

    Only successful conversions are cached, keyed by the exact wire string, so a cached
    answer is the instrument's own answer; each cache is cleared when it grows past
    ``LIMIT`` entries, which bounds memory against a flood of distinct values.
    """
    LIMIT = _CONV_LIMIT

    def __init__(self, inst):
        self.inst = inst
        self.ticks: dict[str, int] = {}
        self.lots: dict[str, int] = {}
        self.price_str: dict[int, str] = {}
        self.qty_str: dict[int, str] = {}
        self.avg_str: dict[int, str] = {}
        self.min_order_lots = inst.min_order_lots

    def to_ticks(self, price: str) -> int:
        try:
            ticks = self.inst.price_to_ticks(Decimal(price))
        except (ValueError, ArithmeticError) as exc:
            raise Rejection(_INVALID_PRICE, str(exc)) from None
        if len(self.ticks) >= _CONV_LIMIT:
            self.ticks.clear()
        self.ticks[price] = ticks
        return ticks

    def to_lots(self, qty: str) -> int:
        try:
            lots = self.inst.qty_to_lots(Decimal(qty))
        except (ValueError, ArithmeticError) as exc:
            raise Rejection(_INVALID_QUANTITY, str(exc)) from None
        if len(self.lots) >= _CONV_LIMIT:
            self.lots.clear()
        self.lots[qty] = lots
        return lots

    def price(self, ticks: int) -> str:
        s = self.price_str.get(ticks)
        if s is None:
            if len(self.price_str) >= _CONV_LIMIT:
                self.price_str.clear()
            s = self.price_str[ticks] = str(self.inst.ticks_to_price(ticks))
        return s

    def avg(self, ticks: int) -> str:
        """FIX AvgPx of fills that average to a whole tick (Economics.avg_px's format)."""
        s = self.avg_str.get(ticks)
        if s is None:
            if len(self.avg_str) >= _CONV_LIMIT:
                self.avg_str.clear()
            s = self.avg_str[ticks] = format(self.inst.ticks_to_price(ticks).normalize(), "f")
        return s

    def qty(self, lots: int) -> str:
        s = self.qty_str.get(lots)
        if s is None:
            if len(self.qty_str) >= _CONV_LIMIT:
                self.qty_str.clear()
            s = self.qty_str[lots] = _qty_str(self.inst, lots, self.inst.token_decimals)
        return s


def id_str(o: LiveOrder) -> str:
    """FIX OrderID of ``o`` (its engine id as text), made once."""
    s = o.id_str
    if s is None:
        s = o.id_str = str(o.order_id)
    return s


def price_str(o: LiveOrder, conv: Conversions):
    """The limit price of ``o`` on the wire (None for a market order), made once per price."""
    if o.ord_type != _LIMIT_CODE:
        return None
    s = o.price_str
    if s is None:
        s = o.price_str = conv.price(o.price)
    return s


def qty_str_of(o: LiveOrder, conv: Conversions) -> str:
    """FIX OrderQty of ``o`` on the wire, made once per quantity."""
    s = o.qty_str
    if s is None:
        s = o.qty_str = conv.qty(o.qty)
    return s

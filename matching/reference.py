"""The reference order book: the rules of docs/matching-rules.md in plain Python.

Written to be read, not to be fast. Each side is a SortedDict of price -> Level, each
Level an insertion-ordered dict of order id -> RestingOrder (time priority is dict
order; cancel is O(1)). The Cython core must produce the same events as this book for
any command sequence; tests/test_differential.py holds it to that.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sortedcontainers import SortedDict

from matching.constants import (
    MAX_ORDER_QTY, AmendPriority, CancelReason, EventType, Op, OrdType, RejectReason,
    Side, StpMode, TimeInForce,
)
from matching.records import COMMAND_DTYPE, EVENT_DTYPE, Event

__all__ = ["ReferenceBook"]

_TIFS = {t.value for t in TimeInForce}


@dataclass
class RestingOrder:
    order_id: int
    side: int
    price: int
    leaves: int
    account: int
    stp: int
    post_only: bool


@dataclass
class Level:
    """Orders at one price in time priority, and their open quantity (kept, not summed)."""
    orders: dict[int, RestingOrder] = field(default_factory=dict)
    total: int = 0


class _Rejected(Exception):
    """Internal: a command failed validation with this reason."""

    def __init__(self, reason: RejectReason):
        self.reason = reason


class ReferenceBook:
    """A price-time-priority book on the ladder ``[price_lo, price_lo + n_levels)``."""

    def __init__(self, price_lo: int, n_levels: int, capacity: int = 0):
        if n_levels <= 0:
            raise ValueError(f"n_levels must be positive, got {n_levels}")
        self.price_lo = price_lo
        self.n_levels = n_levels
        self.capacity = capacity
        self.seq = 0
        # Bids keyed by negated price so that index 0 is always the best level.
        self._sides: dict[int, SortedDict] = {Side.BUY: SortedDict(), Side.SELL: SortedDict()}
        self._orders: dict[int, RestingOrder] = {}
        self._pending: list[Event] = []
        self._touched: dict[tuple[int, int], None] = {}

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _key(side: int, price: int) -> int:
        return -price if side == Side.BUY else price

    def _in_ladder(self, price: int) -> bool:
        return self.price_lo <= price < self.price_lo + self.n_levels

    def _emit(self, type_: int, side: int, reason: int, order_id: int, other_id: int,
              price: int, qty: int, leaves: int, other_leaves: int) -> None:
        self.seq += 1
        self._pending.append(Event(self.seq, int(type_), int(side), int(reason), order_id,
                                   other_id, price, qty, leaves, other_leaves))

    def _levels(self, side: int) -> SortedDict:
        return self._sides[side]

    def _best_level(self, side: int) -> tuple[int, Level] | None:
        levels = self._levels(side)
        if not levels:
            return None
        key, level = levels.peekitem(0)
        return (-key if side == Side.BUY else key), level

    def _crosses(self, side: int, price: int) -> bool:
        """Would a limit at ``price`` meet the opposite best?"""
        best = self._best_level(_opposite(side))
        if best is None:
            return False
        return price >= best[0] if side == Side.BUY else price <= best[0]

    def _touch(self, side: int, price: int) -> None:
        self._touched.setdefault((side, price), None)

    def _add_resting(self, order: RestingOrder) -> None:
        """Join the back of the level's queue: time priority."""
        levels = self._levels(order.side)
        key = self._key(order.side, order.price)
        if key not in levels:
            levels[key] = Level()
        levels[key].orders[order.order_id] = order
        levels[key].total += order.leaves
        self._orders[order.order_id] = order
        self._touch(order.side, order.price)

    def _unlink(self, order: RestingOrder) -> None:
        """Leave the level (the id stays known to the caller)."""
        levels = self._levels(order.side)
        key = self._key(order.side, order.price)
        level = levels[key]
        del level.orders[order.order_id]
        level.total -= order.leaves
        if not level.orders:
            del levels[key]
        self._touch(order.side, order.price)

    def _remove(self, order: RestingOrder) -> None:
        self._unlink(order)
        del self._orders[order.order_id]

    def _reduce(self, order: RestingOrder, qty: int) -> None:
        """Take ``qty`` off a resting order's open quantity, in place (priority kept)."""
        order.leaves -= qty
        self._levels(order.side)[self._key(order.side, order.price)].total -= qty
        self._touch(order.side, order.price)

    def _flush_levels(self) -> None:
        for side, price in self._touched:
            level = self._levels(side).get(self._key(side, price))
            total, count = (level.total, len(level.orders)) if level else (0, 0)
            self._emit(EventType.LEVEL, side, 0, 0, 0, price, total, count, 0)
        self._touched.clear()

    # ------------------------------------------------------------------ matching
    def _crossing_orders(self, side: int, limit: int | None):
        """Opposite resting orders in priority order while their price crosses ``limit``.

        Safe while the caller removes the orders it is given: a level that empties leaves
        the sorted dict, so the next one moves into the same index.
        """
        levels = self._levels(_opposite(side))
        i = 0
        while i < len(levels):
            key, level = levels.peekitem(i)
            price = -key if side == Side.SELL else key
            if limit is not None and (price > limit if side == Side.BUY else price < limit):
                return
            yield from list(level.orders.values())
            if key in levels:
                i += 1

    def _fillable(self, side: int, limit: int | None, qty: int, account: int, stp: int) -> int:
        """What matching would fill now, without changing anything (FOK, min_qty)."""
        use_stp = stp != StpMode.NONE and account != 0
        open_qty, filled = qty, 0
        for maker in self._crossing_orders(side, limit):
            if open_qty == 0:
                break
            if use_stp and maker.account == account:
                if stp == StpMode.CANCEL_RESTING:
                    continue
                if stp == StpMode.DECREMENT_AND_CANCEL:
                    open_qty -= min(open_qty, maker.leaves)
                    continue
                break
            q = min(open_qty, maker.leaves)
            filled += q
            open_qty -= q
        return filled

    def _match(self, order_id: int, side: int, limit: int | None, ev_price: int, leaves: int,
               account: int, stp: int) -> int:
        """Trade against the opposite side, best price then oldest first, at maker prices.

        Returns the open quantity left; 0 when filled or cancelled by self-trade prevention.
        """
        use_stp = stp != StpMode.NONE and account != 0
        for maker in self._crossing_orders(side, limit):
            if leaves == 0:
                break
            if use_stp and maker.account == account:
                if stp in (StpMode.CANCEL_RESTING, StpMode.CANCEL_BOTH):
                    self._emit(EventType.CANCELLED, maker.side, CancelReason.SELF_TRADE,
                               maker.order_id, 0, maker.price, maker.leaves, 0, 0)
                    self._remove(maker)
                    if stp == StpMode.CANCEL_BOTH:
                        self._emit(EventType.CANCELLED, side, CancelReason.SELF_TRADE, order_id,
                                   0, ev_price, leaves, 0, 0)
                        return 0
                elif stp == StpMode.CANCEL_INCOMING:
                    self._emit(EventType.CANCELLED, side, CancelReason.SELF_TRADE, order_id, 0,
                               ev_price, leaves, 0, 0)
                    return 0
                else:
                    leaves = self._decrement_both(order_id, side, ev_price, leaves, maker)
                continue
            q = min(leaves, maker.leaves)
            leaves -= q
            self._reduce(maker, q)
            self._emit(EventType.TRADE, side, 0, order_id, maker.order_id, maker.price, q,
                       leaves, maker.leaves)
            if maker.leaves == 0:
                self._remove(maker)
        return leaves

    def _decrement_both(self, order_id: int, side: int, ev_price: int, leaves: int,
                        maker: RestingOrder) -> int:
        """Decrement-and-cancel: both sides lose the smaller open quantity; no trade."""
        d = min(leaves, maker.leaves)
        if d == maker.leaves:
            self._emit(EventType.CANCELLED, maker.side, CancelReason.SELF_TRADE, maker.order_id,
                       0, maker.price, d, 0, 0)
            self._remove(maker)
        else:
            self._reduce(maker, d)
            self._emit(EventType.DECREMENTED, maker.side, CancelReason.SELF_TRADE,
                       maker.order_id, 0, maker.price, d, maker.leaves, 0)
        leaves -= d
        if leaves == 0:
            self._emit(EventType.CANCELLED, side, CancelReason.SELF_TRADE, order_id, 0, ev_price,
                       d, 0, 0)
        else:
            self._emit(EventType.DECREMENTED, side, CancelReason.SELF_TRADE, order_id, 0,
                       ev_price, d, leaves, 0)
        return leaves

    # ------------------------------------------------------------------ commands
    def _validate_new(self, order_id, side, ord_type, tif, stp, post_only, account, price,
                      qty, min_qty, expire_time) -> None:
        """The documented validation order; the first failing rule is the reason."""
        checks = (
            (order_id <= 0, RejectReason.INVALID_ORDER_ID),
            (side not in (Side.BUY, Side.SELL), RejectReason.INVALID_SIDE),
            (ord_type not in (OrdType.LIMIT, OrdType.MARKET), RejectReason.INVALID_ORDER_TYPE),
            (tif not in _TIFS, RejectReason.INVALID_TIME_IN_FORCE),
            (qty <= 0 or qty > MAX_ORDER_QTY, RejectReason.INVALID_QUANTITY),
        )
        for failed, reason in checks:
            if failed:
                raise _Rejected(reason)
        is_limit = ord_type == OrdType.LIMIT
        if is_limit and not self._in_ladder(price):
            raise _Rejected(RejectReason.PRICE_OUT_OF_RANGE)
        if tif == TimeInForce.GTD and expire_time <= 0:
            raise _Rejected(RejectReason.INVALID_EXPIRE_TIME)
        if min_qty < 0 or min_qty > qty:
            raise _Rejected(RejectReason.INVALID_MIN_QTY)
        if stp not in set(StpMode):
            raise _Rejected(RejectReason.INVALID_STP_MODE)
        if account < 0:
            raise _Rejected(RejectReason.INVALID_ACCOUNT)
        if post_only and (not is_limit or tif in (TimeInForce.IOC, TimeInForce.FOK)):
            raise _Rejected(RejectReason.INVALID_POST_ONLY)
        if order_id in self._orders:
            raise _Rejected(RejectReason.DUPLICATE_ORDER_ID)
        if post_only and self._crosses(side, price):
            raise _Rejected(RejectReason.POST_ONLY_WOULD_TAKE)
        may_rest = is_limit and tif not in (TimeInForce.IOC, TimeInForce.FOK)
        if self.capacity and may_rest and len(self._orders) >= self.capacity:
            raise _Rejected(RejectReason.BOOK_FULL)

    def _new(self, order_id, side, ord_type, tif, stp, post_only, account, price, qty,
             min_qty, expire_time) -> None:
        try:
            self._validate_new(order_id, side, ord_type, tif, stp, post_only, account, price,
                               qty, min_qty, expire_time)
        except _Rejected as r:
            self._emit(EventType.REJECTED, side, r.reason, order_id, 0, price, qty, 0, 0)
            return
        is_limit = ord_type == OrdType.LIMIT
        ev_price = price if is_limit else 0
        limit = price if is_limit else None
        self._emit(EventType.ACCEPTED, side, 0, order_id, 0, ev_price, qty, qty, 0)
        if tif == TimeInForce.FOK:
            if self._fillable(side, limit, qty, account, stp) < qty:
                self._emit(EventType.CANCELLED, side, CancelReason.FOK_NOT_FILLED, order_id, 0,
                           ev_price, qty, 0, 0)
                return
        elif min_qty > 0 and self._fillable(side, limit, qty, account, stp) < min_qty:
            self._emit(EventType.CANCELLED, side, CancelReason.MIN_QTY_NOT_MET, order_id, 0,
                       ev_price, qty, 0, 0)
            return
        leaves = self._match(order_id, side, limit, ev_price, qty, account, stp)
        if leaves > 0:
            if not is_limit:
                self._emit(EventType.CANCELLED, side, CancelReason.MARKET_REMAINDER, order_id, 0,
                           0, leaves, 0, 0)
            elif tif in (TimeInForce.IOC, TimeInForce.FOK):
                self._emit(EventType.CANCELLED, side, CancelReason.IOC_REMAINDER, order_id, 0,
                           price, leaves, 0, 0)
            else:
                self._add_resting(RestingOrder(order_id, side, price, leaves, account, stp,
                                               bool(post_only)))
        self._flush_levels()

    def _cancel(self, order_id: int, price: int, qty: int, expire: bool) -> None:
        order = self._orders.get(order_id)
        if order is None:
            self._emit(EventType.REJECTED, 0, RejectReason.UNKNOWN_ORDER, order_id, 0, price, qty,
                       0, 0)
            return
        if expire:
            self._emit(EventType.EXPIRED, order.side, CancelReason.EXPIRED, order_id, 0,
                       order.price, order.leaves, 0, 0)
        else:
            self._emit(EventType.CANCELLED, order.side, CancelReason.USER, order_id, 0,
                       order.price, order.leaves, 0, 0)
        self._remove(order)
        self._flush_levels()

    def _amend(self, order_id: int, price: int, qty: int) -> None:
        order = self._orders.get(order_id)
        reason = None
        if order is None:
            reason = RejectReason.UNKNOWN_ORDER
        elif qty <= 0 or qty > MAX_ORDER_QTY:
            reason = RejectReason.INVALID_QUANTITY
        elif not self._in_ladder(price):
            reason = RejectReason.PRICE_OUT_OF_RANGE
        elif order.post_only and self._crosses(order.side, price):
            reason = RejectReason.POST_ONLY_WOULD_TAKE
        if reason is not None:
            self._emit(EventType.REJECTED, 0, reason, order_id, 0, price, qty, 0, 0)
            return
        assert order is not None
        old = order.leaves
        if price == order.price and qty <= old:
            # Reducing in place keeps the order's place in the queue.
            self._reduce(order, old - qty)
            self._emit(EventType.AMENDED, order.side, AmendPriority.KEPT, order_id, 0, price, qty,
                       qty, old)
        else:
            # A new price or more quantity: out of the level, in again as the taker.
            self._emit(EventType.AMENDED, order.side, AmendPriority.LOST, order_id, 0, price, qty,
                       qty, old)
            self._remove(order)
            leaves = self._match(order_id, order.side, price, price, qty, order.account,
                                 order.stp)
            if leaves > 0:
                order.price, order.leaves = price, leaves
                self._add_resting(order)
        self._flush_levels()

    # ------------------------------------------------------------------ public API
    def submit(self, op: int, order_id: int, side: int, ord_type: int, tif: int, stp: int,
               post_only: bool, account: int, price: int, qty: int, min_qty: int,
               expire_time: int) -> int:
        """Apply any command given field by field; returns how many events it emitted."""
        before = len(self._pending)
        # Codes travel as bytes in the command record: out-of-range values become 255.
        op, side, ord_type, tif, stp = (_code(v) for v in (op, side, ord_type, tif, stp))
        post_only = bool(post_only)
        if op == Op.NEW:
            self._new(order_id, side, ord_type, tif, stp, post_only, account, price, qty,
                      min_qty, expire_time)
        elif op in (Op.CANCEL, Op.EXPIRE):
            self._cancel(order_id, price, qty, expire=op == Op.EXPIRE)
        elif op == Op.AMEND:
            self._amend(order_id, price, qty)
        else:
            self._emit(EventType.REJECTED, side, RejectReason.UNKNOWN_COMMAND, order_id, 0, price,
                       qty, 0, 0)
        return len(self._pending) - before

    def new_order(self, order_id: int, side: int, price: int, qty: int, ord_type: int = 2,
                  tif: int = 1, account: int = 0, stp: int = 0, post_only: bool = False,
                  min_qty: int = 0, expire_time: int = 0) -> int:
        return self.submit(Op.NEW, order_id, side, ord_type, tif, stp, post_only, account,
                           price, qty, min_qty, expire_time)

    def cancel(self, order_id: int) -> int:
        return self.submit(Op.CANCEL, order_id, 0, 0, 0, 0, False, 0, 0, 0, 0, 0)

    def amend(self, order_id: int, price: int, qty: int) -> int:
        return self.submit(Op.AMEND, order_id, 0, 0, 0, 0, False, 0, price, qty, 0, 0)

    def expire(self, order_id: int) -> int:
        return self.submit(Op.EXPIRE, order_id, 0, 0, 0, 0, False, 0, 0, 0, 0, 0)

    def take_events(self) -> list[Event]:
        out, self._pending = self._pending, []
        return out

    def process(self, commands: np.ndarray) -> np.ndarray:
        """Apply a COMMAND_DTYPE array in order; returns the pending events as EVENT_DTYPE."""
        if not isinstance(commands, np.ndarray) or commands.dtype != COMMAND_DTYPE:
            raise TypeError("process() takes a numpy array of matching.records.COMMAND_DTYPE")
        fields = ("op", "order_id", "side", "ord_type", "tif", "stp", "post_only", "account",
                  "price", "qty", "min_qty", "expire_time")
        for row in zip(*(commands[f].tolist() for f in fields)):
            self.submit(*row)
        events = self.take_events()
        out = np.zeros(len(events), dtype=EVENT_DTYPE)
        for name in Event._fields:
            out[name] = [getattr(e, name) for e in events]
        return out

    def best_bid(self) -> int | None:
        best = self._best_level(Side.BUY)
        return best[0] if best else None

    def best_ask(self) -> int | None:
        best = self._best_level(Side.SELL)
        return best[0] if best else None

    def depth(self, side: int, n: int) -> list[tuple[int, int, int]]:
        if side not in (Side.BUY, Side.SELL):
            raise ValueError(f"side must be 1 (buy) or 2 (sell), got {side}")
        out = []
        for key, level in self._levels(side).items()[:n]:
            out.append((-key if side == Side.BUY else key, level.total, len(level.orders)))
        return out

    def order(self, order_id: int) -> tuple[int, int, int, int] | None:
        o = self._orders.get(order_id)
        return None if o is None else (o.side, o.price, o.leaves, o.account)

    def resting_orders(self) -> list[tuple[int, int, int, int, int, int, bool]]:
        return [
            (o.order_id, o.side, o.price, o.leaves, o.account, o.stp, o.post_only)
            for side in (Side.BUY, Side.SELL)
            for level in self._levels(side).values()
            for o in level.orders.values()
        ]

    def __len__(self) -> int:
        return len(self._orders)

    def check(self) -> None:
        """Verify the invariants; raises AssertionError naming the broken one."""
        seen = 0
        for side in (Side.BUY, Side.SELL):
            for key, level in self._levels(side).items():
                price = -key if side == Side.BUY else key
                assert level.orders, f"empty level kept at {side}/{price}"
                assert level.total == sum(o.leaves for o in level.orders.values()), \
                    f"level {side}/{price} total {level.total} is not the sum of its orders"
                for oid, o in level.orders.items():
                    assert o.side == side and o.price == price, f"order {oid} on the wrong level"
                    assert o.leaves > 0, f"order {oid} rests with leaves {o.leaves}"
                    assert self._orders.get(oid) is o, f"id index lost order {oid}"
                    seen += 1
        assert seen == len(self._orders), f"{len(self._orders)} orders indexed, {seen} on levels"
        bid, ask = self.best_bid(), self.best_ask()
        assert bid is None or ask is None or bid < ask, "book is crossed"


def _code(value: int) -> int:
    """An enum field as the core stores it: a byte, 255 for anything out of range."""
    return value if 0 <= value <= 254 else 255


def _opposite(side: int) -> int:
    return Side.SELL if side == Side.BUY else Side.BUY

"""The reference order book: the rules of docs/matching-rules.md in plain Python.

Written to be read, not to be fast. Each side of the book is a SortedDict of price ->
``Level`` (bids keyed by the negated price, so the first key is always the best
price); a level is an insertion-ordered dict of order id -> ``Order``, so dict order is
time priority and a cancel is O(1). The Cython core (``matching._core.Book``) must emit
the same event stream as this book for any command sequence; tests/book/test_differential.py
holds both to it.

How a command runs:

1. ``submit`` checks the Python types, narrows the enum fields to the byte the command
   record carries, and dispatches on ``op``.
2. The command is validated in the documented order; the first broken rule becomes the
   one REJECTED event of the command and nothing else happens.
3. Otherwise its events are emitted as the book changes, and every level it changed is
   remembered (first touch first) for the LEVEL events that close the command.
"""
from __future__ import annotations

import operator
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from sortedcontainers import SortedDict

from matching.auction_price import Indicative, auction_price, leave_call_check, pressure_width
from matching.constants import (
    MAX_ORDER_QTY,
    AmendPriority,
    CancelReason,
    EventType,
    Op,
    OrdType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)
from matching.records import COMMAND_DTYPE, EVENT_DTYPE, Event

__all__ = ["ReferenceBook"]

_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_VALID_TIFS = frozenset(int(t) for t in TimeInForce)
_VALID_STPS = frozenset(int(s) for s in StpMode)
_NEVER_REST_TIFS = frozenset((int(TimeInForce.IOC), int(TimeInForce.FOK)))
_FIELDS = ("op", "order_id", "side", "ord_type", "tif", "stp", "post_only", "account",
           "price", "qty", "min_qty", "expire_time")


# ---------------------------------------------------------------------- value types
class Command(NamedTuple):
    """One command, field for field as in ``COMMAND_DTYPE`` (enum fields already bytes)."""
    op: int
    order_id: int
    side: int
    ord_type: int
    tif: int
    stp: int
    post_only: bool
    account: int
    price: int
    qty: int
    min_qty: int
    expire_time: int


@dataclass(slots=True)
class Order:
    """A live order resting in the book. ``leaves`` is its open quantity (always > 0).
    A ``market`` order rests only in a call, in its side's market queue (price 0)."""
    order_id: int
    side: int
    price: int
    leaves: int
    account: int
    stp: int
    post_only: bool
    tif: int = int(TimeInForce.GTC)
    market: bool = False


@dataclass(slots=True)
class Taker:
    """An order while it matches: a new order, or a resting one re-entered by an amend.

    ``limit`` is None for a MARKET order (it crosses any price); ``event_price`` is what
    its own events carry (the limit price, or 0 for a MARKET order).
    """
    order_id: int
    side: int
    limit: int | None
    event_price: int
    leaves: int
    account: int
    stp: int

    def crosses(self, maker_price: int) -> bool:
        """A buy crosses asks at or below its limit, a sell bids at or above it."""
        if self.limit is None:
            return True
        return maker_price <= self.limit if self.side == Side.BUY else maker_price >= self.limit

    def self_trades_with(self, maker: Order) -> bool:
        """STP applies when the taker has a mode, a real account (not 0), and the maker
        belongs to the same account. The maker's own STP mode plays no part."""
        return self.stp != StpMode.NONE and self.account != 0 and maker.account == self.account


class Level:
    """One price on one side: the FIFO queue of its orders and the aggregate the feed
    publishes (total open quantity and order count)."""

    __slots__ = ("side", "price", "orders", "total", "count")

    def __init__(self, side: int, price: int):
        self.side = side
        self.price = price
        self.orders: dict[int, Order] = {}
        self.total = 0
        self.count = 0

    def append(self, order: Order) -> None:
        """Join the back of the queue: the newest order has the lowest time priority."""
        self.orders[order.order_id] = order
        self.total += order.leaves
        self.count += 1

    def remove(self, order: Order) -> None:
        """Leave the queue, wherever the order stands in it (O(1))."""
        del self.orders[order.order_id]
        self.total -= order.leaves
        self.count -= 1

    def reduce(self, order: Order, qty: int) -> None:
        """Take ``qty`` off an order in place: it keeps its place in the queue."""
        order.leaves -= qty
        self.total -= qty

    def head(self) -> Order:
        """The oldest order: the first to trade at this price."""
        return next(iter(self.orders.values()))


class BookSide:
    """All levels of one side, best price first (highest bid, lowest ask)."""

    __slots__ = ("side", "_levels")

    def __init__(self, side: int):
        self.side = side
        self._levels: SortedDict = SortedDict()

    def _key(self, price: int) -> int:
        return -price if self.side == Side.BUY else price

    def best(self) -> Level | None:
        """The level that trades first, or None when the side is empty."""
        return self._levels.peekitem(0)[1] if self._levels else None

    def get(self, price: int) -> Level | None:
        return self._levels.get(self._key(price))

    def resting(self, price: int) -> Level:
        """The level of a resting order's price (it exists while the order rests)."""
        return self._levels[self._key(price)]

    def level_for(self, price: int) -> Level:
        """The level at ``price``, opened if the price has no orders yet."""
        key = self._key(price)
        level = self._levels.get(key)
        if level is None:
            level = self._levels[key] = Level(self.side, price)
        return level

    def close_if_empty(self, level: Level) -> None:
        """A level with no orders is not kept: it does not exist for depth or best price."""
        if level.count == 0:
            del self._levels[self._key(level.price)]

    def levels(self) -> Iterator[Level]:
        """Levels best first (do not change the side while iterating)."""
        return iter(self._levels.values())

    def keyed_levels(self) -> Iterator[tuple[int, Level]]:
        """``(sort key, level)`` pairs, best first; for ``check``."""
        return iter(self._levels.items())

    def __len__(self) -> int:
        return len(self._levels)


# ---------------------------------------------------------------------- argument types
def _int64(name: str, value) -> int:
    """An integer command field. Floats, strings, None are programming errors
    (TypeError); an integer the int64 record cannot hold raises OverflowError."""
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise OverflowError(f"{name}={value} does not fit in int64")
    return value


def _code(name: str, value) -> int:
    """An enum field as the command record stores it: one byte, with every value outside
    0..254 narrowed to 255 (never a valid code), so e.g. side 257 is not taken for BUY."""
    value = _int64(name, value)
    return value if 0 <= value <= 254 else 255


def _flag(name: str, value) -> bool:
    """A yes/no field: bool, numpy bool or an integer (non-zero is yes)."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    return _int64(name, value) != 0


def _opposite(side: int) -> int:
    return Side.SELL if side == Side.BUY else Side.BUY


# ---------------------------------------------------------------------- the book
class ReferenceBook:
    """A price-time-priority book on the tick ladder ``[price_lo, price_lo + n_levels)``.

    ``capacity`` > 0 makes a fixed-capacity book: a NEW order that may rest is rejected
    with BOOK_FULL once ``capacity`` orders are live. 0 means the book grows as needed.
    """

    def __init__(self, price_lo: int, n_levels: int, capacity: int = 0):
        price_lo = _int64("price_lo", price_lo)
        n_levels = _int64("n_levels", n_levels)
        capacity = _int64("capacity", capacity)
        if n_levels <= 0:
            raise ValueError(f"n_levels must be positive, got {n_levels}")
        if capacity < 0:
            raise ValueError(f"capacity must be 0 (unbounded) or positive, got {capacity}")
        self.price_lo = price_lo
        self.n_levels = n_levels
        self.capacity = capacity
        self.seq = 0                                     # seq of the last event emitted
        self._sides: dict[int, BookSide] = {Side.BUY: BookSide(Side.BUY),
                                            Side.SELL: BookSide(Side.SELL)}
        self._orders: dict[int, Order] = {}              # id index of the live orders
        self._pending: list[Event] = []                  # emitted, not yet taken
        self._touched: dict[tuple[int, int], None] = {}  # (side, price), first touch first
        self.in_call = False                             # call mode: orders rest, no match
        self._market: dict[int, dict[int, Order]] = {Side.BUY: {}, Side.SELL: {}}

    # ================================================================== public commands
    def submit(self, op: int, order_id: int, side: int, ord_type: int, tif: int, stp: int,
               post_only: bool, account: int, price: int, qty: int, min_qty: int,
               expire_time: int) -> int:
        """Apply any command given field by field; returns how many events it emitted."""
        cmd = Command(
            _code("op", op), _int64("order_id", order_id), _code("side", side),
            _code("ord_type", ord_type), _code("tif", tif), _code("stp", stp),
            _flag("post_only", post_only), _int64("account", account),
            _int64("price", price), _int64("qty", qty), _int64("min_qty", min_qty),
            _int64("expire_time", expire_time),
        )
        before = len(self._pending)
        self._apply(cmd)
        return len(self._pending) - before

    def new_order(self, order_id: int, side: int, price: int, qty: int, ord_type: int = 2,
                  tif: int = 1, account: int = 0, stp: int = 0, post_only: bool = False,
                  min_qty: int = 0, expire_time: int = 0) -> int:
        """Enter an order (a LIMIT GTC by default); returns the number of events."""
        return self.submit(Op.NEW, order_id, side, ord_type, tif, stp, post_only, account,
                           price, qty, min_qty, expire_time)

    def cancel(self, order_id: int) -> int:
        """Cancel a live order (CANCELLED, reason USER) or reject UNKNOWN_ORDER."""
        return self.submit(Op.CANCEL, order_id, 0, 0, 0, 0, False, 0, 0, 0, 0, 0)

    def amend(self, order_id: int, price: int, qty: int) -> int:
        """Replace a live order's price and/or open quantity (see the amend rules)."""
        return self.submit(Op.AMEND, order_id, 0, 0, 0, 0, False, 0, price, qty, 0, 0)

    def expire(self, order_id: int) -> int:
        """Take a live order off at the end of its DAY/GTD life (EXPIRED)."""
        return self.submit(Op.EXPIRE, order_id, 0, 0, 0, 0, False, 0, 0, 0, 0, 0)

    def take_events(self) -> list[Event]:
        """Drain the pending events, oldest first."""
        out, self._pending = self._pending, []
        return out

    def take_event_rows(self) -> list[tuple]:
        """``take_events`` as plain tuples in Event's field order (the engine's drain)."""
        return [tuple(e) for e in self.take_events()]

    def process(self, commands: np.ndarray) -> np.ndarray:
        """Apply a COMMAND_DTYPE array in order. Returns every pending event (those of
        earlier per-command calls first) as an EVENT_DTYPE array."""
        if not isinstance(commands, np.ndarray) or commands.dtype != COMMAND_DTYPE:
            raise TypeError("process() takes a numpy array of matching.records.COMMAND_DTYPE")
        columns = [commands[name].tolist() for name in _FIELDS]
        for row in zip(*columns, strict=True):
            # The record already holds int64s and bytes: no narrowing needed.
            self._apply(Command._make((*row[:6], bool(row[6]), *row[7:])))
        return _event_array(self.take_events())

    # ================================================================== call auction
    def set_call(self, on: bool) -> None:
        """Enter (True) or leave (False) call mode. In a call LIMIT and MARKET orders rest
        without matching; ``uncross`` ends it. Leaving without an uncross is allowed only
        while nothing crosses and no market or good-for-auction order rests (ValueError)."""
        if not on:
            if self.in_call:
                leave_call_check(self._indicative(self.price_lo, 0) is not None,
                                 len(self._market[Side.BUY]) + len(self._market[Side.SELL]),
                                 sum(o.tif == TimeInForce.GFA for o in self._orders.values()))
        self.in_call = bool(on)

    def restore_resting(self, order_id: int, side: int, price: int | None, leaves: int,
                        account: int, stp: int, post_only: bool, tif: int) -> None:
        """Put a resting order of a snapshot taken in a call back at the back of its queue
        (price None: a market order) as it was: no validation, no event."""
        if not self.in_call:
            raise ValueError("restore_resting is for a book in a call")
        if order_id in self._orders or side not in (Side.BUY, Side.SELL) or (
                price is not None and not self._on_ladder(price)):
            raise ValueError(f"cannot restore order {order_id}")
        order = Order(order_id, side, 0 if price is None else price, leaves, account, stp,
                      post_only, tif, price is None)
        if order.market:
            self._market[side][order_id] = order
            self._orders[order_id] = order
        else:
            self._rest(order)
            self._touched.clear()

    def indicative(self, reference: int, pressure_limit_pct) -> tuple[int, int, int, int] | None:
        """What an uncross now would do: ``(price, volume, surplus, surplus_side)``, or None
        when nothing can execute. ``reference`` must be on the ladder (ValueError)."""
        reference = _int64("reference", reference)
        width = pressure_width(reference, pressure_limit_pct)
        if not self._on_ladder(reference):
            raise ValueError(f"reference {reference} is off the ladder")
        found = self._indicative(reference, width)
        return None if found is None else tuple(found)   # type: ignore[return-value]

    def uncross(self, reference: int, pressure_limit_pct) -> int:
        """Execute the call at one price (TRADEs), cancel leftover market and
        good-for-auction orders (CANCELLED AUCTION_REMAINDER), return to continuous mode
        (LEVEL events last); returns how many events it emitted."""
        reference = _int64("reference", reference)
        width = pressure_width(reference, pressure_limit_pct)
        before = len(self._pending)
        if not self.in_call:
            self._emit(EventType.REJECTED, 0, RejectReason.NOT_IN_CALL, 0, 0, reference, 0, 0, 0)
        elif not self._on_ladder(reference):
            self._emit(EventType.REJECTED, 0, RejectReason.PRICE_OUT_OF_RANGE, 0, 0, reference,
                       0, 0, 0)
        else:
            found = self._indicative(reference, width)
            if found is not None:
                self._execute_at(found.price, found.volume)
            self._cancel_auction_leftovers()
            self.in_call = False
            self._flush_levels()
        return len(self._pending) - before

    def _indicative(self, reference: int, width: int) -> Indicative | None:
        levels = {side: [(lv.price, lv.total) for lv in self._sides[side].levels()]
                  for side in (Side.BUY, Side.SELL)}
        return auction_price(sum(o.leaves for o in self._market[Side.BUY].values()),
                             sum(o.leaves for o in self._market[Side.SELL].values()),
                             levels[Side.BUY], levels[Side.SELL], reference, width)

    def _next_executable(self, side: int, price: int) -> Order | None:
        """The next order of ``side`` to execute at ``price``: market orders first, then
        limits by price then time (a bid at or above the price, an ask at or below)."""
        market = self._market[side]
        if market:
            return next(iter(market.values()))
        level = self._sides[side].best()
        if level is None or (level.price < price if side == Side.BUY else level.price > price):
            return None
        return level.head()

    def _execute_at(self, price: int, volume: int) -> None:
        """Pair the buy and sell orders off in execution priority until ``volume`` traded,
        each TRADE at ``price`` naming the buy order first. No self-trade prevention."""
        while volume > 0:
            buy = self._next_executable(Side.BUY, price)
            sell = self._next_executable(Side.SELL, price)
            if buy is None or sell is None:
                raise AssertionError("uncross ran out of executable orders")
            qty = min(volume, buy.leaves, sell.leaves)
            for order in (buy, sell):
                if order.market:
                    order.leaves -= qty
                else:
                    self._reduce(order, qty)
            volume -= qty
            self._emit(EventType.TRADE, Side.BUY, 0, buy.order_id, sell.order_id, price, qty,
                       buy.leaves, sell.leaves)
            for order in (buy, sell):
                if order.leaves == 0:
                    self._take_off(order)

    def _cancel_auction_leftovers(self) -> None:
        """Market and good-for-auction orders do not outlive the call: bids then asks, in
        priority order."""
        for side in (Side.BUY, Side.SELL):
            for order in list(self._in_priority(side)):
                if order.market or order.tif == TimeInForce.GFA:
                    self._emit(EventType.CANCELLED, side, CancelReason.AUCTION_REMAINDER,
                               order.order_id, 0, order.price, order.leaves, 0, 0)
                    self._take_off(order)

    def _amend_in_call(self, order: Order, price: int, qty: int) -> None:
        """In a call nothing matches: the same price and no more quantity keeps priority
        (KEPT), anything else goes to the back (LOST). A market order stays one."""
        if order.market:
            price = 0
        old = order.leaves
        if price == order.price and qty <= old:
            if order.market:
                order.leaves = qty
            else:
                self._reduce(order, old - qty)
            self._emit(EventType.AMENDED, order.side, AmendPriority.KEPT, order.order_id, 0,
                       price, qty, qty, old)
            return
        self._emit(EventType.AMENDED, order.side, AmendPriority.LOST, order.order_id, 0,
                   price, qty, qty, old)
        self._take_off(order)
        moved = Order(order.order_id, order.side, price, qty, order.account, order.stp,
                      order.post_only, order.tif, order.market)
        if moved.market:
            self._market[moved.side][moved.order_id] = moved
            self._orders[moved.order_id] = moved
        else:
            self._rest(moved)

    # ================================================================== queries
    def best_bid(self) -> int | None:
        level = self._sides[Side.BUY].best()
        return None if level is None else level.price

    def best_ask(self) -> int | None:
        level = self._sides[Side.SELL].best()
        return None if level is None else level.price

    def depth(self, side: int, n: int) -> list[tuple[int, int, int]]:
        """The best ``n`` levels of a side as ``(price, qty, count)``, best first."""
        side, n = _int64("side", side), _int64("n", n)
        if side not in (Side.BUY, Side.SELL):
            raise ValueError(f"side must be 1 (buy) or 2 (sell), got {side}")
        out: list[tuple[int, int, int]] = []
        for level in self._sides[side].levels():
            if len(out) >= n:
                break
            out.append((level.price, level.total, level.count))
        return out

    def order(self, order_id: int) -> tuple[int, int | None, int, int] | None:
        """``(side, price, leaves, account)`` of a live order (price None: a market order
        in a call), or None."""
        o = self._orders.get(_int64("order_id", order_id))
        if o is None:
            return None
        return (o.side, None if o.market else o.price, o.leaves, o.account)

    def resting_orders(self) -> list[tuple[int, int, int | None, int, int, int, bool]]:
        """Every live order as ``(order_id, side, price, leaves, account, stp, post_only)``:
        bids best first, then asks best first, FIFO within a level; in a call each side's
        market orders (price None) come first, in time order."""
        return [
            (o.order_id, o.side, None if o.market else o.price, o.leaves, o.account, o.stp,
             o.post_only)
            for side in (Side.BUY, Side.SELL)
            for o in self._in_priority(side)
        ]

    def _in_priority(self, side: int) -> Iterator[Order]:
        """The live orders of a side in priority: market orders (only in a call), then
        levels best first, FIFO within a level."""
        yield from self._market[side].values()
        for level in self._sides[side].levels():
            yield from level.orders.values()

    def __len__(self) -> int:
        return len(self._orders)

    def check(self) -> None:
        """Verify every invariant of the book; raises AssertionError naming the broken one.

        - every level is non-empty, on the ladder, keyed by its own price and side;
        - a level's total and count equal the sum of its orders' leaves and their number;
        - every resting order has 0 < leaves <= MAX_ORDER_QTY and sits on its own level;
        - the id index holds exactly the orders on the levels;
        - the book is not crossed: best bid < best ask;
        - no level touch is left over from a finished command.
        """
        on_levels = 0
        for side, book_side in self._sides.items():
            for key, level in book_side.keyed_levels():
                where = f"level {Side(side).name} {level.price}"
                assert level.side == side, f"{where} claims side {level.side}"
                assert key == book_side._key(level.price), f"{where} filed under key {key}"
                assert self._on_ladder(level.price), f"{where} is off the ladder"
                assert level.orders, f"empty {where} kept"
                assert level.count == len(level.orders), (
                    f"{where} count {level.count} != {len(level.orders)} orders")
                total = sum(o.leaves for o in level.orders.values())
                assert level.total == total, f"{where} total {level.total} != {total}"
                for oid, o in level.orders.items():
                    assert o.order_id == oid, f"order {o.order_id} filed as {oid} at {where}"
                    assert o.side == side and o.price == level.price, (
                        f"order {oid} ({o.side}, {o.price}) sits on {where}")
                    assert 0 < o.leaves <= MAX_ORDER_QTY, (
                        f"order {oid} rests with leaves {o.leaves}")
                    assert self._orders.get(oid) is o, f"id index lost order {oid}"
                    on_levels += 1
        for side, queue in self._market.items():
            for oid, o in queue.items():
                assert o.market and o.side == side and o.price == 0, f"market order {oid} misfiled"
                assert 0 < o.leaves <= MAX_ORDER_QTY, f"order {oid} rests with leaves {o.leaves}"
                assert self._orders.get(oid) is o, f"id index lost order {oid}"
                on_levels += 1
            assert self.in_call or not queue, "a market order rests outside a call"
        assert on_levels == len(self._orders), (
            f"{len(self._orders)} orders indexed, {on_levels} on levels")
        if not self.in_call:
            assert not any(o.tif == TimeInForce.GFA for o in self._orders.values()), (
                "a good-for-auction order rests outside a call")
            bid, ask = self.best_bid(), self.best_ask()
            assert bid is None or ask is None or bid < ask, f"book crossed: bid {bid} >= ask {ask}"
        assert not self._touched, f"touched levels left over: {list(self._touched)}"

    # ================================================================== dispatch
    def _apply(self, c: Command) -> None:
        """Run one command; an unknown op is rejected with the command's own side."""
        if c.op == Op.NEW:
            self._on_new(c)
        elif c.op == Op.CANCEL:
            self._on_cancel(c)
        elif c.op == Op.AMEND:
            self._on_amend(c)
        elif c.op == Op.EXPIRE:
            self._on_expire(c)
        else:
            self._reject(c.side, RejectReason.UNKNOWN_COMMAND, c)

    # ================================================================== NEW
    def _on_new(self, c: Command) -> None:
        """Validate; ACCEPTED; the FOK / min_qty entry check; match; then the remainder
        rests (DAY/GTC/GTD LIMIT) or is cancelled (IOC, FOK, MARKET); LEVEL events last."""
        reason = self._new_reject_reason(c)
        if reason is not None:
            self._reject(c.side, reason, c)
            return
        is_limit = c.ord_type == OrdType.LIMIT
        if self.in_call:
            # A call only collects: the order rests whole, without matching.
            self._emit(EventType.ACCEPTED, c.side, 0, c.order_id, 0, c.price if is_limit else 0,
                       c.qty, c.qty, 0)
            order = Order(c.order_id, c.side, c.price if is_limit else 0, c.qty, c.account,
                          c.stp, c.post_only, c.tif, not is_limit)
            if is_limit:
                self._rest(order)
            else:
                self._market[c.side][c.order_id] = order
                self._orders[c.order_id] = order
            self._flush_levels()
            return
        taker = Taker(c.order_id, c.side, c.price if is_limit else None,
                      c.price if is_limit else 0, c.qty, c.account, c.stp)
        self._emit(EventType.ACCEPTED, c.side, 0, c.order_id, 0, taker.event_price, c.qty,
                   c.qty, 0)
        if self._entry_check_passes(taker, c):
            self._match(taker)
            self._handle_remainder(taker, c)
        self._flush_levels()

    def _new_reject_reason(self, c: Command) -> RejectReason | None:
        """The first rule of the documented NEW validation order that ``c`` breaks."""
        is_limit = c.ord_type == OrdType.LIMIT
        if c.order_id <= 0:                                                    # 1
            return RejectReason.INVALID_ORDER_ID
        if c.side not in (Side.BUY, Side.SELL):                                # 2
            return RejectReason.INVALID_SIDE
        if c.ord_type not in (OrdType.LIMIT, OrdType.MARKET):                  # 3
            return RejectReason.INVALID_ORDER_TYPE
        if c.tif not in _VALID_TIFS:                                           # 4
            return RejectReason.INVALID_TIME_IN_FORCE
        if not 0 < c.qty <= MAX_ORDER_QTY:                                     # 5
            return RejectReason.INVALID_QUANTITY
        if is_limit and not self._on_ladder(c.price):                          # 6 (MARKET:
            return RejectReason.PRICE_OUT_OF_RANGE                             #   no price)
        if c.tif == TimeInForce.GTD and c.expire_time <= 0:                    # 7
            return RejectReason.INVALID_EXPIRE_TIME
        if not 0 <= c.min_qty <= c.qty:                                        # 8
            return RejectReason.INVALID_MIN_QTY
        if c.stp not in _VALID_STPS:                                           # 9
            return RejectReason.INVALID_STP_MODE
        if c.account < 0:                                                      # 10
            return RejectReason.INVALID_ACCOUNT
        if c.post_only and (not is_limit or c.tif in _NEVER_REST_TIFS):        # 11
            return RejectReason.INVALID_POST_ONLY
        if self.in_call and (c.tif in _NEVER_REST_TIFS or c.min_qty > 0):     # 12
            return RejectReason.IMMEDIATE_IN_CALL
        if self.in_call and c.post_only:                                       # 13
            return RejectReason.POST_ONLY_IN_CALL
        if not self.in_call and c.tif == TimeInForce.GFA:                     # 14
            return RejectReason.AUCTION_ONLY
        if c.order_id in self._orders:                                         # 15
            return RejectReason.DUPLICATE_ORDER_ID
        if c.post_only and self._would_cross(c.side, c.price):                 # 16
            return RejectReason.POST_ONLY_WOULD_TAKE
        if self._is_full() and (self.in_call or self._may_rest(c)):            # 17
            return RejectReason.BOOK_FULL
        return None

    def _may_rest(self, c: Command) -> bool:
        """Only a LIMIT order with a resting tif (DAY, GTC, GTD) can end up in the book."""
        return c.ord_type == OrdType.LIMIT and c.tif not in _NEVER_REST_TIFS

    def _is_full(self) -> bool:
        return self.capacity > 0 and len(self._orders) >= self.capacity

    def _entry_check_passes(self, taker: Taker, c: Command) -> bool:
        """FOK: the fillable quantity must cover the whole order. Otherwise, a min_qty > 0
        must be covered. A failed check trades nothing and cancels the whole order."""
        if c.tif == TimeInForce.FOK:
            needed, reason = c.qty, CancelReason.FOK_NOT_FILLED
        elif c.min_qty > 0:
            needed, reason = c.min_qty, CancelReason.MIN_QTY_NOT_MET
        else:
            return True
        if self._fillable(taker) >= needed:
            return True
        self._cancel_taker(taker, reason)
        return False

    def _handle_remainder(self, taker: Taker, c: Command) -> None:
        """What is left after matching: a MARKET order never rests (MARKET_REMAINDER,
        whatever its tif), an IOC (or FOK) remainder is cancelled (IOC_REMAINDER), and a
        DAY/GTC/GTD LIMIT remainder rests at the back of its level."""
        if taker.leaves == 0:
            return
        if c.ord_type == OrdType.MARKET:
            self._cancel_taker(taker, CancelReason.MARKET_REMAINDER)
        elif c.tif in _NEVER_REST_TIFS:
            self._cancel_taker(taker, CancelReason.IOC_REMAINDER)
        else:
            self._rest(Order(c.order_id, c.side, c.price, taker.leaves, c.account, c.stp,
                             c.post_only, c.tif))

    # ================================================================== CANCEL / EXPIRE
    def _on_cancel(self, c: Command) -> None:
        """A live order leaves the book: CANCELLED (USER) with its open quantity."""
        order = self._orders.get(c.order_id)
        if order is None:
            self._reject(0, RejectReason.UNKNOWN_ORDER, c)
            return
        self._emit(EventType.CANCELLED, order.side, CancelReason.USER, order.order_id, 0,
                   order.price, order.leaves, 0, 0)
        self._take_off(order)
        self._flush_levels()

    def _on_expire(self, c: Command) -> None:
        """The owner of the clock ends a DAY/GTD order's life: EXPIRED with its open
        quantity. The book keeps no tif, so it expires whatever live order it is told."""
        order = self._orders.get(c.order_id)
        if order is None:
            self._reject(0, RejectReason.UNKNOWN_ORDER, c)
            return
        self._emit(EventType.EXPIRED, order.side, CancelReason.EXPIRED, order.order_id, 0,
                   order.price, order.leaves, 0, 0)
        self._take_off(order)
        self._flush_levels()

    # ================================================================== AMEND
    def _on_amend(self, c: Command) -> None:
        """Same price and no more quantity: reduced in place, time priority KEPT. A new
        price or more quantity: priority LOST, the order re-enters as a taker at the new
        price with the new open quantity (its own stp applies, no FOK/min_qty check) and
        any rest goes to the back of the new level."""
        order = self._orders.get(c.order_id)
        reason = self._amend_reject_reason(order, c)
        if reason is not None:
            self._reject(0, reason, c)
            return
        assert order is not None
        if self.in_call:
            self._amend_in_call(order, c.price, c.qty)
        elif c.price == order.price and c.qty <= order.leaves:
            self._amend_in_place(order, c.qty)
        else:
            self._amend_and_reenter(order, c.price, c.qty)
        self._flush_levels()

    def _amend_reject_reason(self, order: Order | None, c: Command) -> RejectReason | None:
        """The first rule of the documented AMEND validation order that ``c`` breaks."""
        if order is None:
            return RejectReason.UNKNOWN_ORDER
        if not 0 < c.qty <= MAX_ORDER_QTY:
            return RejectReason.INVALID_QUANTITY
        if order.market:                 # in a call: a market order's price is not read
            return None
        if not self._on_ladder(c.price):
            return RejectReason.PRICE_OUT_OF_RANGE
        if self.in_call:                 # a call has no maker or taker: post-only is moot
            return None
        if order.post_only and self._would_cross(order.side, c.price):
            return RejectReason.POST_ONLY_WOULD_TAKE
        return None

    def _amend_in_place(self, order: Order, qty: int) -> None:
        """AMENDED (KEPT). The level counts as touched even if the quantity is unchanged."""
        old = order.leaves
        self._reduce(order, old - qty)
        self._emit(EventType.AMENDED, order.side, AmendPriority.KEPT, order.order_id, 0,
                   order.price, qty, qty, old)

    def _amend_and_reenter(self, order: Order, price: int, qty: int) -> None:
        """AMENDED (LOST); out of the old level; matched as a taker; the rest rests."""
        self._emit(EventType.AMENDED, order.side, AmendPriority.LOST, order.order_id, 0,
                   price, qty, qty, order.leaves)
        self._take_off(order)
        taker = Taker(order.order_id, order.side, price, price, qty, order.account, order.stp)
        self._match(taker)
        if taker.leaves > 0:
            self._rest(Order(order.order_id, order.side, price, taker.leaves, order.account,
                             order.stp, order.post_only, order.tif))

    # ================================================================== matching
    def _match(self, taker: Taker) -> None:
        """Trade while the opposite best price crosses the taker's limit: best price
        first, the oldest order first within a level, each TRADE at the maker's price for
        min(taker leaves, maker leaves). Self-trade prevention may cancel or decrement
        either side instead, or stop matching."""
        opposite = self._sides[_opposite(taker.side)]
        while taker.leaves > 0:
            level = opposite.best()
            if level is None or not taker.crosses(level.price):
                return
            maker = level.head()
            if taker.self_trades_with(maker):
                if not self._prevent_self_trade(taker, maker):
                    return
            else:
                self._trade(taker, maker)

    def _trade(self, taker: Taker, maker: Order) -> None:
        """One fill at the maker's price; a maker with nothing left leaves the book."""
        qty = min(taker.leaves, maker.leaves)
        taker.leaves -= qty
        self._reduce(maker, qty)
        self._emit(EventType.TRADE, taker.side, 0, taker.order_id, maker.order_id,
                   maker.price, qty, taker.leaves, maker.leaves)
        if maker.leaves == 0:
            self._take_off(maker)

    def _prevent_self_trade(self, taker: Taker, maker: Order) -> bool:
        """Apply the taker's STP mode against its own resting order; True if matching
        goes on.

        - CANCEL_RESTING: the resting order is cancelled; go on.
        - CANCEL_INCOMING: the taker's remainder is cancelled; stop.
        - CANCEL_BOTH: the resting order, then the taker's remainder; stop.
        - DECREMENT_AND_CANCEL: both lose d = min(leaves); go on while the taker has some.
        """
        if taker.stp == StpMode.CANCEL_RESTING:
            self._cancel_maker_self_trade(maker)
            return True
        if taker.stp == StpMode.CANCEL_INCOMING:
            self._cancel_taker(taker, CancelReason.SELF_TRADE)
            return False
        if taker.stp == StpMode.CANCEL_BOTH:
            self._cancel_maker_self_trade(maker)
            self._cancel_taker(taker, CancelReason.SELF_TRADE)
            return False
        self._decrement_both(taker, maker)
        return taker.leaves > 0

    def _cancel_maker_self_trade(self, maker: Order) -> None:
        self._emit(EventType.CANCELLED, maker.side, CancelReason.SELF_TRADE, maker.order_id,
                   0, maker.price, maker.leaves, 0, 0)
        self._take_off(maker)

    def _decrement_both(self, taker: Taker, maker: Order) -> None:
        """Decrement and cancel: d = min(taker leaves, maker leaves), no trade. The resting
        order first, then the taker: each is CANCELLED (qty d) if d is all it has left,
        otherwise DECREMENTED (qty d, leaves after) and keeps its priority."""
        d = min(taker.leaves, maker.leaves)
        if d == maker.leaves:
            self._cancel_maker_self_trade(maker)
        else:
            self._reduce(maker, d)
            self._emit(EventType.DECREMENTED, maker.side, CancelReason.SELF_TRADE,
                       maker.order_id, 0, maker.price, d, maker.leaves, 0)
        taker.leaves -= d
        if taker.leaves == 0:
            self._emit(EventType.CANCELLED, taker.side, CancelReason.SELF_TRADE,
                       taker.order_id, 0, taker.event_price, d, 0, 0)
        else:
            self._emit(EventType.DECREMENTED, taker.side, CancelReason.SELF_TRADE,
                       taker.order_id, 0, taker.event_price, d, taker.leaves, 0)

    def _fillable(self, taker: Taker) -> int:
        """What matching would fill now, found by walking the opposite side in priority
        order without changing anything (for FOK and min_qty).

        A same-account resting order under CANCEL_RESTING is skipped; under
        CANCEL_INCOMING or CANCEL_BOTH the walk stops there; under DECREMENT_AND_CANCEL
        the open quantity drops by min(open, its leaves) without counting as filled. The
        walk ends when the open quantity reaches 0.
        """
        open_qty, filled = taker.leaves, 0
        for maker in self._makers_in_priority(taker):
            if open_qty == 0:
                break
            if taker.self_trades_with(maker):
                if taker.stp == StpMode.CANCEL_RESTING:
                    continue
                if taker.stp == StpMode.DECREMENT_AND_CANCEL:
                    open_qty -= min(open_qty, maker.leaves)
                    continue
                break
            qty = min(open_qty, maker.leaves)
            filled += qty
            open_qty -= qty
        return filled

    def _makers_in_priority(self, taker: Taker) -> Iterator[Order]:
        """Resting orders the taker crosses, in matching order (read-only walk)."""
        for level in self._sides[_opposite(taker.side)].levels():
            if not taker.crosses(level.price):
                return
            yield from level.orders.values()

    def _cancel_taker(self, taker: Taker, reason: CancelReason) -> None:
        """The taker's whole remaining quantity is cancelled; nothing of it rests."""
        self._emit(EventType.CANCELLED, taker.side, reason, taker.order_id, 0,
                   taker.event_price, taker.leaves, 0, 0)
        taker.leaves = 0

    # ================================================================== book changes
    def _rest(self, order: Order) -> None:
        """Add an order at the back of its level's queue and to the id index."""
        self._sides[order.side].level_for(order.price).append(order)
        self._orders[order.order_id] = order
        self._touch(order)

    def _take_off(self, order: Order) -> None:
        """Remove an order from its level (closing the level if it empties) and the index;
        a market order from its queue (no level is touched)."""
        if order.market:
            del self._market[order.side][order.order_id]
            del self._orders[order.order_id]
            return
        book_side = self._sides[order.side]
        level = book_side.resting(order.price)
        level.remove(order)
        book_side.close_if_empty(level)
        del self._orders[order.order_id]
        self._touch(order)

    def _reduce(self, order: Order, qty: int) -> None:
        """Lower a resting order's open quantity in place (it keeps its priority)."""
        self._sides[order.side].resting(order.price).reduce(order, qty)
        self._touch(order)

    def _touch(self, order: Order) -> None:
        """Remember the order's level for the closing LEVEL events (first touch wins)."""
        self._touched.setdefault((order.side, order.price), None)

    # ================================================================== helpers
    def _on_ladder(self, price: int) -> bool:
        return self.price_lo <= price < self.price_lo + self.n_levels

    def _would_cross(self, side: int, price: int) -> bool:
        """Would a limit at ``price`` meet the opposite best (at or better)?"""
        best = self._sides[_opposite(side)].best()
        if best is None:
            return False
        return price >= best.price if side == Side.BUY else price <= best.price

    # ================================================================== events
    def _emit(self, type_: int, side: int, reason: int, order_id: int, other_id: int,
              price: int, qty: int, leaves: int, other_leaves: int) -> None:
        """Append one event with the next sequence number (per book, from 1)."""
        self.seq += 1
        self._pending.append(Event(self.seq, int(type_), int(side), int(reason), order_id,
                                   other_id, price, qty, leaves, other_leaves))

    def _reject(self, side: int, reason: RejectReason, c: Command) -> None:
        """REJECTED is the only event of its command: it echoes the command's id, price
        and qty; its side is the command's (0 for CANCEL, AMEND and EXPIRE)."""
        self._emit(EventType.REJECTED, side, reason, c.order_id, 0, c.price, c.qty, 0, 0)

    def _flush_levels(self) -> None:
        """One LEVEL event per level the command changed, in first-touch order, with the
        level's final state (qty 0, count 0: the level is gone)."""
        for side, price in self._touched:
            level = self._sides[side].get(price)
            total, count = (level.total, level.count) if level is not None else (0, 0)
            self._emit(EventType.LEVEL, side, 0, 0, 0, price, total, count, 0)
        self._touched.clear()


def _event_array(events: list[Event]) -> np.ndarray:
    """Event tuples as an EVENT_DTYPE array."""
    out = np.zeros(len(events), dtype=EVENT_DTYPE)
    if events:
        for name, column in zip(Event._fields, zip(*events, strict=True), strict=True):
            out[name] = column
    return out

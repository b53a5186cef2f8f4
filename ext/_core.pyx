# cython: language_level=3
"""The price-time-priority order book, in C structs behind a thin Python face.

Rules: docs/matching-rules.md. Layout: ext/core.pxd. The hot path (do_command and what
it calls) touches no Python object: orders sit in a pool of C structs, each level keeps
an intrusive FIFO, best prices come from a bitmap of non-empty levels, ids are found
through an open-addressing index. Events are appended to a C buffer and leave in
batches (``process``, ``take_events``, ``take_event_array``).
"""
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcpy, memset
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint64_t
from cpython.long cimport PyLong_AsLongLong, PyLong_Check

import numpy as np

from matching.auction_price import leave_call_check, pressure_width
from matching.records import COMMAND_DTYPE, EVENT_DTYPE, Event as PyEvent

cdef int64_t MAX_QTY = 1000000000000          # == matching.constants.MAX_ORDER_QTY
cdef int64_t IDX_BITS = 40                      # touched_list: side << 40 | level index
cdef int64_t IDX_MASK = (1 << 40) - 1
cdef uint64_t FIB = 0x9E3779B97F4A7C15ULL      # Fibonacci hashing multiplier
cdef int32_t INITIAL_POOL = 1024
# The tifs a NEW takes on the continuous path (bit per tif); in a call none does.
cdef uint16_t FAST_TIFS = ((1 << TIF_DAY) | (1 << TIF_GTC) | (1 << TIF_IOC) | (1 << TIF_FOK)
                           | (1 << TIF_GTD))

SIZEOF_ORDER = sizeof(Order)
SIZEOF_LEVEL = sizeof(Level)
SIZEOF_COMMAND = sizeof(Command)
SIZEOF_EVENT = sizeof(Event)
MAX_ORDER_QTY = MAX_QTY

#: The C enum values, by the names matching.constants uses (pinned by
#: tests/book/test_codes.py).
CODES = {
    "Op": {"NEW": OP_NEW, "CANCEL": OP_CANCEL, "AMEND": OP_AMEND, "EXPIRE": OP_EXPIRE},
    "Side": {"BUY": SIDE_BUY, "SELL": SIDE_SELL},
    "OrdType": {"MARKET": ORD_MARKET, "LIMIT": ORD_LIMIT},
    "TimeInForce": {"DAY": TIF_DAY, "GTC": TIF_GTC, "IOC": TIF_IOC, "FOK": TIF_FOK,
                    "GTD": TIF_GTD, "GFA": TIF_GFA},
    "StpMode": {"NONE": STP_NONE, "CANCEL_RESTING": STP_CANCEL_RESTING,
                "CANCEL_INCOMING": STP_CANCEL_INCOMING, "CANCEL_BOTH": STP_CANCEL_BOTH,
                "DECREMENT_AND_CANCEL": STP_DECREMENT_AND_CANCEL},
    "EventType": {"ACCEPTED": EV_ACCEPTED, "REJECTED": EV_REJECTED, "TRADE": EV_TRADE,
                  "CANCELLED": EV_CANCELLED, "AMENDED": EV_AMENDED, "EXPIRED": EV_EXPIRED,
                  "DECREMENTED": EV_DECREMENTED, "LEVEL": EV_LEVEL},
    "RejectReason": {
        "UNKNOWN_ORDER": REJ_UNKNOWN_ORDER, "DUPLICATE_ORDER_ID": REJ_DUPLICATE_ORDER_ID,
        "INVALID_ORDER_ID": REJ_INVALID_ORDER_ID, "INVALID_QUANTITY": REJ_INVALID_QUANTITY,
        "PRICE_OUT_OF_RANGE": REJ_PRICE_OUT_OF_RANGE, "INVALID_SIDE": REJ_INVALID_SIDE,
        "INVALID_ORDER_TYPE": REJ_INVALID_ORDER_TYPE,
        "INVALID_TIME_IN_FORCE": REJ_INVALID_TIME_IN_FORCE,
        "INVALID_EXPIRE_TIME": REJ_INVALID_EXPIRE_TIME,
        "POST_ONLY_WOULD_TAKE": REJ_POST_ONLY_WOULD_TAKE,
        "INVALID_POST_ONLY": REJ_INVALID_POST_ONLY, "INVALID_MIN_QTY": REJ_INVALID_MIN_QTY,
        "INVALID_STP_MODE": REJ_INVALID_STP_MODE, "INVALID_ACCOUNT": REJ_INVALID_ACCOUNT,
        "UNKNOWN_COMMAND": REJ_UNKNOWN_COMMAND, "BOOK_FULL": REJ_BOOK_FULL,
        "IMMEDIATE_IN_CALL": REJ_IMMEDIATE_IN_CALL, "POST_ONLY_IN_CALL": REJ_POST_ONLY_IN_CALL,
        "AUCTION_ONLY": REJ_AUCTION_ONLY, "NOT_IN_CALL": REJ_NOT_IN_CALL},
    "CancelReason": {
        "USER": CXL_USER, "IOC_REMAINDER": CXL_IOC_REMAINDER,
        "FOK_NOT_FILLED": CXL_FOK_NOT_FILLED, "MIN_QTY_NOT_MET": CXL_MIN_QTY_NOT_MET,
        "MARKET_REMAINDER": CXL_MARKET_REMAINDER, "SELF_TRADE": CXL_SELF_TRADE,
        "EXPIRED": CXL_EXPIRED, "AUCTION_REMAINDER": CXL_AUCTION_REMAINDER},
    "AmendPriority": {"KEPT": AMEND_KEPT, "LOST": AMEND_LOST},
}


cdef inline uint8_t as_code(int64_t v) noexcept:
    """Narrow an enum argument to a byte; out-of-range values map to 255, never valid."""
    return <uint8_t>v if 0 <= v <= 254 else 255


cdef inline int64_t i64(object value, str name) except? -1:
    """A Python int as int64; a float (never ticks or lots), str or None is a TypeError."""
    if not PyLong_Check(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    return PyLong_AsLongLong(value)          # OverflowError outside int64


cdef inline int64_t min64(int64_t a, int64_t b) noexcept:
    return a if a < b else b


cdef inline int valid_tif(int tif) noexcept:
    return (tif == TIF_DAY or tif == TIF_GTC or tif == TIF_IOC or tif == TIF_FOK
            or tif == TIF_GTD or tif == TIF_GFA)


cdef class Book:
    """One instrument's order book on the tick ladder ``[price_lo, price_lo + n_levels)``.

    Commands cost O(1) plus O(1) per fill, except when the best level empties: the next
    best is found by scanning the level bitmap, 64 levels per word.

    >>> b = Book(price_lo=0, n_levels=1000)
    >>> b.new_order(1, 2, 101, 5); b.new_order(2, 1, 101, 3)
    2
    4
    >>> [e.type for e in b.take_events()]
    [1, 8, 1, 3, 8]
    """

    def __cinit__(self, int64_t price_lo, int64_t n_levels, int64_t capacity=0):
        cdef int side
        cdef int64_t i
        if n_levels <= 0 or n_levels >= (1 << 31):
            raise ValueError(f"n_levels must be in 1..2**31-1, got {n_levels}")
        if capacity < 0 or capacity >= (1 << 30):
            raise ValueError(f"capacity must be in 0..2**30-1, got {capacity}")
        self.price_lo = price_lo
        self.n_levels = n_levels
        self.n_words = (n_levels + 63) >> 6
        self.capacity = capacity
        self.levels[0] = NULL
        self.bitmap[0] = NULL
        for side in (SIDE_BUY, SIDE_SELL):
            self.levels[side] = <Level*>calloc(n_levels, sizeof(Level))
            self.bitmap[side] = <uint64_t*>calloc(self.n_words, sizeof(uint64_t))
            if self.levels[side] == NULL or self.bitmap[side] == NULL:
                raise MemoryError()
            for i in range(n_levels):
                self.levels[side][i].head = -1
                self.levels[side][i].tail = -1
            self.best[side] = -1
        self.pool_cap = <int32_t>capacity if capacity > 0 else INITIAL_POOL
        self.pool = <Order*>malloc(self.pool_cap * sizeof(Order))
        self.pool_used = 0
        self.free_head = -1
        self.idmap = NULL
        self.idmap_mask = 0
        self.live = 0
        self.ev_cap = 1024
        self.events = <Event*>malloc(self.ev_cap * sizeof(Event))
        self.n_events = 0
        self.touched_cap = 256
        self.touched_list = <int64_t*>malloc(self.touched_cap * sizeof(int64_t))
        self.n_touched = 0
        self.epoch = 0
        self.seq = 0
        self.in_call = 0
        self.fast_tifs = FAST_TIFS
        memset(self.mkt, 0, sizeof(self.mkt))
        for side in (SIDE_BUY, SIDE_SELL):
            self.mkt[side].head = -1
            self.mkt[side].tail = -1
        if self.pool == NULL or self.events == NULL or self.touched_list == NULL:
            raise MemoryError()
        self.alloc_idmap(2048)

    def __dealloc__(self):
        cdef int side
        for side in (SIDE_BUY, SIDE_SELL):
            free(self.levels[side])
            free(self.bitmap[side])
        free(self.pool)
        free(self.idmap)
        free(self.events)
        free(self.touched_list)

    # ------------------------------------------------------------------ id index
    cdef int alloc_idmap(self, uint64_t cap) except -1:
        cdef int bits = 0
        while (<uint64_t>1 << bits) < cap:
            bits += 1
        self.idmap = <int32_t*>malloc(cap * sizeof(int32_t))
        if self.idmap == NULL:
            raise MemoryError()
        memset(self.idmap, 0xff, cap * sizeof(int32_t))   # all -1
        self.idmap_mask = cap - 1
        self.idmap_shift = 64 - bits
        return 0

    cdef uint64_t home(self, int64_t order_id) noexcept:
        return ((<uint64_t>order_id) * FIB) >> self.idmap_shift

    cdef int32_t find(self, int64_t order_id) noexcept:
        cdef uint64_t i = self.home(order_id)
        cdef int32_t s
        while True:
            s = self.idmap[i]
            if s < 0:
                return -1
            if self.pool[s].order_id == order_id:
                return s
            i = (i + 1) & self.idmap_mask

    cdef int map_insert(self, int32_t slot) except -1:
        cdef uint64_t i
        # Load factor at most 1/2 keeps linear probes short.
        if <uint64_t>(self.live + 1) * 2 > self.idmap_mask + 1:
            self.map_grow()
        i = self.home(self.pool[slot].order_id)
        while self.idmap[i] >= 0:
            i = (i + 1) & self.idmap_mask
        self.idmap[i] = slot
        self.live += 1
        return 0

    cdef int map_grow(self) except -1:
        cdef int32_t* old = self.idmap
        cdef uint64_t old_cap = self.idmap_mask + 1
        cdef uint64_t j, i
        cdef int32_t s
        self.alloc_idmap(old_cap * 2)
        for j in range(old_cap):
            s = old[j]
            if s >= 0:
                i = self.home(self.pool[s].order_id)
                while self.idmap[i] >= 0:
                    i = (i + 1) & self.idmap_mask
                self.idmap[i] = s
        free(old)
        return 0

    cdef void map_erase(self, int64_t order_id) noexcept:
        # Backward-shift deletion: no tombstones, so probes stay short after many cancels.
        cdef uint64_t mask = self.idmap_mask
        cdef uint64_t i = self.home(order_id)
        cdef uint64_t j, k
        cdef int32_t s
        while True:
            s = self.idmap[i]
            if s < 0:
                return
            if self.pool[s].order_id == order_id:
                break
            i = (i + 1) & mask
        j = i
        while True:
            j = (j + 1) & mask
            s = self.idmap[j]
            if s < 0:
                break
            k = self.home(self.pool[s].order_id)
            # The entry at j may move back to i if i lies on its probe path k..j.
            if ((j - k) & mask) >= ((j - i) & mask):
                self.idmap[i] = s
                i = j
        self.idmap[i] = -1
        self.live -= 1

    # ------------------------------------------------------------------ pool
    cdef int32_t alloc_slot(self) except -2:
        cdef int32_t s
        cdef Order* grown
        cdef int64_t new_cap
        if self.free_head >= 0:
            s = self.free_head
            self.free_head = self.pool[s].next
            return s
        if self.pool_used == self.pool_cap:
            if self.capacity > 0:
                return -1
            new_cap = <int64_t>self.pool_cap * 2
            if new_cap >= (1 << 31):
                raise MemoryError("order pool exhausted")
            grown = <Order*>realloc(self.pool, new_cap * sizeof(Order))
            if grown == NULL:
                raise MemoryError()
            self.pool = grown
            self.pool_cap = <int32_t>new_cap
        s = self.pool_used
        self.pool_used += 1
        return s

    cdef void free_slot(self, int32_t slot) noexcept:
        self.pool[slot].order_id = 0
        self.pool[slot].next = self.free_head
        self.free_head = slot

    # ------------------------------------------------------------------ levels
    cdef int touch(self, int side, int64_t idx) except -1:
        cdef Level* lv = &self.levels[side][idx]
        cdef int64_t* grown
        if lv.touched == self.epoch:
            return 0
        lv.touched = self.epoch
        if self.n_touched == self.touched_cap:
            grown = <int64_t*>realloc(self.touched_list, self.touched_cap * 2 * sizeof(int64_t))
            if grown == NULL:
                raise MemoryError()
            self.touched_list = grown
            self.touched_cap *= 2
        self.touched_list[self.n_touched] = (<int64_t>side << IDX_BITS) | idx
        self.n_touched += 1
        return 0

    cdef int level_append(self, int32_t slot) except -1:
        """Put a pool order at the back of its level's queue (time priority)."""
        cdef Order* o = &self.pool[slot]
        cdef int side = o.side
        cdef int64_t idx = o.price - self.price_lo
        cdef Level* lv = &self.levels[side][idx]
        self.touch(side, idx)
        if self.queue_push(lv, slot):
            self.bitmap[side][idx >> 6] |= (<uint64_t>1) << (idx & 63)
            if side == SIDE_BUY:
                if idx > self.best[side]:
                    self.best[side] = idx
            elif self.best[side] < 0 or idx < self.best[side]:
                self.best[side] = idx
        return 0

    cdef inline bint queue_push(self, Level* q, int32_t slot) noexcept:
        """Link ``slot`` at the back of queue ``q`` (time priority); True if ``q`` was empty."""
        cdef Order* o = &self.pool[slot]
        cdef bint was_empty = q.count == 0
        o.next = -1
        o.prev = q.tail
        if was_empty:
            q.head = slot
        else:
            self.pool[q.tail].next = slot
        q.tail = slot
        q.count += 1
        q.total += o.leaves
        return was_empty

    cdef inline bint queue_remove(self, Level* q, int32_t slot) noexcept:
        """Unlink ``slot`` from queue ``q`` in O(1) through the intrusive links; True if ``q``
        is now empty."""
        cdef Order* o = &self.pool[slot]
        if o.prev >= 0:
            self.pool[o.prev].next = o.next
        else:
            q.head = o.next
        if o.next >= 0:
            self.pool[o.next].prev = o.prev
        else:
            q.tail = o.prev
        q.count -= 1
        q.total -= o.leaves
        if q.count == 0:
            q.head = -1
            q.tail = -1
            return True
        return False

    cdef int level_unlink(self, int32_t slot) except -1:
        """Take a pool order out of its level's queue; O(1) through the intrusive links."""
        cdef Order* o = &self.pool[slot]
        cdef int side = o.side
        cdef int64_t idx = o.price - self.price_lo
        cdef Level* lv = &self.levels[side][idx]
        self.touch(side, idx)
        if self.queue_remove(lv, slot):
            self.bitmap[side][idx >> 6] &= ~((<uint64_t>1) << (idx & 63))
            if idx == self.best[side]:
                self.best[side] = self.scan_next(side, idx - 1 if side == SIDE_BUY else idx + 1)
        return 0

    cdef int64_t scan_next(self, int side, int64_t from_idx) noexcept:
        """Best non-empty level at or behind ``from_idx``: downwards for bids, upwards for asks."""
        cdef uint64_t* bm = self.bitmap[side]
        cdef int64_t w
        cdef uint64_t word
        if side == SIDE_BUY:
            if from_idx < 0:
                return -1
            w = from_idx >> 6
            word = bm[w] & (((<uint64_t>2) << (from_idx & 63)) - 1)
            while True:
                if word:
                    return (w << 6) + 63 - tb_clz64(word)
                w -= 1
                if w < 0:
                    return -1
                word = bm[w]
        else:
            if from_idx >= self.n_levels:
                return -1
            w = from_idx >> 6
            word = bm[w] & ((~(<uint64_t>0)) << (from_idx & 63))
            while True:
                if word:
                    return (w << 6) + tb_ctz64(word)
                w += 1
                if w >= self.n_words:
                    return -1
                word = bm[w]

    cdef int crosses(self, int side, int64_t idx) noexcept:
        """Would a limit at level ``idx`` on ``side`` meet the opposite best?"""
        cdef int64_t opp
        if side == SIDE_BUY:
            opp = self.best[SIDE_SELL]
            return opp >= 0 and idx >= opp
        opp = self.best[SIDE_BUY]
        return opp >= 0 and idx <= opp

    cdef int remove_order(self, int32_t slot) except -1:
        self.level_unlink(slot)
        self.map_erase(self.pool[slot].order_id)
        self.free_slot(slot)
        return 0

    # ------------------------------------------------------------------ events
    cdef int emit(self, int type, int side, int reason, int64_t order_id, int64_t other_id,
                  int64_t price, int64_t qty, int64_t leaves, int64_t other_leaves) except -1:
        cdef Event* e
        cdef Event* grown
        if self.n_events == self.ev_cap:
            grown = <Event*>realloc(self.events, self.ev_cap * 2 * sizeof(Event))
            if grown == NULL:
                raise MemoryError()
            self.events = grown
            self.ev_cap *= 2
        e = &self.events[self.n_events]
        self.n_events += 1
        self.seq += 1
        e.seq = self.seq
        e.order_id = order_id
        e.other_id = other_id
        e.price = price
        e.qty = qty
        e.leaves = leaves
        e.other_leaves = other_leaves
        e.type = <uint8_t>type
        e.side = <uint8_t>side
        e.reason = <uint16_t>reason
        return 0

    cdef int flush_levels(self) except -1:
        """One LEVEL event per level the command changed, in first-touch order."""
        cdef int64_t i, v, idx
        cdef int side
        cdef Level* lv
        for i in range(self.n_touched):
            v = self.touched_list[i]
            side = <int>(v >> IDX_BITS)
            idx = v & IDX_MASK
            lv = &self.levels[side][idx]
            self.emit(EV_LEVEL, side, 0, 0, 0, self.price_lo + idx, lv.total, lv.count, 0)
        self.n_touched = 0
        return 0

    cdef int reject(self, int side, int reason, int64_t order_id, int64_t price,
                    int64_t qty) except -1:
        return self.emit(EV_REJECTED, side, reason, order_id, 0, price, qty, 0, 0)

    # ------------------------------------------------------------------ commands
    cdef int do_command(self, const Command* c) except -1:
        self.epoch += 1
        if c.op == OP_NEW:
            return self.do_new(c)
        if c.op == OP_CANCEL:
            return self.do_cancel(c.order_id, c.price, c.qty, 0)
        if c.op == OP_AMEND:
            return self.do_amend(c.order_id, c.price, c.qty)
        if c.op == OP_EXPIRE:
            return self.do_cancel(c.order_id, c.price, c.qty, 1)
        return self.reject(c.side, REJ_UNKNOWN_COMMAND, c.order_id, c.price, c.qty)

    cdef int do_new(self, const Command* c) except -1:
        cdef int side = c.side
        cdef int tif = c.tif
        cdef int64_t oid = c.order_id
        cdef int64_t qty = c.qty
        cdef int64_t price = c.price
        cdef int is_limit = c.ord_type == ORD_LIMIT
        cdef int64_t idx = price - self.price_lo
        cdef int64_t limit_idx, leaves, ev_price
        cdef int32_t slot
        cdef Order* o
        # Validation in the documented order: the first failure is the reason.
        if oid <= 0:
            return self.reject(side, REJ_INVALID_ORDER_ID, oid, price, qty)
        if side != SIDE_BUY and side != SIDE_SELL:
            return self.reject(side, REJ_INVALID_SIDE, oid, price, qty)
        if not is_limit and c.ord_type != ORD_MARKET:
            return self.reject(side, REJ_INVALID_ORDER_TYPE, oid, price, qty)
        if tif > 15 or not ((self.fast_tifs >> tif) & 1):
            # An unknown tif, GFA, or any order in a call: the continuous path never
            # pays for the call's rules.
            return self.do_new_checked(c)
        if qty <= 0 or qty > MAX_QTY:
            return self.reject(side, REJ_INVALID_QUANTITY, oid, price, qty)
        if is_limit and (price < self.price_lo or idx >= self.n_levels):
            return self.reject(side, REJ_PRICE_OUT_OF_RANGE, oid, price, qty)
        if tif == TIF_GTD and c.expire_time <= 0:
            return self.reject(side, REJ_INVALID_EXPIRE_TIME, oid, price, qty)
        if c.min_qty < 0 or c.min_qty > qty:
            return self.reject(side, REJ_INVALID_MIN_QTY, oid, price, qty)
        if c.stp > STP_DECREMENT_AND_CANCEL:
            return self.reject(side, REJ_INVALID_STP_MODE, oid, price, qty)
        if c.account < 0:
            return self.reject(side, REJ_INVALID_ACCOUNT, oid, price, qty)
        if c.post_only and (not is_limit or tif == TIF_IOC or tif == TIF_FOK):
            return self.reject(side, REJ_INVALID_POST_ONLY, oid, price, qty)
        if self.find(oid) >= 0:
            return self.reject(side, REJ_DUPLICATE_ORDER_ID, oid, price, qty)
        if c.post_only and self.crosses(side, idx):
            return self.reject(side, REJ_POST_ONLY_WOULD_TAKE, oid, price, qty)
        # A fixed-capacity book refuses any order that might rest once it is full.
        if (self.capacity > 0 and is_limit and tif != TIF_IOC and tif != TIF_FOK
                and self.live >= self.capacity):
            return self.reject(side, REJ_BOOK_FULL, oid, price, qty)

        ev_price = price if is_limit else 0
        self.emit(EV_ACCEPTED, side, 0, oid, 0, ev_price, qty, qty, 0)
        if is_limit:
            limit_idx = idx
        else:
            limit_idx = self.n_levels - 1 if side == SIDE_BUY else 0
        if tif == TIF_FOK:
            if self.fillable(side, limit_idx, qty, c.account, c.stp) < qty:
                self.emit(EV_CANCELLED, side, CXL_FOK_NOT_FILLED, oid, 0, ev_price, qty, 0, 0)
                return 0
        elif c.min_qty > 0:
            if self.fillable(side, limit_idx, qty, c.account, c.stp) < c.min_qty:
                self.emit(EV_CANCELLED, side, CXL_MIN_QTY_NOT_MET, oid, 0, ev_price, qty, 0, 0)
                return 0
        leaves = self.match(oid, side, limit_idx, ev_price, qty, c.account, c.stp)
        if leaves > 0:
            if not is_limit:
                self.emit(EV_CANCELLED, side, CXL_MARKET_REMAINDER, oid, 0, 0, leaves, 0, 0)
            elif tif == TIF_IOC or tif == TIF_FOK:
                self.emit(EV_CANCELLED, side, CXL_IOC_REMAINDER, oid, 0, price, leaves, 0, 0)
            else:
                slot = self.alloc_slot()
                o = &self.pool[slot]
                o.order_id = oid
                o.account = c.account
                o.leaves = leaves
                o.price = price
                o.side = <uint8_t>side
                o.stp = c.stp
                o.post_only = 1 if c.post_only else 0
                o.tif = <uint8_t>tif
                o.market = 0
                self.map_insert(slot)
                self.level_append(slot)
        return self.flush_levels()

    cdef int64_t fillable(self, int side, int64_t limit_idx, int64_t qty, int64_t account,
                          int stp) noexcept:
        """What matching would fill now, walking the book without changing it (FOK, min_qty)."""
        cdef int opp = SIDE_SELL if side == SIDE_BUY else SIDE_BUY
        cdef int64_t open_qty = qty
        cdef int64_t filled = 0
        cdef int64_t idx = self.best[opp]
        cdef int64_t q
        cdef int use_stp = stp != STP_NONE and account != 0
        cdef int32_t slot
        cdef Order* o
        while idx >= 0 and open_qty > 0:
            if (side == SIDE_BUY and idx > limit_idx) or (side == SIDE_SELL and idx < limit_idx):
                break
            if not use_stp:
                q = min64(open_qty, self.levels[opp][idx].total)
                filled += q
                open_qty -= q
            else:
                slot = self.levels[opp][idx].head
                while slot >= 0 and open_qty > 0:
                    o = &self.pool[slot]
                    slot = o.next
                    if o.account == account:
                        if stp == STP_CANCEL_RESTING:
                            continue
                        if stp == STP_DECREMENT_AND_CANCEL:
                            open_qty -= min64(open_qty, o.leaves)
                            continue
                        return filled          # CANCEL_INCOMING / CANCEL_BOTH stop here
                    q = min64(open_qty, o.leaves)
                    filled += q
                    open_qty -= q
            idx = self.scan_next(opp, idx + 1 if opp == SIDE_SELL else idx - 1)
        return filled

    cdef int64_t match(self, int64_t order_id, int side, int64_t limit_idx, int64_t ev_price,
                       int64_t leaves, int64_t account, int stp) except -1:
        """Trade an incoming order against the opposite side; returns its open quantity.

        Price priority: the opposite best level first. Time priority: the level's FIFO
        from the head. Every trade is at the maker's price. Returns 0 when the order was
        filled or cancelled by self-trade prevention.
        """
        cdef int opp = SIDE_SELL if side == SIDE_BUY else SIDE_BUY
        cdef int use_stp = stp != STP_NONE and account != 0
        cdef int64_t idx, price, q, d
        cdef int32_t slot, nxt
        cdef Level* lv
        cdef Order* o
        while leaves > 0:
            idx = self.best[opp]
            if idx < 0 or (side == SIDE_BUY and idx > limit_idx) or (
                    side == SIDE_SELL and idx < limit_idx):
                break
            lv = &self.levels[opp][idx]
            price = self.price_lo + idx
            slot = lv.head
            while slot >= 0 and leaves > 0:
                o = &self.pool[slot]
                nxt = o.next
                if use_stp and o.account == account:
                    if stp == STP_CANCEL_RESTING or stp == STP_CANCEL_BOTH:
                        self.emit(EV_CANCELLED, opp, CXL_SELF_TRADE, o.order_id, 0, price,
                                  o.leaves, 0, 0)
                        self.remove_order(slot)
                        if stp == STP_CANCEL_BOTH:
                            self.emit(EV_CANCELLED, side, CXL_SELF_TRADE, order_id, 0, ev_price,
                                      leaves, 0, 0)
                            return 0
                    elif stp == STP_CANCEL_INCOMING:
                        self.emit(EV_CANCELLED, side, CXL_SELF_TRADE, order_id, 0, ev_price,
                                  leaves, 0, 0)
                        return 0
                    else:
                        # Decrement and cancel: both lose the smaller open quantity, no trade.
                        d = min64(leaves, o.leaves)
                        if d == o.leaves:
                            self.emit(EV_CANCELLED, opp, CXL_SELF_TRADE, o.order_id, 0, price,
                                      d, 0, 0)
                            self.remove_order(slot)
                        else:
                            o.leaves -= d
                            lv.total -= d
                            self.touch(opp, idx)
                            self.emit(EV_DECREMENTED, opp, CXL_SELF_TRADE, o.order_id, 0, price,
                                      d, o.leaves, 0)
                        leaves -= d
                        if leaves == 0:
                            self.emit(EV_CANCELLED, side, CXL_SELF_TRADE, order_id, 0, ev_price,
                                      d, 0, 0)
                        else:
                            self.emit(EV_DECREMENTED, side, CXL_SELF_TRADE, order_id, 0,
                                      ev_price, d, leaves, 0)
                    slot = nxt
                    continue
                q = min64(leaves, o.leaves)
                leaves -= q
                o.leaves -= q
                lv.total -= q
                self.touch(opp, idx)
                self.emit(EV_TRADE, side, 0, order_id, o.order_id, price, q, leaves, o.leaves)
                if o.leaves == 0:
                    self.remove_order(slot)
                slot = nxt
        return leaves

    cdef int do_cancel(self, int64_t order_id, int64_t price, int64_t qty, int expire) except -1:
        cdef int32_t slot = self.find(order_id) if order_id > 0 else -1
        cdef Order* o
        if slot < 0:
            return self.reject(0, REJ_UNKNOWN_ORDER, order_id, price, qty)
        o = &self.pool[slot]
        if expire:
            self.emit(EV_EXPIRED, o.side, CXL_EXPIRED, order_id, 0, o.price, o.leaves, 0, 0)
        else:
            self.emit(EV_CANCELLED, o.side, CXL_USER, order_id, 0, o.price, o.leaves, 0, 0)
        if o.market:
            self.drop(slot)
        else:
            self.remove_order(slot)
        return self.flush_levels()

    cdef int do_amend(self, int64_t order_id, int64_t price, int64_t qty) except -1:
        cdef int32_t slot = self.find(order_id) if order_id > 0 else -1
        cdef Order* o
        cdef int64_t idx = price - self.price_lo
        cdef int64_t old, leaves
        cdef int side
        if slot < 0:
            return self.reject(0, REJ_UNKNOWN_ORDER, order_id, price, qty)
        if qty <= 0 or qty > MAX_QTY:
            return self.reject(0, REJ_INVALID_QUANTITY, order_id, price, qty)
        if self.in_call:
            return self.do_amend_in_call(slot, price, qty)
        if price < self.price_lo or idx >= self.n_levels:
            return self.reject(0, REJ_PRICE_OUT_OF_RANGE, order_id, price, qty)
        o = &self.pool[slot]
        side = o.side
        if o.post_only and self.crosses(side, idx):
            return self.reject(0, REJ_POST_ONLY_WOULD_TAKE, order_id, price, qty)
        old = o.leaves
        if price == o.price and qty <= old:
            # Reducing in place keeps the order's place in the queue.
            o.leaves = qty
            self.levels[side][idx].total -= old - qty
            self.touch(side, idx)
            self.emit(EV_AMENDED, side, AMEND_KEPT, order_id, 0, price, qty, qty, old)
            return self.flush_levels()
        # A new price or more quantity goes to the back: out of the level, in again as taker.
        self.emit(EV_AMENDED, side, AMEND_LOST, order_id, 0, price, qty, qty, old)
        self.level_unlink(slot)
        leaves = self.match(order_id, side, idx, price, qty, o.account, o.stp)
        o = &self.pool[slot]
        if leaves > 0:
            o.price = price
            o.leaves = leaves
            self.level_append(slot)
        else:
            self.map_erase(order_id)
            self.free_slot(slot)
        return self.flush_levels()

    # ------------------------------------------------------------------ call auction
    cdef int rest_new(self, const Command* c, int64_t leaves) except -1:
        """A new order rests whole: on its level, or (MARKET, in a call) in its side's
        market queue, which comes before every level."""
        cdef int32_t slot = self.alloc_slot()
        cdef Order* o = &self.pool[slot]
        o.order_id = c.order_id
        o.account = c.account
        o.leaves = leaves
        o.side = c.side
        o.stp = c.stp
        o.post_only = 1 if c.post_only else 0
        o.tif = c.tif
        self.map_insert(slot)
        if c.ord_type == ORD_MARKET:
            o.price = 0
            o.market = 1
            self.mkt_append(slot)
        else:
            o.price = c.price
            o.market = 0
            self.level_append(slot)
        return 0

    cdef int mkt_append(self, int32_t slot) noexcept:
        """Put a market order at the back of its side's market queue (time priority)."""
        self.queue_push(&self.mkt[self.pool[slot].side], slot)
        return 0

    cdef int mkt_unlink(self, int32_t slot) noexcept:
        """Take a market order out of its queue (O(1))."""
        self.queue_remove(&self.mkt[self.pool[slot].side], slot)
        return 0

    cdef int drop(self, int32_t slot) except -1:
        """Take any live order off: a market order from its queue, a limit from its level."""
        if self.pool[slot].market:
            self.mkt_unlink(slot)
            self.map_erase(self.pool[slot].order_id)
            self.free_slot(slot)
            return 0
        return self.remove_order(slot)

    cdef int do_new_checked(self, const Command* c) except -1:
        """NEW when the tif is not one continuous trading takes at once: validation steps
        4-15 of docs/matching-rules.md (the call's own are 12-14), then the call."""
        cdef int side = c.side
        cdef int tif = c.tif
        cdef int64_t oid = c.order_id, qty = c.qty, price = c.price
        cdef int is_limit = c.ord_type == ORD_LIMIT
        cdef int64_t idx = price - self.price_lo
        cdef int reason = 0
        if not valid_tif(tif):
            reason = REJ_INVALID_TIME_IN_FORCE
        elif qty <= 0 or qty > MAX_QTY:
            reason = REJ_INVALID_QUANTITY
        elif is_limit and (price < self.price_lo or idx >= self.n_levels):
            reason = REJ_PRICE_OUT_OF_RANGE
        elif tif == TIF_GTD and c.expire_time <= 0:
            reason = REJ_INVALID_EXPIRE_TIME
        elif c.min_qty < 0 or c.min_qty > qty:
            reason = REJ_INVALID_MIN_QTY
        elif c.stp > STP_DECREMENT_AND_CANCEL:
            reason = REJ_INVALID_STP_MODE
        elif c.account < 0:
            reason = REJ_INVALID_ACCOUNT
        elif c.post_only and (not is_limit or tif == TIF_IOC or tif == TIF_FOK):
            reason = REJ_INVALID_POST_ONLY
        elif not self.in_call:
            reason = REJ_AUCTION_ONLY          # a valid tif that is not fast here: GFA
        elif tif == TIF_IOC or tif == TIF_FOK or c.min_qty > 0:
            reason = REJ_IMMEDIATE_IN_CALL
        elif c.post_only:
            reason = REJ_POST_ONLY_IN_CALL
        elif self.find(oid) >= 0:
            reason = REJ_DUPLICATE_ORDER_ID
        if reason:
            return self.reject(side, reason, oid, price, qty)
        return self.do_new_in_call(c)

    cdef int do_new_in_call(self, const Command* c) except -1:
        """A validated LIMIT or MARKET (DAY, GTC, GTD, GFA) order in a call: it rests whole."""
        if self.capacity > 0 and self.live >= self.capacity:
            return self.reject(c.side, REJ_BOOK_FULL, c.order_id, c.price, c.qty)
        self.emit(EV_ACCEPTED, c.side, 0, c.order_id, 0,
                  c.price if c.ord_type == ORD_LIMIT else 0, c.qty, c.qty, 0)
        self.rest_new(c, c.qty)
        return self.flush_levels()

    cdef int do_amend_in_call(self, int32_t slot, int64_t price, int64_t qty) except -1:
        """An amend in a call: the same price and no more quantity keeps priority, anything
        else goes to the back of the new level; nothing matches. A market order stays a
        market order (the price is not read). Post-only plays no part in a call."""
        cdef Order* o = &self.pool[slot]
        cdef int64_t order_id = o.order_id
        cdef int64_t old = o.leaves
        cdef int side = o.side
        cdef int64_t idx = price - self.price_lo
        if o.market:
            price = 0
            if qty <= old:
                o.leaves = qty
                self.mkt[side].total -= old - qty
                self.emit(EV_AMENDED, side, AMEND_KEPT, order_id, 0, 0, qty, qty, old)
            else:
                self.emit(EV_AMENDED, side, AMEND_LOST, order_id, 0, 0, qty, qty, old)
                self.mkt_unlink(slot)
                o.leaves = qty
                self.mkt_append(slot)
            return self.flush_levels()
        if price < self.price_lo or idx >= self.n_levels:
            return self.reject(0, REJ_PRICE_OUT_OF_RANGE, order_id, price, qty)
        if price == o.price and qty <= old:
            o.leaves = qty
            self.levels[side][idx].total -= old - qty
            self.touch(side, idx)
            self.emit(EV_AMENDED, side, AMEND_KEPT, order_id, 0, price, qty, qty, old)
            return self.flush_levels()
        self.emit(EV_AMENDED, side, AMEND_LOST, order_id, 0, price, qty, qty, old)
        self.level_unlink(slot)
        o = &self.pool[slot]
        o.price = price
        o.leaves = qty
        self.level_append(slot)
        return self.flush_levels()

    cdef int64_t supply_demand(self, int64_t idx, int side) noexcept:
        """Executable quantity of ``side`` at level ``idx``: its market orders plus its
        limits at or better than the price (bids at or above, asks at or below)."""
        cdef int64_t total = self.mkt[side].total
        cdef int64_t i = self.best[side]
        while i >= 0:
            if (side == SIDE_BUY and i < idx) or (side == SIDE_SELL and i > idx):
                break
            total += self.levels[side][i].total
            i = self.scan_next(side, i - 1 if side == SIDE_BUY else i + 1)
        return total

    cdef int auction_price(self, int64_t reference, int64_t width, int64_t* out) except -1:
        """The uncross price by the principle of highest executable volume (rules in
        docs/matching-rules.md, "Call auction"); ``reference`` is on the ladder.

        Fills ``out`` with (price, volume, surplus, surplus side) and returns 1, or returns
        0 when nothing can execute. O(n_levels / 64 + price levels)."""
        cdef int64_t ref_idx = reference - self.price_lo
        cdef int64_t mb = self.mkt[SIDE_BUY].total
        cdef int64_t ms = self.mkt[SIDE_SELL].total
        cdef int64_t bid_total = 0, bid_below = 0, ask_upto = 0
        cdef int64_t n = 0, cap = 0, w, idx, d, s, v, best_v = 0, best_abs = -1
        cdef int64_t lo = -1, hi = -1, price, i
        cdef int all_buy = 1, all_sell = 1
        cdef uint64_t word
        cdef int64_t* cand_idx
        cdef int64_t* cand_v
        cdef int64_t* cand_s
        idx = self.best[SIDE_BUY]
        while idx >= 0:
            bid_total += self.levels[SIDE_BUY][idx].total
            n += 1
            idx = self.scan_next(SIDE_BUY, idx - 1)
        idx = self.best[SIDE_SELL]
        while idx >= 0:
            n += 1
            idx = self.scan_next(SIDE_SELL, idx + 1)
        n += 1
        cand_idx = <int64_t*>malloc(3 * n * sizeof(int64_t))
        if cand_idx == NULL:
            raise MemoryError()
        cand_v = cand_idx + n
        cand_s = cand_idx + 2 * n
        n = 0
        # Every candidate (a price with a limit on either side, or the reference), low to
        # high: S(p) = market sells + asks <= p, D(p) = market buys + bids >= p.
        for w in range(self.n_words):
            word = self.bitmap[SIDE_BUY][w] | self.bitmap[SIDE_SELL][w]
            if (ref_idx >> 6) == w:
                word |= (<uint64_t>1) << (ref_idx & 63)
            while word:
                idx = (w << 6) + tb_ctz64(word)
                word &= word - 1
                ask_upto += self.levels[SIDE_SELL][idx].total
                d = mb + bid_total - bid_below
                s = ms + ask_upto
                bid_below += self.levels[SIDE_BUY][idx].total
                cand_idx[n] = idx
                cand_v[n] = min64(d, s)
                cand_s[n] = d - s
                if cand_v[n] > best_v:
                    best_v = cand_v[n]
                n += 1
        if best_v == 0:
            free(cand_idx)
            return 0
        if mb > 0 and ms > 0 and best_v == min64(mb, ms):
            price = ref_idx                    # only market orders execute: the reference
        else:
            for i in range(n):                 # 1. highest volume, 2. least surplus
                if cand_v[i] == best_v:
                    s = cand_s[i] if cand_s[i] >= 0 else -cand_s[i]
                    if best_abs < 0 or s < best_abs:
                        best_abs = s
            for i in range(n):
                s = cand_s[i] if cand_s[i] >= 0 else -cand_s[i]
                if cand_v[i] != best_v or s != best_abs:
                    continue
                if lo < 0:
                    lo = cand_idx[i]
                hi = cand_idx[i]
                if cand_s[i] <= 0:
                    all_buy = 0
                if cand_s[i] >= 0:
                    all_sell = 0
            if all_buy:                        # 3. market pressure on the buy side
                cap = ref_idx + width
                price = hi if hi <= cap else (lo if lo >= cap else cap)
            elif all_sell:                     # ... on the sell side
                cap = ref_idx - width
                price = lo if lo >= cap else (hi if hi <= cap else cap)
            else:                              # 4. the reference, or the nearest candidate
                price = ref_idx if lo <= ref_idx <= hi else (lo if ref_idx < lo else hi)
        free(cand_idx)
        d = self.supply_demand(price, SIDE_BUY)
        s = self.supply_demand(price, SIDE_SELL)
        out[0] = self.price_lo + price
        out[1] = min64(d, s)
        out[2] = d - s if d >= s else s - d
        out[3] = SIDE_BUY if d > s else (SIDE_SELL if s > d else 0)
        return 1

    cdef int32_t next_executable(self, int side, int64_t idx) noexcept:
        """The next order of ``side`` to execute at level ``idx``: market orders first,
        then limits by price then time; -1 when none is left at that price."""
        cdef int64_t best
        if self.mkt[side].head >= 0:
            return self.mkt[side].head
        best = self.best[side]
        if best < 0 or (side == SIDE_BUY and best < idx) or (side == SIDE_SELL and best > idx):
            return -1
        return self.levels[side][best].head

    cdef int take_qty(self, int32_t slot, int64_t q) except -1:
        """Lower an executing order's open quantity by ``q`` where it rests."""
        cdef Order* o = &self.pool[slot]
        cdef int64_t idx
        o.leaves -= q
        if o.market:
            self.mkt[o.side].total -= q
        else:
            idx = o.price - self.price_lo
            self.levels[o.side][idx].total -= q
            self.touch(o.side, idx)
        return 0

    cdef int do_uncross(self, int64_t reference, int64_t width) except -1:
        """Execute the call at one price, cancel what may not outlive it, end the call."""
        cdef int64_t res[4]
        cdef int64_t idx, rem, q
        cdef int32_t b, s, slot, nxt
        cdef int side
        cdef Order* o
        self.epoch += 1
        if not self.in_call:
            return self.reject(0, REJ_NOT_IN_CALL, 0, reference, 0)
        idx = reference - self.price_lo
        if reference < self.price_lo or idx >= self.n_levels:
            return self.reject(0, REJ_PRICE_OUT_OF_RANGE, 0, reference, 0)
        if self.auction_price(reference, width, res):
            idx = res[0] - self.price_lo
            rem = res[1]
            # Buy and sell queues in execution priority, paired off to the volume.
            while rem > 0:
                b = self.next_executable(SIDE_BUY, idx)
                s = self.next_executable(SIDE_SELL, idx)
                if b < 0 or s < 0:
                    raise AssertionError("uncross ran out of executable orders")
                q = min64(rem, min64(self.pool[b].leaves, self.pool[s].leaves))
                self.take_qty(b, q)
                self.take_qty(s, q)
                rem -= q
                self.emit(EV_TRADE, SIDE_BUY, 0, self.pool[b].order_id, self.pool[s].order_id,
                          res[0], q, self.pool[b].leaves, self.pool[s].leaves)
                if self.pool[b].leaves == 0:
                    self.drop(b)
                if self.pool[s].leaves == 0:
                    self.drop(s)
        # Market and good-for-auction orders do not outlive the call.
        for side in (SIDE_BUY, SIDE_SELL):
            slot = self.mkt[side].head
            while slot >= 0:
                nxt = self.pool[slot].next
                self.emit(EV_CANCELLED, side, CXL_AUCTION_REMAINDER, self.pool[slot].order_id,
                          0, 0, self.pool[slot].leaves, 0, 0)
                self.drop(slot)
                slot = nxt
            idx = self.best[side]
            while idx >= 0:
                slot = self.levels[side][idx].head
                while slot >= 0:
                    o = &self.pool[slot]
                    nxt = o.next
                    if o.tif == TIF_GFA:
                        self.emit(EV_CANCELLED, side, CXL_AUCTION_REMAINDER, o.order_id, 0,
                                  o.price, o.leaves, 0, 0)
                        self.remove_order(slot)
                    slot = nxt
                idx = self.scan_next(side, idx - 1 if side == SIDE_BUY else idx + 1)
        self.in_call = 0
        self.fast_tifs = FAST_TIFS
        return self.flush_levels()

    # ------------------------------------------------------------------ Python API
    cdef int _submit(self, int64_t op, int64_t order_id, int64_t side, int64_t ord_type,
                     int64_t tif, int64_t stp, bint post_only, int64_t account, int64_t price,
                     int64_t qty, int64_t min_qty, int64_t expire_time) except -1:
        cdef Command c
        cdef int64_t before = self.n_events
        c.op = as_code(op)
        c.order_id = order_id
        c.side = as_code(side)
        c.ord_type = as_code(ord_type)
        c.tif = as_code(tif)
        c.stp = as_code(stp)
        c.post_only = 1 if post_only else 0
        c.account = account
        c.price = price
        c.qty = qty
        c.min_qty = min_qty
        c.expire_time = expire_time
        self.do_command(&c)
        return <int>(self.n_events - before)

    def submit(self, op, order_id, side, ord_type, tif, stp, post_only, account, price, qty,
               min_qty, expire_time):
        """Apply any command given field by field; returns how many events it emitted.

        Every field but ``post_only`` must be an int: a float is never ticks or lots.
        """
        return self._submit(i64(op, "op"), i64(order_id, "order_id"), i64(side, "side"),
                            i64(ord_type, "ord_type"), i64(tif, "tif"), i64(stp, "stp"),
                            post_only, i64(account, "account"), i64(price, "price"),
                            i64(qty, "qty"), i64(min_qty, "min_qty"),
                            i64(expire_time, "expire_time"))

    def new_order(self, order_id, side, price, qty, ord_type=ORD_LIMIT, tif=TIF_GTC,
                  account=0, stp=STP_NONE, post_only=False, min_qty=0, expire_time=0):
        """Enter an order; returns the number of events emitted. O(1) + O(1) per fill."""
        return self._submit(OP_NEW, i64(order_id, "order_id"), i64(side, "side"),
                            i64(ord_type, "ord_type"), i64(tif, "tif"), i64(stp, "stp"),
                            post_only, i64(account, "account"), i64(price, "price"),
                            i64(qty, "qty"), i64(min_qty, "min_qty"),
                            i64(expire_time, "expire_time"))

    def cancel(self, order_id):
        """Cancel a live order (CANCELLED, reason USER) or reject UNKNOWN_ORDER. O(1)."""
        return self._submit(OP_CANCEL, i64(order_id, "order_id"), 0, 0, 0, 0, False, 0, 0, 0,
                            0, 0)

    def amend(self, order_id, price, qty):
        """Replace price and/or open quantity; see the amend rules. O(1) + fills."""
        return self._submit(OP_AMEND, i64(order_id, "order_id"), 0, 0, 0, 0, False, 0,
                            i64(price, "price"), i64(qty, "qty"), 0, 0)

    def expire(self, order_id):
        """Take a DAY/GTD order off at the end of its life (EXPIRED). O(1)."""
        return self._submit(OP_EXPIRE, i64(order_id, "order_id"), 0, 0, 0, 0, False, 0, 0, 0,
                            0, 0)

    def set_call(self, on):
        """Enter (True) or leave (False) call mode. In a call LIMIT and MARKET orders rest
        without matching; ``uncross`` ends it. Leaving without an uncross is allowed only
        while nothing crosses and no market or good-for-auction order rests (ValueError)."""
        if on:
            self.in_call = 1
            self.fast_tifs = 0
            return
        if self.in_call:
            leave_call_check(self.indicative_of(self.price_lo, 0) is not None,
                             self.mkt[SIDE_BUY].count + self.mkt[SIDE_SELL].count,
                             self.count_gfa())
        self.in_call = 0
        self.fast_tifs = FAST_TIFS

    cdef int64_t count_gfa(self) except -1:
        """Good-for-auction orders on the levels (O(orders))."""
        cdef int side
        cdef int64_t idx, n = 0
        cdef int32_t slot
        for side in (SIDE_BUY, SIDE_SELL):
            idx = self.best[side]
            while idx >= 0:
                slot = self.levels[side][idx].head
                while slot >= 0:
                    n += self.pool[slot].tif == TIF_GFA
                    slot = self.pool[slot].next
                idx = self.scan_next(side, idx - 1 if side == SIDE_BUY else idx + 1)
        return n

    cdef object indicative_of(self, int64_t reference, int64_t width):
        """``auction_price`` as a tuple, or None."""
        cdef int64_t res[4]
        if not self.auction_price(reference, width, res):
            return None
        return (res[0], res[1], res[2], res[3])

    def restore_resting(self, order_id, side, price, leaves, account, stp, post_only, tif):
        """Put a resting order of a snapshot taken in a call back at the back of its queue
        (price None: a market order) as it was: no validation, no event. The caller
        re-enters a snapshot's ``resting_orders()`` in their order."""
        cdef Command c
        if not self.in_call:
            raise ValueError("restore_resting is for a book in a call")
        c.order_id = i64(order_id, "order_id")
        c.side = as_code(i64(side, "side"))
        c.ord_type = ORD_MARKET if price is None else ORD_LIMIT
        c.price = 0 if price is None else i64(price, "price")
        c.account = i64(account, "account")
        c.stp = as_code(i64(stp, "stp"))
        c.post_only = 1 if post_only else 0
        c.tif = as_code(i64(tif, "tif"))
        if self.find(c.order_id) >= 0 or (c.side != SIDE_BUY and c.side != SIDE_SELL) or (
                price is not None and (c.price < self.price_lo
                                       or c.price - self.price_lo >= self.n_levels)):
            raise ValueError(f"cannot restore order {order_id}")
        self.epoch += 1
        self.rest_new(&c, i64(leaves, "leaves"))
        self.n_touched = 0

    def indicative(self, reference, pressure_limit_pct):
        """What an uncross now would do: ``(price, volume, surplus, surplus_side)`` or None
        when nothing can execute (rules: docs/matching-rules.md, "Call auction").
        ``reference`` must be on the ladder (ValueError). O(n_levels / 64 + levels)."""
        cdef int64_t ref = i64(reference, "reference")
        cdef int64_t width = pressure_width(ref, pressure_limit_pct)
        if ref < self.price_lo or ref - self.price_lo >= self.n_levels:
            raise ValueError(f"reference {ref} is off the ladder")
        return self.indicative_of(ref, width)

    def uncross(self, reference, pressure_limit_pct):
        """Execute the call at one price, cancel leftover market and good-for-auction
        orders, and return to continuous mode; returns how many events it emitted."""
        cdef int64_t ref = i64(reference, "reference")
        cdef int64_t width = pressure_width(ref, pressure_limit_pct)
        cdef int64_t before = self.n_events
        self.do_uncross(ref, width)
        return <int>(self.n_events - before)

    def process(self, commands):
        """Apply a COMMAND_DTYPE array in order; returns the events as an EVENT_DTYPE array.

        The batch path: no Python object is made per command. Pending events from earlier
        per-command calls are returned first.
        """
        if not isinstance(commands, np.ndarray) or commands.dtype != COMMAND_DTYPE:
            raise TypeError("process() takes a numpy array of matching.records.COMMAND_DTYPE")
        cdef const uint8_t[::1] raw = np.ascontiguousarray(commands).view(np.uint8)
        cdef Py_ssize_t n = commands.shape[0]
        cdef Py_ssize_t i
        cdef const Command* cmds
        if n:
            cmds = <const Command*>&raw[0]
            for i in range(n):
                self.do_command(&cmds[i])
        return self.take_event_array()

    def take_event_array(self):
        """Drain pending events as an EVENT_DTYPE array (one memcpy)."""
        out = np.empty(self.n_events, dtype=EVENT_DTYPE)
        cdef uint8_t[::1] dst
        if self.n_events:
            dst = out.view(np.uint8)
            memcpy(&dst[0], self.events, self.n_events * sizeof(Event))
        self.n_events = 0
        return out

    def take_events(self):
        """Drain pending events as a list of matching.records.Event tuples."""
        cdef Py_ssize_t i
        cdef Event* e
        out = []
        for i in range(self.n_events):
            e = &self.events[i]
            out.append(PyEvent(e.seq, e.type, e.side, e.reason, e.order_id, e.other_id,
                             e.price, e.qty, e.leaves, e.other_leaves))
        self.n_events = 0
        return out

    def take_event_rows(self):
        """Drain pending events as plain tuples in matching.records.Event's field order
        (the engine's drain: no namedtuple to build per event)."""
        cdef Py_ssize_t i
        cdef Event* e
        out = []
        for i in range(self.n_events):
            e = &self.events[i]
            out.append((e.seq, e.type, e.side, e.reason, e.order_id, e.other_id,
                        e.price, e.qty, e.leaves, e.other_leaves))
        self.n_events = 0
        return out

    # ------------------------------------------------------------------ queries
    def best_bid(self):
        """Best bid price in ticks, or None. O(1)."""
        return self.price_lo + self.best[SIDE_BUY] if self.best[SIDE_BUY] >= 0 else None

    def best_ask(self):
        """Best ask price in ticks, or None. O(1)."""
        return self.price_lo + self.best[SIDE_SELL] if self.best[SIDE_SELL] >= 0 else None

    def depth(self, int side, Py_ssize_t n):
        """The best ``n`` levels of a side as ``[(price, qty, count)]``, best first."""
        if side != SIDE_BUY and side != SIDE_SELL:
            raise ValueError(f"side must be 1 (buy) or 2 (sell), got {side}")
        out = []
        cdef int64_t idx = self.best[side]
        cdef Level* lv
        while idx >= 0 and len(out) < n:
            lv = &self.levels[side][idx]
            out.append((self.price_lo + idx, lv.total, lv.count))
            idx = self.scan_next(side, idx - 1 if side == SIDE_BUY else idx + 1)
        return out

    def order(self, int64_t order_id):
        """``(side, price, leaves, account)`` of a live order (price None: a market order
        in a call), or None. O(1)."""
        cdef int32_t slot = self.find(order_id) if order_id > 0 else -1
        if slot < 0:
            return None
        cdef Order* o = &self.pool[slot]
        return (o.side, None if o.market else o.price, o.leaves, o.account)

    def resting_orders(self):
        """Every live order, bids best first then asks best first, FIFO within a level;
        in a call each side's market orders (price None) come first, in time order."""
        out = []
        cdef int side
        cdef int64_t idx
        cdef int32_t slot
        cdef Order* o
        for side in (SIDE_BUY, SIDE_SELL):
            slot = self.mkt[side].head
            while slot >= 0:
                o = &self.pool[slot]
                out.append((o.order_id, o.side, None, o.leaves, o.account, o.stp,
                            bool(o.post_only)))
                slot = o.next
            idx = self.best[side]
            while idx >= 0:
                slot = self.levels[side][idx].head
                while slot >= 0:
                    o = &self.pool[slot]
                    out.append((o.order_id, o.side, o.price, o.leaves, o.account, o.stp,
                                bool(o.post_only)))
                    slot = o.next
                idx = self.scan_next(side, idx - 1 if side == SIDE_BUY else idx + 1)
        return out

    def __len__(self):
        return self.live

    def memory_bytes(self):
        """Bytes held: ``{'orders': pool + id index, 'ladder': levels + bitmaps, 'buffers': ...}``."""
        return {
            "orders": self.pool_cap * sizeof(Order) + (self.idmap_mask + 1) * sizeof(int32_t),
            "ladder": 2 * self.n_levels * sizeof(Level) + 2 * self.n_words * sizeof(uint64_t),
            "buffers": self.ev_cap * sizeof(Event) + self.touched_cap * sizeof(int64_t),
        }

    def check(self):
        """Verify every invariant of the book; raises AssertionError with the culprit."""
        cdef int side
        cdef int64_t idx, total, count, seen = 0, expect_best
        cdef int32_t slot, prev
        cdef Level* lv
        cdef Order* o
        cdef uint64_t bit
        for side in (SIDE_BUY, SIDE_SELL):
            expect_best = -1
            for idx in range(self.n_levels):
                lv = &self.levels[side][idx]
                bit = (self.bitmap[side][idx >> 6] >> (idx & 63)) & 1
                assert bit == (lv.count > 0), f"bitmap bit {bit} at side {side} level {idx} with {lv.count} orders"
                if lv.count == 0:
                    assert lv.total == 0 and lv.head == -1 and lv.tail == -1, f"empty level {side}/{idx} not clean"
                    continue
                if side == SIDE_BUY or expect_best < 0:    # highest bid, lowest ask
                    expect_best = idx
                total = 0
                count = 0
                prev = -1
                slot = lv.head
                while slot >= 0:
                    o = &self.pool[slot]
                    assert o.prev == prev, f"broken back link at order {o.order_id}"
                    assert o.side == side and o.price == self.price_lo + idx and not o.market, f"order {o.order_id} on the wrong level"
                    assert o.leaves > 0, f"order {o.order_id} rests with leaves {o.leaves}"
                    assert self.find(o.order_id) == slot, f"id index lost order {o.order_id}"
                    total += o.leaves
                    count += 1
                    prev = slot
                    slot = o.next
                assert lv.tail == prev, f"tail of level {side}/{idx} wrong"
                assert total == lv.total, f"level {side}/{idx} total {lv.total} != {total}"
                assert count == lv.count, f"level {side}/{idx} count {lv.count} != {count}"
                seen += count
            assert self.best[side] == expect_best, f"best of side {side} is {self.best[side]}, expected {expect_best}"
            lv = &self.mkt[side]
            total = 0
            count = 0
            prev = -1
            slot = lv.head
            while slot >= 0:
                o = &self.pool[slot]
                assert o.prev == prev, f"broken back link at market order {o.order_id}"
                assert o.market and o.side == side and o.price == 0, f"market order {o.order_id} misfiled"
                assert o.leaves > 0, f"market order {o.order_id} rests with leaves {o.leaves}"
                assert self.find(o.order_id) == slot, f"id index lost order {o.order_id}"
                total += o.leaves
                count += 1
                prev = slot
                slot = o.next
            assert lv.tail == prev and total == lv.total and count == lv.count, f"market queue {side} wrong"
            assert self.in_call or count == 0, "a market order rests outside a call"
            seen += count
        assert seen == self.live, f"{self.live} orders indexed, {seen} on levels"
        if not self.in_call:
            assert self.count_gfa() == 0, "a good-for-auction order rests outside a call"
            if self.best[SIDE_BUY] >= 0 and self.best[SIDE_SELL] >= 0:
                assert self.best[SIDE_BUY] < self.best[SIDE_SELL], "book is crossed"

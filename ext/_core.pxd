# cython: language_level=3
"""Table of contents of the matching core: C records, codes and the Book's cdef API.

The rules are in docs/matching-rules.md; the numbers below equal matching/constants.py
(tests/book/test_codes.py pins it). Orders live in a pool of C structs addressed by int32
slot, so the pool can grow by realloc without invalidating links.
"""
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint64_t

cdef extern from *:
    """
    static inline int tb_ctz64(unsigned long long x) { return __builtin_ctzll(x); }
    static inline int tb_clz64(unsigned long long x) { return __builtin_clzll(x); }
    """
    int tb_ctz64(unsigned long long x) nogil
    int tb_clz64(unsigned long long x) nogil

cdef enum:
    OP_NEW = 1
    OP_CANCEL = 2
    OP_AMEND = 3
    OP_EXPIRE = 4

    SIDE_BUY = 1
    SIDE_SELL = 2

    ORD_MARKET = 1
    ORD_LIMIT = 2

    TIF_DAY = 0
    TIF_GTC = 1
    TIF_IOC = 3
    TIF_FOK = 4
    TIF_GTD = 6
    TIF_GFA = 11                    # good for auction: rests only in a call

    STP_NONE = 0
    STP_CANCEL_RESTING = 1
    STP_CANCEL_INCOMING = 2
    STP_CANCEL_BOTH = 3
    STP_DECREMENT_AND_CANCEL = 4

    EV_ACCEPTED = 1
    EV_REJECTED = 2
    EV_TRADE = 3
    EV_CANCELLED = 4
    EV_AMENDED = 5
    EV_EXPIRED = 6
    EV_DECREMENTED = 7
    EV_LEVEL = 8

    REJ_UNKNOWN_ORDER = 1
    REJ_DUPLICATE_ORDER_ID = 2
    REJ_INVALID_ORDER_ID = 3
    REJ_INVALID_QUANTITY = 4
    REJ_PRICE_OUT_OF_RANGE = 5
    REJ_INVALID_SIDE = 6
    REJ_INVALID_ORDER_TYPE = 7
    REJ_INVALID_TIME_IN_FORCE = 8
    REJ_INVALID_EXPIRE_TIME = 9
    REJ_POST_ONLY_WOULD_TAKE = 10
    REJ_INVALID_POST_ONLY = 11
    REJ_INVALID_MIN_QTY = 12
    REJ_INVALID_STP_MODE = 13
    REJ_INVALID_ACCOUNT = 14
    REJ_UNKNOWN_COMMAND = 15
    REJ_BOOK_FULL = 16
    REJ_IMMEDIATE_IN_CALL = 17
    REJ_POST_ONLY_IN_CALL = 18
    REJ_AUCTION_ONLY = 19
    REJ_NOT_IN_CALL = 20

    CXL_USER = 1
    CXL_IOC_REMAINDER = 2
    CXL_FOK_NOT_FILLED = 3
    CXL_MIN_QTY_NOT_MET = 4
    CXL_MARKET_REMAINDER = 5
    CXL_SELF_TRADE = 6
    CXL_EXPIRED = 7
    CXL_AUCTION_REMAINDER = 8

    AMEND_KEPT = 1
    AMEND_LOST = 2

# One command record: the layout of matching.records.COMMAND_DTYPE (56 bytes).
ctypedef struct Command:
    int64_t order_id
    int64_t account
    int64_t price
    int64_t qty
    int64_t min_qty
    int64_t expire_time
    uint8_t op
    uint8_t side
    uint8_t ord_type
    uint8_t tif
    uint8_t stp
    uint8_t post_only
    uint8_t _pad[2]

# One event record: the layout of matching.records.EVENT_DTYPE (64 bytes).
# Field meanings per type are tabled in docs/matching-rules.md.
ctypedef struct Event:
    int64_t seq
    int64_t order_id
    int64_t other_id
    int64_t price
    int64_t qty
    int64_t leaves
    int64_t other_leaves
    uint8_t type
    uint8_t side
    uint16_t reason
    uint8_t _pad[4]

# A resting order (48 bytes): a node of its level's intrusive doubly-linked FIFO.
ctypedef struct Order:
    int64_t order_id
    int64_t account
    int64_t leaves
    int64_t price
    int32_t prev
    int32_t next
    uint8_t side
    uint8_t stp
    uint8_t post_only
    uint8_t tif
    uint8_t market                   # 1: a market order resting in a call (no level)

# One price level of one side: FIFO ends, aggregate open quantity and order count.
# `touched` stamps the command that last changed it, to report each level once.
ctypedef struct Level:
    int64_t total
    int64_t touched
    int32_t head
    int32_t tail
    int32_t count


cdef class Book:
    # ladder
    cdef readonly int64_t price_lo
    cdef readonly int64_t n_levels
    cdef Level* levels[3]            # indexed by side (1 bid, 2 ask); [0] unused
    cdef uint64_t* bitmap[3]         # one bit per non-empty level
    cdef int64_t n_words
    cdef int64_t best[3]             # best level index per side, -1 when empty
    # order pool and id index
    cdef Order* pool
    cdef int32_t pool_cap
    cdef int32_t pool_used
    cdef int32_t free_head
    cdef readonly int64_t capacity   # 0: grows; >0: fixed, BOOK_FULL when reached
    cdef int32_t* idmap              # open addressing, linear probing; -1 empty
    cdef uint64_t idmap_mask
    cdef int idmap_shift
    cdef int64_t live
    # events and touched levels of the current command
    cdef Event* events
    cdef int64_t n_events
    cdef int64_t ev_cap
    cdef int64_t* touched_list        # side * 2**40 + level index
    cdef int64_t n_touched
    cdef int64_t touched_cap
    cdef int64_t epoch
    cdef readonly int64_t seq
    # call auction: market orders rest in their side's queue, off the ladder
    cdef readonly bint in_call
    cdef uint16_t fast_tifs           # tifs a NEW takes on the continuous path (0 in a call)
    cdef Level mkt[3]

    # id index
    cdef int alloc_idmap(self, uint64_t cap) except -1
    cdef uint64_t home(self, int64_t order_id) noexcept
    cdef int32_t find(self, int64_t order_id) noexcept
    cdef int map_insert(self, int32_t slot) except -1
    cdef void map_erase(self, int64_t order_id) noexcept
    cdef int map_grow(self) except -1
    # pool
    cdef int32_t alloc_slot(self) except -2
    cdef void free_slot(self, int32_t slot) noexcept
    # levels
    cdef int touch(self, int side, int64_t idx) except -1
    cdef int level_append(self, int32_t slot) except -1
    cdef int level_unlink(self, int32_t slot) except -1
    cdef bint queue_push(self, Level* q, int32_t slot) noexcept
    cdef bint queue_remove(self, Level* q, int32_t slot) noexcept
    cdef int64_t scan_next(self, int side, int64_t from_idx) noexcept
    cdef int crosses(self, int side, int64_t idx) noexcept
    # events
    cdef int emit(self, int type, int side, int reason, int64_t order_id, int64_t other_id,
                  int64_t price, int64_t qty, int64_t leaves, int64_t other_leaves) except -1
    cdef int flush_levels(self) except -1
    # commands
    cdef int do_command(self, const Command* c) except -1
    cdef int do_new(self, const Command* c) except -1
    cdef int do_cancel(self, int64_t order_id, int64_t price, int64_t qty, int expire) except -1
    cdef int do_amend(self, int64_t order_id, int64_t price, int64_t qty) except -1
    cdef int reject(self, int side, int reason, int64_t order_id, int64_t price, int64_t qty) except -1
    cdef int64_t fillable(self, int side, int64_t limit_idx, int64_t qty, int64_t account,
                          int stp) noexcept
    cdef int64_t match(self, int64_t order_id, int side, int64_t limit_idx, int64_t ev_price,
                       int64_t leaves, int64_t account, int stp) except -1
    cdef int remove_order(self, int32_t slot) except -1
    # call auction (ext/_core.pyx, "call auction"; rules in docs/matching-rules.md)
    cdef int rest_new(self, const Command* c, int64_t leaves) except -1
    cdef int mkt_append(self, int32_t slot) noexcept
    cdef int mkt_unlink(self, int32_t slot) noexcept
    cdef int drop(self, int32_t slot) except -1
    cdef int do_new_checked(self, const Command* c) except -1
    cdef int do_new_in_call(self, const Command* c) except -1
    cdef int do_amend_in_call(self, int32_t slot, int64_t price, int64_t qty) except -1
    cdef int64_t supply_demand(self, int64_t idx, int side) noexcept
    cdef int auction_price(self, int64_t reference, int64_t width, int64_t* out) except -1
    cdef int32_t next_executable(self, int side, int64_t idx) noexcept
    cdef int take_qty(self, int32_t slot, int64_t q) except -1
    cdef int do_uncross(self, int64_t reference, int64_t width) except -1
    cdef int64_t count_gfa(self) except -1
    cdef object indicative_of(self, int64_t reference, int64_t width)
    # the typed command behind every Python entry point (submit, new_order, cancel, ...)
    cdef int _submit(self, int64_t op, int64_t order_id, int64_t side, int64_t ord_type,
                     int64_t tif, int64_t stp, bint post_only, int64_t account, int64_t price,
                     int64_t qty, int64_t min_qty, int64_t expire_time) except -1

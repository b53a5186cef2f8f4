# cython: language_level=3
"""Augmenting declarations: matching/engine.py compiled as a C extension (setup.py).

matching/engine.py is the source of truth and still runs uncompiled. Compiled, the
Engine and its per-instrument conversions become extension types with C-level attribute
slots, and the per-input helpers below become C calls instead of Python method calls.
Every attribute stays public (readable and assignable from Python, as before).
"""
cimport cython

from matching.economics cimport Economics, _qty_str
from matching.ledger cimport Ledger

# Module constants of the hot path as C values (the .py assigns them as usual).
cdef long long _BUY, _MARKET, _GTD
cdef long long _EV_LEVEL, _EV_ACCEPTED, _EV_TRADE, _EV_CANCELLED, _EV_EXPIRED
cdef long long _EV_DECREMENTED, _EV_AMENDED, _EV_REJECTED
cdef Py_ssize_t _TYPE, _SIDE, _REASON, _ORDER_ID, _OTHER_ID, _PRICE, _QTY, _LEAVES
cdef long long _LIMIT_CODE
cdef dict _SIDES, _SIDE_NAMES, _TIFS, _STPS, _SIDE_CODES, _TIF_CODES, _CANCEL_NAMES, _REJECT_NAMES

cdef Outcome _new_outcome(seq)
cdef str _cancel_name(code)
cdef str _reject_name(code)


cdef class Outcome:
    cdef public long long seq
    cdef public list reports
    cdef public list trades
    cdef public list levels
    cdef public bint replayed
    cdef public bint sequenced
    cdef public str refused
    cdef public object settled_cash


cdef class LiveOrder:     # no_gc: see the decorator in engine.py
    # Lots, ticks and times are within int64 (the book's C types); account ids, the
    # fills' tick x lot value and cash reservations are unbounded Python ints.
    cdef public long long order_id
    cdef public str broker
    cdef public str cl_ord_id
    cdef public object account
    cdef public str symbol
    cdef public long long side
    cdef public long long ord_type
    cdef public long long price
    cdef public long long qty
    cdef public long long tif
    cdef public long long expire_time
    cdef public long long cum_qty
    cdef public object cum_value
    cdef public long long leaves
    cdef public object reserved
    cdef public str status
    cdef public object orig_cl_ord_id
    cdef public str id_str
    cdef public str price_str
    cdef public str qty_str

    cpdef tuple row(self)


cdef class _Conversions:
    cdef public object inst
    cdef public dict ticks
    cdef public dict lots
    cdef public dict price_str
    cdef public dict qty_str
    cdef public dict avg_str
    cdef public object min_order_lots

    cpdef to_ticks(self, price)
    cpdef to_lots(self, qty)
    cpdef price(self, ticks)
    cpdef avg(self, ticks)
    cpdef qty(self, lots)


cdef str _id_str(LiveOrder o)
cdef _price_str(LiveOrder o, _Conversions conv)
cdef str _qty_str_of(LiveOrder o, _Conversions conv)


cdef class Engine:
    cdef public Ledger ledger
    cdef public object clock
    cdef public object journal
    cdef public object fee_account
    cdef public dict instruments
    cdef public dict economics
    cdef public dict _bands
    cdef public dict _conv
    cdef public dict books
    cdef public dict state
    cdef public dict state_reason
    cdef public dict state_seq
    cdef public long long seq
    cdef public dict orders
    cdef public dict by_clordid
    cdef public dict outcomes
    cdef public object resend_window
    cdef public dict _outcome_order
    cdef public long long _order_first
    cdef public long long _order_next
    cdef public long long next_order_id
    cdef public long long next_exec_id
    cdef public long long next_trade_id
    cdef public object now
    cdef public Outcome _out
    cdef public list _reports
    cdef public list _trades
    cdef public list _levels
    cdef public bint _replaying
    cdef public long long unparsed_rejects

    @cython.locals(out=Outcome, reports=list)
    cpdef _sequenced(self, broker, msg, now)
    @cython.locals(order=dict)
    cdef _remember(self, broker, cl_ord_id, tuple reports)
    cdef _apply(self, broker, msg)
    @cython.locals(o=LiveOrder)
    cdef _new_order(self, broker, m)
    @cython.locals(conv=_Conversions, oid=cython.longlong, economics=Economics)
    cdef LiveOrder _admit(self, broker, m)
    cdef _require_open(self, symbol)
    cdef _require_account(self, broker, account, inst)
    @cython.locals(conv=_Conversions)
    cdef _lots(self, symbol, qty)
    @cython.locals(conv=_Conversions)
    cdef _ticks(self, symbol, price)
    cdef _hold(self, account, asset, amount, ref, bint is_cash)
    @cython.locals(economics=Economics)
    cdef _resize_reservation(self, LiveOrder o)
    @cython.locals(o=LiveOrder)
    cdef LiveOrder _find(self, broker, m)
    @cython.locals(o=LiveOrder)
    cdef _cancel(self, broker, m)
    @cython.locals(events=list, o=LiveOrder)
    cdef _replace(self, broker, m)
    cdef _extra_reservation(self, LiveOrder o, price, leaves)
    cdef _reserve_more(self, LiveOrder o, amount)
    cdef _drain(self, symbol)
    @cython.locals(conv=_Conversions, orders=dict, e=tuple, t=cython.longlong, o=LiveOrder)
    cdef _handle(self, symbol, list events)
    cdef str _status(self, LiveOrder o)
    @cython.locals(economics=Economics, fill=tuple, conv=_Conversions, buyer=LiveOrder,
                   seller=LiveOrder, o=LiveOrder)
    cdef _fill(self, LiveOrder taker, LiveOrder maker, long long price, long long lots)
    cdef _close(self, LiveOrder o)
    @cython.locals(economics=Economics)
    cdef _avg(self, LiveOrder o, _Conversions conv)
    @cython.locals(eid=cython.longlong)
    cdef _report(self, LiveOrder o, exec_type, status, text, reason, _Conversions conv)
    @cython.locals(eid=cython.longlong)
    cdef _report_fill(self, LiveOrder o, tuple fill, trade_id, liquidity, _Conversions conv)
    cdef _reject(self, broker, m, reason, text)
    cdef _exec_id(self)

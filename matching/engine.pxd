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

cdef _new_outcome(seq)
cdef str _cancel_name(code)
cdef str _reject_name(code)


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
    cdef public long long seq
    cdef public dict orders
    cdef public dict by_clordid
    cdef public dict outcomes
    cdef public object resend_window
    cdef public object _outcome_order
    cdef public long long next_order_id
    cdef public long long next_exec_id
    cdef public long long next_trade_id
    cdef public object now
    cdef public object _out
    cdef public list _reports
    cdef public list _trades
    cdef public list _levels
    cdef public bint _replaying
    cdef public long long unparsed_rejects

    cpdef _sequenced(self, broker, msg, now)
    cdef _remember(self, broker, cl_ord_id, tuple reports)
    cdef _apply(self, broker, msg)
    cdef _new_order(self, broker, m)
    @cython.locals(conv=_Conversions, oid=cython.longlong, economics=Economics)
    cdef _admit(self, broker, m)
    cdef _require_open(self, symbol)
    cdef _require_account(self, broker, account, inst)
    @cython.locals(conv=_Conversions)
    cdef _lots(self, symbol, qty)
    @cython.locals(conv=_Conversions)
    cdef _ticks(self, symbol, price)
    cdef _hold(self, account, asset, amount, ref, bint is_cash)
    @cython.locals(economics=Economics)
    cdef _resize_reservation(self, o)
    cdef _find(self, broker, m)
    cdef _cancel(self, broker, m)
    @cython.locals(events=list)
    cdef _replace(self, broker, m)
    cdef _extra_reservation(self, o, price, leaves)
    cdef _reserve_more(self, o, amount)
    cdef _drain(self, symbol)
    @cython.locals(conv=_Conversions, orders=dict, e=tuple, t=cython.longlong)
    cdef _handle(self, symbol, list events)
    cdef _status(self, o)
    @cython.locals(economics=Economics, fill=tuple, conv=_Conversions)
    cdef _fill(self, taker, maker, price, lots)
    cdef _close(self, o)
    @cython.locals(economics=Economics)
    cdef _avg(self, o, _Conversions conv)
    @cython.locals(eid=cython.longlong)
    cdef _report(self, o, exec_type, status, text, reason, _Conversions conv)
    @cython.locals(eid=cython.longlong)
    cdef _report_fill(self, o, tuple fill, trade_id, liquidity, _Conversions conv)
    cdef _reject(self, broker, m, reason, text)
    cdef _exec_id(self)

# cython: language_level=3
"""Augmenting declarations: matching/reports.py compiled as a C extension (setup.py).

matching/reports.py is the source of truth and still runs uncompiled."""
cimport cython

from matching.economics cimport Economics, FillEconomics
from matching.orders cimport Conversions, LiveOrder, id_str, price_str, qty_str_of

cdef long long _BUY


cpdef str _at_least(str avg, str zero)


cdef class ReportBuilder:
    cdef public dict economics
    cdef public long long next_exec_id
    cdef public long long unparsed_rejects
    cdef public long long epoch
    cdef public dict conv

    @cython.locals(economics=Economics)
    cpdef str avg_px(self, LiveOrder o, Conversions conv)
    @cython.locals(eid=cython.longlong)
    cpdef order(self, LiveOrder o, exec_type, ord_status, text, reason, Conversions conv,
                seq, now)
    @cython.locals(eid=cython.longlong, leaves=cython.longlong)
    cpdef fill(self, LiveOrder o, FillEconomics fill, trade_id, liquidity,
               Conversions conv, seq, now)
    @cython.locals(eid=cython.longlong, conv=Conversions)
    cpdef reject(self, m, reason, text, seq, now)
    cpdef cancel_reject(self, m, response_to, reason, text, order_id, account, ord_status,
                        seq, now)

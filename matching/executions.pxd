# cython: language_level=3
"""Augmenting declarations: matching/executions.py compiled as a C extension (setup.py).

matching/executions.py is the source of truth and still runs uncompiled."""
cimport cython

from matching.clordid cimport ClOrdIdMemory
from matching.economics cimport Economics, FillEconomics
from matching.expiry cimport ExpiryIndex
from matching.ledger cimport Ledger
from matching.orders cimport Conversions, LiveOrder
from matching.outputs cimport Outcome
from matching.reports cimport ReportBuilder
from matching.risk cimport PreTradeRisk

# Module constants of the hot path as C values (the .py assigns them as usual).
cdef long long _BUY, _GTD
cdef long long _EV_LEVEL, _EV_ACCEPTED, _EV_TRADE, _EV_CANCELLED, _EV_EXPIRED
cdef long long _EV_DECREMENTED, _EV_AMENDED, _EV_REJECTED
cdef Py_ssize_t _TYPE, _SIDE, _REASON, _ORDER_ID, _OTHER_ID, _PRICE, _QTY, _LEAVES
cdef dict _SIDE_NAMES, _CANCEL_NAMES, _REJECT_NAMES
cdef long long _NS


cdef class Executions:
    cdef public dict orders
    cdef public Ledger ledger
    cdef public PreTradeRisk risk
    cdef public ReportBuilder reports
    cdef public ExpiryIndex expiry
    cdef public dict economics
    cdef public dict conv
    cdef public dict fees
    cdef public ClOrdIdMemory clordids
    cdef public long long next_trade_id
    cdef public bint auction
    cdef public object auctions
    cdef public object compliance
    cdef public object now
    cdef public str stamp
    cdef public long long _second
    cdef public str _prefix
    cdef public Outcome _out
    cdef public Outcome _idle
    cdef public list _reports
    cdef public list _trades
    cdef public list _levels

    cpdef begin(self, Outcome out, now)
    @cython.locals(second=cython.longlong)
    cdef str _stamp(self, long long now)
    cpdef end(self)
    cpdef tell(self, broker, report)
    cpdef resize_reservation(self, LiveOrder o)
    @cython.locals(conv=Conversions, orders=dict, e=tuple, t=cython.longlong, o=LiveOrder,
                   reports=ReportBuilder, seq=cython.longlong)
    cpdef handle(self, symbol, list events, cancel_text=*)
    cdef str _status(self, LiveOrder o)
    @cython.locals(economics=Economics, fill=FillEconomics, buyer=LiveOrder,
                   seller=LiveOrder, o=LiveOrder, reports=ReportBuilder, auction=cython.bint)
    cdef _fill(self, LiveOrder taker, LiveOrder maker, long long price, long long lots,
               Conversions conv)
    cdef tuple _fees(self, schedule, LiveOrder buyer, LiveOrder seller, LiveOrder taker,
                     amount, lots, Conversions conv)
    cdef _close(self, LiveOrder o, status)

# cython: language_level=3
"""Augmenting declarations: matching/engine.py compiled as a C extension (setup.py).

matching/engine.py is the source of truth and still runs uncompiled. Compiled, the Engine
is an extension type whose parts are typed C attributes, so every per-input call into
them (risk, ClOrdID memory, reports, ledger, economics) is a C call. Every attribute stays
public (readable and assignable from Python).
"""
cimport cython

from matching.clordid cimport ClOrdIdMemory
from matching.executions cimport Executions
from matching.expiry cimport ExpiryIndex
from matching.ledger cimport Ledger
from matching.orders cimport LiveOrder
from matching.outputs cimport Outcome, new_outcome
from matching.reports cimport ReportBuilder
from matching.risk cimport PreTradeRisk
from matching.session cimport TradingSession

# Module constants of the hot path as C values (the .py assigns them as usual).
cdef long long _LIMIT, _MARKET, _IOC, _FOK, _DAY, _GTD, _EV_REJECTED, _BUY, _SELL
cdef Py_ssize_t _TYPE, _REASON
cdef dict _REJECT_NAMES

cdef str _reject_name(code)


cdef class Engine:
    cdef public Ledger ledger
    cdef public object clock
    cdef public object journal
    cdef public str book_engine
    cdef public dict instruments
    cdef public dict economics
    cdef public dict books
    cdef public TradingSession session
    cdef public ClOrdIdMemory clordids
    cdef public PreTradeRisk risk
    cdef public dict conv
    cdef public ReportBuilder reports
    cdef public ExpiryIndex expiry
    cdef public long long seq
    cdef public dict orders
    cdef public long long next_order_id
    cdef public Executions executions
    cdef public object auctions
    cdef public object now
    cdef public object corporate
    cdef public object accounts_admin
    cdef public object issuance
    cdef public object order_status_desk
    cdef public object mass_cancels
    cdef public object day_stats
    cdef public object fault
    cdef public bint _replaying
    cdef public object data_dir

    @cython.locals(out=Outcome, executions=Executions, duplicate=cython.bint)
    cpdef _sequenced(self, broker, msg, now)
    cdef _apply(self, broker, msg)
    cdef _reject(self, broker, m, reason, text)
    cdef _cancel_reject(self, broker, m, reason, text)
    @cython.locals(o=LiveOrder)
    cdef _cancel_reject_of(self, broker, m, reason, text, stamp)
    cdef _duplicate(self, broker, m)
    @cython.locals(o=LiveOrder)
    cdef _new_order(self, broker, m)
    @cython.locals(o=LiveOrder)
    cdef _cancel(self, broker, m)
    @cython.locals(events=list, o=LiveOrder)
    cdef _replace(self, broker, m)
    cdef _drain(self, symbol)

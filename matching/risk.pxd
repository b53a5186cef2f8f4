# cython: language_level=3
"""Augmenting declarations: matching/risk.py compiled as a C extension (setup.py).

matching/risk.py is the source of truth and still runs uncompiled."""
cimport cython

from matching.clordid cimport ClOrdIdMemory
from matching.economics cimport Economics
from matching.ledger cimport Ledger
from matching.orders cimport Conversions, LiveOrder
from matching.session cimport TradingSession

cdef long long _BUY, _GTD, _LIMIT_CODE, _MARKET
cdef dict _SIDE_CODES, _TIF_CODES


cdef class PreTradeRisk:
    cdef public dict instruments
    cdef public dict economics
    cdef public Ledger ledger
    cdef public TradingSession session
    cdef public ClOrdIdMemory clordids
    cdef public dict bands
    cdef public dict conv
    cdef public dict life
    cdef public dict books
    cdef public dict fees
    cdef public object compliance

    @cython.locals(conv=Conversions, economics=Economics)
    cpdef LiveOrder admit(self, broker, m, order_id, now)
    cdef _market_buy_cash(self, Economics economics, book, account, symbol, lots, band_hi,
                          Conversions conv, bint prevents_self_trade)
    cdef _fee_reserve(self, symbol, account, worst_cash, lots, Conversions conv)
    cdef _require_life(self, symbol, tuple life, now)
    cdef _require_account(self, broker, account, inst)
    cdef _hold(self, account, asset, amount, ref, bint is_cash, inst, more)
    @cython.locals(o=LiveOrder)
    cpdef LiveOrder find(self, broker, m, dict orders)
    cpdef tuple replace_terms(self, LiveOrder o, m, now)
    @cython.locals(economics=Economics)
    cpdef need(self, LiveOrder o, price, leaves)
    cdef _reserve_more(self, LiveOrder o, amount)
    cpdef top_up(self, LiveOrder o, need)
    @cython.locals(conv=Conversions)
    cpdef lots(self, symbol, qty)
    @cython.locals(conv=Conversions)
    cpdef ticks(self, symbol, price)

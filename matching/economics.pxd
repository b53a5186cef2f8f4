# cython: language_level=3
"""Augmenting declarations: matching/economics.py compiled as a C extension (setup.py).

matching/economics.py is the source of truth and still runs uncompiled."""

cdef class FillEconomics:
    cdef public str price
    cdef public str qty
    cdef public object accrued_per_100
    cdef public object accrued_cash
    cdef public str settlement_cash
    cdef public object settlement_amount
    cdef public object yield_pct
    cdef public object settle_date


cdef class Economics:
    cdef public object inst
    cdef public bint debt
    cdef public tuple _wc
    cdef public dict _fills
    cdef public object _avg_exp
    cdef public object _settle_day
    cdef public object _settle
    cdef public int _token_places
    cdef public int _cash_places
    cdef public object _tick_coef
    cdef public object _tick_exp
    cdef public bint _avg_int
    cdef public str _rounding

    cpdef worst_case_cash(self, ticks, lots)
    cpdef FillEconomics of_fill(self, ticks, lots, now_ns)
    cpdef _fill_terms(self, ticks, settle)
    cpdef avg_px(self, cum_value_ticks, cum_lots)


cpdef str _fixed(object n, int places)
cpdef str _cash_str(object amount, int places)
cpdef str _qty_str(object inst, object lots, int places)
cpdef str _avg_fast(object value, object lots, object places)
cpdef object _half_even(object num, object den)

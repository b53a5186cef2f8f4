# cython: language_level=3
"""Augmenting declarations: matching/orders.py compiled as a C extension (setup.py).

matching/orders.py is the source of truth and still runs uncompiled."""

cdef long long _LIMIT_CODE


cdef class LiveOrder:     # no_gc: see the decorator in orders.py
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


cdef class Conversions:
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


cpdef str id_str(LiveOrder o)
cpdef price_str(LiveOrder o, Conversions conv)
cpdef str qty_str_of(LiveOrder o, Conversions conv)

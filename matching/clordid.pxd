# cython: language_level=3
"""Augmenting declarations: matching/clordid.py compiled as a C extension (setup.py).

matching/clordid.py is the source of truth and still runs uncompiled."""
cimport cython


cdef class ClOrdIdMemory:
    cdef public object window
    cdef public dict orders
    cdef public dict outcomes
    cdef public dict _order
    cdef public long long _first
    cdef public long long _next

    cpdef told(self, broker, cl_ord_id)
    cpdef bint used(self, broker, cl_ord_id)
    cpdef order_of(self, broker, cl_ord_id)
    cpdef bind(self, broker, cl_ord_id, order_id)
    @cython.locals(order=dict)
    cpdef remember(self, broker, cl_ord_id, tuple reports)

# cython: language_level=3
"""Augmenting declarations: matching/clordid.py compiled as a C extension (setup.py).

matching/clordid.py is the source of truth and still runs uncompiled."""
cimport cython

cdef object _ENCODER, _ASTUPLE

cpdef bytes digest_of(msg)


cdef class ClOrdIdMemory:
    cdef public object window
    cdef public dict orders
    cdef public dict outcomes
    cdef public dict finished
    cdef public dict _order
    cdef public long long _first
    cdef public long long _next

    @cython.locals(kept=tuple)
    cpdef told(self, broker, cl_ord_id)
    @cython.locals(kept=tuple, last=Py_ssize_t)
    cpdef resend(self, broker, msg)
    cpdef bint used(self, broker, cl_ord_id)
    cpdef order_of(self, broker, cl_ord_id)
    cpdef status_of(self, order_id)
    cpdef bind(self, broker, cl_ord_id, order_id)
    cpdef finish(self, order_id, status)
    @cython.locals(order=dict, kept=tuple)
    cpdef remember(self, broker, msg, list reports)

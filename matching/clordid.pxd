# cython: language_level=3
"""Augmenting declarations: matching/clordid.py compiled as a C extension (setup.py).

matching/clordid.py is the source of truth and still runs uncompiled."""
cimport cython

cdef object _ENCODER, _ASTUPLE

cpdef bytes digest_of(msg)
cpdef bytes _record(broker, cl_ord_id)
cpdef object _digest(broker, cl_ord_id)


cdef class ClOrdIdIndex:
    cdef bytearray _arena
    cdef Py_ssize_t _count
    cdef unsigned long long _mask
    # Typed views of the slot arrays: a probe or a rehash step is a C load, not a
    # Python int per read (the index is ~a third of an order's submit otherwise).
    cdef unsigned long long[::1] _digests
    cdef long long[::1] _refs, _oids

    cpdef _alloc(self, Py_ssize_t capacity)
    @cython.locals(i=Py_ssize_t, d="unsigned long long", off=Py_ssize_t, rec=object,
                   mask="unsigned long long", digests="unsigned long long[::1]")
    cpdef Py_ssize_t _slot(self, broker, cl_ord_id, unsigned long long digest)
    @cython.locals(i=Py_ssize_t)
    cpdef lookup(self, broker, cl_ord_id)
    @cython.locals(i=Py_ssize_t, digest="unsigned long long")
    cpdef store(self, broker, cl_ord_id, long long order_id, bint replace)
    @cython.locals(i=Py_ssize_t, j=Py_ssize_t, n=Py_ssize_t, d="unsigned long long",
                   mask="unsigned long long", digests="unsigned long long[::1]",
                   refs="long long[::1]", oids="long long[::1]",
                   new_digests="unsigned long long[::1]", new_refs="long long[::1]",
                   new_oids="long long[::1]")
    cpdef _grow(self)


cdef class DoneStatuses:
    cdef Py_ssize_t _base
    cdef bytearray _row
    cdef dict _other

    @cython.locals(i=Py_ssize_t)
    cpdef set(self, order_id, status)
    @cython.locals(i=Py_ssize_t)
    cpdef get(self, order_id, default=*)


cdef class ClOrdIdMemory:
    cdef public object window
    cdef public ClOrdIdIndex orders
    cdef public dict outcomes
    cdef public DoneStatuses finished
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

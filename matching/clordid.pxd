# cython: language_level=3
"""Augmenting declarations: matching/clordid.py compiled as a C extension (setup.py).

matching/clordid.py is the source of truth and still runs uncompiled."""
cimport cython

cdef object _ENCODER, _ASTUPLE
cdef Py_ssize_t _MOVE_STEP, _MAPPED_BYTES, _RELEASE_BYTES, _ARENA_CHUNK, _CHUNK_SHIFT
cdef int _PRIVATE

cpdef bytes digest_of(msg)
cpdef bytes _record(broker, cl_ord_id)
cpdef object _digest(broker, cl_ord_id)


cdef class ClOrdIdIndex:
    # The arena: records appended to the last chunk (_arena) of _chunks, in order.
    cdef bytearray _arena
    cdef list _chunks
    cdef Py_ssize_t _arena_bytes
    cdef Py_ssize_t _count
    cdef unsigned long long _mask
    # Typed views of the slot arrays: a probe or a move step is a C load, not a
    # Python int per read (the index is ~a third of an order's submit otherwise).
    cdef unsigned long long[::1] _digests
    cdef long long[::1] _refs, _oids
    cdef tuple _maps
    # The table a resize moves from: its slots before _moved are in the current table
    # (and the first _released bytes of each array given back), the rest only here;
    # _moved == _old_size == 0 (empty views) when no resize is in progress.
    cdef unsigned long long _old_mask
    cdef Py_ssize_t _old_size, _moved, _released
    cdef unsigned long long[::1] _old_digests
    cdef long long[::1] _old_refs, _old_oids
    cdef tuple _old_maps

    cdef _alloc(self, Py_ssize_t capacity)
    cdef _drop_old(self)
    @cython.locals(off=Py_ssize_t)
    cdef bint _is_key(self, long long ref, bytes rec) except -1
    @cython.locals(i=Py_ssize_t, d="unsigned long long", rec=object,
                   mask="unsigned long long", digests="unsigned long long[::1]")
    cdef Py_ssize_t _find(self, broker, cl_ord_id, unsigned long long digest) except? -1
    @cython.locals(i=Py_ssize_t, moved=Py_ssize_t, left=Py_ssize_t, d="unsigned long long",
                   rec=object, mask="unsigned long long", digests="unsigned long long[::1]")
    cdef Py_ssize_t _find_old(self, broker, cl_ord_id, unsigned long long digest) except? -1
    @cython.locals(i=Py_ssize_t, j=Py_ssize_t)
    cdef Py_ssize_t _slot(self, broker, cl_ord_id, unsigned long long digest) except? -1
    @cython.locals(i=Py_ssize_t, n=Py_ssize_t)
    cpdef lookup(self, broker, cl_ord_id)
    @cython.locals(i=Py_ssize_t, n=Py_ssize_t, digest="unsigned long long", rec=bytes,
                   arena=bytearray)
    cpdef store(self, broker, cl_ord_id, long long order_id, bint replace)
    @cython.locals(n=Py_ssize_t)
    cdef _grow(self)
    @cython.locals(i=Py_ssize_t, j=Py_ssize_t, end=Py_ssize_t, upto=Py_ssize_t,
                   d="unsigned long long", mask="unsigned long long",
                   digests="unsigned long long[::1]", refs="long long[::1]",
                   oids="long long[::1]", new_digests="unsigned long long[::1]",
                   new_refs="long long[::1]", new_oids="long long[::1]")
    cdef _move(self, Py_ssize_t step)


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

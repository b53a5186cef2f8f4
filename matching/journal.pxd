# cython: language_level=3
"""Augmenting declarations: matching/journal.py compiled as a C extension (setup.py).

matching/journal.py is the source of truth and still runs uncompiled; every attribute
stays public (tests and the fault harness read and swap ``fd``, ``failed``, ...)."""

cdef class Journal:
    cdef public object path
    cdef public object policy
    cdef public object group_records
    cdef public object group_interval_ns
    cdef public object failed
    cdef public object fd
    cdef public object _last
    cdef public object _durable
    cdef public object _written
    cdef public bint defer_sync
    cdef public bytearray _buf
    cdef public Py_ssize_t _count
    cdef public object _oldest_ns
    cdef public Py_ssize_t _end
    cdef public Py_ssize_t _allocated
    cdef public Py_ssize_t _chunk

    cpdef append(self, seq, payload)
    cpdef commit(self)

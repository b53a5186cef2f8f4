# cython: language_level=3
"""Augmenting declarations: matching/expiry.py compiled as a C extension (setup.py).

matching/expiry.py is the source of truth and still runs uncompiled."""


cdef class ExpiryIndex:
    cdef public list _heap
    cdef public long long live_count

    cpdef add(self, expire_time, order_id)
    cpdef ended(self, dict live)
    cpdef next(self, dict live)

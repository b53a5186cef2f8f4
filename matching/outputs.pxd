# cython: language_level=3
"""Augmenting declarations: matching/outputs.py compiled as a C extension (setup.py).

matching/outputs.py is the source of truth and still runs uncompiled. One Outcome is
made per input, so it is an extension type with C slots."""

cdef class Outcome:
    cdef public long long seq
    cdef public list reports
    cdef public list trades
    cdef public list levels
    cdef public bint replayed
    cdef public bint sequenced
    cdef public str refused
    cdef public object settled_cash


cpdef Outcome new_outcome(seq)

# cython: language_level=3
"""Augmenting declarations: matching/session.py compiled as a C extension (setup.py).

matching/session.py is the source of truth and still runs uncompiled."""


cdef class TradingSession:
    cdef public dict state
    cdef public dict reason
    cdef public dict seq

    cpdef require_open(self, symbol)

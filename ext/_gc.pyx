# cython: language_level=3
"""Keeping long-lived indexes out of the garbage collector's walk.

A dict is tracked by the collector as soon as a tracked object is put in it, and a new
tuple is tracked until a collection looks at it. So every ClOrdID key ``(broker,
cl_ord_id)`` inserted into the engine's indexes made them tracked again, and each full
collection then walked all their entries: pauses that grew with the resend window
(5-32 ms at 50-100k entries). A tuple of atoms (strings, ints, floats, bytes, None,
untracked structs) cannot be part of a cycle, so it may leave the collector's sight at
once; a dict holding only such keys and values then stays untracked.
"""
from cpython.object cimport PyObject
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE


cdef extern from "Python.h":
    int PyObject_GC_IsTracked(object op)
    void PyObject_GC_UnTrack(void *op)


def untracked(tuple items):
    """``items``, no longer tracked by the collector if none of its items is tracked (a
    tuple holding a tracked object, which could be in a cycle, is left as it is)."""
    cdef Py_ssize_t i
    if not PyObject_GC_IsTracked(items):
        return items
    for i in range(PyTuple_GET_SIZE(items)):
        if PyObject_GC_IsTracked(<object><PyObject *>PyTuple_GET_ITEM(items, i)):
            return items
    PyObject_GC_UnTrack(<void *><PyObject *>items)
    return items

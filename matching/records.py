"""Fixed-layout command and event records for batch runs (NumPy structured dtypes).

The layouts mirror the C structs ``Command`` and ``Event`` in ``ext/core.pxd`` field
for field, so a NumPy array of commands is handed to the core without copying and the
core's event buffer comes back as an array. ``tests/book/test_codes.py`` pins the sizes.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["COMMAND_DTYPE", "EVENT_DTYPE", "Event", "events_from_array", "command_array"]

COMMAND_DTYPE = np.dtype(
    [
        ("order_id", "<i8"),
        ("account", "<i8"),
        ("price", "<i8"),
        ("qty", "<i8"),
        ("min_qty", "<i8"),
        ("expire_time", "<i8"),
        ("op", "u1"),
        ("side", "u1"),
        ("ord_type", "u1"),
        ("tif", "u1"),
        ("stp", "u1"),
        ("post_only", "u1"),
        ("_pad", "u1", (2,)),
    ]
)
assert COMMAND_DTYPE.itemsize == 56

EVENT_DTYPE = np.dtype(
    [
        ("seq", "<i8"),
        ("order_id", "<i8"),
        ("other_id", "<i8"),
        ("price", "<i8"),
        ("qty", "<i8"),
        ("leaves", "<i8"),
        ("other_leaves", "<i8"),
        ("type", "u1"),
        ("side", "u1"),
        ("reason", "<u2"),
        ("_pad", "u1", (4,)),
    ]
)
assert EVENT_DTYPE.itemsize == 64


class Event(NamedTuple):
    """One book event; field meanings per type are tabled in docs/matching-rules.md."""
    seq: int
    type: int
    side: int
    reason: int
    order_id: int
    other_id: int
    price: int
    qty: int
    leaves: int
    other_leaves: int


def events_from_array(arr: np.ndarray) -> list[Event]:
    """Convert an EVENT_DTYPE array to Event tuples (for tests and the engine)."""
    cols = [arr[f].tolist() for f in Event._fields]
    return [Event(*row) for row in zip(*cols, strict=True)]


def command_array(n: int) -> np.ndarray:
    """A zeroed array of ``n`` command records."""
    return np.zeros(n, dtype=COMMAND_DTYPE)

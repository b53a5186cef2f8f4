"""Read conformance order flows and digest the trades they produce.

Flow format (../shared/conformance/README.md), one command a line:
``op,order_id,side,price_ticks,qty_lots`` with ``A`` = NEW LIMIT GTC, ``I`` = NEW LIMIT
IOC, ``C,order_id,,,`` = CANCEL; side ``B``/``S``.

The digest of a run is ``(trade count, traded lots, hex16)``, hex16 being the first 16
hex digits of sha256 over ``f"{maker},{taker},{price},{qty}\\n"`` per trade, in order.
"""
from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable
from os import PathLike
from pathlib import Path

import numpy as np

from matching.constants import EventType, Op, OrdType, Side, TimeInForce
from matching.records import COMMAND_DTYPE, Event

__all__ = ["load_flow", "digest"]

# Letters become digits by position, so the whole file parses as integers in one
# numpy call: the op at the start of a line, the side between the 2nd and 3rd comma.
_OP_A, _OP_I, _OP_C = 1, 2, 3
_REWRITES = (
    (b"\nA,", b"\n%d," % _OP_A),
    (b"\nI,", b"\n%d," % _OP_I),
    (b"\nC,", b"\n%d," % _OP_C),
    (b",B,", b",%d," % Side.BUY),
    (b",S,", b",%d," % Side.SELL),
    (b",,,\n", b",0,0,0\n"),             # a cancel has no side, price or qty
)
_BLANK_LINE = re.compile(rb"\n[ \t]*(?=\n)")


def load_flow(path: str | PathLike) -> np.ndarray:
    """Parse a flow file into a COMMAND_DTYPE array (1M lines in about half a second).

    Raises ValueError naming the file when a line is not ``A``/``I`` with a side, price
    and qty, or ``C`` with only an order id.
    """
    text = b"\n" + Path(path).read_bytes().replace(b"\r\n", b"\n")
    if not text.endswith(b"\n"):
        text += b"\n"
    text = _BLANK_LINE.sub(b"", text)
    n = text.count(b"\n") - 1
    n_new = text.count(b"\nA,") + text.count(b"\nI,")
    n_cancel = text.count(b"\nC,")
    if n_new + n_cancel != n:
        raise ValueError(f"{path}: not a conformance flow ({n - n_new - n_cancel} of {n} "
                         "lines do not start with A, I or C)")
    if text.count(b",B,") + text.count(b",S,") != n_new or text.count(b",,,\n") != n_cancel:
        raise ValueError(f"{path}: not a conformance flow (an order without side B/S, or a "
                         "cancel with fields other than its order id)")
    for old, new in _REWRITES:
        text = text.replace(old, new)
    cmds = np.zeros(n, dtype=COMMAND_DTYPE)
    if n == 0:
        return cmds
    try:
        rows = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as exc:
        raise ValueError(f"{path}: not a conformance flow ({exc})") from exc
    if rows.shape != (n, 5):
        raise ValueError(f"{path}: not a conformance flow (expected 5 fields a line)")
    op = rows[:, 0]
    is_new = op != _OP_C
    cmds["op"] = np.where(is_new, Op.NEW, Op.CANCEL)
    cmds["order_id"] = rows[:, 1]
    cmds["side"] = rows[:, 2]
    cmds["price"] = rows[:, 3]
    cmds["qty"] = rows[:, 4]
    cmds["ord_type"] = np.where(is_new, OrdType.LIMIT, 0)
    cmds["tif"] = np.where(op == _OP_I, TimeInForce.IOC, np.where(is_new, TimeInForce.GTC, 0))
    return cmds


def digest(events: np.ndarray | Iterable[Event]) -> tuple[int, int, str]:
    """``(trade count, traded lots, hex16)`` of the TRADE events among ``events``.

    ``events`` is an EVENT_DTYPE array (as ``process`` returns; other event types are
    ignored, so a trades-only array works too) or an iterable of ``Event`` tuples.
    """
    if isinstance(events, np.ndarray):
        trades = events[events["type"] == EventType.TRADE]
        makers, takers = trades["other_id"].tolist(), trades["order_id"].tolist()
        prices, qtys = trades["price"].tolist(), trades["qty"].tolist()
    else:
        rows = [(e.other_id, e.order_id, e.price, e.qty) for e in events
                if e.type == EventType.TRADE]
        makers, takers, prices, qtys = ((list(c) for c in zip(*rows, strict=True)) if rows
                                        else ([],) * 4)
    lines = "".join(f"{m},{t},{p},{q}\n"
                    for m, t, p, q in zip(makers, takers, prices, qtys, strict=True))
    return len(qtys), sum(qtys), hashlib.sha256(lines.encode()).hexdigest()[:16]

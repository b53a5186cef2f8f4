"""The Cython core and the reference book emit the same events for any command sequence."""
from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching._core import Book
from matching.constants import Op, OrdType, Side, StpMode, TimeInForce
from matching.records import COMMAND_DTYPE, events_from_array
from matching.reference import ReferenceBook

LO, N = 100, 40          # a narrow ladder: orders cross often and hit its edges
FIELDS = ("op", "order_id", "side", "ord_type", "tif", "stp", "post_only", "account",
          "price", "qty", "min_qty", "expire_time")

prices = st.integers(LO, LO + N - 1)
ids = st.integers(1, 40)                 # small: duplicates and dead ids happen
qtys = st.integers(1, 30)
accounts = st.sampled_from([0, 1, 2, 3])


@st.composite
def good_new(draw):
    """A valid order: mostly limits, every tif, STP on some accounts, a few flags."""
    ord_type = draw(st.sampled_from([OrdType.LIMIT] * 8 + [OrdType.MARKET]))
    tif = draw(st.sampled_from([TimeInForce.GTC] * 4 + [TimeInForce.DAY, TimeInForce.GTD,
                                TimeInForce.IOC, TimeInForce.IOC, TimeInForce.FOK]))
    qty = draw(qtys)
    post_only = (ord_type == OrdType.LIMIT and tif not in (TimeInForce.IOC, TimeInForce.FOK)
                 and draw(st.integers(0, 5)) == 0)
    return (int(Op.NEW), draw(ids), draw(st.sampled_from([Side.BUY, Side.SELL])),
            int(ord_type), int(tif), draw(st.sampled_from(list(StpMode) + [StpMode.NONE] * 3)),
            post_only, draw(accounts), draw(prices), qty,
            draw(st.sampled_from([0] * 8 + [1, qty // 2, qty])),
            1_700_000_000 if tif == TimeInForce.GTD else 0)


@st.composite
def good_other(draw):
    """Cancel, expire or amend; ``None`` price/qty in an amend means "the order's own
    price" / "its open quantity minus a little", resolved against the live book."""
    op = draw(st.sampled_from([Op.CANCEL, Op.CANCEL, Op.AMEND, Op.AMEND, Op.AMEND, Op.EXPIRE]))
    price = draw(st.one_of(prices, st.none()))
    qty = draw(st.one_of(qtys, st.none()))
    return (int(op), draw(ids), 0, 0, 0, 0, False, 0, price, qty, 0, 0)


def resolve(cmd, book):
    """Fill an amend's ``None`` fields from the order as it rests now."""
    if cmd[8] is not None and cmd[9] is not None:
        return cmd
    live = book.order(cmd[1])
    price = cmd[8] if cmd[8] is not None else (live[1] if live else LO)
    qty = cmd[9] if cmd[9] is not None else (max(1, live[2] - (cmd[1] % 3)) if live else 1)
    return cmd[:8] + (price, qty) + cmd[10:]


@st.composite
def bad_command(draw):
    """A valid command with one field broken (or two, to test the validation order)."""
    cmd = list(draw(st.one_of(good_new(), good_other())))
    for _ in range(draw(st.integers(1, 2))):
        i, value = draw(st.sampled_from([
            (0, 9), (1, 0), (1, -3), (2, 0), (2, 3), (3, 0), (3, 7), (4, 2), (4, 5),
            (5, 5), (5, 200), (6, True), (7, -1), (8, LO - 1), (8, LO + N), (8, -(2**40)),
            (9, 0), (9, -5), (9, 10**12), (9, 10**12 + 1), (10, -1), (10, 10**6), (11, 0),
        ]))
        cmd[i] = value
    return tuple(cmd)


commands = st.one_of(good_new(), good_new(), good_new(), good_other(), bad_command())


def _both(capacity=0):
    return Book(LO, N, capacity), ReferenceBook(LO, N, capacity)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands, min_size=30, max_size=120), st.sampled_from([0, 0, 5]))
def test_core_and_reference_emit_identical_events(cmds, capacity):
    core, ref = _both(capacity)
    for i, cmd in enumerate(cmds):
        cmd = resolve(cmd, ref)
        n_core = core.submit(*cmd)
        n_ref = ref.submit(*cmd)
        ev_core, ev_ref = core.take_events(), ref.take_events()
        assert ev_core == ev_ref, f"command {i} {cmd} diverged"
        assert n_core == n_ref == len(ev_core)
        core.check()
        ref.check()
    assert core.resting_orders() == ref.resting_orders()
    for side in (Side.BUY, Side.SELL):
        assert core.depth(side, N) == ref.depth(side, N)
    assert core.best_bid() == ref.best_bid() and core.best_ask() == ref.best_ask()


@settings(max_examples=100, deadline=None)
@given(st.lists(commands, min_size=30, max_size=150))
def test_batch_path_equals_per_command_path(cmds):
    cmds = [resolve(c, ReferenceBook(LO, N)) for c in cmds]
    arr = np.zeros(len(cmds), dtype=COMMAND_DTYPE)
    for name, col in zip(FIELDS, zip(*cmds) if cmds else [()] * len(FIELDS)):
        arr[name] = [min(max(v, -(2**63)), 2**63 - 1) if name not in ("op", "side", "ord_type", "tif", "stp", "post_only") else (v if 0 <= v <= 254 else 255) for v in col]
    batch_core = events_from_array(Book(LO, N).process(arr))
    batch_ref = events_from_array(ReferenceBook(LO, N).process(arr))
    one = Book(LO, N)
    for row in zip(*(arr[f].tolist() for f in FIELDS)):
        one.submit(*row)
    assert batch_core == one.take_events() == batch_ref

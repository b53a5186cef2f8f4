"""The Cython core and the reference book emit the same events for any command sequence.

Random sequences of every kind of command (all order types and tifs, amends, cancels and
expiries of live and dead ids, STP between a few accounts, post-only, min_qty, and bad
commands: zero/negative/huge quantities, off-ladder prices, bad enums, duplicate ids,
unknown ops) go to both books; their event streams must be identical event for event,
and so must every query. The batch ``process()`` path must equal the per-command path.
Last, both books reproduce the known digest of the shared conformance flow.
"""
from __future__ import annotations

import hashlib
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.constants import MAX_ORDER_QTY, Op, OrdType, Side, StpMode
from matching.constants import TimeInForce as T
from matching.records import COMMAND_DTYPE, events_from_array
from matching.reference import ReferenceBook
from testkit.books import PublishedDepth, load_book_cls
from testkit.flow import digest

LO, N = 100, 40          # a narrow ladder: orders cross often and hit its edges
FIELDS = ("op", "order_id", "side", "ord_type", "tif", "stp", "post_only", "account",
          "price", "qty", "min_qty", "expire_time")
OWN_PRICE, REL_QTY, LIVE_ID = "own-price", "rel-qty", "live-id"   # resolved against the book


def mostly(good: list, bad: list, p_bad: float = 0.03):
    """A value from ``good`` or, about ``p_bad`` of the time, one from ``bad``."""
    k = max(1, round(len(bad) / (p_bad * len(good)))) if bad else 1
    return st.sampled_from(list(good) * k + list(bad))


ids = mostly(range(1, 41), [0, -1, -(2**63)])                       # small: duplicates happen
band = list(range(LO + 16, LO + 24))                                 # where most prices fall
prices = mostly(band * 8 + list(range(LO, LO + N)), [LO - 1, LO + N, -(2**40), 2**62])
qtys = mostly(range(1, 31), [0, -5, MAX_ORDER_QTY, MAX_ORDER_QTY + 1])
live_ids = st.one_of(st.tuples(st.just(LIVE_ID), st.integers(0, 1000)), ids)


@st.composite
def new_orders(draw):
    """A NEW command, mostly valid; every field now and then out of its domain."""
    ord_type = draw(mostly([OrdType.LIMIT] * 6 + [OrdType.MARKET], [0, 3, 255]))
    tif = draw(mostly([T.GTC, T.GTC, T.GTC, T.DAY, T.GTD, T.IOC, T.IOC, T.FOK], [2, 5, 255]))
    qty = draw(qtys)
    resting = ord_type == OrdType.LIMIT and tif not in (T.IOC, T.FOK)
    post_only = draw(st.integers(0, 9)) == 0 if resting else draw(st.integers(0, 40)) == 0
    min_qty = draw(mostly([0] * 12 + [1, max(qty // 2, 0), max(qty, 0)], [-1, qty + 1]))
    expire = draw(mostly([1_700_000_000] if tif == T.GTD else [0, 0, 5],
                         [0, -1] if tif == T.GTD else []))
    return (Op.NEW, draw(ids), draw(mostly([Side.BUY, Side.SELL], [0, 3, 255, -1, 300])),
            ord_type, tif, draw(mostly(list(StpMode) + [StpMode.NONE] * 3, [5, 255])),
            post_only, draw(mostly([0, 1, 2, 3], [-1])), draw(prices), qty, min_qty, expire)


@st.composite
def cancels(draw):
    """CANCEL or EXPIRE of any id: mostly live, else dead, never seen, or <= 0."""
    op = draw(st.sampled_from([Op.CANCEL, Op.CANCEL, Op.EXPIRE]))
    return (op, draw(live_ids), 0, 0, 0, 0, False, 0, 0, 0, 0, 0)


@st.composite
def amends(draw):
    """AMEND, mostly of a live order; the price may be the order's own and the qty
    relative to its leaves, so in-place, same-qty and priority-losing amends all happen."""
    price = draw(st.one_of(st.just(OWN_PRICE), st.just(OWN_PRICE), prices))
    qty = draw(st.one_of(st.tuples(st.just(REL_QTY), st.integers(-3, 2)), qtys))
    return (Op.AMEND, draw(live_ids), 0, 0, 0, 0, False, 0, price, qty, 0, 0)


@st.composite
def junk(draw):
    """An unknown op with arbitrary fields."""
    return (draw(st.sampled_from([0, 5, 9, 255, -1, 300])), draw(ids),
            draw(st.sampled_from([0, 1, 2, 7])), 2, 1, 0, False, 0, draw(prices), draw(qtys), 0, 0)


_KINDS = [new_orders()] * 12 + [cancels()] * 3 + [amends()] * 4 + [junk()]
commands = st.integers(0, len(_KINDS) - 1).flatmap(lambda i: _KINDS[i])   # weighted mix


def resolve(cmd, book):
    """Fill a command's book-relative fields from ``book`` as it is now: a "live id" is
    the k-th live order (any id when the book is empty), an amend's "own price" the
    order's price, its "relative qty" the order's leaves plus a delta."""
    if isinstance(cmd[1], tuple):
        live = [o[0] for o in book.resting_orders()]
        cmd = (cmd[0], live[cmd[1][1] % len(live)] if live else 1, *cmd[2:])
    if cmd[0] != Op.AMEND:
        return cmd
    live = book.order(cmd[1])
    price, qty = cmd[8], cmd[9]
    if price == OWN_PRICE:
        price = live[1] if live and live[1] is not None else LO + 20   # None: market order
    if isinstance(qty, tuple):
        qty = max(1, live[2] + qty[1]) if live else 1
    return (*cmd[:8], price, qty, *cmd[10:])


def as_array(cmds) -> np.ndarray:
    """Commands as a COMMAND_DTYPE array, enum fields narrowed to the byte they travel as."""
    arr = np.zeros(len(cmds), dtype=COMMAND_DTYPE)
    for name, column in zip(FIELDS, zip(*cmds, strict=False), strict=False):
        if name in ("op", "side", "ord_type", "tif", "stp"):
            column = [v if 0 <= v <= 254 else 255 for v in column]
        arr[name] = column
    return arr


def same_events(a: np.ndarray, b: np.ndarray) -> bool:
    """Two EVENT_DTYPE arrays hold the same events (every field but the padding)."""
    assert a.dtype == b.dtype
    return all(np.array_equal(a[f], b[f]) for f in a.dtype.names if f != "_pad")


def assert_same_queries(core, ref):
    assert core.resting_orders() == ref.resting_orders()
    for side in (Side.BUY, Side.SELL):
        assert core.depth(side, N) == ref.depth(side, N)
        assert core.depth(side, 2) == ref.depth(side, 2)
    assert (core.best_bid(), core.best_ask(), len(core)) == (
        ref.best_bid(), ref.best_ask(), len(ref))


# ---------------------------------------------------------------------- core == reference
@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(commands, min_size=20, max_size=150), st.sampled_from([0, 0, 0, 6]))
def test_core_and_reference_emit_identical_events(cmds, capacity):
    core, ref = load_book_cls("core")(LO, N, capacity), ReferenceBook(LO, N, capacity)
    published = PublishedDepth()
    for i, cmd in enumerate(cmds):
        cmd = resolve(cmd, ref)
        n_core, n_ref = core.submit(*cmd), ref.submit(*cmd)
        ev_core, ev_ref = core.take_events(), ref.take_events()
        assert ev_core == ev_ref, f"command {i} {cmd} diverged"
        assert n_core == n_ref == len(ev_ref)
        core.check()
        ref.check()
        assert core.order(cmd[1]) == ref.order(cmd[1])
        published.apply(ev_ref)
        for side in (Side.BUY, Side.SELL):
            assert published.depth(side) == ref.depth(side, N)
    assert_same_queries(core, ref)


# ---------------------------------------------------------------------- batch == per command
@pytest.mark.parametrize("engine", ["reference", "core"])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cmds=st.lists(commands, min_size=10, max_size=150),
       cuts=st.lists(st.integers(0, 150), max_size=4))
def test_batch_path_equals_per_command_path(engine, cmds, cuts):
    """process() on the whole sequence, on chunks of it, and per-command calls agree, on
    each engine; a batch returns the pending per-command events first."""
    cls = load_book_cls(engine)
    one = cls(LO, N)
    resolved = []
    for cmd in cmds:
        cmd = resolve(cmd, one)
        resolved.append(cmd)
        one.submit(*cmd)
    per_command = one.take_events()
    arr = as_array(resolved)

    whole = cls(LO, N)
    assert events_from_array(whole.process(arr)) == per_command

    chunked, got = cls(LO, N), []
    bounds = sorted({0, len(arr), *(c for c in cuts if c <= len(arr))})
    for start, stop in itertools.pairwise(bounds):
        got += events_from_array(chunked.process(arr[start:stop]))
    assert got == per_command

    mixed = cls(LO, N)                      # first half per command, rest as a batch
    half = len(resolved) // 2
    for row in zip(*(arr[f][:half].tolist() for f in FIELDS), strict=False):
        mixed.submit(*row)
    assert events_from_array(mixed.process(arr[half:])) == per_command
    for book in (whole, chunked, mixed):
        book.check()
        assert book.resting_orders() == one.resting_orders()


@settings(max_examples=200, deadline=None)
@given(st.lists(commands, min_size=10, max_size=150))
def test_core_batch_equals_reference_batch(cmds):
    ref = ReferenceBook(LO, N)
    resolved = []
    for cmd in cmds:
        resolved.append(resolve(cmd, ref))
        ref.submit(*resolved[-1])
    arr = as_array(resolved)
    out_core = load_book_cls("core")(LO, N).process(arr)
    out_ref = ReferenceBook(LO, N).process(arr)
    assert len(out_core) == len(out_ref) and same_events(out_core, out_ref)


# ---------------------------------------------------------------------- long random flows
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_long_random_flows_match(seed):
    """Deeper books than hypothesis builds: 20k commands, bids below and asks above a mid
    (a few through it), 1500 ids, batch path on both books."""
    rng = np.random.default_rng(seed)
    n = 20_000
    arr = np.zeros(n, dtype=COMMAND_DTYPE)
    arr["op"] = rng.choice([1, 1, 1, 1, 1, 1, 2, 2, 3, 3, 4, 0], n)
    arr["order_id"] = rng.integers(1, 1_500, n)
    arr["side"] = side = rng.choice([1, 2], n)
    arr["ord_type"] = rng.choice([2] * 12 + [1], n)
    arr["tif"] = rng.choice([1, 1, 1, 0, 6, 3, 3, 4], n)
    arr["stp"] = rng.choice([0, 0, 0, 1, 2, 3, 4], n)
    arr["account"] = rng.choice([0, 1, 2, 3, 4], n)
    offset = rng.integers(-3, 40, n)
    arr["price"] = np.where(side == 1, 1_050 - offset, 1_050 + offset)
    arr["qty"] = rng.integers(1, 60, n)
    arr["min_qty"] = np.where(rng.random(n) < 0.1, rng.integers(0, 40, n), 0)
    arr["post_only"] = (rng.random(n) < 0.05) & (arr["tif"] != 3) & (arr["tif"] != 4)
    arr["expire_time"] = np.where(arr["tif"] == 6, 1, 0)
    core, ref = load_book_cls("core")(900, 300), ReferenceBook(900, 300)
    out_core, out_ref = core.process(arr), ref.process(arr)
    assert len(out_core) == len(out_ref) and same_events(out_core, out_ref)
    assert len(ref) > 300                                 # the flow built a real book
    kinds = np.bincount(out_ref["type"], minlength=9)
    assert kinds[3] > 1_000 and kinds[5] > 100 and kinds[6] > 10 and kinds[7] > 10, kinds
    core.check()
    ref.check()
    assert_same_queries(core, ref)


# ---------------------------------------------------------------------- conformance flow
# ``flow_100k`` (``gen.py 100000 7``) is a fixture of tests/book/conftest.py.
KNOWN_100K_7 = (27565, 5433276, "250ec1376f23ee9d")
RESTING_100K_7 = 25060


def test_flow_loader_reads_the_conformance_format(flow_100k):
    assert len(flow_100k) == 100_000
    ops = flow_100k["op"]
    assert set(np.unique(ops).tolist()) == {Op.NEW, Op.CANCEL}
    new = flow_100k[ops == Op.NEW]
    assert set(np.unique(new["tif"]).tolist()) == {T.GTC, T.IOC}
    assert (new["ord_type"] == OrdType.LIMIT).all() and (new["qty"] > 0).all()
    assert set(np.unique(new["side"]).tolist()) == {Side.BUY, Side.SELL}
    cxl = flow_100k[ops == Op.CANCEL]
    assert (cxl["side"] == 0).all() and (cxl["qty"] == 0).all() and (cxl["tif"] == 0).all()


def test_book_reproduces_the_conformance_digest(book_cls, flow_100k):
    book = book_cls(0, 1 << 15)
    chunks = [book.process(flow_100k[i:i + 10_000]) for i in range(0, len(flow_100k), 10_000)]
    events = np.concatenate(chunks)
    assert digest(events) == KNOWN_100K_7
    assert len(book) == RESTING_100K_7
    book.check()


def test_digest_of_event_tuples_equals_digest_of_the_array():
    book = ReferenceBook(0, 1000)
    book.new_order(1, Side.SELL, 500, 5)
    book.new_order(2, Side.SELL, 501, 5)
    book.new_order(3, Side.BUY, 501, 7)
    arr = book.process(np.zeros(0, dtype=COMMAND_DTYPE))
    # One line "maker,taker,price,qty" per trade, in order.
    expected = (2, 7, hashlib.sha256(b"1,3,500,5\n2,3,501,2\n").hexdigest()[:16])
    assert digest(arr) == expected == digest(events_from_array(arr))
    assert digest(arr[arr["type"] == 3]) == expected


# ---------------------------------------------------------------------- call auctions
CALL, UNCROSS, LEAVE = "call", "uncross", "leave"


@st.composite
def auction_orders(draw):
    """A NEW command a call takes, or refuses: GFA and market orders of resting tifs."""
    tif = draw(st.sampled_from([T.GFA, T.GFA, T.DAY, T.GTC, T.GTD, T.IOC]))
    ord_type = draw(st.sampled_from([OrdType.LIMIT, OrdType.LIMIT, OrdType.MARKET]))
    return (Op.NEW, draw(ids), draw(st.sampled_from([Side.BUY, Side.SELL])), ord_type, tif,
            draw(st.sampled_from([0, 0, 3])), draw(st.integers(0, 15)) == 0,
            draw(st.sampled_from([0, 1, 2])), draw(prices), draw(qtys),
            draw(st.sampled_from([0] * 8 + [1])), 1_700_000_000 if tif == T.GTD else 0)


uncross_steps = st.tuples(st.just(UNCROSS), mostly(list(range(LO, LO + N)), [LO - 1, LO + N]),
                          st.integers(0, 12))
session_steps = st.one_of(st.just((CALL,)), st.just((CALL,)), st.just((LEAVE,)),
                          uncross_steps, uncross_steps)
_CALL_KINDS = [new_orders()] * 8 + [auction_orders()] * 5 + [cancels()] * 3 + [amends()] * 4 \
    + [session_steps] * 3
call_commands = st.integers(0, len(_CALL_KINDS) - 1).flatmap(lambda i: _CALL_KINDS[i])


def apply_step(book, cmd):
    """A command, or a session step: enter a call, leave it (ValueError while it would
    execute, kept as the outcome), or uncross it."""
    if cmd[0] == CALL:
        return book.set_call(True)
    if cmd[0] == LEAVE:
        try:
            return book.set_call(False)
        except ValueError:
            return "refused"
    if cmd[0] == UNCROSS:
        return (book.indicative(cmd[1], cmd[2]) if LO <= cmd[1] < LO + N else None,
                book.uncross(cmd[1], cmd[2]))
    return book.submit(*cmd)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(call_commands, min_size=20, max_size=150), st.sampled_from([0, 0, 0, 6]))
def test_core_and_reference_emit_identical_events_through_calls_and_uncrosses(cmds, capacity):
    """Calls opened and uncrossed at random points among every kind of command: the two
    books agree event for event, on every indicative price and on every query."""
    core, ref = load_book_cls("core")(LO, N, capacity), ReferenceBook(LO, N, capacity)
    published = PublishedDepth()
    for i, cmd in enumerate(cmds):
        if cmd[0] not in (CALL, LEAVE, UNCROSS):
            cmd = resolve(cmd, ref)
        out_core, out_ref = apply_step(core, cmd), apply_step(ref, cmd)
        ev_core, ev_ref = core.take_events(), ref.take_events()
        assert ev_core == ev_ref, f"command {i} {cmd} diverged"
        assert out_core == out_ref, f"command {i} {cmd}: {out_core} != {out_ref}"
        assert core.in_call == ref.in_call
        core.check()
        ref.check()
        published.apply(ev_ref)
        for side in (Side.BUY, Side.SELL):
            assert published.depth(side) == ref.depth(side, N)
    assert_same_queries(core, ref)


@pytest.mark.parametrize("seed", [4, 5])
def test_long_flows_with_opening_and_volatility_calls_match(seed):
    """Deep books through calls: batches of continuous flow, each followed by a call that
    collects crossing limits, market and GFA orders, then an uncross at a random reference."""
    rng = np.random.default_rng(seed)
    core, ref = load_book_cls("core")(900, 300), ReferenceBook(900, 300)
    next_id, traded_in_calls = 1, 0
    for _ in range(12):
        n = 1_500
        arr = np.zeros(n, dtype=COMMAND_DTYPE)
        arr["op"] = rng.choice([1, 1, 1, 1, 2, 3], n)
        arr["order_id"] = np.where(arr["op"] == 1, np.arange(next_id, next_id + n),
                                   rng.integers(max(1, next_id - 600), next_id + 1, n))
        next_id += n
        arr["side"] = side = rng.choice([1, 2], n)
        arr["ord_type"] = 2
        arr["tif"] = rng.choice([1, 1, 0, 3], n)
        offset = rng.integers(-2, 30, n)
        arr["price"] = np.where(side == 1, 1_050 - offset, 1_050 + offset)
        arr["qty"] = rng.integers(1, 40, n)
        assert same_events(core.process(arr), ref.process(arr))
        for book in (core, ref):
            book.set_call(True)
        for _ in range(300):
            cmd = (Op.NEW, next_id, int(rng.choice([1, 2])), int(rng.choice([1, 2, 2, 2])),
                   int(rng.choice([0, 1, 11])), 0, False, int(rng.integers(0, 3)),
                   int(rng.integers(1_020, 1_080)), int(rng.integers(1, 40)), 0, 0)
            next_id += 1
            assert core.submit(*cmd) == ref.submit(*cmd)
        reference, pct = int(rng.integers(1_030, 1_070)), int(rng.integers(0, 4))
        assert core.indicative(reference, pct) == ref.indicative(reference, pct)
        assert core.uncross(reference, pct) == ref.uncross(reference, pct)
        events = ref.take_events()
        assert core.take_events() == events
        traded_in_calls += sum(e.type == 3 for e in events)
        core.check()
        ref.check()
        assert_same_queries(core, ref)
    assert traded_in_calls > 500                        # the calls did cross deep books

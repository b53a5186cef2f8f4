"""Book-test support: every rule test runs on both books, the reference and the core.

``CheckedBook`` wraps a book: after every command it runs ``check()``, drains the
events, and holds the implementation to the parts of the contract that hold for any
command (event count returned, seq +1 with no gap, REJECTED alone, LEVEL events last,
and the depth published by LEVEL events equal to ``depth()`` and to a recount of the
resting orders). A test then asserts the command's whole event stream in ``book.last``,
written with the builders below (event tuples without ``seq``). The ``book``,
``book_cls`` and ``book_engine`` fixtures are in ``tests/book/conftest.py``.
"""
from __future__ import annotations

import pytest

from matching.constants import AmendPriority, CancelReason, EventType, Side
from matching.reference import ReferenceBook

LO, N = 0, 20_000                     # the ladder of the ``book`` fixture
ENGINES = ["reference", "core"]
BUY, SELL = Side.BUY, Side.SELL


def load_book_cls(engine: str):
    """The book class of an engine; a missing core fails the test, never skips it."""
    if engine == "reference":
        return ReferenceBook
    if engine == "core":
        try:
            from matching._core import Book
        except ImportError as exc:
            pytest.fail(f"the Cython core matching._core is not built ({exc}); build it with "
                        "`.venv/bin/python setup.py build_ext --inplace`. Every rule test "
                        "must pass on the core too, so its param fails instead of skipping.",
                        pytrace=False)
        return Book
    raise ValueError(f"unknown engine {engine!r}")


# ---------------------------------------------------------------------- event builders
# Events as the tuples a book emits, without ``seq``:
# (type, side, reason, order_id, other_id, price, qty, leaves, other_leaves)
def accepted(side, oid, price, qty):
    return (EventType.ACCEPTED, side, 0, oid, 0, price, qty, qty, 0)


def rejected(side, reason, oid, price, qty):
    return (EventType.REJECTED, side, reason, oid, 0, price, qty, 0, 0)


def trade(side, taker, maker, price, qty, taker_leaves, maker_leaves):
    return (EventType.TRADE, side, 0, taker, maker, price, qty, taker_leaves, maker_leaves)


def cancelled(side, reason, oid, price, qty):
    return (EventType.CANCELLED, side, reason, oid, 0, price, qty, 0, 0)


def user_cancelled(side, oid, price, qty):
    return cancelled(side, CancelReason.USER, oid, price, qty)


def expired(side, oid, price, qty):
    return (EventType.EXPIRED, side, CancelReason.EXPIRED, oid, 0, price, qty, 0, 0)


def decremented(side, oid, price, qty, leaves):
    return (EventType.DECREMENTED, side, CancelReason.SELF_TRADE, oid, 0, price, qty, leaves, 0)


def amended(side, priority, oid, price, qty, old_leaves):
    return (EventType.AMENDED, side, priority, oid, 0, price, qty, qty, old_leaves)


def kept(side, oid, price, qty, old_leaves):
    return amended(side, AmendPriority.KEPT, oid, price, qty, old_leaves)


def lost(side, oid, price, qty, old_leaves):
    return amended(side, AmendPriority.LOST, oid, price, qty, old_leaves)


def level(side, price, qty, count):
    return (EventType.LEVEL, side, 0, 0, 0, price, qty, count, 0)


# ---------------------------------------------------------------------- depth recounts
def recount(book, side):
    """Depth of one side rebuilt from the resting orders themselves, best first."""
    levels: dict[int, tuple[int, int]] = {}
    for _, s, price, leaves, *_ in book.resting_orders():
        if s == side and price is not None:          # a market order in a call: no level
            qty, count = levels.get(price, (0, 0))
            levels[price] = (qty + leaves, count + 1)
    return [(p, *levels[p]) for p in sorted(levels, reverse=side == BUY)]


class PublishedDepth:
    """The depth a market-data subscriber holds by applying LEVEL events only."""

    def __init__(self):
        self.sides: dict[int, dict[int, tuple[int, int]]] = {BUY: {}, SELL: {}}

    def apply(self, events) -> None:
        for e in events:
            if e[1] == EventType.LEVEL:
                side, price, qty, count = e[2], e[6], e[7], e[8]
                assert (qty == 0) == (count == 0), f"LEVEL with qty {qty} and count {count}"
                if count:
                    self.sides[side][price] = (qty, count)
                else:
                    self.sides[side].pop(price, None)

    def depth(self, side):
        levels = self.sides[side]
        return [(p, *levels[p]) for p in sorted(levels, reverse=side == BUY)]


# ---------------------------------------------------------------------- checked book
def check_command_events(events, n_returned, first_seq):
    """Contract rules that hold for every command's events, whatever it was."""
    assert n_returned == len(events), f"returned {n_returned}, emitted {len(events)}"
    seqs = [e[0] for e in events]
    assert seqs == list(range(first_seq, first_seq + len(events))), f"seq gap: {seqs}"
    types = [e[1] for e in events]
    if EventType.REJECTED in types:
        assert types == [EventType.REJECTED], f"REJECTED not alone: {types}"
    n_levels = types.count(EventType.LEVEL)
    assert EventType.LEVEL not in types[:len(types) - n_levels], f"LEVEL not last: {types}"
    touched = [(e[2], e[6]) for e in events if e[1] == EventType.LEVEL]
    assert len(touched) == len(set(touched)), f"a level reported twice: {touched}"


class CheckedBook:
    """A book whose every command is followed by ``check()`` and the generic event
    checks above; the command's events (without seq) are kept in ``last``."""

    COMMANDS = ("new_order", "cancel", "amend", "expire", "submit", "uncross")

    def __init__(self, inner):
        self.inner = inner
        self.last: list[tuple] = []          # events of the last command, without seq
        self.log: list = []                  # every event since creation, with seq
        self.published = PublishedDepth()
        self._taken = 0

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name not in self.COMMANDS:
            return attr

        def command(*args, **kwargs):
            n = attr(*args, **kwargs)
            self._after(f"{name}{args}{kwargs or ''}", self.inner.take_events(), n)
            return n
        return command

    def process(self, commands):
        """The batch path, checked as one unit (events of all its commands together)."""
        from matching.records import events_from_array
        arr = self.inner.process(commands)
        self._after(f"process({len(commands)} commands)", events_from_array(arr), None)
        return arr

    def _after(self, what, events, n):
        try:
            self.inner.check()
            if n is not None:
                check_command_events(events, n, len(self.log) + 1)
            else:
                seqs = [e[0] for e in events]
                assert seqs == list(range(len(self.log) + 1, len(self.log) + 1 + len(seqs)))
            self.published.apply(events)
            for side in (BUY, SELL):
                depth = self.inner.depth(side, N + 1)
                assert self.published.depth(side) == depth, (
                    f"published depth {self.published.depth(side)} != depth() {depth}")
                assert recount(self.inner, side) == depth, (
                    f"recount {recount(self.inner, side)} != depth() {depth}")
            assert len(self.inner) == len(self.inner.resting_orders())
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nafter {what}\nevents: {events}\n"
                                 f"book: {self.inner.resting_orders()}") from exc
        self.log.extend(events)
        self.last = [tuple(e[1:]) for e in events]

    def take_events(self):
        """Events (with seq) since the last call, like the inner book's take_events."""
        out = self.log[self._taken:]
        self._taken = len(self.log)
        return out

    def __len__(self):
        return len(self.inner)

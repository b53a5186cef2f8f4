"""Fixtures: every rule test runs on both books, the reference and the Cython core."""
from __future__ import annotations

import pytest

from matching.book import make_book
from matching.constants import EventType

LO, N = 0, 20_000


@pytest.fixture(params=["reference", "core"])
def book_engine(request):
    return request.param


@pytest.fixture
def book(book_engine):
    return Checked(make_book(book_engine, LO, N))


class Checked:
    """A book whose invariants are verified after every command (a dump on failure)."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name not in ("new_order", "cancel", "amend", "expire", "submit"):
            return attr

        def call(*args, **kwargs):
            n = attr(*args, **kwargs)
            try:
                self.inner.check()
            except AssertionError as exc:
                raise AssertionError(f"{exc}\nafter {name}{args}\nbook: {self.inner.resting_orders()}") from exc
            return n
        return call

    def __len__(self):
        return len(self.inner)

    def events(self, *types):
        """Drain events as tuples without seq, keeping only the given types (all if none)."""
        return [e[1:] for e in self.inner.take_events() if not types or e.type in types]


def trades(book):
    """(taker, maker, price, qty) of every trade since the last drain."""
    return [(e[3], e[4], e[5], e[6]) for e in book.events(EventType.TRADE)]

"""The one order-book interface that the Cython core and the reference both keep.

Everything above the book (engine, replay, tests) talks to this Protocol, so either
implementation can stand in for the other (exchange-core's IOrderBook split).
"""
from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Protocol

import numpy as np

from matching.records import Event

__all__ = ["OrderBook", "make_book"]


class OrderBook(Protocol):
    """One instrument's price-time-priority book; rules in docs/matching-rules.md."""

    price_lo: int
    n_levels: int

    def new_order(self, order_id: int, side: int, price: int, qty: int, ord_type: int = 2,
                  tif: int = 1, account: int = 0, stp: int = 0, post_only: bool = False,
                  min_qty: int = 0, expire_time: int = 0) -> int: ...
    def cancel(self, order_id: int) -> int: ...
    def amend(self, order_id: int, price: int, qty: int) -> int: ...
    def expire(self, order_id: int) -> int: ...
    def submit(self, op: int, order_id: int, side: int, ord_type: int, tif: int, stp: int,
               post_only: bool, account: int, price: int, qty: int, min_qty: int,
               expire_time: int) -> int: ...
    def take_events(self) -> list[Event]: ...
    def take_event_rows(self) -> list[tuple]: ...   # the same as plain tuples, Event's order
    def process(self, commands: np.ndarray) -> np.ndarray: ...
    def best_bid(self) -> int | None: ...
    def best_ask(self) -> int | None: ...
    def depth(self, side: int, n: int) -> list[tuple[int, int, int]]: ...
    def order(self, order_id: int) -> tuple[int, int | None, int, int] | None: ...
    def resting_orders(self) -> list[tuple[int, int, int | None, int, int, int, bool]]: ...
    def __len__(self) -> int: ...
    def check(self) -> None: ...
    # call auction (docs/matching-rules.md, "Call auction")
    in_call: bool
    def set_call(self, on: bool) -> None: ...
    def indicative(self, reference: int, pressure_limit_pct: int | Fraction | Decimal
                   ) -> tuple[int, int, int, int] | None: ...
    def uncross(self, reference: int, pressure_limit_pct: int | Fraction | Decimal) -> int: ...
    def restore_resting(self, order_id: int, side: int, price: int | None, leaves: int,
                        account: int, stp: int, post_only: bool, tif: int) -> None: ...


def make_book(engine: str, price_lo: int, n_levels: int, capacity: int = 0) -> OrderBook:
    """A book by engine name: ``"core"`` (compiled) or ``"reference"`` (plain Python)."""
    if engine == "core":
        from matching._core import Book
        return Book(price_lo, n_levels, capacity)
    if engine == "reference":
        from matching.reference import ReferenceBook
        return ReferenceBook(price_lo, n_levels, capacity)
    raise ValueError(f"unknown engine {engine!r}: use 'core' or 'reference'")


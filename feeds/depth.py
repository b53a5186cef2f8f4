"""Market depth as a layer of its own: L2 state per symbol fed by the engine's level changes.

Each publishing cycle's changes are coalesced (last state per level wins) into one
``DepthUpdate`` with the next per-symbol sequence number; the snapshot carries the
sequence it is valid at, so a subscriber that sees a gap resyncs from it. Every message
carries the venue's ``epoch`` (its start, ``matching.datadir``): a new epoch is a restart,
not a gap. A gateway starting on a recovered engine rebuilds each DepthBook from the
engine's books (``DepthBook.of``), with a sequence above any it published before.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from typing import cast

from feeds.codec import BBO, DepthSnapshot, DepthUpdate
from matching.messages import SideName
from matching.outputs import LevelChange

__all__ = ["DepthBook", "start_seq"]


def start_seq(engine_seq: int, epoch: int) -> int:
    """The per-symbol depth sequence a gateway starts at: ``engine_seq + epoch - 1`` (the
    engine sequence alone without an epoch), above every sequence published in earlier
    epochs. Why: a depth update is published only after its cycle's inputs were made
    durable, each cycle has at least one input and gives each symbol at most one update,
    so a start at engine sequence S in epoch E publishes at most up to S + E - 1 + (inputs
    made durable after S) = S' + E - 1 < S' + E, S' being the next start's engine sequence
    and E + 1 its epoch."""
    return engine_seq + max(epoch - 1, 0)


Row = tuple[str, str, int]


class DepthBook:
    """The L2 view of one symbol, as published. Each side keeps its price ticks sorted
    with the snapshot row of each beside it (a new level inserted, an emptied one removed,
    both by bisection): a cycle's snapshot and BBO cost no sort of the whole book."""

    def __init__(self, symbol: str, seq: int = 0, epoch: int = 0):
        self.symbol = symbol
        self.seq = seq
        self.epoch = epoch
        self.levels: dict[str, dict[int, LevelChange]] = {"buy": {}, "sell": {}}
        # Invariant: _ticks[side] == sorted(levels[side]) (ascending), and _rows[side][i]
        # is the snapshot row of the level at _ticks[side][i].
        self._ticks: dict[str, list[int]] = {"buy": [], "sell": []}
        self._rows: dict[str, list[Row]] = {"buy": [], "sell": []}

    def _put(self, side: str, ticks: int, c: LevelChange) -> None:
        order, levels = self._ticks[side], self.levels[side]
        i = bisect_left(order, ticks)
        row = (c.price, c.qty, c.count)
        if ticks in levels:
            self._rows[side][i] = row
        else:
            order.insert(i, ticks)
            self._rows[side].insert(i, row)
        levels[ticks] = c

    def _drop(self, side: str, ticks: int) -> None:
        if self.levels[side].pop(ticks, None) is not None:
            i = bisect_left(self._ticks[side], ticks)
            del self._ticks[side][i]
            del self._rows[side][i]

    @classmethod
    def of(cls, symbol: str, levels: Iterable[LevelChange], seq: int,
           epoch: int) -> DepthBook:
        """The view of a book as it stands (``Engine.depth_levels``), valid at ``seq``."""
        book = cls(symbol, seq, epoch)
        for c in levels:
            if c.qty_lots:
                book._put(c.side, c.price_ticks, c)
        return book

    def apply(self, changes: list[LevelChange]) -> DepthUpdate | None:
        """Fold one cycle's changes in; returns the update to publish (None if empty)."""
        if not changes:
            return None
        last: dict[tuple[str, int], LevelChange] = {}
        for c in changes:
            last[(c.side, c.price_ticks)] = c
        for (side, ticks), c in last.items():
            if c.qty_lots:
                self._put(side, ticks, c)
            else:
                self._drop(side, ticks)
        self.seq += 1
        levels = [(c.side, c.price, c.qty, c.count) for c in last.values()]
        # LevelChange.side is a plain str, always "buy" or "sell".
        return DepthUpdate(self.symbol, self.seq,
                           cast("list[tuple[SideName, str, str, int]]", levels), self.epoch)

    def _best(self, side: str) -> LevelChange | None:
        order = self._ticks[side]
        return self.levels[side][order[-1] if side == "buy" else order[0]] if order else None

    def snapshot(self) -> DepthSnapshot:
        """Bids high to low, asks low to high (new lists: the caller may keep them)."""
        return DepthSnapshot(self.symbol, self.seq, self._rows["buy"][::-1],
                             list(self._rows["sell"]), self.epoch)

    def bbo(self) -> BBO:
        b, a = self._best("buy"), self._best("sell")
        return BBO(self.symbol, self.seq, b.price if b else None, b.qty if b else None,
                   a.price if a else None, a.qty if a else None, self.epoch)

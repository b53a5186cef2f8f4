"""Market depth as a layer of its own: L2 state per symbol fed by the engine's level changes.

Each publishing cycle's changes are coalesced (last state per level wins) into one
``DepthUpdate`` with the next per-symbol sequence number; the snapshot carries the
sequence it is valid at, so a subscriber that sees a gap resyncs from it. Every message
carries the venue's ``epoch`` (its start, ``matching.datadir``): a new epoch is a restart,
not a gap. A gateway starting on a recovered engine rebuilds each DepthBook from the
engine's books (``DepthBook.of``), with a sequence above any it published before.
"""
from __future__ import annotations

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


class DepthBook:
    """The L2 view of one symbol, as published."""

    def __init__(self, symbol: str, seq: int = 0, epoch: int = 0):
        self.symbol = symbol
        self.seq = seq
        self.epoch = epoch
        self.levels: dict[str, dict[int, LevelChange]] = {"buy": {}, "sell": {}}

    @classmethod
    def of(cls, symbol: str, levels: Iterable[LevelChange], seq: int,
           epoch: int) -> DepthBook:
        """The view of a book as it stands (``Engine.depth_levels``), valid at ``seq``."""
        book = cls(symbol, seq, epoch)
        for c in levels:
            if c.qty_lots:
                book.levels[c.side][c.price_ticks] = c
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
                self.levels[side][ticks] = c
            else:
                self.levels[side].pop(ticks, None)
        self.seq += 1
        levels = [(c.side, c.price, c.qty, c.count) for c in last.values()]
        # LevelChange.side is a plain str, always "buy" or "sell".
        return DepthUpdate(self.symbol, self.seq,
                           cast("list[tuple[SideName, str, str, int]]", levels), self.epoch)

    def _side(self, side: str) -> list[LevelChange]:
        return sorted(self.levels[side].values(), key=lambda c: c.price_ticks,
                      reverse=side == "buy")

    def snapshot(self) -> DepthSnapshot:
        return DepthSnapshot(self.symbol, self.seq,
                             [(c.price, c.qty, c.count) for c in self._side("buy")],
                             [(c.price, c.qty, c.count) for c in self._side("sell")],
                             self.epoch)

    def bbo(self) -> BBO:
        bids, asks = self._side("buy"), self._side("sell")
        b, a = (bids[0] if bids else None), (asks[0] if asks else None)
        return BBO(self.symbol, self.seq, b.price if b else None, b.qty if b else None,
                   a.price if a else None, a.qty if a else None, self.epoch)

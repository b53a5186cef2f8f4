"""Market depth as a layer of its own: L2 state per symbol fed by the engine's level changes.

Each publishing cycle's changes are coalesced (last state per level wins) into one
``DepthUpdate`` with the next per-symbol sequence number; the snapshot carries the
sequence it is valid at, so a subscriber that sees a gap resyncs from it.
"""
from __future__ import annotations

from typing import cast

from feeds.codec import BBO, DepthSnapshot, DepthUpdate
from matching.messages import SideName
from matching.outputs import LevelChange


class DepthBook:
    """The L2 view of one symbol, as published."""

    def __init__(self, symbol: str):
        self.symbol = symbol
        self.seq = 0
        self.levels: dict[str, dict[int, LevelChange]] = {"buy": {}, "sell": {}}

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
                           cast("list[tuple[SideName, str, str, int]]", levels))

    def _side(self, side: str) -> list[LevelChange]:
        return sorted(self.levels[side].values(), key=lambda c: c.price_ticks,
                      reverse=side == "buy")

    def snapshot(self) -> DepthSnapshot:
        return DepthSnapshot(self.symbol, self.seq,
                             [(c.price, c.qty, c.count) for c in self._side("buy")],
                             [(c.price, c.qty, c.count) for c in self._side("sell")])

    def bbo(self) -> BBO:
        bids, asks = self._side("buy"), self._side("sell")
        b, a = (bids[0] if bids else None), (asks[0] if asks else None)
        return BBO(self.symbol, self.seq, b.price if b else None, b.qty if b else None,
                   a.price if a else None, a.qty if a else None)

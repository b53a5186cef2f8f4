"""The published depth view (feeds.depth) against a recount of the levels it was fed."""
from __future__ import annotations

import random

from feeds.depth import DepthBook
from matching.outputs import LevelChange


def _change(side: str, ticks: int, lots: int) -> LevelChange:
    return LevelChange("TB3M", side, f"{ticks // 1000}.{ticks % 1000:03d}", f"{lots / 100:.2f}",
                       max(lots // 3, 1) if lots else 0, ticks, lots)


def _recount(state: dict[tuple[str, int], LevelChange], side: str) -> list[tuple]:
    levels = sorted((c for (s, _), c in state.items() if s == side),
                    key=lambda c: c.price_ticks, reverse=side == "buy")
    return [(c.price, c.qty, c.count) for c in levels]


def test_snapshot_and_bbo_match_a_recount_after_every_cycle():
    rng = random.Random(16)
    book = DepthBook("TB3M")
    state: dict[tuple[str, int], LevelChange] = {}
    for _ in range(400):
        changes = []
        for _ in range(rng.randint(1, 12)):
            side = rng.choice(("buy", "sell"))
            ticks = (97_000 if side == "buy" else 100_000) + rng.randint(0, 60)
            lots = rng.choice((0, 0, rng.randint(1, 500)))
            changes.append(_change(side, ticks, lots))
            if lots:
                state[(side, ticks)] = changes[-1]
            else:
                state.pop((side, ticks), None)
        book.apply(changes)
        snap = book.snapshot()
        bids, asks = _recount(state, "buy"), _recount(state, "sell")
        assert [tuple(r) for r in snap.bids] == bids
        assert [tuple(r) for r in snap.asks] == asks
        bbo = book.bbo()
        assert (bbo.bid, bbo.bid_qty) == ((bids[0][0], bids[0][1]) if bids else (None, None))
        assert (bbo.ask, bbo.ask_qty) == ((asks[0][0], asks[0][1]) if asks else (None, None))


def test_a_snapshot_handed_out_is_not_changed_by_later_cycles():
    book = DepthBook("TB3M")
    book.apply([_change("buy", 97_500, 10)])
    first = book.snapshot()
    book.apply([_change("buy", 97_600, 20), _change("buy", 97_500, 0)])
    assert [tuple(r) for r in first.bids] == [("97.500", "0.10", 3)]
    assert [tuple(r) for r in book.snapshot().bids] == [("97.600", "0.20", 6)]


def test_book_rebuilt_from_levels_sorts_best_first():
    levels = [_change("buy", t, 5) for t in (97_100, 97_300, 97_200)] + \
             [_change("sell", t, 5) for t in (100_300, 100_100)] + [_change("sell", 100_200, 0)]
    book = DepthBook.of("TB3M", levels, seq=7, epoch=1)
    snap = book.snapshot()
    assert [r[0] for r in snap.bids] == ["97.300", "97.200", "97.100"]
    assert [r[0] for r in snap.asks] == ["100.100", "100.300"]
    assert book.bbo().bid == "97.300" and book.bbo().ask == "100.100"

"""What a market buy can cost: the cash of the asks it would take, walked up to its
quantity with the price band as the cap, instead of its whole quantity at the band top.

In continuous trading a market order trades as an IOC limited at the band edge
(docs/engine-rules.md): it takes the asks best first up to its quantity and the band, and
the rest is canceled (MARKET_REMAINDER). So the most it can pay is each level's worst-case
cash for the lots it takes there. The walk reads only ``OrderBook.depth`` (both book
engines answer it alike), except when the buyer has asks of its own resting on the book:
self-trade prevention may cancel those and let the order walk deeper, so its own lots
are left out of the walk (``resting_orders``), which can only raise the bound.
"""
from __future__ import annotations

__all__ = ["MarketWalk", "walk_asks"]

_SELL = 2


class MarketWalk:
    """The asks a market buy would take: ``levels`` as (ticks, lots) best first, the
    ``lots`` they add up to, and ``fills``, the most resting orders it can trade with."""
    __slots__ = ("levels", "lots", "fills")

    def __init__(self, levels: list, lots: int, fills: int):
        self.levels = levels
        self.lots = lots
        self.fills = fills


def walk_asks(book, qty: int, band_hi: int, account, own_asks: bool) -> MarketWalk:
    """The asks a market buy of ``qty`` lots by ``account`` would take at prices up to
    ``band_hi``; O(levels reached), or O(resting orders) when ``own_asks`` (the account
    may have asks on this book).

    A market buy of 5000 lots against asks 3000 @ 99350 and 4000 @ 99360 takes
    ``[(99350, 3000), (99360, 2000)]``.
    """
    levels: list = []
    left, fills = qty, 0
    if own_asks:
        for _oid, side, price, leaves, owner, _stp, _post in book.resting_orders():
            if side != _SELL or price is None or owner == account:
                continue
            if price > band_hi or left <= 0:
                break
            take = leaves if leaves < left else left
            if levels and levels[-1][0] == price:
                levels[-1] = (price, levels[-1][1] + take)
            else:
                levels.append((price, take))
            left -= take
            fills += 1
        return MarketWalk(levels, qty - left, fills)
    for price, lots, count in book.depth(_SELL, len(book)):
        if price > band_hi or left <= 0:
            break
        take = lots if lots < left else left
        levels.append((price, take))
        left -= take
        fills += count
    return MarketWalk(levels, qty - left, fills)

"""The uncross price of a call auction, in plain Python: the principle of highest
executable volume (Deutsche Börse / Xetra "Meistausführungsprinzip"; LSE's uncrossing
algorithm keeps the same steps). The reference book uses it; the Cython core computes the
same in C (``ext/_core.pyx``, ``auction_price``); the rules are in docs/matching-rules.md.

At a price ``p`` the executable demand is ``D(p)`` = market buys + bids at or above ``p``,
the executable supply ``S(p)`` = market sells + asks at or below ``p``; the volume is
``min(D, S)`` and the surplus ``D - S`` (buy side when positive). Candidates are the limit
prices on the book and the reference. Among them:

1. the highest volume; 2. the least absolute surplus; 3. market pressure: every candidate
left has its surplus on the buy side -> the cap ``reference + width`` (all at or below it:
the highest, all at or above it: the lowest, on both sides: the cap itself); every one on
the sell side -> the floor ``reference - width`` mirrored; 4. otherwise the reference if
it lies within the candidates left, else the nearest of them. When only market orders
execute (the volume is ``min(market buys, market sells)``), the reference price.
"""
from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from fractions import Fraction
from typing import NamedTuple

__all__ = ["Indicative", "auction_price", "executable", "pressure_width", "leave_call_check"]

#: Surplus sides, as the book's Side codes (0: no surplus).
NO_SURPLUS, BUY_SURPLUS, SELL_SURPLUS = 0, 1, 2


class Indicative(NamedTuple):
    """What an uncross at this moment would do."""
    price: int
    volume: int
    surplus: int
    surplus_side: int


def executable(price: int, market_buy: int, market_sell: int,
               bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]]
               ) -> tuple[int, int]:
    """``(D(price), S(price))`` from ``(price, qty)`` levels."""
    demand = market_buy + sum(q for p, q in bids if p >= price)
    supply = market_sell + sum(q for p, q in asks if p <= price)
    return demand, supply


def auction_price(market_buy: int, market_sell: int, bids: list[tuple[int, int]],
                  asks: list[tuple[int, int]], reference: int, width: int
                  ) -> Indicative | None:
    """The uncross price and what executes at it, or None when nothing can execute.

    ``bids``/``asks`` are ``(price, qty)`` levels, ``width`` the market-pressure limit in
    ticks (``pressure_width``). O(levels^2): written to be read.

    >>> auction_price(0, 0, [(101, 5)], [(99, 3), (100, 4)], 100, 1)
    Indicative(price=100, volume=5, surplus=2, surplus_side=2)
    """
    def at(p: int) -> Indicative:
        d, s = executable(p, market_buy, market_sell, bids, asks)
        side = BUY_SURPLUS if d > s else SELL_SURPLUS if s > d else NO_SURPLUS
        return Indicative(p, min(d, s), abs(d - s), side)

    candidates = [at(p) for p in sorted({p for p, _ in bids} | {p for p, _ in asks}
                                        | {reference})]
    volume = max(c.volume for c in candidates)
    if volume == 0:
        return None
    if market_buy and market_sell and volume == min(market_buy, market_sell):
        return at(reference)                         # only market orders execute
    left = [c for c in candidates if c.volume == volume]                    # 1
    least = min(c.surplus for c in left)
    left = [c for c in left if c.surplus == least]                         # 2
    lo, hi = left[0].price, left[-1].price
    if all(c.surplus_side == BUY_SURPLUS for c in left):                   # 3, buy side
        cap = reference + width
        price = hi if hi <= cap else lo if lo >= cap else cap
    elif all(c.surplus_side == SELL_SURPLUS for c in left):                # 3, sell side
        floor = reference - width
        price = lo if lo >= floor else hi if hi <= floor else floor
    else:                                                                  # 4
        price = reference if lo <= reference <= hi else lo if reference < lo else hi
    return at(price)


def pressure_width(reference: int, pressure_limit_pct) -> int:
    """The market-pressure limit in ticks: ``reference * pct / 100`` rounded toward the
    reference, so the cap and the floor lie on the tick grid within x% of it.

    ``pressure_limit_pct`` is an int, Fraction or Decimal (never a float), not negative.

    >>> pressure_width(10_000, Decimal("2.5"))
    250
    """
    if isinstance(pressure_limit_pct, bool) or not isinstance(
            pressure_limit_pct, (int, Fraction, Decimal)):
        raise TypeError(f"pressure_limit_pct must be an int, Fraction or Decimal, got "
                        f"{type(pressure_limit_pct).__name__} {pressure_limit_pct!r}")
    pct = Fraction(pressure_limit_pct)
    if pct < 0:
        raise ValueError(f"pressure_limit_pct must not be negative, got {pressure_limit_pct}")
    return abs(reference) * pct.numerator // (pct.denominator * 100)


def leave_call_check(crosses: bool, market_orders: int, gfa_orders: int) -> None:
    """``set_call(False)`` without an uncross is refused (ValueError) while the book would
    execute or holds orders that may not outlive the call."""
    if crosses or market_orders or gfa_orders:
        raise ValueError(f"the call holds executable or auction-only orders (crossing: "
                         f"{crosses}, market: {market_orders}, good-for-auction: "
                         f"{gfa_orders}): end it with uncross()")

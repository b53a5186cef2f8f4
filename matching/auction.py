"""The engine's call auctions: each instrument's reference price, the uncross, the
closing price and what the auction market-data topic shows during a call.

A call is the book's call mode (docs/matching-rules.md, "Call auction"). The engine
enters it on ``pre_open`` (the opening call; sent again before ``close`` it is the
closing call) and ends it with an uncross on ``open``, on ``resume`` after a halt and on
``close`` (before DAY orders expire). The uncross's reference is the last trade price
(continuous or auction), else the instrument's reference price; the market-pressure
limit, the bands and the call durations are the instrument's ``call_auction`` terms
(matching/call_terms.py). All of it follows from journaled inputs, so replay and
recovery reproduce it (``snapshot``/``restore`` carry it across a snapshot).

The closing price (LSE rule 2110-style): the closing auction's price when it traded,
else the volume-weighted average price of the trades of the instrument's VWAP window
(``closing_vwap_seconds``, 5 minutes by default), else the
last trade's price, else none.
"""
from __future__ import annotations

import functools
from collections import deque
from fractions import Fraction
from typing import Literal, NamedTuple

import msgspec

from matching.call_end import CallTimer
from matching.call_terms import DEFAULT_CALL_TERMS

__all__ = ["Auctions", "AuctionView", "ClosingPrice", "Interruption", "PRESSURE_LIMIT_PCT",
           "VWAP_WINDOW_NS", "DYNAMIC_BAND_PCT", "STATIC_BAND_PCT"]

#: The defaults of an instrument's terms (matching/call_terms.py). Market-pressure limit
#: of an uncross, percent of the reference (rule 3).
PRESSURE_LIMIT_PCT = DEFAULT_CALL_TERMS.pressure_limit_pct
#: The closing price's fallback: the VWAP of the trades of the last five minutes.
VWAP_WINDOW_NS = DEFAULT_CALL_TERMS.closing_vwap_ns
#: Volatility interruption (Xetra's dynamic and static price ranges): a fill may not be
#: more than this far from the last trade (dynamic) or the last auction price (static;
#: before any auction, the instrument's reference price). Per instrument: ``Auctions.bands``.
DYNAMIC_BAND_PCT = DEFAULT_CALL_TERMS.dynamic_band_pct
STATIC_BAND_PCT = DEFAULT_CALL_TERMS.static_band_pct
_SIDES: dict[int, Literal["buy", "sell"]] = {1: "buy", 2: "sell"}



@functools.lru_cache(maxsize=64)
def _ratio(pct) -> tuple[int, int]:
    """A band's percentage as an exact fraction, built once per setting: two Fractions
    per order were ~8% of the gateway's CPU (issue 16's profile)."""
    f = Fraction(pct)
    return f.numerator, f.denominator

class ClosingPrice(NamedTuple):
    """The day's closing price in ticks and how it was found."""
    price_ticks: int | None
    method: Literal["auction", "vwap", "last_trade", "none"]


class Interruption(NamedTuple):
    """An incoming order's next fill would fall outside a band: trade up to ``edge``."""
    edge: int                 # the last price the order may fill at, ticks
    next_price: int           # the price of the fill that would fall outside
    band: str                 # "dynamic" or "static"
    lo: int
    hi: int


class AuctionView(msgspec.Struct, omit_defaults=True, gc=False):
    """``md/{symbol}/auction``: during a call the indicative price, the paired volume and
    the surplus with its side, or the best bid and ask when nothing crosses; after the
    uncross (``phase`` uncrossed) the price and volume it executed. ``seq``: the engine
    input it is valid at."""
    symbol: str
    phase: Literal["call", "uncrossed"]
    seq: int
    epoch: int = 0
    price: str | None = None
    volume: str | None = None
    surplus: str | None = None
    surplus_side: Literal["buy", "sell"] | None = None
    best_bid: str | None = None
    best_ask: str | None = None


class Auctions:
    """Per instrument: the last trade and auction prices, the recent trades (for the
    closing VWAP), the last uncross and the last closing price."""

    def __init__(self, instruments: dict):
        self.initial = {s: i.reference_ticks() for s, i in instruments.items()}
        self.last_trade: dict[str, int | None] = dict.fromkeys(instruments)
        self.last_auction: dict[str, int | None] = dict.fromkeys(instruments)
        # (input time ns, price ticks, lots) of the trades of the VWAP window.
        self.tape: dict[str, deque] = {s: deque() for s in instruments}
        self.uncrossed: dict[str, tuple[int, int, int]] = {}   # symbol -> (seq, price, lots)
        self.closing: dict[str, ClosingPrice] = {}
        # Each instrument's settings are its terms (matching/call_terms.py).
        terms = {s: getattr(i, "call_auction", DEFAULT_CALL_TERMS)
                 for s, i in instruments.items()}
        #: symbol -> (dynamic %, static %) of the volatility interruption.
        self.bands = {s: (t.dynamic_band_pct, t.static_band_pct) for s, t in terms.items()}
        #: The static band's reference the operator set (``set_reference``); the next
        #: auction price replaces it.
        self.static_ref: dict[str, int] = {}
        #: symbol -> the wider band's %: a volatility call ending outside it is extended.
        self.extended_pct = {s: t.extended_band_pct for s, t in terms.items()}
        #: symbol -> the market-pressure limit of its uncross, percent (rule 3).
        self.pressure_pct = {s: t.pressure_limit_pct for s, t in terms.items()}
        #: symbol -> the closing price's VWAP window, ns.
        self.vwap_window_ns = {s: t.closing_vwap_ns for s, t in terms.items()}
        #: Instruments in a volatility call extended past its end (outside the wider
        #: band): it waits for the operator's ``resume`` (or ``open``).
        self.extended: set[str] = set()
        #: The timed ends of calls (minimum duration, random end): matching/call_end.py.
        self.timer = CallTimer(instruments)
        for s, t in terms.items():
            self.timer.min_call_ns[s] = t.min_call_ns
            self.timer.random_end_ns[s] = t.random_end_ns

    def _band(self, anchor: int, pct) -> tuple[int, int]:
        num, den = _ratio(pct)              # width rounds toward the anchor (floor)
        width = abs(anchor) * num // (den * 100)
        return anchor - width, anchor + width

    def interruption(self, symbol: str, book, side: int, limit: int, qty: int
                     ) -> Interruption | None:
        """Would an incoming order of ``side`` limited at ``limit`` fill outside the
        dynamic or static band? Then the band edge it may trade up to. O(levels it
        would reach); None at once when its limit lies inside both bands."""
        dynamic_pct, static_pct = self.bands[symbol]
        lo, hi = self._band(self.static_anchor(symbol), static_pct)
        band = "static"
        last = self.last_trade[symbol]
        if last is not None:
            d_lo, d_hi = self._band(last, dynamic_pct)
            if (side == 1 and d_hi < hi) or (side == 2 and d_lo > lo):
                band = "dynamic"
            lo, hi = max(lo, d_lo), min(hi, d_hi)
        if (limit <= hi) if side == 1 else (limit >= lo):
            return None
        left = qty
        for price, lots, _ in book.depth(2 if side == 1 else 1, len(book)):
            if (price > limit) if side == 1 else (price < limit):
                return None
            if (price > hi) if side == 1 else (price < lo):
                return Interruption(hi if side == 1 else lo, price, band, lo, hi)
            left -= lots
            if left <= 0:
                return None
        return None

    def static_anchor(self, symbol: str) -> int:
        """The static band's reference: the operator's (``set_reference``), else the last
        auction price, else the instrument's reference price."""
        anchor = self.static_ref.get(symbol, self.last_auction[symbol])
        return self.initial[symbol] if anchor is None else anchor

    def set_reference(self, symbol: str, price: int) -> None:
        """The operator moves the static band's reference (a journaled input)."""
        self.static_ref[symbol] = price

    def outside_extended(self, symbol: str, book) -> tuple[int, int, int] | None:
        """``(indicative price, lo, hi)`` when the call's indicative price lies outside
        the wider band around the static reference (the call is then extended), else
        None (nothing crosses, or it is inside)."""
        found = book.indicative(self.reference(symbol, book), self.pressure_pct[symbol])
        if found is None:
            return None
        lo, hi = self._band(self.static_anchor(symbol), self.extended_pct[symbol])
        return None if lo <= found[0] <= hi else (found[0], lo, hi)

    def reference(self, symbol: str, book) -> int:
        """The uncross's reference: last trade, else last auction, else the instrument's
        reference price; moved onto the book's ladder."""
        ref = self.last_trade[symbol]
        if ref is None:
            ref = self.last_auction[symbol]
        if ref is None:
            ref = self.initial[symbol]
        return min(max(ref, book.price_lo), book.price_lo + book.n_levels - 1)

    def extended_of(self, symbols) -> list[str]:
        """The instruments among ``symbols`` in an extended volatility call, sorted."""
        return sorted(s for s in symbols if s in self.extended)

    def on_fill(self, symbol: str, now: int, price: int, lots: int) -> None:
        """Remember a trade (O(1) amortised: the window drops what is older)."""
        self.last_trade[symbol] = price
        tape = self.tape[symbol]
        tape.append((now, price, lots))
        window = self.vwap_window_ns[symbol]
        while tape and tape[0][0] < now - window:
            tape.popleft()

    def uncross(self, symbol: str, book, seq: int) -> tuple[list, tuple | None]:
        """End the call of ``book``: its events (``take_event_rows``) and what executed,
        ``(price, volume, surplus, side)`` or None."""
        if not book.in_call:
            book.set_call(True)            # a call of no length: what rests is uncrossed
        self.extended.discard(symbol)
        ref = self.reference(symbol, book)
        pct = self.pressure_pct[symbol]
        found = book.indicative(ref, pct)
        book.uncross(ref, pct)
        if found is not None:
            self.last_auction[symbol] = found[0]
            self.static_ref.pop(symbol, None)          # the auction price is the anchor
            self.uncrossed[symbol] = (seq, found[0], found[1])
        else:
            self.uncrossed.pop(symbol, None)
        return book.take_event_rows(), found

    def close(self, symbol: str, found: tuple | None, now: int) -> ClosingPrice:
        """The closing price after the closing uncross (``found``: what it executed)."""
        if found is not None:
            price = ClosingPrice(found[0], "auction")
        else:
            since = now - self.vwap_window_ns[symbol]
            recent = [(p, q) for t, p, q in self.tape[symbol] if t >= since]
            lots = sum(q for _, q in recent)
            if lots:
                vwap = Fraction(sum(p * q for p, q in recent), lots)
                # Half-even to a whole tick: the closing price is a price on the grid.
                price = ClosingPrice(round(vwap), "vwap")
            elif self.last_trade[symbol] is not None:
                price = ClosingPrice(self.last_trade[symbol], "last_trade")
            else:
                price = ClosingPrice(None, "none")
        self.closing[symbol] = price
        return price

    def view(self, symbol: str, book, conv, seq: int, epoch: int) -> AuctionView | None:
        """What ``md/{symbol}/auction`` shows now: the call's indicative state, the last
        uncross's result, or None (no call yet)."""
        if book.in_call:
            found = book.indicative(self.reference(symbol, book), self.pressure_pct[symbol])
            if found is None:
                bid, ask = book.best_bid(), book.best_ask()
                return AuctionView(symbol, "call", seq, epoch,
                                   best_bid=None if bid is None else conv.price(bid),
                                   best_ask=None if ask is None else conv.price(ask))
            price, volume, surplus, side = found
            return AuctionView(symbol, "call", seq, epoch, conv.price(price),
                               conv.qty(volume), conv.qty(surplus), _SIDES.get(side))
        done = self.uncrossed.get(symbol)
        if done is None:
            return None
        return AuctionView(symbol, "uncrossed", done[0], epoch, conv.price(done[1]),
                           conv.qty(done[2]))

    def snapshot(self) -> dict:
        snap = {"last_trade": self.last_trade, "last_auction": self.last_auction,
                "tape": {s: list(t) for s, t in self.tape.items()},
                "uncrossed": self.uncrossed,
                "closing": {s: list(c) for s, c in self.closing.items()}}
        # Only when used: a venue without them snapshots (and hashes) as before.
        if self.static_ref:
            snap["static_ref"] = dict(sorted(self.static_ref.items()))
        if self.timer.pending:
            snap["call_ends"] = self.timer.snapshot()
        if self.extended:
            snap["extended"] = sorted(self.extended)
        return snap

    def restore(self, snap: dict) -> None:
        self.last_trade.update(snap["last_trade"])
        self.last_auction.update(snap["last_auction"])
        for s, rows in snap["tape"].items():
            self.tape[s] = deque(tuple(r) for r in rows)
        self.uncrossed = {s: tuple(v) for s, v in snap["uncrossed"].items()}
        self.closing = {s: ClosingPrice(*v) for s, v in snap["closing"].items()}
        self.static_ref = dict(snap.get("static_ref", {}))
        self.timer.restore(snap.get("call_ends", {}))
        self.extended = set(snap.get("extended", ()))

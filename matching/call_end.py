"""When a call may end: the volatility interruption's minimum duration, the optional
random end (Xetra's "random end" of every call) and the extension of a volatility call
whose indicative price lies outside the wider band.

A timed call has an earliest end (``CallEnd.ends_at``, ns). The gateway's timer sends
the journaled ``end_call`` input once it has passed (``Engine.next_call_end``); the
engine then ends each call that is due. The random draw is derived from journaled data
only (the venue seed, the symbol, the sequence number and time of the input that set the
end), never from the process's RNG, so replay and recovery reproduce it exactly.

Xetra (Deutsche Börse, "Xetra Market Model", sections on auctions and volatility
interruptions): an auction's call phase ends randomly within up to 30 s after its minimum
duration; a volatility interruption lasts at least 2 minutes and is extended, until the
market supervision ends it, when the indicative price lies outside the extended range.
"""
from __future__ import annotations

import hashlib
from typing import Literal, NamedTuple

from matching.call_terms import DEFAULT_CALL_TERMS

__all__ = ["CallEnd", "CallTimer", "VOLATILITY_CALL_NS", "EXTENDED_BAND_PCT",
           "random_draw_ns"]

_NS_PER_MS = 1_000_000
#: A volatility interruption's minimum call duration (Xetra: 2 minutes), the default of
#: the instrument's ``min_call_seconds`` (``CallTimer.min_call_ns``).
VOLATILITY_CALL_NS = DEFAULT_CALL_TERMS.min_call_ns
#: The wider band around the static reference: an indicative price outside it at the
#: end of a volatility call extends the call until the operator opens (the default of
#: the instrument's ``extended_band_pct``).
EXTENDED_BAND_PCT = DEFAULT_CALL_TERMS.extended_band_pct

#: What the call's end does: the session action it finishes.
EndKind = Literal["open", "resume", "close", "volatility"]


class CallEnd(NamedTuple):
    """A call waiting for its timed end: not before ``ends_at`` (ns); ``kind`` is what the
    end finishes; ``drawn``: the random end was drawn already; ``venue_wide``: a close of
    every instrument (the trading day ends once none is left in its closing call)."""
    ends_at: int
    kind: str
    drawn: bool
    venue_wide: bool


def random_draw_ns(seed: str, symbol: str, seq: int, now: int, max_ns: int) -> int:
    """A random end period in ``0..max_ns`` (whole milliseconds), derived from journaled
    data: sha256 of the seed, the symbol and the sequence number and time of the input
    that scheduled the end. Uniform to within 2**-64.

    >>> random_draw_ns("", "TB3M", 1, 0, 0)
    0
    """
    if max_ns <= 0:
        return 0
    digest = hashlib.sha256(f"{seed}|{symbol}|{seq}|{now}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % (max_ns // _NS_PER_MS + 1) * _NS_PER_MS


class CallTimer:
    """Per instrument: the calls waiting for their timed end, and the settings (minimum
    volatility call, the random end period, the venue seed) they are drawn with."""

    def __init__(self, symbols, seed: str = ""):
        self.seed = seed
        self.min_call_ns = dict.fromkeys(symbols, VOLATILITY_CALL_NS)
        #: Up to this long after the scheduled end (0: no random end; Xetra: 30 s).
        self.random_end_ns = dict.fromkeys(symbols, 0)
        self.pending: dict[str, CallEnd] = {}

    def schedule(self, symbol: str, kind: str, seq: int, now: int,
                 venue_wide: bool = False) -> CallEnd | None:
        """The end of ``symbol``'s call that ``kind`` sets at input ``seq``, time ``now``:
        a volatility call waits its minimum duration (the random end drawn when it has
        passed); an open, resume or close waits its random end, or None (end now)."""
        if kind == "volatility":
            end = CallEnd(now + self.min_call_ns[symbol], kind, False, venue_wide)
        else:
            draw = random_draw_ns(self.seed, symbol, seq, now, self.random_end_ns[symbol])
            if draw == 0:
                self.pending.pop(symbol, None)
                return None
            end = CallEnd(now + draw, kind, True, venue_wide)
        self.pending[symbol] = end
        return end

    def redraw(self, symbol: str, seq: int, now: int) -> CallEnd | None:
        """A volatility call past its minimum: its random end, or None (end now)."""
        end = self.pending[symbol]
        draw = random_draw_ns(self.seed, symbol, seq, now, self.random_end_ns[symbol])
        if draw == 0:
            return None
        end = end._replace(ends_at=now + draw, drawn=True)
        self.pending[symbol] = end
        return end

    def due(self, symbols, now: int) -> list[str]:
        """The instruments among ``symbols`` whose call may end at ``now``, sorted."""
        return sorted(s for s in symbols
                      if s in self.pending and self.pending[s].ends_at <= now)

    def next_at(self) -> int | None:
        """The earliest timed end of any call (None: no timed call)."""
        return min((e.ends_at for e in self.pending.values()), default=None)

    def snapshot(self) -> dict:
        return {s: list(e) for s, e in sorted(self.pending.items())}

    def restore(self, snap: dict) -> None:
        self.pending = {s: CallEnd(*v) for s, v in snap.items()}

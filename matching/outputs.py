"""What the engine produces for one input: the Outcome, and the public market data in it.

Nothing here may be published before the journal made the input durable
(``Engine.commit()``). ExecutionReport, the private part, is in ``matching.messages``
with the inputs, since it is also the wire format.
"""
from __future__ import annotations

import cython
import msgspec

from matching.session import TradingStateName

__all__ = ["Outcome", "TradePrint", "LevelChange", "SessionStatus", "new_outcome"]


class SessionStatus(msgspec.Struct, frozen=True, gc=False):
    """An instrument's trading state, why (the operator's reason) and the input that set it
    (0: the venue's initial state)."""
    symbol: str
    state: TradingStateName
    reason: str
    seq: int


class TradePrint(msgspec.Struct, frozen=True, gc=False):
    """One fill on the public tape."""
    symbol: str
    trade_id: str
    seq: int
    time: str                 # UTCTimestamp (matching.messages.utc_timestamp)
    price: str
    qty: str
    price_ticks: int
    qty_lots: int
    aggressor: str
    yield_pct: str | None = None


class LevelChange(msgspec.Struct, frozen=True, gc=False):
    """New state of one L2 level: aggregate quantity 0 means the level is gone."""
    symbol: str
    side: str
    price: str
    qty: str
    count: int
    price_ticks: int
    qty_lots: int


@cython.cclass
class Outcome:
    """Everything one input produced. Nothing in it may be published before
    ``engine.commit()`` has returned a durable watermark of at least ``seq``.

    ``sequenced``: the input got sequence number ``seq`` and was journaled (False for a
    resend answered from memory, a message that never decoded, or an input the engine
    refused whole, ``refused`` then saying why). ``reports``: ``(broker,
    ExecutionReport or OrderCancelReject)`` pairs; ``trades``: TradePrint; ``levels``: LevelChange;
    ``settled_cash``: cash minor units buyers paid in this input's fills.
    Compiled, an extension type with C slots (engine.pxd): one is made per input."""
    __slots__ = ("seq", "reports", "trades", "levels", "replayed", "sequenced", "refused",
                 "settled_cash")

    def __init__(self, seq: int, reports: list | None = None, trades: list | None = None,
                 levels: list | None = None, replayed: bool = False, sequenced: bool = False,
                 refused: str = "", settled_cash: int = 0):
        self.seq = seq
        self.reports = [] if reports is None else reports
        self.trades = [] if trades is None else trades
        self.levels = [] if levels is None else levels
        self.replayed = replayed
        self.sequenced = sequenced
        self.refused = refused
        self.settled_cash = settled_cash

    def _fields(self) -> tuple:
        return (self.seq, self.reports, self.trades, self.levels, self.replayed,
                self.sequenced, self.refused, self.settled_cash)

    def __eq__(self, other):
        return type(other) is type(self) and self._fields() == other._fields()

    def __repr__(self) -> str:
        return (f"Outcome(seq={self.seq!r}, reports={self.reports!r}, trades={self.trades!r}, "
                f"levels={self.levels!r}, replayed={self.replayed!r}, "
                f"sequenced={self.sequenced!r}, refused={self.refused!r}, "
                f"settled_cash={self.settled_cash!r})")


def new_outcome(seq: int) -> Outcome:
    """``Outcome(seq)`` of a sequenced input, with its lists, positional (one per input)."""
    return Outcome(seq, [], [], [], False, True, "", 0)

"""Day statistics of each instrument since its session opened: open, high, low, last,
volume, VWAP and trade count (what ``md/{symbol}/stats`` publishes, retained).

Derived from the fills alone (``TradePrint``), in integer ticks and lots; VWAP is
sum(price x qty) / sum(qty) over the session's fills (the volume-weighted average price
as exchanges publish it, e.g. Xetra's daily statistics), shown like FIX AvgPx: the
instrument's price decimals and up to 6 more. A new session starts when an instrument
leaves ``closed`` (``reset``). The figures are kept in snapshots (``matching.recovery``)
and rebuilt by replay, so a restart republishes the same; they are not in the state
hash, being a function of the fills the hash already covers.
"""
from __future__ import annotations

import msgspec

__all__ = ["DayStats", "SessionStats", "StatsView"]


class SessionStats(msgspec.Struct, array_like=True):
    """One instrument's running figures in ticks and lots (``value``: sum ticks x lots)."""
    open: int = 0
    high: int = 0
    low: int = 0
    last: int = 0
    volume: int = 0
    value: int = 0
    trades: int = 0


class StatsView(msgspec.Struct, omit_defaults=True):
    """``md/{symbol}/stats``: decimal strings in the instrument's units (no fill yet: the
    prices are absent), as of engine ``seq``."""
    symbol: str
    trade_count: int
    volume: str
    seq: int
    epoch: int = 0
    open: str | None = None
    high: str | None = None
    low: str | None = None
    last: str | None = None
    vwap: str | None = None


class DayStats:
    """Every instrument's SessionStats; ``record`` takes an input's fills in order."""

    def __init__(self, symbols) -> None:
        self.by_symbol: dict[str, SessionStats] = {s: SessionStats() for s in symbols}

    def record(self, trades) -> None:
        """Fold fills (TradePrints) into their instruments' figures."""
        for t in trades:
            s = self.by_symbol[t.symbol]
            px, lots = t.price_ticks, t.qty_lots
            if s.trades == 0:
                s.open = s.high = s.low = px
            elif px > s.high:
                s.high = px
            elif px < s.low:
                s.low = px
            s.last = px
            s.volume += lots
            s.value += px * lots
            s.trades += 1

    def reset(self, symbol: str) -> None:
        """A new session of ``symbol`` begins: nothing traded yet."""
        self.by_symbol[symbol] = SessionStats()

    def view(self, symbol: str, conv, economics, seq: int, epoch: int) -> StatsView:
        """The published figures of ``symbol`` (``conv``: its Conversions, ``economics``
        its Economics for the VWAP's decimals)."""
        s = self.by_symbol[symbol]
        out = StatsView(symbol, s.trades, conv.qty(s.volume), seq, epoch)
        if s.trades:
            out.open, out.high, out.low, out.last = (conv.price(v) for v in (
                s.open, s.high, s.low, s.last))
            out.vwap = (conv.price(s.value // s.volume) if s.value % s.volume == 0
                        else economics.avg_px(s.value, s.volume))
        return out

    def snapshot(self) -> list:
        return [[sym, msgspec.structs.astuple(s)] for sym, s in self.by_symbol.items()]

    def restore(self, rows) -> None:
        for sym, row in rows or ():
            if sym in self.by_symbol:
                self.by_symbol[sym] = SessionStats(*row)

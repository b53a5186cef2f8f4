"""Market-data subscriber: rebuilds each book from depth increments, checks sequences.

A gap in a symbol's depth sequence marks it out of sync; the next retained snapshot with
a sequence at or past the gap resyncs it. ``render`` draws the books with rich.
"""
from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from rich.console import Group
from rich.table import Table

from feeds import mqtt, topics

__all__ = ["BookView", "MarketView", "render", "watch"]


@dataclass
class BookView:
    symbol: str
    seq: int = -1
    bids: dict[str, tuple[str, int]] = field(default_factory=dict)
    asks: dict[str, tuple[str, int]] = field(default_factory=dict)
    trades: deque = field(default_factory=lambda: deque(maxlen=8))
    in_sync: bool = False
    gaps: int = 0
    resyncs: int = 0
    volume: Decimal = Decimal(0)
    n_trades: int = 0
    state: str = "continuous"     # trading state (retained md/{symbol}/state)
    state_reason: str = ""

    def on_snapshot(self, doc: dict) -> None:
        if self.in_sync and doc["seq"] <= self.seq:
            return
        self.bids = {p: (q, c) for p, q, c in doc["bids"]}
        self.asks = {p: (q, c) for p, q, c in doc["asks"]}
        if not self.in_sync and self.seq >= 0:
            self.resyncs += 1
        self.seq, self.in_sync = doc["seq"], True

    def on_depth(self, doc: dict) -> None:
        if not self.in_sync or doc["seq"] <= self.seq:
            return
        if doc["seq"] != self.seq + 1:
            self.gaps += 1                      # wait for a snapshot past the gap
            self.in_sync = False
            return
        for side, price, qty, count in doc["levels"]:
            levels = self.bids if side == "buy" else self.asks
            if Decimal(qty) == 0:
                levels.pop(price, None)
            else:
                levels[price] = (qty, count)
        self.seq = doc["seq"]

    def on_trade(self, doc: dict) -> None:
        self.trades.appendleft(doc)
        self.volume += Decimal(doc["qty"])
        self.n_trades += 1

    def ladder(self, side: str) -> list[tuple[str, str, int]]:
        levels = self.bids if side == "buy" else self.asks
        prices = sorted(levels, key=Decimal, reverse=side == "buy")
        return [(p, *levels[p]) for p in prices]


class MarketView:
    """Every symbol's BookView, fed from MQTT messages."""

    def __init__(self):
        self.books: dict[str, BookView] = {}

    def on_message(self, topic: str, payload: bytes) -> None:
        parts = topic.split("/")
        if len(parts) != 5 or parts[2] != "md":
            return
        symbol, channel = parts[3], parts[4]
        book = self.books.setdefault(symbol, BookView(symbol))
        doc = json.loads(payload)
        if channel == "snapshot":
            book.on_snapshot(doc)
        elif channel == "depth":
            book.on_depth(doc)
        elif channel == "trades":
            book.on_trade(doc)
        elif channel == "state":
            book.state, book.state_reason = doc["state"], doc.get("reason", "")


def _yield_of(registry, symbol: str, price: str) -> str:
    """The yield (percent) a bill or bond price stands for today; '' for other instruments."""
    if registry is None or not price:
        return ""
    econ = _economics(registry, symbol)
    if econ is None:
        return ""
    inst = econ.inst
    try:
        y = econ.yield_pct(inst.price_to_ticks(price), _today())
    except ValueError:
        return ""
    return f"{y}%" if y else ""


_ECON: dict = {}


def _economics(registry, symbol):
    from matching.economics import Economics
    inst = registry.get(symbol)
    if inst is None or inst.kind == "commodity":
        return None
    if symbol not in _ECON:
        _ECON[symbol] = Economics(inst)
    return _ECON[symbol]


def _today():
    return datetime.now(UTC).date()


def render(view: MarketView, symbols: list[str] | None = None, depth: int = 5,
           registry=None) -> Group:
    """One table per book: bid and ask ladders (with yields when a registry is given),
    last trades with yields, sequence health."""
    tables = []
    for symbol in symbols or sorted(view.books):
        b = view.books.get(symbol)
        if b is None:
            continue
        health = "in sync" if b.in_sync else "RESYNCING"
        state = "" if b.state == "continuous" else \
            f"{b.state.upper()}{f' ({b.state_reason})' if b.state_reason else ''}  "
        t = Table(title=f"{symbol}  {state}seq {b.seq}  {health}  gaps {b.gaps}  "
                        f"trades {b.n_trades}  volume {b.volume}", title_justify="left")
        cols = ["bid qty", "bid", "ask", "ask qty", "last trades (price x qty @ yield)"]
        if registry is not None:
            cols = ["bid yield", *cols[:3], "ask yield", *cols[3:]]
        for col in cols:
            t.add_column(col, justify="right")
        bids, asks = b.ladder("buy")[:depth], b.ladder("sell")[:depth]
        trades = list(b.trades)[:depth]
        for i in range(max(len(bids), len(asks), len(trades), 1)):
            bid = bids[i] if i < len(bids) else ("", "", "")
            ask = asks[i] if i < len(asks) else ("", "", "")
            tr = trades[i] if i < len(trades) else None
            trade = (f"{tr['price']} x {tr['qty']}" + (f" @ {tr['yield_pct']}%"
                     if tr.get("yield_pct") else "")) if tr else ""
            if registry is None:
                t.add_row(bid[1], bid[0], ask[0], ask[1], trade)
            else:
                t.add_row(_yield_of(registry, symbol, bid[0]), bid[1], bid[0], ask[0],
                          _yield_of(registry, symbol, ask[0]), ask[1], trade)
        tables.append(t)
    return Group(*tables)


async def watch(host: str, port: int, view: MarketView, symbols: list[str] | None = None,
                on_message=None, ready: asyncio.Event | None = None) -> None:
    """Subscribe to market data (all symbols or ``symbols``) and feed ``view`` until cancelled."""
    async with mqtt.client(host, port) as c:
        for s in symbols or ["+"]:
            await c.subscribe(f"{topics.ROOT}/md/{s}/#", qos=1)
        if ready:
            ready.set()
        async for m in c.messages:
            view.on_message(m.topic.value, m.payload)
            if on_message:
                on_message(m.topic.value, m.payload)

"""Market-data subscriber: rebuilds each book from depth increments, checks sequences.

A book is in sync only after a snapshot and while every depth update followed the one
before (``seq`` + 1). A gap marks it out of sync; so does a new ``epoch`` (the venue
restarted: ``matching.datadir``): the next snapshot valid at or past what was seen (for a
restart: the new epoch's, which the gateway retains at its first connect) resyncs it.
Messages of an older epoch are ignored. ``render`` draws the books with rich.
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
    restarts: int = 0             # new epochs seen after the first
    epoch: int = -1               # the venue's start the book is from (-1: none seen yet)
    need: int = 0                 # while out of sync: the seq a snapshot must reach
    volume: Decimal = Decimal(0)
    n_trades: int = 0
    state: str = "continuous"     # trading state (retained md/{symbol}/state)
    state_reason: str = ""
    auction: dict | None = None   # retained md/{symbol}/auction (a call's indicative)

    def current(self, doc: dict) -> bool:
        """Whether ``doc`` is of the epoch the book follows. A newer epoch: the venue
        restarted, the book is out of sync until that epoch's snapshot; an older one is
        stale (False: ignore it)."""
        epoch = doc.get("epoch", 0)
        if epoch == self.epoch:
            return True
        if epoch < self.epoch:
            return False
        if self.epoch >= 0:
            self.restarts += 1
        self.epoch, self.in_sync, self.need = epoch, False, 0
        return True

    def on_snapshot(self, doc: dict) -> None:
        if not self.current(doc):
            return
        seq = doc["seq"]
        if seq < (self.seq + 1 if self.in_sync else self.need):
            return                              # not newer than what the book has seen
        self.bids = {p: (q, c) for p, q, c in doc["bids"]}
        self.asks = {p: (q, c) for p, q, c in doc["asks"]}
        if not self.in_sync and self.seq >= 0:
            self.resyncs += 1
        self.seq, self.in_sync, self.need = seq, True, 0

    def on_depth(self, doc: dict) -> None:
        if not self.current(doc):
            return
        seq = doc["seq"]
        if not self.in_sync:
            self.need = max(self.need, seq)     # a snapshot this new includes it
            return
        if seq <= self.seq:
            return
        if seq != self.seq + 1:
            self.gaps += 1                      # wait for a snapshot past the gap
            self.in_sync, self.need = False, seq
            return
        for side, price, qty, count in doc["levels"]:
            levels = self.bids if side == "buy" else self.asks
            if Decimal(qty) == 0:
                levels.pop(price, None)
            else:
                levels[price] = (qty, count)
        self.seq = seq

    def on_state(self, doc: dict) -> None:
        if self.current(doc):
            self.state, self.state_reason = doc["state"], doc.get("reason", "")

    def on_trade(self, doc: dict) -> None:
        self.current(doc)                       # a trade is a fact whatever its epoch
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
            book.on_state(doc)
        elif channel == "auction" and book.current(doc):
            book.auction = doc


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


def _auction_line(doc: dict | None) -> str:
    """The call's indicative price, paired volume and surplus, or its best bid and ask;
    after the uncross its price and volume."""
    if not doc:
        return ""
    if doc.get("phase") == "uncrossed":
        return f"uncrossed {doc.get('price')} x {doc.get('volume')}  "
    if doc.get("price") is None:
        return f"call bid {doc.get('best_bid') or '-'} ask {doc.get('best_ask') or '-'}  "
    side = f" {doc['surplus_side']}" if doc.get("surplus_side") else ""
    return (f"call indicative {doc['price']} x {doc.get('volume')} surplus "
            f"{doc.get('surplus')}{side}  ")


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
        epoch = f"  epoch {b.epoch}" if b.epoch > 0 else ""
        state = "" if b.state == "continuous" else \
            f"{b.state.upper()}{f' ({b.state_reason})' if b.state_reason else ''}  "
        restarts = f"restarts {b.restarts}  " if b.restarts else ""
        state += _auction_line(b.auction)
        t = Table(title=f"{symbol}  {state}seq {b.seq}  {health}{epoch}  gaps {b.gaps}  "
                        f"{restarts}trades {b.n_trades}  volume {b.volume}",
                  title_justify="left")
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

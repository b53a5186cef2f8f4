"""Market-data subscriber: rebuilds each book from depth increments, checks sequences.

A book is in sync only after a snapshot and while every depth update followed the one
before (``seq`` + 1). A gap marks it out of sync; so does a new ``epoch`` (the venue
restarted: ``matching.datadir``): the next snapshot valid at or past what was seen (for a
restart: the new epoch's, which the gateway retains at its first connect) resyncs it.
Messages of an older epoch are ignored. ``render`` draws the books with rich.

Market data comes from the network, so nothing in it is trusted: a message that is not
JSON, not of its channel's type (``feeds.codec``: ``DepthSnapshot``, ``DepthUpdate``,
``MdTrade``, ``BBO``, ``TradingStatus``; ``matching.auction.AuctionView``), has a
price or quantity that is not a plain decimal, names another symbol than its topic or
comes on an unknown channel is skipped whole, counted by reason (``MarketView.skipped``),
logged (the first of each reason as a warning) and shown under the books; it never stops
the view.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import msgspec
from rich.console import Group
from rich.table import Table
from rich.text import Text

from feeds import mqtt, topics
from feeds.codec import BBO, DepthSnapshot, DepthUpdate, MdTrade, TradingStatus, valid_decimal
from matching.auction import AuctionView

log = logging.getLogger("tokenbook.watch")

__all__ = ["BookView", "MarketView", "MalformedMarketData", "render", "watch"]

#: The type of each market-data channel's messages.
CHANNELS: dict[str, type] = {"snapshot": DepthSnapshot, "depth": DepthUpdate,
                             "trades": MdTrade, "bbo": BBO, "state": TradingStatus,
                             "auction": AuctionView}
_MD_PREFIX = f"{topics.ROOT}/md/"
_DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    channel: msgspec.json.Decoder(t) for channel, t in CHANNELS.items()}


class MalformedMarketData(ValueError):
    """A market-data message the view skips: ``reason`` is a short code, str() says why."""

    def __init__(self, reason: str, text: str):
        super().__init__(text)
        self.reason = reason


def _decimals(channel: str, doc: Any) -> list[str]:
    """The price and quantity strings of a typed market-data message."""
    if channel == "snapshot":
        return [x for p, q, _ in (*doc.bids, *doc.asks) for x in (p, q)]
    if channel == "depth":
        return [x for _, p, q, _ in doc.levels for x in (p, q)]
    if channel == "trades":
        return [doc.price, doc.qty]
    if channel == "bbo":
        return [x for x in (doc.bid, doc.bid_qty, doc.ask, doc.ask_qty) if x is not None]
    if channel == "auction":
        return [x for x in (doc.price, doc.volume, doc.surplus, doc.best_bid, doc.best_ask)
                if x is not None]
    return []


def parse_md(symbol: str, channel: str, payload: bytes) -> dict:
    """The market-data message as a dict with every field of its type, or
    MalformedMarketData saying why not."""
    decoder = _DECODERS.get(channel)
    if decoder is None:
        raise MalformedMarketData("unknown_channel", f"unknown market-data channel {channel!r}")
    try:
        doc = decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise MalformedMarketData("wrong_type", f"not a {channel} message: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise MalformedMarketData("bad_json", f"not JSON: {exc}") from None
    if doc.symbol != symbol:
        raise MalformedMarketData("wrong_symbol", f"symbol {doc.symbol[:40]!r} on the topic "
                                                  f"of {symbol}")
    bad = next((x for x in _decimals(channel, doc) if not valid_decimal(x)), None)
    if bad is not None:
        raise MalformedMarketData("bad_decimal", f"price or quantity {bad[:40]!r} is not a "
                                                 "plain decimal")
    return msgspec.to_builtins(doc)



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
    """Every symbol's BookView, fed from MQTT messages; malformed ones are skipped and
    counted (``skipped`` by reason, ``last_skip`` the latest, as ``topic: why``)."""

    def __init__(self):
        self.books: dict[str, BookView] = {}
        self.skipped: Counter[str] = Counter()
        self.last_skip = ""

    def skip(self, topic: str, exc: MalformedMarketData) -> None:
        """Count and log one skipped message (the first of each reason as a warning)."""
        first = exc.reason not in self.skipped
        self.skipped[exc.reason] += 1
        self.last_skip = f"{topic}: {str(exc)[:160]}"
        log.log(logging.WARNING if first else logging.DEBUG,
                "skipped malformed market data (%s): %s", exc.reason, self.last_skip)

    def on_message(self, topic: str, payload: bytes) -> bool:
        """Apply one message; False if it was skipped (or not market data)."""
        parsed = topics.parse_md_topic(topic)
        if parsed is None:
            if isinstance(topic, str) and topic.startswith(_MD_PREFIX):
                self.skip(topic, MalformedMarketData(
                    "unknown_channel", "not a market-data topic (tokenbook/v1/md/SYMBOL/"
                                       f"{{{','.join(CHANNELS)}}})"))
            return False
        symbol, channel = parsed
        try:
            doc = parse_md(symbol, channel, bytes(payload))
        except MalformedMarketData as exc:
            self.skip(topic, exc)
            return False
        book = self.books.setdefault(symbol, BookView(symbol))
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
        return True


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
    tables: list[Table | Text] = []
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
    if view.skipped:
        why = ", ".join(f"{reason} {n}" for reason, n in sorted(view.skipped.items()))
        tables.append(Text(f"skipped {sum(view.skipped.values())} malformed market-data "
                           f"messages ({why}); last: {view.last_skip}", style="bold yellow"))
    return Group(*tables)


async def watch(host: str, port: int, view: MarketView, symbols: list[str] | None = None,
                on_message=None, ready: asyncio.Event | None = None,
                mqtt_options: dict | None = None) -> None:
    """Subscribe to market data (all symbols or ``symbols``) and feed ``view`` until
    cancelled; ``mqtt_options`` (``feeds.security.client_options``: user, password, TLS)
    go to the MQTT client."""
    async with mqtt.client(host, port, **(mqtt_options or {})) as c:
        for s in symbols or ["+"]:
            await c.subscribe(f"{topics.ROOT}/md/{s}/#", qos=1)
        if ready:
            ready.set()
        async for m in c.messages:
            view.on_message(m.topic.value, m.payload)
            if on_message:
                on_message(m.topic.value, m.payload)

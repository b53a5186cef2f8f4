"""Instruments sharded over engines: which shard serves a symbol, each shard's MQTT
identity, and how a v2 order is routed (docs/replication.md, "Shards").

A shard is one engine process (its own sequencer, journal and primary/standby pair) that
serves a fixed set of symbols: ``tokenbook serve --shard ID --symbols A,B``. Brokers send
orders on ``tokenbook/v2/orders/{broker}/{symbol}``; a shard subscribes only to
``tokenbook/v2/orders/+/{symbol}`` for each of its symbols, so the MQTT broker does the
routing and no shard ever decodes another's orders.

Who answers an order for a symbol no shard serves: the MQTT broker delivers it to nobody,
so the venue names one *answering shard* (``ShardDirectory.answering``: the first shard
of the directory). It subscribes to ``tokenbook/v2/orders/+/+`` as well and, for a topic
whose symbol is in no shard's list, sends the broker a Rejected report WRONG_SHARD (278)
on its exec topic; a topic another shard serves it drops by the topic alone, before any
decoding. Nothing is journaled for it: the order never became an input.

Identity: each shard has its own client id (``tokenbook-engine-{shard}``) and retained
status topic (``tokenbook/v1/status/{shard}``), so the single-writer guard
(``feeds.guard``) of one shard never sees another shard's engine as a rival. Exec and
trade ids carry the shard (``{shard}-{id}``): unique across shards of one venue.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from feeds import topics
from feeds.codec import decode_order_message
from matching.errors import EngineReject

__all__ = ["ShardError", "ShardSpec", "ShardIdentity", "ShardDirectory", "Route",
           "parse_symbols", "shard_exec_id", "shard_trade_id", "WRONG_SHARD", "refuse_unserved"]

WRONG_SHARD = EngineReject.WRONG_SHARD.value
#: The single-shard engine's MQTT client id, which a shard's id extends.
ENGINE_CLIENT_ID = "tokenbook-engine"


class ShardError(ValueError):
    """A shard configuration that cannot serve (one line: the CLI's usage error)."""


def parse_symbols(text: str) -> tuple[str, ...]:
    """``--symbols A,B``: distinct topic-safe symbols, in the order given."""
    symbols = tuple(s.strip() for s in text.split(",") if s.strip())
    if not symbols:
        raise ShardError("--symbols needs at least one symbol (A,B,...)")
    bad = [s for s in symbols if not topics.valid_symbol(s)]
    if bad:
        raise ShardError(f"--symbols: {', '.join(map(repr, bad))} not a valid symbol")
    if len(set(symbols)) != len(symbols):
        raise ShardError("--symbols names a symbol twice")
    return symbols


@dataclass(frozen=True, slots=True)
class ShardIdentity:
    """What one shard's engine uses on the MQTT broker instead of the venue-wide names."""
    client_id: str
    status_topic: str
    order_filters: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ShardSpec:
    """One shard: its id (a topic segment) and the symbols it alone serves."""
    shard_id: str
    symbols: tuple[str, ...]

    def __post_init__(self) -> None:
        if not topics.valid_name(self.shard_id):
            raise ShardError(f"--shard {self.shard_id!r}: 1-64 of A-Z a-z 0-9 _ . -")
        if not self.symbols:
            raise ShardError(f"shard {self.shard_id} serves no symbol")

    def identity(self, *, answering: bool = False) -> ShardIdentity:
        """Its client id, status topic and order subscriptions (the answering shard also
        takes the v2 wildcard, to refuse symbols no shard serves)."""
        filters = tuple(topics.orders_v2_filter(s) for s in self.symbols)
        if answering:
            filters += (topics.ORDERS_V2_WILDCARD,)
        return ShardIdentity(f"{ENGINE_CLIENT_ID}-{self.shard_id}",
                             topics.shard_status(self.shard_id), filters)

    def check_listed(self, listed: Iterable[str]) -> None:
        """Every symbol of this shard must be an instrument of the venue."""
        known = set(listed)
        missing = [s for s in self.symbols if s not in known]
        if missing:
            raise ShardError(f"shard {self.shard_id}: {', '.join(missing)} not an "
                             "instrument of this venue")


class Route(enum.Enum):
    """What a shard does with a message on a v2 order topic."""
    MINE = "mine"                   # its own symbol: decode and sequence it
    OTHER_SHARD = "other_shard"     # another shard serves it: drop, unread
    UNSERVED = "unserved"           # no shard serves it: the answering shard rejects it
    NOT_V2 = "not_v2"               # not a v2 order topic at all


class ShardDirectory:
    """The venue's shards: every symbol served by exactly one."""

    def __init__(self, shards: Iterable[ShardSpec]) -> None:
        self.shards: dict[str, ShardSpec] = {}
        self.owner: dict[str, str] = {}
        for spec in shards:
            if spec.shard_id in self.shards:
                raise ShardError(f"shard {spec.shard_id} is named twice")
            for symbol in spec.symbols:
                if symbol in self.owner:
                    raise ShardError(f"{symbol} is served by both {self.owner[symbol]} and "
                                     f"{spec.shard_id}: a symbol has one sequencer")
                self.owner[symbol] = spec.shard_id
            self.shards[spec.shard_id] = spec
        if not self.shards:
            raise ShardError("a sharded venue needs at least one shard")

    @classmethod
    def from_mapping(cls, table: Mapping[str, str | Iterable[str]]) -> ShardDirectory:
        """``{shard id: "A,B" or [A, B]}`` (a config file's ``[shards]`` table)."""
        return cls(ShardSpec(sid, parse_symbols(v) if isinstance(v, str) else tuple(v))
                   for sid, v in table.items())

    @property
    def answering(self) -> str:
        """The shard that rejects orders for a symbol no shard serves (the first one)."""
        return next(iter(self.shards))

    def shard_of(self, symbol: str) -> str | None:
        return self.owner.get(symbol)

    def route(self, shard_id: str, topic: object) -> Route:
        """What shard ``shard_id`` does with a message on ``topic`` (by the topic only)."""
        parsed = topics.parse_orders_v2_topic(topic)
        if parsed is None:
            return Route.NOT_V2
        owner = self.owner.get(parsed[1])
        if owner == shard_id:
            return Route.MINE
        if owner is not None:
            return Route.OTHER_SHARD
        return Route.UNSERVED

    def unserved_text(self, symbol: str) -> str:
        """The Rejected report's text for a v2 order no shard serves."""
        served = ", ".join(f"{sid}={'/'.join(spec.symbols)}"
                           for sid, spec in self.shards.items())
        return f"no shard of this venue serves {symbol!r} (shards: {served})"


def refuse_unserved(directory: ShardDirectory, engine, topic: str, payload: bytes):
    """The answering shard's Outcome for a v2 order whose symbol no shard serves: one
    Rejected report WRONG_SHARD to the broker of the topic, carrying the message's
    ClOrdID when it has one; nothing journaled. None if ``topic`` is not such an order."""
    if directory.route(directory.answering, topic) is not Route.UNSERVED:
        return None
    parsed = topics.parse_orders_v2_topic(topic)
    assert parsed is not None                    # UNSERVED is a parsed v2 topic
    broker, symbol = parsed
    msg = decode_order_message(payload)         # only to name the order in the reject
    cl_ord_id = getattr(msg, "cl_ord_id", None) or None
    return engine.refuse(broker, WRONG_SHARD, directory.unserved_text(symbol), cl_ord_id,
                         symbol)


def shard_exec_id(shard_id: str, exec_id: str) -> str:
    """An ExecID (17) unique across the venue's shards: ``{shard}-{engine exec id}``."""
    return f"{shard_id}-{exec_id}"


def shard_trade_id(shard_id: str, trade_id: str) -> str:
    """A TradeID (1003) unique across shards, like ``shard_exec_id``."""
    return f"{shard_id}-{trade_id}"

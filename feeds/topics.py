"""The versioned MQTT topic layout of tokenbook (documented in README.md).

    tokenbook/v1/orders/{broker}          order entry from a broker             QoS 1
    tokenbook/v1/exec/{broker}            execution reports for that broker     QoS 1
    tokenbook/v1/md/{symbol}/trades       public trade tape                     QoS 1
    tokenbook/v1/md/{symbol}/depth        L2 increments, per-symbol seq         QoS 1
    tokenbook/v1/md/{symbol}/snapshot     full L2 with the seq it is valid at   QoS 1, retained
    tokenbook/v1/md/{symbol}/bbo          best bid and offer                    QoS 1, retained
    tokenbook/v1/md/{symbol}/state        trading state (halted, closed, ...)   QoS 1, retained
    tokenbook/v1/md/{symbol}/auction_result  issuance auction results          QoS 1, retained
    tokenbook/v1/md/{symbol}/reference    tick, lot, face, coupon, dates, state QoS 1, retained
    tokenbook/v1/md/{symbol}/stats        open high low last volume VWAP count  QoS 1, retained
    tokenbook/v1/status                   engine status, offline by last will   QoS 1, retained
    tokenbook/v1/presence/{broker}        online/offline (a broker's last will) QoS 1, retained
    tokenbook/v1/admin                    operator session commands (halt, ...) QoS 1
    tokenbook/v1/admin/replies            the engine's answers to them          QoS 1
    tokenbook/v1/orders/tokenbook-agent   the transfer agent's controls (freeze) QoS 1
    tokenbook/v2/orders/{broker}/{symbol} order entry routed to the symbol's shard  QoS 1
    tokenbook/v1/status/{shard}           one shard's engine status (feeds.shard) QoS 1, retained
    tokenbook/v1/requests/{broker}        a broker's queries (balances, order     QoS 1
                                          status), MQTT 5 request/response
    tokenbook/v1/replies/{broker}/...     their answers: the request's Response   QoS 1
                                          Topic, Correlation Data echoed

A sharded venue (docs/replication.md, "Shards") takes orders on the v2 topic, whose symbol
segment lets each shard subscribe to its own symbols only; a one-shard venue keeps v1.
    tokenbook/v1/dropcopy/{broker}        a copy of that broker's reports       QoS 1
                                          (read: only its risk user {broker}-risk)

Broker ids and symbols are single topic segments from a safe charset (``NAME_PATTERN``):
no MQTT wildcard (``+``, ``#``), no separator (``/``), no ``$`` prefix, no spaces, no NUL.
Builders raise ``ValueError`` on a bad name; parsers return None, never raise.
"""
from __future__ import annotations

import re

__all__ = [
    "ROOT", "QOS", "NAME_PATTERN", "MAX_NAME_LEN", "MD_CHANNELS", "RETAINED_MD_CHANNELS",
    "STATUS", "ADMIN", "ADMIN_REPLIES", "AGENT", "ORDERS_WILDCARD", "EXEC_WILDCARD",
    "PRESENCE_WILDCARD",
    "valid_name", "valid_broker", "valid_symbol", "orders", "exec_reports", "presence", "md",
    "dropcopy", "DROPCOPY_WILDCARD", "md_trades", "md_depth", "md_snapshot", "md_bbo",
    "md_wildcard",
    "broker_from_orders_topic", "broker_from_presence_topic", "parse_md_topic",
    "ROOT_V2", "ORDERS_V2_WILDCARD", "orders_v2", "orders_v2_filter", "parse_orders_v2_topic",
    "shard_status", "shard_admin",
    "REQUESTS_WILDCARD", "requests", "replies", "broker_from_requests_topic",
    "response_topic_of",
]

ROOT = "tokenbook/v1"
#: Every tokenbook topic is published and subscribed at QoS 1 (at least once): the
#: engine deduplicates order entry by ClOrdID, subscribers deduplicate market data by seq.
QOS = 1
MAX_NAME_LEN = 64
NAME_PATTERN = r"[A-Za-z0-9_.-]{1,%d}" % MAX_NAME_LEN  # noqa: UP031 - regex braces
_NAME = re.compile(NAME_PATTERN)

MD_CHANNELS = ("trades", "depth", "snapshot", "bbo", "state", "auction", "auction_result",
               "reference", "stats")
#: Channels published with the retain flag: a new subscriber gets the current state at once.
RETAINED_MD_CHANNELS = frozenset({"snapshot", "bbo", "state", "auction", "auction_result",
                                  "reference", "stats"})

STATUS = f"{ROOT}/status"
ORDERS_WILDCARD = f"{ROOT}/orders/+"
EXEC_WILDCARD = f"{ROOT}/exec/+"
PRESENCE_WILDCARD = f"{ROOT}/presence/+"
DROPCOPY_WILDCARD = f"{ROOT}/dropcopy/+"
#: Operator commands in, and the engine's replies (see the ACL: operator and engine only).
ADMIN = f"{ROOT}/admin"
ADMIN_REPLIES = f"{ROOT}/admin/replies"
#: The transfer agent's controls: the order-entry topic of the user ``tokenbook-agent``
#: (feeds.security.AGENT_USER), which the ACL's ``orders/%u`` pattern lets only that
#: user write; its replies go to ADMIN_REPLIES.
AGENT = f"{ROOT}/orders/tokenbook-agent"
#: Order entry routed by symbol (a sharded venue): ``{ROOT_V2}/orders/{broker}/{symbol}``.
ROOT_V2 = "tokenbook/v2"
ORDERS_V2_WILDCARD = f"{ROOT_V2}/orders/+/+"
#: Broker queries in (MQTT 5 request/response): ``requests/{broker}``; each answer goes to
#: the request's Response Topic, which must be under ``replies/{broker}/`` (the ACL lets a
#: broker read only its own replies).
REQUESTS_WILDCARD = f"{ROOT}/requests/+"
#: The longest Response Topic taken (the reply topic's own segments after the prefix).
MAX_RESPONSE_TOPIC_LEN = 256


def valid_name(name: object) -> bool:
    """Broker ids and symbols: 1-64 of letters, digits, ``_ . -`` (so never a wildcard)."""
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


valid_broker = valid_name
valid_symbol = valid_name


def _checked(kind: str, name: object) -> str:
    if not valid_name(name):
        raise ValueError(f"{kind} {name!r} is not a valid topic segment "
                         f"(1-{MAX_NAME_LEN} of A-Z a-z 0-9 _ . -)")
    return name  # type: ignore[return-value]


def orders(broker: str) -> str:
    """Where ``broker`` sends new/cancel/replace requests."""
    return f"{ROOT}/orders/{_checked('broker id', broker)}"


def exec_reports(broker: str) -> str:
    """Where the engine sends ``broker``'s execution reports (and only its own)."""
    return f"{ROOT}/exec/{_checked('broker id', broker)}"


def dropcopy(broker: str) -> str:
    """Where the engine copies every report of ``broker`` (its risk/clearing user reads)."""
    return f"{ROOT}/dropcopy/{_checked('broker id', broker)}"


def requests(broker: str) -> str:
    """Where ``broker`` sends its queries (balances, order status), with a Response Topic."""
    return f"{ROOT}/requests/{_checked('broker id', broker)}"


def replies(broker: str, name: str) -> str:
    """A Response Topic of ``broker``'s: ``replies/{broker}/{name}`` (``name``: one
    segment, e.g. the client id, so two clients of one broker do not read each other's)."""
    return f"{ROOT}/replies/{_checked('broker id', broker)}/{_checked('reply name', name)}"


def presence(broker: str) -> str:
    """Retained ``online``/``offline`` of a broker's connection (``offline`` is its will)."""
    return f"{ROOT}/presence/{_checked('broker id', broker)}"


def md(symbol: str, channel: str) -> str:
    """Market data topic of ``symbol``; ``channel`` is one of ``MD_CHANNELS``."""
    if channel not in MD_CHANNELS:
        raise ValueError(f"unknown market data channel {channel!r}; one of {MD_CHANNELS}")
    return f"{ROOT}/md/{_checked('symbol', symbol)}/{channel}"


def md_trades(symbol: str) -> str:
    return md(symbol, "trades")


def md_depth(symbol: str) -> str:
    return md(symbol, "depth")


def md_snapshot(symbol: str) -> str:
    return md(symbol, "snapshot")


def md_bbo(symbol: str) -> str:
    return md(symbol, "bbo")


def md_wildcard(symbol: str | None = None) -> str:
    """Subscription filter for every channel of one symbol (or of all symbols)."""
    return f"{ROOT}/md/+/+" if symbol is None else f"{ROOT}/md/{_checked('symbol', symbol)}/+"


def _segments(topic: object, n: int) -> list[str] | None:
    if not isinstance(topic, str) or len(topic) > 256:
        return None
    parts = topic.split("/")
    return parts if len(parts) == n else None


def broker_from_orders_topic(topic: object) -> str | None:
    """The broker a message on an orders topic came from; None for anything else.

    Rejects wildcards, empty or extra segments and any id outside the safe charset, so the
    returned id can be used to build the reply topic as is.
    """
    parts = _segments(topic, 4)
    if parts is None or parts[0] != "tokenbook" or parts[1] != "v1" or parts[2] != "orders":
        return None
    return parts[3] if valid_name(parts[3]) else None


def broker_from_requests_topic(topic: object) -> str | None:
    """The broker of a ``requests/{broker}`` topic; None for anything else."""
    parts = _segments(topic, 4)
    if parts is None or parts[0] != "tokenbook" or parts[1] != "v1" or parts[2] != "requests":
        return None
    return parts[3] if valid_name(parts[3]) else None


def response_topic_of(broker: str, topic: object) -> str | None:
    """``topic`` if it may carry an answer to ``broker``: under ``replies/{broker}/``, at
    most MAX_RESPONSE_TOPIC_LEN long, each further segment from the safe charset (no
    wildcard: MQTT 5 3.3.2.3.5 forbids them in a Response Topic). None otherwise."""
    if not isinstance(topic, str) or len(topic) > MAX_RESPONSE_TOPIC_LEN:
        return None
    parts = topic.split("/")
    if len(parts) < 5 or parts[:4] != ["tokenbook", "v1", "replies", broker]:
        return None
    return topic if all(valid_name(p) for p in parts[4:]) else None


def broker_from_presence_topic(topic: object) -> str | None:
    """The broker of a ``presence/{broker}`` topic; None for anything else."""
    parts = _segments(topic, 4)
    if parts is None or parts[0] != "tokenbook" or parts[1] != "v1" or parts[2] != "presence":
        return None
    return parts[3] if valid_name(parts[3]) else None


def parse_md_topic(topic: object) -> tuple[str, str] | None:
    """``(symbol, channel)`` of a market data topic; None for anything else."""
    parts = _segments(topic, 5)
    if parts is None or parts[0] != "tokenbook" or parts[1] != "v1" or parts[2] != "md":
        return None
    if not valid_name(parts[3]) or parts[4] not in MD_CHANNELS:
        return None
    return parts[3], parts[4]


def orders_v2(broker: str, symbol: str) -> str:
    """Where ``broker`` sends requests for ``symbol`` to the shard serving it."""
    return f"{ROOT_V2}/orders/{_checked('broker id', broker)}/{_checked('symbol', symbol)}"


def orders_v2_filter(symbol: str) -> str:
    """A shard's subscription for one of its symbols: every broker's v2 orders for it."""
    return f"{ROOT_V2}/orders/+/{_checked('symbol', symbol)}"


def parse_orders_v2_topic(topic: object) -> tuple[str, str] | None:
    """``(broker, symbol)`` of a v2 order topic; None for anything else (never raises)."""
    parts = _segments(topic, 5)
    if parts is None or parts[0] != "tokenbook" or parts[1] != "v2" or parts[2] != "orders":
        return None
    if not valid_name(parts[3]) or not valid_name(parts[4]):
        return None
    return parts[3], parts[4]


def shard_status(shard: str) -> str:
    """The retained status of one shard's engine (its own single-writer guard topic)."""
    return f"{STATUS}/{_checked('shard id', shard)}"


def shard_admin(shard: str) -> str:
    """One shard's own operator topic: what must apply on one shard only (account
    inputs, cash transfer legs); replies on ADMIN_REPLIES name the shard."""
    return f"{ROOT}/shard/{_checked('shard id', shard)}/admin"

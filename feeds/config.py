"""How a gateway runs, as one frozen value: ``Gateway(engine, host, port, GatewayConfig(...))``.

The cycle's settings (batching, cancel-on-disconnect, snapshots, the trading timetable,
holds and resends, the clock) and the MQTT transport's (client id, session, reconnects,
client options) in one place, checked once, so neither side takes twenty keywords.
"""
from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from feeds import topics
from matching.messages import utc_timestamp
from matching.schedule import SessionSchedule

__all__ = ["GatewayConfig"]


@dataclass(frozen=True)
class GatewayConfig:
    """Settings of one gateway; every field has the ``tokenbook serve`` default.

    ``clock`` (ns since the epoch) is the gateway's one time source: the schedule's
    boundaries, GTD expiry and the times in the retained status all read it. Connection
    timers (backoff, holds, the resend window) are durations and use the monotonic clock.
    """
    # --- the cycle
    max_batch: int = 500                  # inbound messages per cycle (one group commit)
    # The retained full-depth snapshot of a symbol whose book changed is republished at
    # most this often (s, venue clock); increments and the BBO go every cycle. 0: every
    # cycle. A deep book's snapshot is ~40 kB: per cycle it cost more than the orders.
    depth_snapshot_interval: float = 0.5
    # The retained day statistics (md/{symbol}/stats) of a symbol that traded, likewise:
    # at most this often (s), and after its last fill; 0: every cycle with fills.
    stats_interval: float = 0.5
    # Brokers whose live orders are cancelled when their presence goes offline (their
    # client's last will); "*" means every broker.
    cancel_on_disconnect: frozenset[str] | str = frozenset()
    # Brokers whose every report is copied on tokenbook/v1/dropcopy/{broker} for their
    # risk/clearing user (feeds.broker_services); "*" means every broker. A service a
    # firm subscribes to, as at FIX venues: off unless asked for, since it doubles the
    # broker's report publishes.
    drop_copy: frozenset[str] | str = frozenset()
    # Periodic snapshots bound recovery time: replay starts from the latest one.
    snapshot_dir: str | os.PathLike | None = None
    snapshot_every: int = 100_000         # inputs between snapshots
    # The trading day's timetable (None: the session is only what operators say).
    schedule: SessionSchedule | None = None
    clock: Callable[[], int] = time.time_ns
    # After a (re)connect, reports for brokers with live orders wait this long (s) at most
    # for the broker's presence to say ``online``; 0 disables holds.
    hold_reports: float = 2.0
    # Exec reports acknowledged this long (s) before a connection loss are sent again.
    resend_window: float = 10.0
    resend_max: int = 50_000
    # --- the MQTT transport
    client_id: str = "tokenbook-engine"
    session_expiry: int = 3600            # s the broker keeps the persistent session
    reconnect_min: float = 0.05           # capped exponential backoff, s
    reconnect_max: float = 2.0
    reconnect_give_up: float | None = None    # s without a connection before run() raises
    # Extra aiomqtt.Client arguments: username/password, tls_params (feeds.security).
    mqtt_options: Mapping[str, Any] = field(default_factory=dict)
    keepalive: int = 10                   # s; the broker drops a silent engine after 1.5x
    # MQTT 5 Receive Maximum announced in CONNECT: how many QoS 1 orders the broker may
    # have in flight to the engine. A broker otherwise sends 20 (mosquitto's default
    # max_inflight_messages) and queues the rest (max_queued_messages, 1000 by default),
    # dropping a burst beyond that. 65535 is the protocol's maximum.
    receive_maximum: int = 65535
    # --- one engine per venue (feeds.guard)
    # Before every connect with ``client_id``, check with a separate connection that no
    # other engine serves the broker (its retained status), and step down when one does.
    exclusive: bool = True
    # This engine start's identity, carried by its retained status.
    instance: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    started: int = field(default_factory=time.time_ns)
    heartbeat: float = 2.0                # s between republished statuses while connected
    # aiomqtt.Client arguments of that check's connection (None: ``mqtt_options`` with a
    # throwaway client id). On a broker with ``use_username_as_clientid`` it must be
    # another user than the engine's (feeds.security.STANDBY_USER), or the check itself
    # would take the engine's session.
    probe_options: Mapping[str, Any] | None = None
    # --- shards (feeds.shard): "" is a one-shard venue on the v1 order topic and status.
    # A shard takes only its symbols' v2 orders (and the transfer agent's controls) and
    # writes its own retained status, so shards never meet in the single-writer guard.
    shard: str = ""
    shard_symbols: tuple[str, ...] = ()
    # The whole venue's shard map (feeds.shard.ShardDirectory), when the shard knows it:
    # its answering shard takes every v2 order topic and rejects (WRONG_SHARD) an order
    # for a symbol no shard serves, which would otherwise reach no one.
    shard_directory: Any = None
    # A server process moves what exists once it is up (modules, the recovered state) out
    # of the collector's sight (gc.freeze), so full collections pause the loop only for
    # what trading added since.
    freeze_gc: bool = False

    def __post_init__(self) -> None:
        for name in ("cancel_on_disconnect", "drop_copy"):
            brokers = getattr(self, name)
            if brokers != "*":
                names = [b for b in brokers.split(",") if b] if isinstance(brokers, str) \
                    else brokers
                object.__setattr__(self, name, frozenset(names))
        object.__setattr__(self, "mqtt_options", MappingProxyType(dict(self.mqtt_options)))
        if self.probe_options is not None:
            object.__setattr__(self, "probe_options",
                               MappingProxyType(dict(self.probe_options)))
        if not 0 <= self.depth_snapshot_interval <= 3600:
            raise ValueError("depth_snapshot_interval must be 0-3600 s")
        if not 0 <= self.stats_interval <= 3600:
            raise ValueError("stats_interval must be 0-3600 s")
        if self.max_batch < 1 or self.snapshot_every < 1:
            raise ValueError("max_batch and snapshot_every must be at least 1")
        if not 0 < self.reconnect_min <= self.reconnect_max:
            raise ValueError("reconnect_min must be > 0 and <= reconnect_max")
        if not 1 <= self.receive_maximum <= 65535:
            raise ValueError("receive_maximum must be 1-65535 (MQTT 5)")
        if self.keepalive < 1 or not self.heartbeat > 0:
            raise ValueError("keepalive must be >= 1 s and heartbeat > 0")
        if self.shard and not (topics.valid_name(self.shard) and self.shard_symbols):
            raise ValueError("a shard needs a topic-safe id and at least one symbol")
        if not self.instance or not self.instance.isalnum():
            raise ValueError(f"instance must be a non-empty alphanumeric id, got "
                             f"{self.instance!r}")

    @property
    def status_topic(self) -> str:
        """This engine's retained status: the venue's, or its shard's own."""
        return topics.shard_status(self.shard) if self.shard else topics.STATUS

    @property
    def order_filters(self) -> tuple[str, ...]:
        """What it subscribes to for order entry: every v1 order topic and every broker's
        queries (``feeds.requests``); a shard its symbols on v2, the transfer agent's
        topic, the shard's own admin topic and the queries."""
        if not self.shard:
            return (topics.ORDERS_WILDCARD, topics.REQUESTS_WILDCARD)
        own = (topics.AGENT, topics.shard_admin(self.shard), topics.REQUESTS_WILDCARD)
        if self.answers_unserved:      # one filter: overlapping ones may deliver twice
            return (topics.ORDERS_V2_WILDCARD, *own)
        return (*(topics.orders_v2_filter(s) for s in self.shard_symbols), *own)

    @property
    def answers_unserved(self) -> bool:
        """Whether this shard is its venue's answering shard (``shard_directory``)."""
        d = self.shard_directory
        return d is not None and bool(self.shard) and d.answering == self.shard

    def identity(self) -> dict[str, Any]:
        """The fields of the retained status that say which engine wrote it."""
        return {"instance": self.instance, "host": socket.gethostname(), "pid": os.getpid(),
                "started": utc_timestamp(self.started), "heartbeat": self.heartbeat,
                "keepalive": self.keepalive}

    def cancels_on_disconnect(self, broker: str) -> bool:
        """Whether ``broker``'s live orders are cancelled when its presence goes offline."""
        cod = self.cancel_on_disconnect
        return cod == "*" or broker in cod

    def copies_reports(self, broker: str) -> bool:
        """Whether ``broker``'s reports are also published on its drop-copy topic."""
        dc = self.drop_copy
        return dc == "*" or broker in dc


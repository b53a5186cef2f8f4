"""The MQTT gateway's transport: aiomqtt in and out around the sans-I/O ``GatewayCycle``.

One task reads ``tokenbook/v1/orders/+``, presence and admin into a queue; the loop takes
whatever is queued (up to ``max_batch``) as one batch, hands it to the cycle
(``feeds.cycle``: engine calls, one group commit) and publishes what the cycle returns,
in order, at QoS 1. The engine is reached only through the cycle.

Faults: a lost broker connection is retried with a capped backoff on a persistent MQTT 5
session (the broker keeps queueing orders meanwhile); what the cycle produced meanwhile
waits in its outbox (``feeds.outbox``) and is published after reconnecting. On every
connect the retained status, snapshots, BBOs and trading states are republished.

Periodic snapshots (``snapshot_every``) are written by a forked child (``feeds.snapshots``),
so the loop does not stop for them.

One engine per venue (``feeds.guard``): before every connect a separate connection checks
that no other engine serves the broker; while connected the retained status is
republished every ``heartbeat`` s and other engines' statuses are read, and the engine
that started later steps down (``AnotherEngine`` out of ``run``).

Bursts: the CONNECT announces an MQTT 5 Receive Maximum of ``receive_maximum`` (65535),
so the broker sends orders on at once instead of queueing all but 20 of them for the
engine (and dropping past its ``max_queued_messages``); a reader task moves them into an
unbounded queue as fast as the socket delivers. The broker's own limits that clients can
see (CONNACK) are logged, and its dropped-message counter (``$SYS``) is watched.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Iterable
from typing import Any

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from feeds import mqtt, topics
from feeds.aiomqtt_seams import keep_connack_properties
from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle, GatewayStats, Inbound
from feeds.guard import AnotherEngine, VenueGuard, decode_status
from feeds.outbox import Publish
from feeds.reconnect import Reconnects
from feeds.snapshots import ForkedSnapshots
from matching.engine import Engine
from matching.outputs import Outcome

log = logging.getLogger("tokenbook.gateway")

__all__ = ["Gateway", "GatewayConfig", "GatewayStats", "AnotherEngine"]

#: Publishes handed to paho at once; a cycle's worth is usually far fewer.
CHUNK = 5000
#: mosquitto's count of messages it dropped (a client's queue full, ...), and its version.
SYS_DROPPED = "$SYS/broker/publish/messages/dropped"
SYS_VERSION = "$SYS/broker/version"
#: Below these CONNACK values the broker limits the engine (logged as warnings).
MIN_BROKER_RECEIVE_MAXIMUM = 20          # mosquitto's default max_inflight_messages
MIN_BROKER_PACKET_SIZE = 1 << 20         # a deep book's retained snapshot must fit


class Gateway:
    """Connects an Engine to an MQTT broker; ``await gateway.run(stop_event)``.

    ``run`` stays up across broker restarts: a lost connection is re-established with a
    capped exponential backoff (``reconnect_min`` .. ``reconnect_max`` seconds; with
    ``reconnect_give_up`` set, ``run`` raises after that long without a connection). The
    session is persistent (MQTT 5 clean_start=False, ``session_expiry`` seconds, stable
    ``client_id``), and its last will sets the retained status ``offline``. A publish
    leaves the outbox only once the broker acknowledged it (PUBACK): reports made while
    disconnected, or in flight when the connection died, go out after reconnecting (at
    least once; the journal stays the system of record).
    """

    def __init__(self, engine: Engine, host: str, port: int,
                 config: GatewayConfig | None = None, *, recovered: Iterable[Outcome] = (),
                 guard: VenueGuard | None = None):
        self.cycle = GatewayCycle(engine, config, recovered=recovered)
        self.host, self.port = host, port
        # The check before every connect (None: not exclusive). A caller that checked
        # already (tokenbook serve, before recovering) passes its guard.
        self.guard = guard if guard is not None or not self.config.exclusive else \
            VenueGuard.for_config(host, port, self.config)
        self.broker_version = ""
        self._connack: dict[str, object] = {}
        self.broker_dropped = 0                  # messages the broker said it dropped
        self._dropped: int | None = None          # the broker's dropped counter, last seen
        self._sys_first = False                   # next counter is the first of a connection
        self._last_status = 0.0
        self.ready = asyncio.Event()
        self.connected = False
        # Messages received (and PUBACKed by paho) but not yet handled: survives reconnects.
        self._queue: asyncio.Queue[Inbound] = asyncio.Queue()
        self._connects = 0
        self._lost_at = 0.0
        self.snapshots = ForkedSnapshots(engine)

    @property
    def config(self) -> GatewayConfig:
        return self.cycle.config

    @config.setter
    def config(self, config: GatewayConfig) -> None:
        """Swap in another config; the next cycle and connection use it."""
        self.cycle.config = config

    @property
    def stats(self) -> GatewayStats:
        return self.cycle.stats

    @property
    def engine(self) -> Engine:
        """The cycle's engine, for callers (the transport never calls it)."""
        return self.cycle.engine

    # ------------------------------------------------------------------ main loop
    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        lw = self.cycle.status("offline", "engine gone")
        will = aiomqtt.Will(lw.topic, lw.payload, qos=1, retain=True)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = cfg.session_expiry
        props.ReceiveMaximum = cfg.receive_maximum
        options = {"identifier": cfg.client_id, "will": will, "clean_start": False,
                   "properties": props, "keepalive": cfg.keepalive, **cfg.mqtt_options}
        client = mqtt.client(self.host, self.port, **options)
        # aiomqtt drops the CONNACK properties (the broker's limits): keep them.
        keep_connack_properties(client, self._keep_connack)
        return client

    def _keep_connack(self, properties: dict[str, Any]) -> None:
        self._connack = properties

    async def run(self, stop: asyncio.Event) -> None:
        # Periodic snapshots by a forked child (feeds.snapshots), not on the loop.
        forks = hasattr(os, "fork")
        if forks:
            self.cycle.write_snapshot = self.snapshots
        try:
            await self._run(stop)
        finally:
            if forks:
                self.snapshots.wait()
                self.cycle.write_snapshot = self.engine.write_snapshot

    async def _run(self, stop: asyncio.Event) -> None:
        backoff = Reconnects(self.config)
        while True:
            try:
                if self.guard is not None:
                    verdict = await self.guard.check()
                    log.debug("venue check: %s", verdict.why)
                async with self._client() as client:
                    backoff.connected()
                    await self._serve(client, stop)
                    return
            except AnotherEngine as exc:
                self.connected = False
                self._drain_offline()       # journal what was taken in; this engine stops
                log.error("%s; %d messages journaled but unanswered", exc,
                          len(self.cycle.outbox))
                raise
            except aiomqtt.MqttError as exc:
                if self.connected:
                    self._lost_at = time.monotonic()
                self.connected = False
                # What was received before the loss is handled (journaled) now; its
                # reports wait in the outbox for the next connection.
                self._drain_offline()
                if not await backoff.after_loss(exc, stop, self):
                    return

    async def _serve(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """One connection's life: announce, subscribe, then cycle until stop or loss."""
        self._connects += 1
        self.cycle.connected(time.monotonic(), self._lost_at)
        reader: asyncio.Task | None = None
        try:
            await _unless_lost(client, self._announce(client))
            reader = asyncio.create_task(self._read(client, self._queue))
            self.connected = True
            if self.config.freeze_gc and not self.ready.is_set():
                gc.collect()
                gc.freeze()
            self.ready.set()
            log.info("gateway online at mqtt://%s:%d", self.host, self.port)
            while not stop.is_set():
                if reader.done():
                    raise _lost(reader)
                batch = await self._next_batch(self._queue, stop)
                await self._cycle(client, batch, reader)
                if self.snapshots.child is not None:
                    self.snapshots.poll()
                if time.monotonic() - self._last_status >= self.config.heartbeat:
                    await self._publish_status(client)
            # Graceful shutdown: stop intake, flush what was taken in, then go offline.
            await client.unsubscribe(list(self.config.order_filters))
            await asyncio.sleep(0.05)
            while not self._queue.empty():
                await self._cycle(client, await self._next_batch(self._queue, None), reader)
            self.cycle.outbox.release_all()
            await self._publish(client, self.cycle.outbox.take(), reader)
            offline = self.cycle.status("offline", "shut down", self.config.clock())
            await client.publish(offline.topic, offline.payload, qos=1, retain=True)
            log.info("gateway offline: %s", self.stats)
        finally:
            if reader is not None:
                reader.cancel()

    async def _announce(self, client: aiomqtt.Client) -> None:
        """A new connection's first steps: the retained state, then the subscriptions."""
        for p in self.cycle.retained(self.config.clock()):
            await client.publish(p.topic, p.payload, qos=1, retain=p.retain)
        self._last_status = time.monotonic()
        for orders in self.config.order_filters:
            await client.subscribe(orders, qos=1)
        await client.subscribe(topics.PRESENCE_WILDCARD, qos=1)
        await client.subscribe(topics.ADMIN, qos=1)
        if self.guard is not None:          # other engines' statuses, never our own
            await client.subscribe(self.config.status_topic,
                                   options=SubscribeOptions(qos=1, noLocal=True))
        await self._watch_broker(client)

    async def _read(self, client: aiomqtt.Client, queue: asyncio.Queue) -> None:
        async for message in client.messages:
            topic = message.topic.value
            if topic == self.config.status_topic:
                # AnotherEngine out of here ends the reader: the engine steps down.
                if self.guard is not None and self.guard.on_status(
                        decode_status(message.payload)):
                    await self._publish_status(client)
            elif topic.startswith("$SYS/"):
                self._broker_stat(topic, message.payload)
            else:
                # The retain flag too: a retained presence is not news (feeds.cycle);
                # a request's Response Topic and Correlation Data (feeds.requests).
                props = message.properties
                response = getattr(props, "ResponseTopic", None) if props else None
                if response is None:
                    queue.put_nowait((topic, message.payload, message.retain))
                else:
                    queue.put_nowait((topic, message.payload, message.retain, response,
                                      getattr(props, "CorrelationData", None)))
        raise aiomqtt.MqttError("message stream ended")

    async def _publish_status(self, client: aiomqtt.Client) -> None:
        """Republish the retained status (the heartbeat; or after another's replaced it)."""
        self._last_status = time.monotonic()
        cycle = self.cycle
        st = cycle.status("online" if cycle.accepting else "not_accepting",
                          cycle.status_text, self.config.clock())
        await client.publish(st.topic, st.payload, qos=1, retain=True)

    # ------------------------------------------------------------------ the broker's limits
    async def _watch_broker(self, client: aiomqtt.Client) -> None:
        """Log the broker's limits from its CONNACK, and subscribe to its dropped-message
        counter (mosquitto's ``$SYS``; refused by an ACL without it, absent elsewhere)."""
        ack = self._connack
        if self._connects == 1:
            log.info("broker limits (CONNACK): %s; max_queued_messages cannot be read by a "
                     "client (see README, 'Broker limits')",
                     ", ".join(f"{k} {v}" for k, v in sorted(ack.items())) or "none given")
        receive_max = ack.get("ReceiveMaximum")
        if isinstance(receive_max, int) and receive_max < MIN_BROKER_RECEIVE_MAXIMUM:
            log.warning("the broker takes only %d QoS 1 messages in flight per client "
                        "(max_inflight_messages < %d): publishing is throttled and MQTT "
                        "3.1.1 subscribers fall behind sooner", receive_max,
                        MIN_BROKER_RECEIVE_MAXIMUM)
        size = ack.get("MaximumPacketSize")
        if isinstance(size, int) and size < MIN_BROKER_PACKET_SIZE:
            log.warning("the broker refuses packets over %d bytes (max_packet_size): a deep "
                        "book's retained snapshot may not fit", size)
        if ack.get("RetainAvailable") == 0:
            log.warning("the broker keeps no retained messages: new subscribers get no "
                        "snapshot, BBO, trading state or engine status")
        self._sys_first = True
        codes = await client.subscribe([(SYS_DROPPED, SubscribeOptions(qos=0)),
                                        (SYS_VERSION, SubscribeOptions(qos=0))])
        if self._connects == 1 and all(not isinstance(c, ReasonCode) or c.is_failure
                                       for c in codes):
            log.warning("cannot read the broker's $SYS counters (not mosquitto, or its ACL "
                        "denies them): messages the broker drops will not be noticed")

    def _broker_stat(self, topic: str, payload) -> None:
        text = bytes(payload or b"").decode("ascii", "replace").strip()
        if topic == SYS_VERSION:
            if text != self.broker_version:
                self.broker_version = text
                log.info("broker: %s", text)
            return
        if topic != SYS_DROPPED or not text.isdigit():
            return
        dropped, before, away = int(text), self._dropped, self._sys_first
        self._dropped, self._sys_first = dropped, False
        if before is not None and dropped > before:
            self.broker_dropped += dropped - before
            log.warning("the broker dropped %d messages (%d since it started)%s: a client's "
                        "queue was full (max_queued_messages / max_queued_bytes): market data "
                        "for a slow subscriber, or orders for this engine while it was away; "
                        "see README, 'Broker limits'", dropped - before, dropped,
                        " while the engine was disconnected" if away else "")

    async def _next_batch(self, queue: asyncio.Queue, stop: asyncio.Event | None) -> list:
        """The next cycle's messages: wait briefly for one, then take what is queued."""
        batch = []
        if queue.empty() and stop is not None:
            try:
                batch.append(await asyncio.wait_for(queue.get(), timeout=0.05))
            except TimeoutError:
                return batch
        while not queue.empty() and len(batch) < self.config.max_batch:
            batch.append(queue.get_nowait())
        return batch

    def _drain_offline(self) -> None:
        """Handle every message already received while no connection is up; what they
        produced stays in the outbox."""
        while not self._queue.empty():
            batch: list[Inbound] = []
            while not self._queue.empty() and len(batch) < self.config.max_batch:
                batch.append(self._queue.get_nowait())
            self.cycle.outbox.restore(self.cycle.process(batch, self.config.clock()))

    # ------------------------------------------------------------------ one cycle
    async def _cycle(self, client: aiomqtt.Client, batch: list[Inbound],
                     reader: asyncio.Task | None = None) -> None:
        self.cycle.outbox.release_due(time.monotonic())
        await self._publish(client, self.cycle.process(batch, self.config.clock()), reader)

    async def _publish(self, client: aiomqtt.Client, publishes: list[Publish],
                       reader: asyncio.Task | None) -> None:
        """Publish in order; what the broker did not acknowledge goes back to the outbox."""
        outbox = self.cycle.outbox
        for i in range(0, len(publishes), CHUNK):
            chunk = publishes[i:i + CHUNK]
            try:
                await self._send(client, chunk, reader)
            except BaseException:
                outbox.restore(publishes[i:])           # resent after reconnecting
                raise
            self.stats.published += len(chunk)
            outbox.delivered(chunk, time.monotonic())

    async def _send(self, client: aiomqtt.Client, chunk: list[Publish],
                    reader: asyncio.Task | None) -> None:
        # paho queues publishes in call order, so gathering keeps per-topic order. A QoS 1
        # publish whose connection died would wait for its PUBACK until aiomqtt's timeout;
        # the reader ending tells the connection is gone much sooner.
        pub = asyncio.ensure_future(asyncio.gather(
            *(client.publish(s.topic, s.payload, qos=1, retain=s.retain,
                             properties=_reply_properties(s)) for s in chunk)))
        waits = {pub} if reader is None else {pub, reader}
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            pub.cancel()
            raise
        if pub in done:
            pub.result()
            return
        pub.cancel()
        assert reader is not None, "only the reader can end the wait first"
        raise _lost(reader)


def _reply_properties(publish: Publish) -> Properties | None:
    """A reply's MQTT 5 Correlation Data (``feeds.requests``); None for every other."""
    if publish.correlation is None:
        return None
    props = Properties(PacketTypes.PUBLISH)
    props.CorrelationData = publish.correlation
    return props


async def _unless_lost(client: aiomqtt.Client, step) -> None:
    """Await ``step`` unless the connection drops first: aiomqtt would wait out its
    timeout (10 s) for a SUBACK or PUBACK that cannot come (e.g. when another client
    took the session over while this one was subscribing)."""
    lost = client._disconnected
    task = asyncio.ensure_future(step)
    try:
        done, _ = await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()
        raise
    if task in done:
        task.result()
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    cause = lost.exception() if not lost.cancelled() else None
    raise aiomqtt.MqttError(f"connection lost while connecting ({cause or 'disconnected'})")


def _lost(reader: asyncio.Task) -> Exception:
    """The MqttError that ended a connection's reader task (or AnotherEngine: the engine
    steps down)."""
    if reader.cancelled():
        return aiomqtt.MqttError("reader cancelled")
    exc = reader.exception()
    if isinstance(exc, (aiomqtt.MqttError, AnotherEngine)):
        return exc
    return aiomqtt.MqttError(f"connection lost: {exc!r}")

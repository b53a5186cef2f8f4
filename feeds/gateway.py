"""The MQTT gateway's transport: aiomqtt in and out around the sans-I/O ``GatewayCycle``.

One task reads ``tokenbook/v1/orders/+``, presence and admin into a queue; the loop takes
whatever is queued (up to ``max_batch``) as one batch, hands it to the cycle
(``feeds.cycle``: engine calls, one group commit) and publishes what the cycle returns,
in order, at QoS 1. The engine is reached only through the cycle.

Faults: a lost broker connection is retried with a capped backoff on a persistent MQTT 5
session (the broker keeps queueing orders meanwhile); what the cycle produced meanwhile
waits in its outbox (``feeds.outbox``) and is published after reconnecting. On every
connect the retained status, snapshots, BBOs and trading states are republished.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Iterable

import aiomqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from feeds import mqtt, topics
from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle, GatewayStats, Inbound
from feeds.outbox import Publish
from matching.engine import Engine
from matching.outputs import Outcome

log = logging.getLogger("tokenbook.gateway")

__all__ = ["Gateway", "GatewayConfig", "GatewayStats"]

#: Publishes handed to paho at once; a cycle's worth is usually far fewer.
CHUNK = 5000


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
                 config: GatewayConfig | None = None, *, recovered: Iterable[Outcome] = ()):
        self.cycle = GatewayCycle(engine, config, recovered=recovered)
        self.host, self.port = host, port
        self.ready = asyncio.Event()
        self.connected = False
        # Messages received (and PUBACKed by paho) but not yet handled: survives reconnects.
        self._queue: asyncio.Queue[Inbound] = asyncio.Queue()
        self._connects = 0
        self._lost_at = 0.0

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
        options = {"identifier": cfg.client_id, "will": will, "clean_start": False,
                   "properties": props, **cfg.mqtt_options}
        return mqtt.client(self.host, self.port, **options)

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.config
        delay, down_since = cfg.reconnect_min, None
        while True:
            try:
                async with self._client() as client:
                    delay, down_since = cfg.reconnect_min, None
                    await self._serve(client, stop)
                    return
            except aiomqtt.MqttError as exc:
                if self.connected:
                    self._lost_at = time.monotonic()
                self.connected = False
                # What was received before the loss is handled (journaled) now; its
                # reports wait in the outbox for the next connection.
                self._drain_offline()
                if stop.is_set():
                    log.warning("gateway stopped while disconnected (%s); %d messages "
                                "unpublished (journaled)", exc, len(self.cycle.outbox))
                    return
                now = time.monotonic()
                down_since = down_since or now
                if cfg.reconnect_give_up is not None and \
                        now - down_since > cfg.reconnect_give_up:
                    raise
                self.stats.reconnects += 1
                log.warning("gateway lost mqtt://%s:%d (%s); reconnecting in %.2f s",
                            self.host, self.port, exc, delay)
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass
                delay = min(delay * 2, cfg.reconnect_max)

    async def _serve(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """One connection's life: announce, subscribe, then cycle until stop or loss."""
        self._connects += 1
        self.cycle.connected(time.monotonic(), self._lost_at)
        reader: asyncio.Task | None = None
        try:
            for p in self.cycle.retained(self.config.clock()):
                await client.publish(p.topic, p.payload, qos=1, retain=p.retain)
            await client.subscribe(topics.ORDERS_WILDCARD, qos=1)
            await client.subscribe(topics.PRESENCE_WILDCARD, qos=1)
            await client.subscribe(topics.ADMIN, qos=1)
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
            # Graceful shutdown: stop intake, flush what was taken in, then go offline.
            await client.unsubscribe(topics.ORDERS_WILDCARD)
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

    async def _read(self, client: aiomqtt.Client, queue: asyncio.Queue) -> None:
        async for message in client.messages:
            # The retain flag too: a retained presence is not news (feeds.cycle).
            queue.put_nowait((message.topic.value, message.payload, message.retain))
        raise aiomqtt.MqttError("message stream ended")

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
            *(client.publish(s.topic, s.payload, qos=1, retain=s.retain) for s in chunk)))
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


def _lost(reader: asyncio.Task) -> aiomqtt.MqttError:
    """The MqttError that ended a connection's reader task."""
    if reader.cancelled():
        return aiomqtt.MqttError("reader cancelled")
    exc = reader.exception()
    if isinstance(exc, aiomqtt.MqttError):
        return exc
    return aiomqtt.MqttError(f"connection lost: {exc!r}")

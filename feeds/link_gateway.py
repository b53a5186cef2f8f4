"""The MQTT gateway's fast transport: an asyncio Protocol around ``feeds.link.Session``.

Same job and API as ``feeds.gateway.Gateway`` (aiomqtt), without a task, a future or a
paho callback per message: what a socket read holds is parsed at once (the Rust ``mqtt5``
codec) and handed to the cycle as one batch (``GatewayCycle.process``: the engine, one
group commit); its publishes and the inputs' PUBACKs go out in one ``transport.write``.
Publishes are pipelined up to the broker's Receive Maximum and tracked by packet id;
CONNECT says the gateway's own, 65535, so the broker never queues for it. While the last
cycle's publishes still wait for room in the broker's window (mosquitto's is 20), the
next cycle waits for them: PUBACK reads then cost no fsync, and one commit takes all that
came meanwhile.

The session is the aiomqtt gateway's: persistent (clean_start false, ``session_expiry``),
the last will sets the retained status ``offline``, keepalive PINGREQ/PINGRESP, capped
backoff (``reconnect_min`` .. ``reconnect_max``, ``reconnect_give_up``); a publish leaves
the outbox only when PUBACKed, and those in flight at a loss go again with their packet
id and DUP. On every connect the retained status, snapshots, BBOs and states are
republished and acknowledged before subscribing (then ``ready``); holds as the cycle says.
A PUBACK >= 0x80 (0x87 Not authorized: the ACL refused it) is logged and counted
(``stats.publish_refused``, ``stats.refused_reasons``) and never retried. Options and TLS:
``feeds.link_options``.

Parts: the Protocol per connection (``feeds.link_connection``), the connect phases and
PUBACK/refusal/status handling (``feeds.link_phases``); this module runs connections,
cycles what they read and releases what the journal made durable.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from collections.abc import Iterable

import aiomqtt
import mqtt5

from feeds import topics
from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle, Inbound
from feeds.durable import DurableGate
from feeds.guard import AnotherEngine, VenueGuard
from feeds.link import LinkError, Session
from feeds.link_connection import TICK, LinkStats, _first, _Link
from feeds.link_options import link_options, ssl_context
from feeds.link_phases import LinkPhases
from feeds.outbox import Publish
from feeds.reconnect import Reconnects
from feeds.snapshots import ForkedSnapshots
from matching.engine import Engine
from matching.outputs import Outcome

log = logging.getLogger("tokenbook.gateway")

__all__ = ["LinkGateway", "LinkStats", "TICK"]

#: Seconds a graceful shutdown waits for UNSUBACK, then for the last PUBACKs.
SHUTDOWN_WAIT = (2.0, 10.0)
#: What the engine subscribes to: orders, brokers' presence, operator commands.
_INPUTS = (topics.ORDERS_WILDCARD, topics.PRESENCE_WILDCARD, topics.ADMIN)
# The connection is down (and the venue check's own connection, an aiomqtt one).
_DOWN = (LinkError, OSError, TimeoutError, aiomqtt.MqttError)


def _batch(messages: list[mqtt5.PublishPacket]) -> list[Inbound]:
    """The cycle's batch items (``feeds.cycle.Inbound``) of received PUBLISH packets; with
    Retain As Published off (``Session.subscribe``) RETAIN marks a stored message. A
    request's Response Topic and Correlation Data go along (``feeds.requests``)."""
    return [(m.topic, m.payload, m.retain) if m.response_topic is None else
            (m.topic, m.payload, m.retain, m.response_topic, m.correlation_data)
            for m in messages]


class LinkGateway(LinkPhases):
    """Connects an Engine to an MQTT broker; ``await gateway.run(stop_event)``.

    The API of ``feeds.gateway.Gateway``: ``ready`` (set once online: retained state
    republished, subscribed), ``connected``, ``stats``, ``cycle``, ``config``, ``engine``.
    ``run`` stays up across broker restarts and returns after a graceful stop (intake
    unsubscribed, the outbox flushed, status ``offline``, DISCONNECT).
    """
    #: Let a cycle wait while the last one's publishes wait for the broker's window.
    defer = True
    #: Each journal group's fdatasync on a thread, overlapping the next cycle (True), or in
    #: the cycle, on the loop (False, the default, as the aiomqtt gateway does): measured
    #: side by side (bench/RESULTS.md, issue 16) the loop that waits for its sync takes
    #: more orders per cycle, fewer cycles, no thread handoff, and acks sooner at half peak.
    sync_off_loop = False

    def __init__(self, engine: Engine, host: str, port: int,
                 config: GatewayConfig | None = None, *, recovered: Iterable[Outcome] = (),
                 guard: VenueGuard | None = None):
        self.cycle = GatewayCycle(engine, config, recovered=recovered)
        self.cycle.stats = LinkStats()
        self.host, self.port = host, port
        # One engine per venue (feeds.guard): the check before every connect (None: not
        # exclusive); a caller that checked already (tokenbook serve) passes its guard.
        self.guard = guard if guard is not None or not self.config.exclusive else \
            VenueGuard.for_config(host, port, self.config)
        self.ready = asyncio.Event()
        self.connected = False
        self.session = Session(link_options(self.config, None))
        self._lost_at = 0.0
        self._last_status = 0.0           # when the retained status was last published
        # The cycle's output waits here for its journal group's fdatasync (off the loop).
        self.gate = DurableGate(engine.journal, self._release, self._woken,
                                self._journal_failed)
        self._link: _Link | None = None
        self.snapshots = ForkedSnapshots(engine)   # periodic snapshots, off the loop
        self._online = False              # the current connection got as far as SUBACK

    @property
    def config(self) -> GatewayConfig:
        return self.cycle.config

    @config.setter
    def config(self, config: GatewayConfig) -> None:
        """Swap in another config; the next cycle and connection use it."""
        self.cycle.config = config

    @property
    def _inputs(self) -> tuple[str, ...]:
        """Orders (v1, or a shard's own v2 symbols), presence, operator commands."""
        return (*self.config.order_filters, *_INPUTS[1:])

    @property
    def stats(self) -> LinkStats:
        return self.cycle.stats  # type: ignore[return-value]

    @property
    def engine(self) -> Engine:
        return self.cycle.engine

    # ------------------------------------------------------------------ run
    async def run(self, stop: asyncio.Event) -> None:
        if self.sync_off_loop:
            self.gate.start(asyncio.get_running_loop())
        forks = hasattr(os, "fork")
        if forks:
            self.cycle.write_snapshot = self.snapshots
        try:
            await self._run(stop)
        finally:
            self.gate.stop()
            if forks:
                self.snapshots.wait()
                self.cycle.write_snapshot = self.engine.write_snapshot

    async def _run(self, stop: asyncio.Event) -> None:
        backoff = Reconnects(self.config)
        while True:
            try:
                if self.guard is not None:
                    verdict = await self.guard.check()      # AnotherEngine: this one stops
                    log.debug("venue check: %s", verdict.why)
                await self._serve(stop)
                return
            except _DOWN as exc:
                if self._online:              # this connection was up: a fresh backoff
                    self._lost_at = time.monotonic()
                    backoff.connected()
                self._online = self.connected = False
                if not await backoff.after_loss(exc, stop, self):
                    return

    async def _serve(self, stop: asyncio.Event) -> None:
        """One connection's life: CONNECT, retained state, subscribe, cycles, shutdown."""
        loop = asyncio.get_running_loop()
        cfg = self.config
        opts = link_options(cfg, self.cycle.status("offline", "engine gone"))
        self.session.options = opts
        tls = ssl_context(cfg.mqtt_options)
        link = self._link = _Link(self, loop)
        async with asyncio.timeout(opts.connect_timeout):
            await loop.create_connection(lambda: link, self.host, self.port, ssl=tls,
                                         server_hostname=self.host if tls else None)
        stopped = asyncio.ensure_future(stop.wait())
        try:
            now = time.monotonic()
            self.session.connect(now)
            link.flush(now)
            link.tick()
            online = asyncio.ensure_future(link.online.wait())
            await _first(online, link.closed, stopped)
            online.cancel()
            link.raise_if_closed()
            if not link.online.is_set():
                return                        # stopped while connecting: the will says so
            if cfg.freeze_gc and not self.ready.is_set():
                gc.collect()
                gc.freeze()
            self.ready.set()
            log.info("gateway online at mqtt://%s:%d", self.host, self.port)
            await _first(link.closed, stopped)
            link.raise_if_closed()
            await self._shutdown(link)
        finally:
            stopped.cancel()
            link.end(LinkError("connection closed by the gateway"))
            # Unacknowledged publishes (and those held for their sync, made durable now)
            # wait in the outbox for the next connection, and what was received but not
            # cycled yet is journaled now (not PUBACKed: the broker sends it again,
            # answered from the ClOrdID memory).
            self.cycle.outbox.restore(self.session.connection_lost() + self.gate.drain())
            if link.pending and isinstance(link.closed.result(), (*_DOWN, AnotherEngine)):
                self._drain_offline(link)
            self.gate.settle()                # durable before a reconnect publishes it

    async def _shutdown(self, link: _Link) -> None:
        """Graceful stop: no more orders, flush what was made, ``offline``, DISCONNECT."""
        s, outbox = self.session, self.cycle.outbox
        now = time.monotonic()
        s.unsubscribe(list(self.config.order_filters))
        link.flush(now)
        await self._until(link, link.unsubscribed, SHUTDOWN_WAIT[0])
        link.phase = "closing"
        if link.pending:
            self._take_in(link, time.monotonic(), force=True)
        self.gate.settle()
        outbox.release_all()
        s.publish(outbox.take())
        s.publish([self.cycle.status("offline", "shut down", self.config.clock())])
        link.flush(time.monotonic())
        self._check_drained(link)
        await self._until(link, link.drained, SHUTDOWN_WAIT[1])
        if not link.drained.is_set():
            log.warning("gateway stopping with %d publishes unacknowledged (journaled)",
                        len(s.inflight) + len(s.queue))
        s.disconnect()
        link.flush(time.monotonic())
        log.info("gateway offline: %s", self.stats)

    async def _until(self, link: _Link, event: asyncio.Event, timeout: float) -> None:
        waiter = asyncio.ensure_future(event.wait())
        try:
            await _first(waiter, link.closed, timeout=timeout)
        finally:
            waiter.cancel()
        link.raise_if_closed()

    # ------------------------------------------------------------------ socket events
    def _received(self, link: _Link, data: bytes) -> None:
        """One socket read: the session parses it, the cycle takes its messages, one write."""
        s, now = self.session, time.monotonic()
        try:
            messages = s.feed(data, now)
            if s.acked:
                self._acked(link, now)
            if s.refused:
                self._refused(link)
            if s.events:
                self._events(link, now)
            if messages:
                if self.guard is not None:
                    messages = self._statuses(link, messages)
                link.pending += messages
            if link.pending:
                self._take_in(link, now)
            elif s.has_received():
                # Only statuses came (nothing to journal): PUBACK them now, or the
                # broker would send them again to the next connection of this session.
                s.ack(s.take_received())
        except LinkError as exc:
            link.flush(now)                   # the DISCONNECT the session queued, if any
            link.end(exc)
            return
        except AnotherEngine as exc:          # this engine steps down: run() raises it
            self._step_down(link, exc, now)
            return
        except Exception as exc:              # a bug: run() raises it, no retry
            log.exception("gateway transport failed")
            link.end(exc)
            return
        link.flush(now)

    def _tick(self, link: _Link) -> None:
        """Every TICK: keepalive, then (online) an idle cycle: holds, timetable, expiry."""
        s, now = self.session, time.monotonic()
        if self.snapshots.child is not None:
            self.snapshots.poll()
        try:
            s.tick(now)
            if link.pending:
                self._take_in(link, now, force=True)
            elif link.phase == "online":
                self.cycle.outbox.release_due(now)
                publishes = self.cycle.process([], self.config.clock())
                self.gate.send(publishes, [])
                if now - self._last_status >= self.config.heartbeat:
                    self._publish_status(now)
        except LinkError as exc:
            link.flush(now)
            link.end(exc)
            return
        except Exception as exc:              # a bug: run() raises it, no retry
            log.exception("gateway cycle failed")
            link.end(exc)
            return
        link.flush(now)

    def _take_in(self, link: _Link, now: float, force: bool = False) -> None:
        """The messages received so far through the cycle, then PUBACKed (after the
        commit: see feeds.link). While publishes of the last cycle still wait for room in
        the broker's window (mosquitto announces 20), the next cycle waits too, unless
        ``force``d (tick) or ``max_batch`` is reached: the PUBACK round trips then run
        without an fsync between them, and the next cycle takes all that came meanwhile
        with one commit."""
        s = self.session
        if s.queue and self.defer and not force and len(link.pending) < self.config.max_batch:
            return
        link.flush(now)                       # the window's refill goes before the cycle
        messages, link.pending = link.pending, []
        publishes = self._cycle(messages, now)
        self.gate.send(publishes, s.take_received())

    def _release(self, publishes: list[Publish], acks: list[int]) -> None:
        """A cycle's output whose journal group is durable: its publishes, then the
        PUBACKs of its inputs."""
        s = self.session
        if publishes:
            s.publish(publishes)
        s.ack(acks)

    def _woken(self) -> None:
        """A sync released output: write it."""
        link = self._link
        if link is not None and not link.closed.done():
            link.flush(time.monotonic())
            if link.phase == "closing":
                self._check_drained(link)

    def _journal_failed(self, exc: Exception) -> None:
        """A group's fdatasync failed: refuse orders from now on, as the cycle does when a
        commit fails (``feeds.cycle``), and say so in the retained status."""
        cycle = self.cycle
        if cycle.accepting:
            log.error("journal failed, refusing orders: %s", exc)
            cycle.accepting = False
            cycle.status_text = f"journal unavailable: {exc}"
            self.session.publish([cycle.status("not_accepting", cycle.status_text,
                                               self.config.clock())])

    def _drain_offline(self, link: _Link) -> None:
        messages, link.pending = link.pending, []
        cycle, step = self.cycle, self.config.max_batch
        batch = _batch(messages)
        for i in range(0, len(batch), step):
            cycle.outbox.restore(cycle.process(batch[i:i + step], self.config.clock()))

    def _cycle(self, messages: list[mqtt5.PublishPacket], now: float) -> list[Publish]:
        """Messages through the cycle, ``max_batch`` at a time; what they made."""
        cycle, cfg = self.cycle, self.config
        cycle.outbox.release_due(now)
        batch = _batch(messages)
        step = cfg.max_batch
        if len(batch) <= step:
            return cycle.process(batch, cfg.clock())
        out: list[Publish] = []
        for i in range(0, len(batch), step):
            out += cycle.process(batch[i:i + step], cfg.clock())
        return out

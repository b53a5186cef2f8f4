"""The async MQTT gateway: order entry in, execution reports and market data out.

One task reads ``tokenbook/v1/orders/+`` into a queue; the engine loop takes whatever is
queued (up to ``max_batch``) as one cycle: every message is decoded and handed to the
engine in arrival order, the journal is group-committed once, and only then are the
cycle's reports, trades and coalesced depth published, in order. Nothing is dropped: a
message that does not decode gets a Rejected report on its sender's exec topic; one
whose topic names no broker is counted and logged.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from decimal import Decimal

import aiomqtt

from feeds import mqtt, topics
from feeds.codec import DecodeError, EngineStatus, decode_order_message, encode
from feeds.depth import DepthBook
from matching.engine import Engine, LevelChange, Outcome
from matching.journal import JournalError

log = logging.getLogger("tokenbook.gateway")

__all__ = ["Gateway", "GatewayStats"]


@dataclass
class GatewayStats:
    received: int = 0
    decode_rejects: int = 0
    unattributable: int = 0
    cycles: int = 0
    published: int = 0
    reports: int = 0
    trades: int = 0
    reject_reasons: dict[str, int] = field(default_factory=dict)
    acks: int = 0                 # New reports: orders the engine took
    closed: int = 0               # reports that ended an order (filled, canceled, expired)
    trades_by_symbol: dict[str, int] = field(default_factory=dict)
    volume: dict[str, Decimal] = field(default_factory=dict)       # tokens traded
    settled: dict[str, Decimal] = field(default_factory=dict)      # cash paid by buyers


class Gateway:
    """Connects an Engine to an MQTT broker; ``await gateway.run(stop_event)``."""

    def __init__(self, engine: Engine, host: str, port: int, *,
                 client_id: str = "tokenbook-engine", max_batch: int = 500,
                 cancel_on_disconnect: frozenset[str] | str = frozenset(),
                 snapshot_dir=None, snapshot_every: int = 100_000,
                 mqtt_options: dict | None = None):
        self.engine = engine
        # Extra aiomqtt.Client arguments: username/password, tls_params (feeds.mqtt).
        self.mqtt_options = dict(mqtt_options or {})
        self.host, self.port = host, port
        self.client_id = client_id
        self.max_batch = max_batch
        self.stats = GatewayStats()
        self.depth = {s: DepthBook(s) for s in engine.instruments}
        self.ready = asyncio.Event()
        self.accepting = True
        # Brokers whose live orders are cancelled when their presence goes offline
        # (their client's last will); "*" means every broker.
        self.cancel_on_disconnect = cancel_on_disconnect
        # Periodic snapshots bound recovery time: replay starts from the latest one.
        self.snapshot_dir = snapshot_dir
        self.snapshot_every = snapshot_every
        self._snapshot_seq = engine.seq

    # ------------------------------------------------------------------ main loop
    async def run(self, stop: asyncio.Event) -> None:
        will = aiomqtt.Will(topics.STATUS, encode(EngineStatus("offline", "engine gone")),
                            qos=1, retain=True)
        async with mqtt.client(self.host, self.port, identifier=self.client_id, will=will,
                               **self.mqtt_options) as client:
            await self._publish_status(client, "online")
            for symbol, book in self.depth.items():
                await client.publish(topics.md(symbol, "snapshot"), encode(book.snapshot()),
                                     qos=1, retain=True)
                await client.publish(topics.md(symbol, "bbo"), encode(book.bbo()), qos=1,
                                     retain=True)
            await client.subscribe(topics.ORDERS_WILDCARD, qos=1)
            await client.subscribe(topics.PRESENCE_WILDCARD, qos=1)
            queue: asyncio.Queue = asyncio.Queue()
            reader = asyncio.create_task(self._read(client, queue))
            self.ready.set()
            log.info("gateway online at mqtt://%s:%d", self.host, self.port)
            try:
                while not stop.is_set():
                    batch = await self._next_batch(queue, stop)
                    await self._cycle(client, batch)
                # Graceful shutdown: stop intake, flush what was taken in, then go offline.
                await client.unsubscribe(topics.ORDERS_WILDCARD)
                await asyncio.sleep(0.05)
                while not queue.empty():
                    await self._cycle(client, await self._next_batch(queue, None))
            finally:
                reader.cancel()
                await self._publish_status(client, "offline", "shut down")
                log.info("gateway offline: %s", self.stats)

    async def _read(self, client: aiomqtt.Client, queue: asyncio.Queue) -> None:
        async for message in client.messages:
            queue.put_nowait(message)

    async def _next_batch(self, queue: asyncio.Queue, stop: asyncio.Event | None) -> list:
        """The next cycle's messages: wait briefly for one, then take what is queued."""
        batch = []
        if queue.empty() and stop is not None:
            try:
                batch.append(await asyncio.wait_for(queue.get(), timeout=0.05))
            except asyncio.TimeoutError:
                return batch
        while not queue.empty() and len(batch) < self.max_batch:
            batch.append(queue.get_nowait())
        return batch

    # ------------------------------------------------------------------ one cycle
    async def _cycle(self, client: aiomqtt.Client, batch: list) -> None:
        outcomes: list[Outcome] = []
        for message in batch:
            out = self._handle(message)
            if out is not None:
                outcomes.append(out)
        expiry = self.engine.next_expiry()
        if expiry is not None and expiry <= time.time_ns():
            outcomes.append(self.engine.admin("expire"))
        if not outcomes:
            return
        try:
            self.engine.commit()              # durable before anything is acknowledged
        except JournalError as exc:
            log.error("journal failed, refusing orders: %s", exc)
            self.accepting = False
            await self._publish_status(client, "not_accepting", str(exc))
            # Not durable, so not acknowledged: brokers retry the same ClOrdIDs later.
            return
        await self._publish(client, outcomes)
        self.stats.cycles += 1
        if self.snapshot_dir and self.engine.seq - self._snapshot_seq >= self.snapshot_every:
            self.engine.write_snapshot(self.snapshot_dir)
            self._snapshot_seq = self.engine.seq

    def _handle(self, message) -> Outcome | None:
        topic = message.topic.value
        if topic.startswith(topics.PRESENCE_WILDCARD[:-1]):
            return self._presence(topic.rsplit("/", 1)[-1], message.payload)
        self.stats.received += 1
        broker = topics.broker_from_orders_topic(topic)
        if broker is None:
            self.stats.unattributable += 1
            log.warning("dropped a message on %r: no broker in the topic", message.topic.value)
            return None
        payload = message.payload if isinstance(message.payload, bytes) else bytes(
            str(message.payload), "utf-8")
        msg = decode_order_message(payload)
        if isinstance(msg, DecodeError):
            self.stats.decode_rejects += 1
            return self.engine.refuse(broker, msg.reason, msg.text, msg.cl_ord_id, msg.symbol)
        return self.engine.submit(broker, msg)

    def _presence(self, broker: str, payload) -> Outcome | None:
        """Cancel-on-disconnect: a broker's presence went offline (its last will fired)."""
        gone = bytes(payload or b"").strip() == b"offline"
        wanted = self.cancel_on_disconnect == "*" or broker in self.cancel_on_disconnect
        if not (gone and wanted and topics.valid_name(broker)):
            return None
        if not any(o.broker == broker for o in self.engine.orders.values()):
            return None
        log.warning("broker %s disconnected: cancelling its live orders", broker)
        return self.engine.admin("cancel_broker", broker=broker, reason="disconnected")

    async def _publish(self, client: aiomqtt.Client, outcomes: list[Outcome]) -> None:
        """Reports and trades in engine order; depth coalesced per symbol for the cycle."""
        sends = []
        levels: dict[str, list[LevelChange]] = {}
        for out in outcomes:
            for broker, report in out.reports:
                sends.append((topics.exec_reports(broker), encode(report), False))
                self.stats.reports += 1
                if report.exec_type == "new":
                    self.stats.acks += 1
                elif report.ord_status in ("filled", "canceled", "expired") and \
                        report.exec_type != "replaced":
                    self.stats.closed += 1
                if report.exec_type == "rejected":
                    reason = report.ord_rej_reason or "?"
                    self.stats.reject_reasons[reason] = self.stats.reject_reasons.get(reason, 0) + 1
                if report.exec_type == "trade" and report.side == "buy" and report.settl_amount:
                    st = self.stats.settled
                    st[report.symbol] = st.get(report.symbol, Decimal(0)) + Decimal(
                        report.settl_amount)
            for trade in out.trades:
                sends.append((topics.md(trade.symbol, "trades"), encode(trade), False))
                self.stats.trades += 1
                tb, vol = self.stats.trades_by_symbol, self.stats.volume
                tb[trade.symbol] = tb.get(trade.symbol, 0) + 1
                vol[trade.symbol] = vol.get(trade.symbol, Decimal(0)) + Decimal(trade.qty)
            for change in out.levels:
                levels.setdefault(change.symbol, []).append(change)
        for symbol, changes in levels.items():
            book = self.depth[symbol]
            update = book.apply(changes)
            if update is not None:
                sends.append((topics.md(symbol, "depth"), encode(update), False))
                sends.append((topics.md(symbol, "snapshot"), encode(book.snapshot()), True))
                sends.append((topics.md(symbol, "bbo"), encode(book.bbo()), True))
        # paho queues publishes in call order, so gathering keeps per-topic order.
        await asyncio.gather(*(client.publish(t, p, qos=1, retain=r) for t, p, r in sends))
        self.stats.published += len(sends)

    async def _publish_status(self, client: aiomqtt.Client, status: str, text: str = "") -> None:
        await client.publish(topics.STATUS, encode(EngineStatus(status, text, time.time_ns())),
                             qos=1, retain=True)

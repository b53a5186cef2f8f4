"""The async MQTT gateway: order entry in, execution reports and market data out.

One task reads ``tokenbook/v1/orders/+`` into a queue; the engine loop takes whatever is
queued (up to ``max_batch``) as one cycle: every message is decoded and handed to the
engine in arrival order, the journal is group-committed once, and only then are the
cycle's reports, trades and coalesced depth published, in order. Nothing is dropped: a
message that does not decode gets a Rejected report on its sender's exec topic; one
whose topic names no broker is counted and logged.

Faults: a lost broker connection is retried with a capped backoff on a persistent MQTT 5
session; what the engine produced meanwhile waits in an outbox and is published after
reconnecting (see ``Gateway``). A journal that cannot be written stops the engine taking
orders: the retained status says ``not_accepting`` with the reason, and every order is
answered Rejected JOURNAL_UNAVAILABLE instead of being acknowledged.

Operators drive the trading session on ``tokenbook/v1/admin`` (pre_open, open, halt,
resume, close; close expires DAY orders): each command is journaled like an order, its
reply goes to ``tokenbook/v1/admin/replies`` after the commit, and every instrument's
state is retained on ``tokenbook/v1/md/{symbol}/state``. With a ``SessionSchedule`` the
gateway sends the day's pre_open / open / close itself, at their times on the engine's
clock, the same way (reply request_id ``schedule``).
"""
from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

import aiomqtt
import msgspec
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from feeds import mqtt, topics
from feeds.codec import (
    AdminReply, DecodeError, EngineStatus, TradingStatus, decode_admin_command,
    decode_order_message, encode,
)
from feeds.depth import DepthBook
from matching._gc import untracked
from matching.engine import Engine
from matching.outputs import LevelChange, Outcome
from matching.journal import JournalError
from matching.schedule import SessionSchedule

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
    reconnects: int = 0           # connections lost and tried again
    resent: int = 0               # recent exec reports sent again after a reconnect
    admin_commands: int = 0       # operator commands taken (journaled)
    admin_refused: int = 0        # operator commands refused (bad, or journal down)
    trades_by_symbol: dict[str, int] = field(default_factory=dict)
    volume: dict[str, Decimal] = field(default_factory=dict)       # tokens traded
    settled: dict[str, Decimal] = field(default_factory=dict)      # cash paid by buyers


class Gateway:
    """Connects an Engine to an MQTT broker; ``await gateway.run(stop_event)``.

    ``run`` stays up across broker restarts: a lost connection is re-established with a
    capped exponential backoff (``reconnect_min`` .. ``reconnect_max`` seconds; with
    ``reconnect_give_up`` set, ``run`` raises after that long without a connection). The
    session is persistent (MQTT 5 clean_start=False, ``session_expiry`` seconds, stable
    ``client_id``), so a broker that survives keeps queueing orders for the engine; on every
    connect the gateway subscribes again and republishes the retained status, snapshots and
    BBOs. Everything produced is first put in an outbox and only taken out of it once the
    broker acknowledged it (QoS 1 PUBACK): reports made while disconnected, or in flight when
    the connection died, are published after reconnecting (at least once; the journal stays
    the system of record). Exec reports acknowledged by the broker in the last
    ``resend_window`` seconds before a loss are sent again too: a broker that crashed may
    have acknowledged them without delivering them (clients drop copies by exec id). After a (re)connect, execution reports for brokers that have live
    orders or waiting reports are held until that broker's presence says ``online`` (its
    client resubscribed: a restarted broker forgot every subscription) or ``hold_reports``
    seconds passed, so they are not published into the void.
    """

    def __init__(self, engine: Engine, host: str, port: int, *,
                 client_id: str = "tokenbook-engine", max_batch: int = 500,
                 cancel_on_disconnect: frozenset[str] | str = frozenset(),
                 snapshot_dir=None, snapshot_every: int = 100_000,
                 mqtt_options: dict | None = None, session_expiry: int = 3600,
                 reconnect_min: float = 0.05, reconnect_max: float = 2.0,
                 reconnect_give_up: float | None = None, hold_reports: float = 2.0,
                 resend_window: float = 10.0, resend_max: int = 50_000,
                 recovered: list[Outcome] | None = None, freeze_gc: bool = False,
                 schedule: SessionSchedule | None = None):
        self.engine = engine
        # A server process (``tokenbook serve``) moves what exists once it is up (modules,
        # the recovered state) out of the collector's sight, so full collections pause
        # the loop only for what trading added since (gc.freeze).
        self.freeze_gc = freeze_gc
        # Extra aiomqtt.Client arguments: username/password, tls_params (feeds.mqtt).
        self.mqtt_options = dict(mqtt_options or {})
        self.host, self.port = host, port
        self.client_id = client_id
        self.max_batch = max_batch
        self.stats = GatewayStats()
        self.depth = {s: DepthBook(s) for s in engine.instruments}
        self.ready = asyncio.Event()
        self.connected = False
        self.accepting = True
        self.status_text = ""
        # Brokers whose live orders are cancelled when their presence goes offline
        # (their client's last will); "*" means every broker.
        self.cancel_on_disconnect = cancel_on_disconnect
        # Periodic snapshots bound recovery time: replay starts from the latest one.
        self.snapshot_dir = snapshot_dir
        self.snapshot_every = snapshot_every
        self._snapshot_seq = engine.seq
        self.session_expiry = session_expiry
        self.reconnect_min, self.reconnect_max = reconnect_min, reconnect_max
        self.reconnect_give_up = reconnect_give_up
        self.hold_reports = hold_reports
        # Messages received (and PUBACKed by paho) but not yet handled: survives reconnects.
        self._queue: asyncio.Queue = asyncio.Queue()
        # Durable outcomes not yet acknowledged by the broker, oldest first.
        self._outbox: deque[_Send] = deque()
        self._held: dict[str, deque[_Send]] = {}
        self._hold_deadline = 0.0
        # Exec reports the broker acknowledged lately: sent again after a reconnect, since a
        # broker that died may have acknowledged them without delivering them. Clients drop
        # the copies by exec id.
        self.resend_window, self.resend_max = resend_window, resend_max
        # By publish number, oldest first: a dict of untracked (time, send) tuples stays
        # out of the collector's walk, where a deque of them was walked by every full
        # collection (pauses that grew with the window).
        self._recent: dict[int, tuple[float, _Send]] = {}
        self._recent_first = self._recent_next = 0
        self._connects = 0
        self._lost_at = 0.0
        # Operator replies of this cycle, sent once its journal commit returned; the
        # sequence number that last set each instrument's state.
        self._admin_replies: list[AdminReply] = []
        # The trading day's timetable (None: the session is only what operators say). Each
        # boundary passed becomes an operator input; _schedule_mark is the time up to
        # which they were applied (None until the first cycle catches up).
        self.schedule = schedule
        self._schedule_mark: int | None = None
        # After a crash, the last inputs replayed from the journal: their reports may never
        # have left (the process died between commit and publish), so they go out again
        # first, marked PossResend; clients drop the copies they already have by exec id.
        for out in recovered or ():
            for broker, report in out.reports:
                if broker:
                    self._outbox.append(_Send(
                        topics.exec_reports(broker),
                        encode(msgspec.structs.replace(report, poss_resend=True)), False,
                        "exec", broker))

    # ------------------------------------------------------------------ main loop
    def _client(self) -> aiomqtt.Client:
        will = aiomqtt.Will(topics.STATUS, encode(EngineStatus("offline", "engine gone")),
                            qos=1, retain=True)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        options = {"identifier": self.client_id, "will": will, "clean_start": False,
                   "properties": props, **self.mqtt_options}
        return mqtt.client(self.host, self.port, **options)

    async def run(self, stop: asyncio.Event) -> None:
        delay, down_since = self.reconnect_min, None
        while True:
            try:
                async with self._client() as client:
                    delay, down_since = self.reconnect_min, None
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
                                "unpublished (journaled)", exc, len(self._outbox))
                    return
                now = time.monotonic()
                down_since = down_since or now
                if self.reconnect_give_up is not None and \
                        now - down_since > self.reconnect_give_up:
                    raise
                self.stats.reconnects += 1
                log.warning("gateway lost mqtt://%s:%d (%s); reconnecting in %.2f s",
                            self.host, self.port, exc, delay)
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except asyncio.TimeoutError:
                    pass
                delay = min(delay * 2, self.reconnect_max)

    async def _serve(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        """One connection's life: announce, subscribe, then cycle until stop or loss."""
        # Retained state is republished fresh (a restarted broker lost it), so stale copies
        # made while disconnected are dropped; reports and trades are kept.
        self._outbox = deque(s for s in self._outbox if s.kind in ("exec", "trade", "admin"))
        self._connects += 1
        if self._connects > 1 and self._recent:
            since = self._lost_at - self.resend_window
            again = [s for t, s in self._recent.values() if t >= since]
            self._recent.clear()
            self._recent_first = self._recent_next
            self.stats.resent += len(again)
            self._outbox.extendleft(reversed(again))
        self._start_holds()
        reader: asyncio.Task | None = None
        try:
            status = "online" if self.accepting else "not_accepting"
            await self._publish_status(client, status, self.status_text)
            for symbol, book in self.depth.items():
                await client.publish(topics.md(symbol, "snapshot"), encode(book.snapshot()),
                                     qos=1, retain=True)
                await client.publish(topics.md(symbol, "bbo"), encode(book.bbo()), qos=1,
                                     retain=True)
                await client.publish(topics.md(symbol, "state"),
                                     encode(self._trading_status(symbol)), qos=1, retain=True)
            await client.subscribe(topics.ORDERS_WILDCARD, qos=1)
            await client.subscribe(topics.PRESENCE_WILDCARD, qos=1)
            await client.subscribe(topics.ADMIN, qos=1)
            reader = asyncio.create_task(self._read(client, self._queue))
            self.connected = True
            if self.freeze_gc and not self.ready.is_set():
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
            self._release_all()
            await self._flush(client, reader)
            await self._publish_status(client, "offline", "shut down")
            log.info("gateway offline: %s", self.stats)
        finally:
            if reader is not None:
                reader.cancel()

    async def _read(self, client: aiomqtt.Client, queue: asyncio.Queue) -> None:
        async for message in client.messages:
            queue.put_nowait(message)
        raise aiomqtt.MqttError("message stream ended")

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

    def _drain_offline(self) -> None:
        """Handle every message already received while no connection is up."""
        while not self._queue.empty():
            batch = []
            while not self._queue.empty() and len(batch) < self.max_batch:
                batch.append(self._queue.get_nowait())
            self._process(batch)

    # ------------------------------------------------------------------ one cycle
    async def _cycle(self, client: aiomqtt.Client, batch: list,
                     reader: asyncio.Task | None = None) -> None:
        self._process(batch)
        await self._flush(client, reader)

    def _process(self, batch: list) -> None:
        """Hand a batch to the engine, commit the journal, queue what may now be published."""
        outcomes: list[tuple[Outcome, bool]] = []      # (outcome, whether it was an input)
        for message in batch:
            before = self.engine.seq
            out = self._handle(message)
            if out is not None:
                outcomes.append((out, self.engine.seq != before))
        if self.schedule is not None:
            for at, action in self._session_due(self.engine.clock()):
                before = self.engine.seq
                out = self._session_input(
                    action, "", f"scheduled {action} at "
                    f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(at // 10**9))} UTC",
                    "schedule")
                outcomes.append((out, self.engine.seq != before))
        expiry = self.engine.next_expiry()
        if expiry is not None and expiry <= time.time_ns():
            before = self.engine.seq
            outcomes.append((self.engine.admin("expire"), self.engine.seq != before))
        if not outcomes:
            self._stage_admin(durable=True)           # refusals only: nothing to commit
            return
        try:
            self.engine.commit()              # durable before anything is acknowledged
        except JournalError as exc:
            if self.accepting:
                log.error("journal failed, refusing orders: %s", exc)
                self.accepting = False
                self.status_text = f"journal unavailable: {exc}"
                self._queue_status("not_accepting", self.status_text)
            # Inputs of this batch are not durable, so not acknowledged (brokers retry the
            # same ClOrdIDs later); answers that persist nothing still go out.
            self._stage([a for o, sequenced in outcomes if not sequenced
                         if (a := self._unpersisted_answer(o)) is not None])
            self._stage_admin(durable=False)
            return
        self._stage([o for o, _ in outcomes])
        self._stage_admin(durable=True)
        self.stats.cycles += 1
        if self.snapshot_dir and self.engine.seq - self._snapshot_seq >= self.snapshot_every:
            self._snapshot_seq = self.engine.seq
            try:
                self.engine.write_snapshot(self.snapshot_dir)
            except (OSError, JournalError) as exc:    # recovery replays a longer journal
                log.error("snapshot at sequence %d failed: %s", self.engine.seq, exc)

    def _unpersisted_answer(self, out: Outcome) -> Outcome | None:
        """After a journal failure: a resend whose original input never became durable is
        refused like a new order rather than answered from memory."""
        journal = self.engine.journal
        durable = journal.durable_seq if journal is not None else self.engine.seq
        if not out.replayed or all(r.seq <= durable for _, r in out.reports):
            return out
        if not out.reports:
            return None
        broker, r = out.reports[0]
        return self.engine.refuse(broker, "JOURNAL_UNAVAILABLE",
                                  f"the engine cannot persist orders: {journal.failed}",
                                  r.cl_ord_id, r.symbol)

    def _handle(self, message) -> Outcome | None:
        topic = message.topic.value
        if topic.startswith(topics.PRESENCE_WILDCARD[:-1]):
            return self._presence(topic.rsplit("/", 1)[-1], message.payload)
        if topic == topics.ADMIN:
            return self._operator(message.payload)
        self.stats.received += 1
        broker = topics.broker_from_orders_topic(topic)
        if broker is None:
            self.stats.unattributable += 1
            log.warning("dropped a message on %r: no broker in the topic", message.topic.value)
            return None
        payload = message.payload if isinstance(message.payload, bytes) else bytes(
            str(message.payload), "utf-8")
        if broker in self._held:
            self._release(broker)             # it is sending, so it is connected again
        msg = decode_order_message(payload)
        if isinstance(msg, DecodeError):
            self.stats.decode_rejects += 1
            return self.engine.refuse(broker, msg.reason, msg.text, msg.cl_ord_id, msg.symbol)
        return self.engine.submit(broker, msg)

    def _presence(self, broker: str, payload) -> Outcome | None:
        """Cancel-on-disconnect: a broker's presence went offline (its last will fired)."""
        state = bytes(payload or b"").strip()
        if state == b"online":
            self._release(broker)             # it is subscribed again: send what was held
        gone = state == b"offline"
        wanted = self.cancel_on_disconnect == "*" or broker in self.cancel_on_disconnect
        if not (gone and wanted and topics.valid_name(broker)):
            return None
        if not self.engine.has_live_orders(broker):
            return None
        log.warning("broker %s disconnected: cancelling its live orders", broker)
        return self.engine.admin("cancel_broker", broker=broker, reason="disconnected")

    def _operator(self, payload) -> Outcome | None:
        """One operator command: checked, then journaled and applied like an order."""
        payload = payload if isinstance(payload, (bytes, bytearray)) else bytes(
            str(payload), "utf-8")
        cmd = decode_admin_command(bytes(payload))
        if isinstance(cmd, AdminReply):
            log.warning("operator command refused: %s", cmd.text)
            self._admin_replies.append(cmd)
            return None
        if cmd.symbol and cmd.symbol not in self.engine.instruments:
            self._admin_replies.append(AdminReply(
                cmd.request_id, False, f"refused: unknown instrument {cmd.symbol!r}",
                cmd.action, cmd.symbol))
            return None
        return self._session_input(cmd.action, cmd.symbol, cmd.reason, cmd.request_id)

    def _session_input(self, action: str, symbol: str, reason: str,
                       request_id: str) -> Outcome:
        """Journal and apply one session action (an operator's, or the schedule's); its
        reply goes to the admin replies topic after the commit."""
        reply = AdminReply(request_id, False, "", action, symbol)
        out = self.engine.admin(action, symbol, reason)
        if not out.sequenced:                         # an illegal transition, or no journal
            reply.text = f"refused: {out.refused}"
        else:
            reply.accepted, reply.seq = True, self.engine.seq
            reply.text = (f"{action} {symbol or 'every instrument'}"
                          f"{f' ({reason})' if reason else ''}")
            log.warning("%s: %s at sequence %d", request_id if request_id == "schedule"
                        else "operator", reply.text, reply.seq)
        self._admin_replies.append(reply)
        return out

    def _session_due(self, now_ns: int) -> list[tuple[int, str]]:
        """Schedule boundaries to apply now. The first cycle catches up from the last
        journaled input (a close missed while down still expires DAY orders); a new venue
        takes the state its timetable says for now."""
        mark, self._schedule_mark = self._schedule_mark, now_ns
        if mark is not None:
            return self.schedule.boundaries(mark, now_ns)
        if self.engine.seq == 0:
            current = self.schedule.current(now_ns)
            return [current] if current is not None else []
        return self.schedule.catch_up(self.engine.now, now_ns)

    def _trading_status(self, symbol: str) -> TradingStatus:
        status = self.engine.trading_status(symbol)
        return TradingStatus(symbol, status.state, status.reason, status.seq)

    def _stage_admin(self, durable: bool) -> None:
        """Operator replies of the cycle, and the new trading states they made."""
        replies, self._admin_replies = self._admin_replies, []
        changed: dict[str, None] = {}
        for reply in replies:
            if reply.accepted and not durable:
                reply = msgspec.structs.replace(
                    reply, accepted=False, seq=0,
                    text=f"not confirmed: the journal failed ({self.engine.journal.failed})")
            if reply.accepted:
                self.stats.admin_commands += 1
                changed.update(dict.fromkeys([reply.symbol] if reply.symbol
                                             else self.engine.instruments))
            else:
                self.stats.admin_refused += 1
            self._outbox.append(_Send(topics.ADMIN_REPLIES, encode(reply), False, "admin"))
        for symbol in changed:
            self._outbox.append(_Send(topics.md(symbol, "state"),
                                      encode(self._trading_status(symbol)), True, "md"))

    def _stage(self, outcomes: list[Outcome]) -> None:
        """Reports and trades in engine order; depth coalesced per symbol for the cycle."""
        sends = self._outbox
        levels: dict[str, list[LevelChange]] = {}
        for out in outcomes:
            for broker, report in out.reports:
                sends.append(_Send(topics.exec_reports(broker), encode(report), False,
                                   "exec", broker))
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
                sends.append(_Send(topics.md(trade.symbol, "trades"), encode(trade), False,
                                   "trade"))
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
                sends.append(_Send(topics.md(symbol, "depth"), encode(update), False, "md"))
                sends.append(_Send(topics.md(symbol, "snapshot"), encode(book.snapshot()),
                                   True, "md"))
                sends.append(_Send(topics.md(symbol, "bbo"), encode(book.bbo()), True, "md"))

    # ------------------------------------------------------------------ outbox
    def _start_holds(self) -> None:
        """Hold reports for brokers that may not be subscribed yet (see the class doc)."""
        if self.hold_reports <= 0:
            return
        brokers = {s.broker for s in self._outbox if s.broker}
        brokers.update(self.engine.brokers_with_live_orders())
        brokers.update(self._held)
        for b in brokers:
            self._held.setdefault(b, deque())
        self._hold_deadline = time.monotonic() + self.hold_reports

    def _release(self, broker: str) -> None:
        held = self._held.pop(broker, None)
        if held:
            # Everything for this broker since the hold is in here, so order is kept.
            self._outbox.extend(held)

    def _release_all(self) -> None:
        for broker in list(self._held):
            self._release(broker)

    async def _flush(self, client: aiomqtt.Client, reader: asyncio.Task | None) -> None:
        """Publish the outbox; an item leaves it only once the broker acknowledged it."""
        if self._held and time.monotonic() >= self._hold_deadline:
            self._release_all()
        while self._outbox:
            chunk: list[_Send] = []
            while self._outbox and len(chunk) < 5000:
                item = self._outbox.popleft()
                if item.broker is not None and item.broker in self._held:
                    self._held[item.broker].append(item)
                else:
                    chunk.append(item)
            if not chunk:
                return
            try:
                await self._send(client, chunk, reader)
            except BaseException:
                self._outbox.extendleft(reversed(chunk))     # resent after reconnecting
                raise
            self.stats.published += len(chunk)
            if self.resend_window > 0:
                now = time.monotonic()
                recent, n = self._recent, self._recent_next
                for s in chunk:
                    if s.kind == "exec":
                        recent[n] = untracked((now, s))
                        n += 1
                self._recent_next = n
                first = self._recent_first
                while recent and (now - recent[first][0] > self.resend_window
                                  or len(recent) > self.resend_max):
                    del recent[first]
                    first += 1
                self._recent_first = first

    async def _send(self, client: aiomqtt.Client, chunk: list["_Send"],
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
        raise _lost(reader)

    def _queue_status(self, status: str, text: str = "") -> None:
        self._outbox.append(_Send(topics.STATUS, encode(EngineStatus(status, text,
                                                                     time.time_ns())),
                                  True, "status"))

    async def _publish_status(self, client: aiomqtt.Client, status: str, text: str = "") -> None:
        await client.publish(topics.STATUS, encode(EngineStatus(status, text, time.time_ns())),
                             qos=1, retain=True)


class _Send(msgspec.Struct, frozen=True, gc=False):
    """One publish waiting in the outbox (or kept for resends). ``gc=False``: thousands
    of them sit in the resend window, and the collector need not walk them."""
    topic: str
    payload: bytes
    retain: bool
    kind: str                       # exec, trade, md, status
    broker: str | None = None       # whose exec topic


def _lost(reader: asyncio.Task) -> aiomqtt.MqttError:
    """The MqttError that ended a connection's reader task."""
    if reader.cancelled():
        return aiomqtt.MqttError("reader cancelled")
    exc = reader.exception()
    if isinstance(exc, aiomqtt.MqttError):
        return exc
    return aiomqtt.MqttError(f"connection lost: {exc!r}")

"""A warm standby: the latest snapshot, then the venue's stream applied as it grows, and
the takeover once the primary has gone quiet.

``Follower`` loads the newest snapshot from the venue's object store (``matching.
snapshot_store``), tails the stream from the sequence after it (an ordered JetStream
consumer) and applies every journal group through the engine's replay
(``matching.recovery.replay``: the code path of live inputs, so the state hash is the
primary's), keeping the outcomes of the last ``RESEND_TAIL`` inputs to resend. Epoch
records say who claimed the stream; heartbeats and groups say the primary is alive.

``claim`` appends an epoch record expecting the stream sequence the follower has applied:
accepted, this engine is the primary from the next sequence on (nobody can have appended
in between: the stream would have refused); refused (10071), another writer appended
since, so the old primary is alive (or the follower was behind): keep following. The old
primary learns it was replaced by its next append (a group or a heartbeat): refused.
"""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable

import msgspec

from feeds.guard import VenueGuard
from matching.engine import Engine
from matching.jetstream import EPOCH, JOURNAL, Fenced, NatsLink, StreamNames
from matching.journal_jetstream import EpochRecord, claim_id, decode_group
from matching.recovery import RESEND_TAIL
from matching.snapshot_store import SnapshotStore

__all__ = ["Follower", "ReplicatedEngine", "FencingGuard", "StreamTail"]

log = logging.getLogger("tokenbook.standby")
_epoch_decoder = msgspec.json.Decoder(EpochRecord)
_encoder = msgspec.json.Encoder()
#: One message read from the stream: (stream seq, kind, data, messages still pending).
Item = tuple[int, str, bytes, int]


class ReplicatedEngine(Engine):
    """The engine whose snapshots go to the venue's object store (``store``), stamped
    with the stream sequence the journal continues after. ``write_snapshot``'s directory
    argument (the gateway's ``snapshot_dir``) is not used: nothing is kept locally."""

    store: SnapshotStore | None = None

    def write_snapshot(self, directory=None) -> None:
        self.commit()
        journal, store = self.journal, self.store
        if store is None or journal is None or journal.failed is not None:
            return              # a fenced or failed engine's state is not the journal's
        payload = self.snapshot()
        store.link.call(store.put(self.seq, journal.stream_seq, self.epoch, payload), 30)


class FencingGuard(VenueGuard):
    """The MQTT guard of an engine that became primary by claiming the stream: the
    instances it fenced off (earlier epochs' primaries) are dead to it, whatever their
    retained status says, so it neither waits for them nor steps down for them."""

    def __init__(self, *args, fenced: set[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fenced = set(fenced)
        self.dead |= self.fenced

    @classmethod
    def fencing(cls, host: str, port: int, config, fenced: set[str]) -> FencingGuard:
        options = config.probe_options if config.probe_options is not None \
            else config.mqtt_options
        return cls(host, port, instance=config.instance, started=config.started,
                   options=options, keepalive=config.keepalive, heartbeat=config.heartbeat,
                   fenced=fenced, status_topic=config.status_topic)

    def on_status(self, st, *, resent: bool = False) -> bool:
        if st is not None and st.instance in self.fenced and not resent:
            log.info("a fenced engine (%s) published a status: republishing ours", st.instance)
            return True
        return super().on_status(st, resent=resent)


class StreamTail:
    """An ordered consumer of the venue's stream from a sequence on; runs on the link's
    loop (call ``start``/``take``/``stop`` through ``link.acall``)."""

    def __init__(self, link: NatsLink, names: StreamNames):
        self.link, self.names = link, names
        self.sub = None
        self.queue: asyncio.Queue[Item] | None = None

    async def start(self, from_seq: int) -> None:
        from nats.js.api import ConsumerConfig, DeliverPolicy
        queue: asyncio.Queue[Item] = asyncio.Queue()
        self.queue = queue

        async def on_msg(msg) -> None:
            md = msg.metadata
            queue.put_nowait((md.sequence.stream, msg.subject.rsplit(".", 1)[-1], msg.data,
                              md.num_pending))
        self.sub = await self.link.js.subscribe(
            self.names.subject(">"), stream=self.names.stream, cb=on_msg,
            ordered_consumer=True, idle_heartbeat=0.5,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            config=ConsumerConfig(opt_start_seq=max(1, from_seq)))

    async def take(self, most: int, timeout: float) -> list[Item]:
        """Up to ``most`` messages: those waiting, else the first within ``timeout``."""
        assert self.queue is not None
        q = self.queue
        if q.empty():
            try:
                first = await asyncio.wait_for(q.get(), timeout)
            except TimeoutError:
                return []
            items = [first]
        else:
            items = []
        while len(items) < most and not q.empty():
            items.append(q.get_nowait())
        return items

    async def stop(self) -> None:
        if self.sub is not None:
            try:
                await self.sub.unsubscribe()
            except Exception as exc:  # noqa: BLE001 - the connection may be gone already
                log.debug("unsubscribe: %s", exc)
            self.sub = None


class Follower:
    """A venue's state rebuilt from its snapshot store and stream; see the module doc."""

    def __init__(self, link: NatsLink, names: StreamNames, store: SnapshotStore, registry, *,
                 clock: Callable[[], int] = time.time_ns, book_engine: str = "core"):
        self.link, self.names, self.store = link, names, store
        self.registry, self.clock, self.book_engine = registry, clock, book_engine
        self.engine: ReplicatedEngine | None = None
        self.stream_seq = 0             # the last stream message applied
        self.epoch = 0                  # the last epoch claimed on the stream
        self.primary = ""               # the instance that claimed it
        self.instances: set[str] = set()    # every instance that ever claimed it
        self.pending = 0                # messages the stream had after the last one read
        self.last_heard = time.monotonic()
        self.resend: deque = deque(maxlen=RESEND_TAIL)
        self.tail = StreamTail(link, names)
        self.applied_groups = 0

    async def load(self) -> bool:
        """Rebuild from the newest snapshot and start tailing after it; False if none."""
        snap = await self.link.acall(self.store.latest())
        if snap is None:
            return False
        engine = ReplicatedEngine.from_snapshot(self.registry, snap.payload, clock=self.clock,
                                                book_engine=self.book_engine)
        assert isinstance(engine, ReplicatedEngine)
        engine.store = self.store
        engine.epoch = snap.epoch
        self.engine = engine
        self.stream_seq, self.epoch = snap.stream_seq, snap.epoch
        last = await self.link.acall(self.link.last_seq(self.names))
        self.pending = max(0, last - self.stream_seq)
        claim = await self.link.acall(self._last_claim())
        if claim is not None and claim.epoch >= self.epoch:
            # The snapshot may postdate the claim: who holds the stream comes from it.
            self.epoch, self.primary = claim.epoch, claim.instance
            self.instances.add(claim.instance)
            engine.epoch = claim.epoch
        await self.link.acall(self.tail.start(self.stream_seq + 1))
        self.last_heard = time.monotonic()
        log.info("loaded the snapshot at engine seq %d (stream seq %d, epoch %d); %d "
                 "messages to apply", snap.engine_seq, snap.stream_seq, snap.epoch,
                 self.pending)
        return True

    async def _last_claim(self) -> EpochRecord | None:
        """The newest epoch record on the stream (None: none yet)."""
        from nats.js.errors import NotFoundError
        try:
            msg = await self.link.retrying(
                lambda: self.link.js.get_msg(self.names.stream,
                                             subject=self.names.subject(EPOCH)),
                "read the last epoch record")
        except NotFoundError:
            return None
        return _epoch_decoder.decode(msg.data)

    def adopt(self, engine: ReplicatedEngine, stream_seq: int, epoch: int) -> None:
        """Follow from a state this process made itself (a venue it just founded)."""
        self.engine, self.stream_seq, self.epoch = engine, stream_seq, epoch

    @property
    def caught_up(self) -> bool:
        return self.pending == 0

    async def poll(self, timeout: float = 0.05) -> int:
        """Apply what arrived (waiting up to ``timeout`` for something); how many."""
        items = await self.link.acall(self.tail.take(256, timeout))
        for item in items:
            self.apply(item)
        return len(items)

    def apply(self, item: Item) -> None:
        seq, kind, data, pending = item
        if seq <= self.stream_seq:
            return                          # the ordered consumer may resend after a reset
        engine = self.engine
        assert engine is not None
        if kind == JOURNAL:
            records = [(s, p) for s, p in decode_group(data) if s > engine.seq]
            engine.replay(records, self.resend.append)
            self.applied_groups += 1
        elif kind == EPOCH:
            rec = _epoch_decoder.decode(data)
            self.epoch, self.primary = rec.epoch, rec.instance
            self.instances.add(rec.instance)
            engine.epoch = rec.epoch
        self.stream_seq, self.pending = seq, pending
        self.last_heard = time.monotonic()

    async def catch_up(self) -> None:
        """Apply until nothing the stream held when asked is left."""
        while not self.caught_up:
            await self.poll(0.2)

    async def wait_quiet(self, silence: float) -> None:
        """Apply until caught up and nothing arrived for ``silence`` s (the primary is
        silent: dead, paused, or cut off from the stream)."""
        while not (self.caught_up and time.monotonic() - self.last_heard >= silence):
            await self.poll(0.05)

    async def heard_within(self, seconds: float) -> bool:
        """Apply for ``seconds``: whether anything was appended meanwhile (a live primary)."""
        before, deadline = self.stream_seq, time.monotonic() + seconds
        while time.monotonic() < deadline:
            await self.poll(0.05)
        return self.stream_seq != before

    async def claim(self, instance: str) -> int | None:
        """Append this engine's epoch record after what was applied: its stream seq if
        the stream took it (this engine is the primary), None if another writer was first."""
        engine = self.engine
        assert engine is not None
        epoch = self.epoch + 1
        rec = EpochRecord(epoch, instance, socket.gethostname(), os.getpid(), engine.seq,
                          self.stream_seq)
        try:
            seq, _dup = await self.link.acall(self.link.append(
                self.names.subject(EPOCH), _encoder.encode(rec), expected=self.stream_seq,
                msg_id=claim_id(epoch, instance)))
        except Fenced:
            log.info("claim of epoch %d refused: the stream moved past %d", epoch,
                     self.stream_seq)
            return None
        await self.link.acall(self.tail.stop())
        self.epoch, self.primary, self.stream_seq = epoch, instance, seq
        engine.epoch = epoch
        return seq

    async def stop(self) -> None:
        await self.link.acall(self.tail.stop())


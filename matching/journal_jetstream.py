"""The engine's journal on a replicated JetStream stream, behind the file journal's interface.

``append`` buffers a record framed as in ``matching.journal`` (``u32 length | u32 crc32 |
u64 seq | payload``); ``commit`` publishes the whole pending group as ONE message on the
venue's journal subject (cut at record boundaries only where it would pass the servers'
``max_payload``, 1 MB by default), fenced (``Nats-Expected-Last-Sequence``: the stream sequence of
this writer's last append) and deduplicated (``Nats-Msg-Id``: ``<epoch>:<first seq>``),
and returns once a quorum of the stream's replicas has it: ``durable_seq`` then passes the
group and its reports may leave. While nothing else is appended, a heartbeat (fenced too)
goes on the stream every ``heartbeat`` seconds, so a standby hears the primary, and a
primary that was paused (SIGSTOP) and resumed finds out it was replaced by its next append,
heartbeat or group, at once.

A refused append (``Fenced``) or a stream without quorum for ``retry_for`` seconds marks
the journal failed for good, as a failed fsync does the file journal: the engine refuses
every input after it. ``on_fenced`` is told first (``tokenbook serve`` exits there, before
anything else is published).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator

import msgspec

from matching._frame import append_record
from matching.jetstream import (
    EPOCH,
    HEARTBEAT,
    JOURNAL,
    Fenced,
    NatsLink,
    StreamNames,
    StreamUnavailable,
)
from matching.journal import HEADER, MAX_RECORD, MAX_SEQ, JournalError, _crc

__all__ = ["JetStreamJournal", "JournalFenced", "EpochRecord", "Heartbeat", "decode_group",
           "encode_group"]

log = logging.getLogger("tokenbook.journal")


class JournalFenced(JournalError):
    """Another writer appended to the stream: this engine is no longer the primary."""


class EpochRecord(msgspec.Struct, frozen=True):
    """A writer's claim of the stream (on the epoch subject): who, from which engine seq."""
    epoch: int
    instance: str
    host: str
    pid: int
    engine_seq: int               # the last input the claimer had applied
    after: int                    # the stream sequence it claimed after


class Heartbeat(msgspec.Struct, frozen=True):
    """The primary is alive (on the heartbeat subject), as of ``engine_seq``."""
    epoch: int
    instance: str
    engine_seq: int


def encode_group(records: list[tuple[int, bytes]]) -> bytes:
    """Framed records, as one journal group message (the file journal's framing)."""
    buf = bytearray()
    for seq, payload in records:
        append_record(buf, seq, payload)
    return bytes(buf)


def decode_group(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(seq, payload) of every record of a group message; ValueError if one is damaged
    (a message is stored whole or not at all, so damage is corruption, not a torn tail)."""
    view, pos, n = memoryview(data), 0, len(data)
    while pos < n:
        if n - pos < HEADER.size:
            raise ValueError(f"journal group: short header at offset {pos}")
        length, crc, seq = HEADER.unpack_from(view, pos)
        start, pos = pos + HEADER.size, pos + HEADER.size + length
        payload = bytes(view[start:pos])
        if length > MAX_RECORD or len(payload) < length or _crc(seq, payload) != crc:
            raise ValueError(f"journal group: record {seq} damaged at offset {start}")
        yield seq, payload


class JetStreamJournal:
    """The journal interface the engine uses (``append``, ``commit``, ``durable_seq``,
    ``failed``, ``close``) on a fenced JetStream stream; see the module docstring.

    ``last_seq``: the engine seq of the last record already on the stream; ``stream_seq``:
    the stream's last sequence as this writer claimed it (its epoch record's).
    """

    policy = "jetstream"

    def __init__(self, link: NatsLink, names: StreamNames, *, last_seq: int, stream_seq: int,
                 epoch: int, instance: str, heartbeat: float = 0.25,
                 group_records: int = 1000, group_interval_ms: float = 1.0,
                 on_fenced: Callable[[JournalFenced], None] | None = None):
        if not heartbeat > 0:
            raise ValueError(f"heartbeat must be > 0 s, got {heartbeat!r}")
        self.link, self.names = link, names
        self.path = f"{names.stream} on {','.join(link.servers)}"
        self.epoch, self.instance = epoch, instance
        self.group_records = group_records
        self.group_interval_ns = int(group_interval_ms * 1e6)
        self.heartbeat = heartbeat
        self.on_fenced = on_fenced
        self.failed: Exception | None = None
        self._last = self._durable = last_seq
        self._stream_seq = stream_seq
        self._buf = bytearray()
        self._count = 0
        self._starts: list[tuple[int, int]] = []    # (offset, seq) of each pending record
        self._first = 0               # seq of the pending group's first record
        self._oldest_ns = 0
        self._last_append = time.monotonic()
        self._lock: asyncio.Lock | None = None
        self._beats = 0
        self._beating = link.submit(self._heartbeats())

    # ------------------------------------------------------------------ the interface
    @property
    def durable_seq(self) -> int:
        """Last engine seq a quorum of the stream acknowledged: the ack watermark."""
        return self._durable

    @property
    def last_seq(self) -> int:
        return self._last

    @property
    def pending(self) -> int:
        return self._count

    @property
    def stream_seq(self) -> int:
        """The stream sequence of this writer's last acknowledged append."""
        return self._stream_seq

    def append(self, seq: int, payload: bytes) -> None:
        """Buffer one record (framed); sequence numbers must increase."""
        if self.failed is not None:
            raise JournalError(f"journal {self.path} failed earlier: {self.failed}")
        if not self._last < seq <= MAX_SEQ:
            raise ValueError(f"journal sequence must increase: {seq} after {self._last}")
        if len(payload) > MAX_RECORD:
            raise ValueError(f"record of {len(payload)} bytes exceeds {MAX_RECORD}")
        if not self._count:
            self._first = seq
            self._oldest_ns = time.monotonic_ns()
        self._starts.append((len(self._buf), seq))
        append_record(self._buf, seq, payload if type(payload) is bytes else bytes(payload))
        self._count += 1
        self._last = seq

    def _messages(self, limit: int) -> list[tuple[int, bytes]]:
        """The pending group as (first seq, framed records): one message, or several cut
        at record boundaries where it exceeds the servers' max_payload ``limit``."""
        buf = self._buf
        if len(buf) <= limit:
            return [(self._first, bytes(buf))]
        starts = self._starts
        ends = [offset for offset, _ in starts[1:]] + [len(buf)]
        out: list[tuple[int, bytes]] = []
        start, first = 0, self._first
        for (offset, seq), end in zip(starts, ends, strict=True):
            if end - start > limit and offset > start:
                out.append((first, bytes(buf[start:offset])))
                start, first = offset, seq
            if end - start > limit:
                raise JournalError(f"record {seq} ({end - offset} bytes framed) exceeds the "
                                   f"NATS servers' max_payload ({limit} bytes usable)")
        out.append((first, bytes(buf[start:])))
        return out

    def commit(self) -> int:
        """Publish the pending group as one fenced message; returns the durable seq once
        a quorum has it. JournalFenced / JournalError: nothing more may be acknowledged."""
        if not self._count:
            return self._durable
        if self.failed is not None:
            raise JournalError(f"journal {self.path} failed earlier: {self.failed}")
        limit = max(4096, int(getattr(self.link.nc, "max_payload", 1 << 20)) - 1024)
        last = self._last
        for first, data in self._messages(limit):
            self.link.call(self._append(JOURNAL, data, f"{self.epoch}:{first}"))
        del self._buf[:]
        self._starts.clear()
        self._count = 0
        self._durable = last
        return last

    def maybe_commit(self, now_ns: int | None = None) -> int:
        """Commit if the group is full or its oldest record waited the group interval."""
        if self._count:
            now = time.monotonic_ns() if now_ns is None else now_ns
            if (self._count >= self.group_records
                    or now - self._oldest_ns >= self.group_interval_ns):
                return self.commit()
        return self._durable

    def close(self) -> None:
        """Commit what is pending (unless failed), stop the heartbeat; closing twice is
        harmless. The link (shared with the snapshot store) is the caller's to shut."""
        try:
            if self.failed is None and self._count:
                self.commit()
        finally:
            self._beating.cancel()

    def __enter__(self) -> JetStreamJournal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ on the link's loop
    async def _append(self, kind: str, data: bytes, msg_id: str) -> int:
        """One fenced append, serialized with the heartbeats (each expects the last ack)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.failed is not None:
                raise JournalError(f"journal {self.path} failed earlier: {self.failed}")
            try:
                seq, _dup = await self.link.append(self.names.subject(kind), data,
                                                   expected=self._stream_seq, msg_id=msg_id)
            except Fenced as exc:
                fenced = JournalFenced(str(exc))
                self.failed = fenced
                log.error("journal %s: %s", self.path, exc)
                if self.on_fenced is not None:
                    self.on_fenced(fenced)
                raise fenced from None
            except StreamUnavailable as exc:
                self.failed = exc
                raise JournalError(f"journal {self.path}: {exc}") from None
            except Exception as exc:
                # Any other answer (a refused payload, a closed connection): fail for good,
                # as a failed fsync does; nothing after it is acknowledged.
                self.failed = exc
                raise JournalError(f"journal {self.path}: {type(exc).__name__}: "
                                   f"{exc}") from exc
            self._stream_seq = seq
            self._last_append = time.monotonic()
            return seq

    async def _heartbeats(self) -> None:
        """A fenced heartbeat whenever nothing was appended for ``heartbeat`` seconds."""
        encoder = msgspec.json.Encoder()
        while self.failed is None:
            idle = time.monotonic() - self._last_append
            if idle < self.heartbeat:
                await asyncio.sleep(self.heartbeat - idle)
                continue
            self._beats += 1
            beat = Heartbeat(self.epoch, self.instance, self._durable)
            try:
                await self._append(HEARTBEAT, encoder.encode(beat),
                                   f"{self.epoch}:hb{self._beats}")
            except JournalError:
                return


def claim_id(epoch: int, instance: str) -> str:
    """The Nats-Msg-Id of an epoch record."""
    return f"{epoch}:{EPOCH}:{instance}"

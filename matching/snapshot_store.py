"""Engine snapshots in a JetStream object store, so a new host needs nothing local.

Each snapshot is one object ``snap-<engine seq, 20 digits>`` in the venue's bucket (as many
replicas as the stream): ``u64 engine seq | u64 stream seq | u64 epoch | u32 crc32 |
payload`` (the payload: ``matching.recovery.snapshot_of``). The stream seq says where the
journal continues: every record up to the engine seq is in stream messages up to it, every
later one after it. ``latest`` returns the newest intact one; ``put`` keeps the last
``keep``.
"""
from __future__ import annotations

import logging
import struct
import zlib
from typing import Any, NamedTuple

from matching.jetstream import NatsLink, StreamNames

__all__ = ["SnapshotStore", "StoredSnapshot"]

log = logging.getLogger("tokenbook.snapshots")
HEAD = struct.Struct("<QQQI")
PREFIX = "snap-"


class StoredSnapshot(NamedTuple):
    engine_seq: int
    stream_seq: int
    epoch: int
    payload: bytes


class SnapshotStore:
    """The venue's snapshot bucket; every method runs on the link's loop (``link.call`` /
    ``link.acall`` them)."""

    def __init__(self, link: NatsLink, names: StreamNames, replicas: int = 3, keep: int = 3):
        self.link, self.names, self.replicas, self.keep = link, names, replicas, keep
        self._obs: Any = None

    async def _store(self) -> Any:
        if self._obs is None:
            from nats.js.api import StorageType
            from nats.js.errors import NotFoundError
            js = self.link.js
            try:
                self._obs = await js.object_store(self.names.bucket)
            except NotFoundError:
                self._obs = await js.create_object_store(
                    self.names.bucket, replicas=self.replicas, storage=StorageType.FILE)
        return self._obs

    async def put(self, engine_seq: int, stream_seq: int, epoch: int, payload: bytes) -> None:
        """Store one snapshot, then drop all but the newest ``keep``."""
        obs = await self._store()
        head = HEAD.pack(engine_seq, stream_seq, epoch, zlib.crc32(payload))
        await obs.put(f"{PREFIX}{engine_seq:020d}", head + payload)
        names = sorted(await self._names(), reverse=True)
        for old in names[self.keep:]:
            try:
                await obs.delete(old)
            except Exception as exc:  # noqa: BLE001 - an old snapshot left over is harmless
                log.debug("could not delete snapshot %s: %s", old, exc)

    async def _names(self) -> list[str]:
        from nats.js.errors import NotFoundError
        obs = await self._store()
        try:
            infos = await obs.list(ignore_deletes=True)
        except NotFoundError:
            return []
        return [i.name for i in infos if i.name.startswith(PREFIX) and not i.deleted]

    async def latest(self) -> StoredSnapshot | None:
        """The newest intact snapshot, or None if the bucket has none."""
        from nats.js.errors import NotFoundError
        obs = await self._store()
        for name in sorted(await self._names(), reverse=True):
            try:
                data = (await obs.get(name)).data or b""
            except NotFoundError:
                continue
            if len(data) >= HEAD.size:
                engine_seq, stream_seq, epoch, crc = HEAD.unpack_from(data)
                payload = data[HEAD.size:]
                if zlib.crc32(payload) == crc and name == f"{PREFIX}{engine_seq:020d}":
                    return StoredSnapshot(engine_seq, stream_seq, epoch, payload)
            log.warning("snapshot %s in %s is damaged; skipped", name, self.names.bucket)
        return None

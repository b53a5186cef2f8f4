"""Test helpers for the replicated journal: a private 3-node JetStream cluster on free
loopback ports (``nats_cluster``: one per test module, stopped and removed after it), a
connected ``NatsLink`` on it, and a reader of a whole venue stream.

    from testkit.nats import nats_cluster, nats_link   # noqa: F401  (fixtures)
"""
from __future__ import annotations

import itertools
import uuid

import msgspec

from feeds.cluster import NatsCluster
from matching.jetstream import EPOCH, HEARTBEAT, JOURNAL, NatsLink, StreamNames
from matching.journal_jetstream import EpochRecord, decode_group

__all__ = ["nats_cluster", "nats_link", "unique_names", "read_stream", "StreamContents"]

_count = itertools.count(1)

try:
    import pytest
except ImportError:                                   # pragma: no cover - runtime install
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="module")
    def nats_cluster(tmp_path_factory):
        """Three nats-server processes (sync_interval always), JetStream ready; stopped
        after the module (bounded: start waits 30 s at most)."""
        with NatsCluster.start(tmp_path_factory.mktemp("nats")) as cluster:
            yield cluster

    @pytest.fixture
    def nats_link(nats_cluster):
        """A connected link (its own loop thread) to the module's cluster."""
        link = NatsLink.parse(nats_cluster.urls, retry_for=20.0)
        link.call(link.connect(), 15)
        yield link
        link.shutdown()


def unique_names(label: str = "t") -> StreamNames:
    """A stream of its own for one test."""
    return StreamNames(f"{label}{next(_count)}{uuid.uuid4().hex[:6]}")


class StreamContents(msgspec.Struct):
    """Everything on a venue's stream, in order."""
    records: list[tuple[int, bytes]]          # (engine seq, payload) of every journal record
    groups: int
    epochs: list[EpochRecord]
    heartbeats: int


async def _read(link: NatsLink, names: StreamNames) -> StreamContents:
    last = await link.last_seq(names)
    records: list[tuple[int, bytes]] = []
    epochs: list[EpochRecord] = []
    groups = beats = 0
    for seq in range(1, last + 1):
        msg = await link.retrying(lambda s=seq: link.js.get_msg(names.stream, s),
                                   f"read message {seq}")
        kind = msg.subject.rsplit(".", 1)[-1]
        if kind == JOURNAL:
            records.extend(decode_group(msg.data))
            groups += 1
        elif kind == EPOCH:
            epochs.append(msgspec.json.decode(msg.data, type=EpochRecord))
        elif kind == HEARTBEAT:
            beats += 1
    return StreamContents(records, groups, epochs, beats)


def read_stream(link: NatsLink, names: StreamNames, timeout: float = 60) -> StreamContents:
    """Read the whole stream (message by message) through ``link``."""
    return link.call(_read(link, names), timeout)

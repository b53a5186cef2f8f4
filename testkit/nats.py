"""Test helpers for the replicated journal: a private 3-node JetStream cluster on free
loopback ports (``nats_cluster``: one per test module, stopped and removed after it), a
connected ``NatsLink`` on it, and a reader of a whole venue stream.

    from testkit.nats import nats_cluster, nats_link   # noqa: F401  (fixtures)
"""
from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import msgspec

from feeds.cluster import NatsCluster
from matching.jetstream import EPOCH, HEARTBEAT, JOURNAL, NatsLink, StreamNames
from matching.journal_jetstream import EpochRecord, decode_group

__all__ = ["nats_cluster", "nats_link", "unique_names", "read_stream", "StreamContents",
           "ServeProcess"]
ROOT = Path(__file__).resolve().parents[1]

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


class ServeProcess:
    """One ``tokenbook serve --journal`` process, its output in files."""

    def __init__(self, tmp: Path, label: str, journal: str, broker_url: str, stream: str,
                 standby: bool, extra: tuple[str, ...] = ()):
        self.label = label
        self.out, self.err = tmp / f"{label}.out", tmp / f"{label}.err"
        argv = [sys.executable, "-m", "feeds.cli", "serve", "--journal", journal,
                "--broker", broker_url, "--stream", stream, "--takeover-after", "1",
                "--log-level", "warning", *extra] + (["--standby"] if standby else [])
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL)

    def text(self) -> str:
        return self.out.read_text() if self.out.exists() else ""

    def wait_for(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.label}: no {needle!r} (rc {self.proc.poll()}); "
                                     f"out: {self.text()[-800:]} err: "
                                     f"{self.err.read_text()[-1500:]}")
            time.sleep(0.05)

    @property
    def primary(self) -> bool:
        return "  primary      epoch" in self.text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

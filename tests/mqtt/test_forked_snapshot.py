"""Periodic snapshots written by a forked child (``feeds.snapshots``): consistent with the
one engine seq at the fork while the parent goes on, and never ahead of the journal."""
from __future__ import annotations

import time

from feeds.snapshots import ForkedSnapshots
from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import Journal, latest_snapshot, read_journal
from matching.messages import NewOrderSingle
from testkit.mqtt import two_broker_engine


def _buy(engine, i: int) -> None:
    engine.submit("alpha", NewOrderSingle(f"o{i}", 1, "TB3M", "buy", "1",
                                          price=f"98.{i % 900 + 100:03d}"))


def test_a_forked_snapshot_is_the_engine_at_the_fork_seq_while_the_parent_goes_on(tmp_path):
    journal = Journal(tmp_path / "journal.log")
    journal.defer_sync = True                         # as under the link gateway
    engine = two_broker_engine(journal=journal)
    for i in range(300):
        _buy(engine, i)
    seq, digest = engine.seq, engine.state_hash()
    snapshots = ForkedSnapshots(engine)
    snapshots(tmp_path / "snapshots")
    for i in range(300, 400):                         # the parent changes the books meanwhile
        _buy(engine, i)
    snapshots.wait()
    assert snapshots.written == 1 and snapshots.child is None
    found = latest_snapshot(tmp_path / "snapshots")
    assert found is not None and found[0] == seq
    restored = Engine.from_snapshot(Registry.load_default(), found[1], clock=time.time_ns)
    assert restored.seq == seq and restored.state_hash() == digest != engine.state_hash()
    # The journal was durable up to the snapshot's seq before the snapshot existed.
    assert [s for s, _ in read_journal(tmp_path / "journal.log")][-1] >= seq
    journal.close()


def test_a_snapshot_due_while_the_last_is_being_written_is_skipped(tmp_path, monkeypatch):
    from matching import recovery
    real = recovery.write_snapshot

    def slow_write(directory, seq, payload):          # runs in the child (a forked copy)
        time.sleep(0.5)
        return real(directory, seq, payload)

    monkeypatch.setattr(recovery, "write_snapshot", slow_write)
    engine = two_broker_engine()
    for i in range(50):
        _buy(engine, i)
    snapshots = ForkedSnapshots(engine)
    snapshots(tmp_path / "s")
    first = engine.seq
    _buy(engine, 50)
    snapshots(tmp_path / "s")                         # the first child is still writing
    assert snapshots.skipped == 1 and snapshots.poll()
    snapshots.wait()
    assert snapshots.written == 1 and snapshots.failed == 0
    assert latest_snapshot(tmp_path / "s")[0] == first

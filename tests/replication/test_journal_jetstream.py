"""The journal on a replicated JetStream stream: one message per group, fenced appends,
deduplicated retries, heartbeats, snapshots in the bucket, and a follower that rebuilds
the primary's exact state."""
import threading
import time

import msgspec
import pytest

from feeds.standby import Follower, ReplicatedEngine
from matching.jetstream import EPOCH, Fenced
from matching.journal import JournalError
from matching.journal_jetstream import (
    EpochRecord,
    JetStreamJournal,
    JournalFenced,
    decode_group,
    encode_group,
)
from matching.messages import NewOrderSingle
from matching.snapshot_store import SnapshotStore
from testkit.mqtt import two_broker_engine
from testkit.nats import read_stream, unique_names

pytestmark = pytest.mark.replication


def _claim(link, names, expected=0, epoch=1, instance="a"):
    rec = msgspec.json.encode(EpochRecord(epoch, instance, "host", 1, 0, expected))
    seq, _ = link.call(link.append(names.subject(EPOCH), rec, expected=expected,
                                   msg_id=f"{epoch}:e:{instance}"))
    return seq


def _journal(link, names, *, last_seq=0, stream_seq, epoch=1, instance="a", **kw):
    return JetStreamJournal(link, names, last_seq=last_seq, stream_seq=stream_seq,
                            epoch=epoch, instance=instance, **kw)


def test_group_framing_round_trips_and_damage_is_refused():
    records = [(1, b"a"), (2, b""), (3, b"x" * 300)]
    data = encode_group(records)
    assert list(decode_group(data)) == records
    bad = bytearray(data)
    bad[-1] ^= 1
    with pytest.raises(ValueError, match="damaged"):
        list(decode_group(bytes(bad)))


def test_a_group_commit_is_one_message_acknowledged_by_the_quorum(nats_link):
    names = unique_names("grp")
    nats_link.call(nats_link.ensure_stream(names))
    claimed = _claim(nats_link, names)
    j = _journal(nats_link, names, stream_seq=claimed, heartbeat=30)
    try:
        for seq in range(1, 1001):
            j.append(seq, f"input {seq}".encode())
        assert j.durable_seq == 0                     # nothing durable before the commit
        assert j.commit() == 1000 == j.durable_seq
        assert j.stream_seq == claimed + 1
    finally:
        j.close()
    contents = read_stream(nats_link, names)
    assert contents.groups == 1
    assert contents.records == [(s, f"input {s}".encode()) for s in range(1, 1001)]


def test_a_stale_writer_is_fenced_and_the_stream_is_unchanged(nats_link):
    names = unique_names("fence")
    nats_link.call(nats_link.ensure_stream(names))
    claimed = _claim(nats_link, names)
    fenced = []
    old = _journal(nats_link, names, stream_seq=claimed, heartbeat=30, on_fenced=fenced.append)
    new = _journal(nats_link, names, stream_seq=claimed, epoch=2, instance="b", heartbeat=30)
    try:
        new.append(1, b"new primary")
        new.commit()
        old.append(1, b"old primary")
        with pytest.raises(JournalFenced, match="another writer appended"):
            old.commit()
        assert old.durable_seq == 0 and len(fenced) == 1
        with pytest.raises(JournalError):             # failed for good: nothing after it
            old.append(2, b"more")
    finally:
        old.close()
        new.close()
    assert read_stream(nats_link, names).records == [(1, b"new primary")]


def test_a_retry_with_the_same_msg_id_returns_the_original_ack(nats_link):
    names = unique_names("dup")
    nats_link.call(nats_link.ensure_stream(names))
    first = nats_link.call(nats_link.append(names.subject("j"), b"g", expected=0,
                                            msg_id="1:1"))
    again = nats_link.call(nats_link.append(names.subject("j"), b"g", expected=0,
                                            msg_id="1:1"))
    assert first == (1, False) and again == (1, True)
    with pytest.raises(Fenced):                       # a new message with a stale expectation
        nats_link.call(nats_link.append(names.subject("j"), b"h", expected=0, msg_id="1:2"))
    assert nats_link.call(nats_link.last_seq(names)) == 1


def test_an_idle_primary_heartbeats_and_a_claim_fences_its_next_beat(nats_link):
    names = unique_names("hb")
    nats_link.call(nats_link.ensure_stream(names))
    claimed = _claim(nats_link, names)
    told = threading.Event()
    j = _journal(nats_link, names, stream_seq=claimed, heartbeat=0.05,
                 on_fenced=lambda exc: told.set())
    try:
        time.sleep(0.5)
        beats = read_stream(nats_link, names).heartbeats
        assert beats >= 3                              # ~10 in 0.5 s, at least a few on a busy box
        for _ in range(50):                            # the standby's claim races the beats
            try:
                _claim(nats_link, names, nats_link.call(nats_link.last_seq(names)), 2, "b")
                break
            except Fenced:
                continue
        assert told.wait(5), "the old primary's next heartbeat was not refused"
        assert isinstance(j.failed, JournalFenced)
    finally:
        j.close()


def test_snapshots_in_the_bucket_newest_first_and_only_the_last_kept(nats_link):
    names = unique_names("snap")
    store = SnapshotStore(nats_link, names, keep=2)
    assert nats_link.call(store.latest()) is None
    for seq in (10, 20, 30):
        nats_link.call(store.put(seq, seq + 1, 3, f"state at {seq}".encode()))
    latest = nats_link.call(store.latest())
    assert (latest.engine_seq, latest.stream_seq, latest.epoch, latest.payload) == \
        (30, 31, 3, b"state at 30")
    assert sorted(nats_link.call(store._names())) == ["snap-00000000000000000020",
                                                      "snap-00000000000000000030"]


def _orders(engine, start, n):
    for i in range(start, start + n):
        side = "buy" if i % 2 else "sell"
        broker, account = ("alpha", 1) if i % 3 else ("beta", 2)
        engine.submit(broker, NewOrderSingle(f"c{i}", account, "TB3M", side, "1",
                                             price=f"99.{10 + i % 7:03d}"))


def test_a_follower_rebuilds_the_primary_state_from_snapshot_and_stream(nats_link):
    import asyncio
    names = unique_names("follow")
    nats_link.call(nats_link.ensure_stream(names))
    store = SnapshotStore(nats_link, names)
    base = two_broker_engine()
    engine = ReplicatedEngine.from_snapshot(base.instruments.values(), base.snapshot(),
                                            clock=time.time_ns)
    engine.store = store
    claimed = _claim(nats_link, names)
    engine.epoch = 1
    engine.journal = _journal(nats_link, names, stream_seq=claimed, heartbeat=30)
    try:
        _orders(engine, 1, 120)
        engine.commit()
        engine.write_snapshot()                        # the standby starts from here
        for k in range(5):                             # and replays five groups after it
            _orders(engine, 200 + 50 * k, 50)
            engine.commit()
    finally:
        engine.journal.close()

    async def follow():
        f = Follower(nats_link, names, store, base.instruments.values())
        assert await f.load()
        await f.catch_up()
        await f.stop()
        return f
    f = asyncio.run(follow())
    assert f.engine.seq == engine.seq == 370
    assert f.engine.state_hash() == engine.state_hash()
    assert f.applied_groups == 5 and len(f.resend) == 250


def test_a_group_over_the_servers_max_payload_is_cut_at_record_boundaries(nats_link):
    names = unique_names("big")
    nats_link.call(nats_link.ensure_stream(names))
    claimed = _claim(nats_link, names)
    j = _journal(nats_link, names, stream_seq=claimed, heartbeat=30)
    limit = nats_link.nc.max_payload
    record = bytes(range(256)) * 400                       # ~100 KB each
    n = limit // len(record) * 2 + 3                       # about two and a half payloads
    try:
        for seq in range(1, n + 1):
            j.append(seq, record)
        assert j.commit() == n
    finally:
        j.close()
    contents = read_stream(nats_link, names)
    assert contents.records == [(s, record) for s in range(1, n + 1)]
    assert contents.groups == 3

"""The journal keeps every committed record and drops only a torn or corrupt tail."""
import itertools
import os
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import matching.journal as jmod
from matching import _frame as cframe
from matching.journal import (
    HEADER,
    MAX_RECORD,
    Journal,
    JournalError,
    latest_snapshot,
    read_journal,
    recover,
    write_snapshot,
)


def payload(seq: int) -> bytes:
    return f"record-{seq}".encode() * (seq % 7)            # includes empty payloads


def _write(path, n, policy="group"):
    with Journal(path, fsync=policy) as j:
        for seq in range(1, n + 1):
            j.append(seq, payload(seq))
        assert j.commit() == n


def _frame(seq: int, data: bytes) -> bytes:
    crc = zlib.crc32(data, zlib.crc32(struct.pack("<Q", seq)))
    return HEADER.pack(len(data), crc, seq) + data


# ---------------------------------------------------------------------- round trip
@pytest.mark.parametrize("policy", ["group", "always", "none"])
def test_records_round_trip_under_every_policy(tmp_path, policy):
    path = tmp_path / "j.log"
    _write(path, 20, policy)
    assert list(read_journal(path)) == [(s, payload(s)) for s in range(1, 21)]
    assert [s for s, _ in read_journal(path, after_seq=17)] == [18, 19, 20]


def test_framing_is_length_crc_seq_payload_little_endian(tmp_path):
    path = tmp_path / "j.log"
    with Journal(path) as j:
        j.append(5, b"abc")
    assert path.read_bytes() == _frame(5, b"abc")
    assert path.read_bytes()[:4] == b"\x03\x00\x00\x00"
    assert path.read_bytes()[8:16] == (5).to_bytes(8, "little")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1))
def test_the_c_framing_is_zlib_crc32_over_seq_then_payload(data, seq, start):
    # The journal frames records in C (matching._frame); every reader checks with zlib.
    assert cframe.crc32(data, start) == zlib.crc32(data, start)
    buf = bytearray(b"kept")
    cframe.append_record(buf, seq, data)
    assert bytes(buf) == b"kept" + _frame(seq, data)


def test_a_missing_journal_reads_as_empty(tmp_path):
    assert list(read_journal(tmp_path / "nothing.log")) == []


# ---------------------------------------------------------------------- torn and corrupt
def test_torn_last_record_is_dropped_and_everything_before_kept(tmp_path):
    path = tmp_path / "j.log"
    _write(path, 6)                                        # record 6 has a 48-byte payload
    full = path.read_bytes()
    start_of_last = len(full) - (HEADER.size + len(payload(6)))
    expected = [(s, payload(s)) for s in range(1, 6)]
    for cut in range(start_of_last + 1, len(full)):       # every byte inside the last record
        path.write_bytes(full[:cut])
        assert list(read_journal(path)) == expected        # readable before any repair
        assert recover(path) == 5
        assert path.read_bytes() == full[:start_of_last]
        assert list(read_journal(path)) == expected
    aside = sorted(tmp_path.glob("j.log.torn-*"))
    assert len(aside) == len(full) - start_of_last - 1     # one per cut, none overwritten


def test_recover_of_an_intact_journal_changes_nothing(tmp_path):
    path = tmp_path / "j.log"
    _write(path, 4)
    before = path.read_bytes()
    assert recover(path) == 4
    assert path.read_bytes() == before and not list(tmp_path.glob("*.torn-*"))


@pytest.mark.parametrize("where", ["payload", "crc", "seq", "length"])
def test_corrupt_record_ends_the_readable_journal(tmp_path, where):
    path = tmp_path / "j.log"
    _write(path, 5)
    data = bytearray(path.read_bytes())
    third = sum(HEADER.size + len(payload(s)) for s in (1, 2))
    offset = {"payload": HEADER.size + 2, "crc": 5, "seq": 9, "length": 0}[where]
    data[third + offset] ^= 0x40
    path.write_bytes(bytes(data))
    assert [s for s, _ in read_journal(path)] == [1, 2]
    assert recover(path) == 2 and path.stat().st_size == third
    # Damage mid-file can cut acknowledged records: they are kept aside, byte for byte.
    assert (tmp_path / f"j.log.torn-{third}").read_bytes() == bytes(data[third:])


def test_a_huge_length_is_corruption_not_an_allocation(tmp_path):
    path = tmp_path / "j.log"
    path.write_bytes(_frame(1, b"ok") + HEADER.pack(MAX_RECORD + 1, 0, 2) + b"x" * 10)
    assert list(read_journal(path)) == [(1, b"ok")]


@pytest.mark.parametrize("seqs, good", [([1, 2, 2, 3], [1, 2]), ([3, 1], [3]), ([0, 1], [])])
def test_a_non_increasing_seq_ends_the_readable_journal(tmp_path, seqs, good):
    path = tmp_path / "j.log"
    path.write_bytes(b"".join(_frame(s, b"p") for s in seqs))
    assert [s for s, _ in read_journal(path)] == good
    assert recover(path) == (good[-1] if good else 0)


def test_reopening_recovers_then_appends_after_the_last_good_record(tmp_path):
    path = tmp_path / "j.log"
    _write(path, 3)
    with open(path, "ab") as f:
        f.write(b"\x10\x00\x00")                           # a crash mid-header
    with Journal(path) as j:
        assert j.durable_seq == j.last_seq == 3
        with pytest.raises(ValueError):
            j.append(3, b"again")                          # the journal knows where it was
        j.append(4, b"four")
        assert j.commit() == 4
    assert [s for s, _ in read_journal(path)] == [1, 2, 3, 4]


# ---------------------------------------------------------------------- group commit
def test_group_commit_watermark_moves_only_on_commit(tmp_path):
    path = tmp_path / "j.log"
    j = Journal(path, group_records=3, group_interval_ms=50.0)
    j.append(1, b"a")
    j.append(2, b"b")
    t0 = j._oldest_ns
    assert j.maybe_commit(now_ns=t0 + 1_000) == 0 and j.durable_seq == 0
    assert j.pending == 2 and j.last_seq == 2
    assert path.stat().st_size == 0                        # nothing written before a commit
    j.append(3, b"c")
    assert j.maybe_commit(now_ns=t0 + 1_000) == 3          # the group is full
    assert j.pending == 0 and list(read_journal(path)) == [(1, b"a"), (2, b"b"), (3, b"c")]
    j.append(4, b"d")
    t1 = j._oldest_ns
    assert j.maybe_commit(now_ns=t1 + 49_999_999) == 3     # not yet the interval
    assert j.maybe_commit(now_ns=t1 + 50_000_000) == 4     # the oldest waited 50 ms
    assert j.commit() == 4                                 # nothing pending: same watermark
    j.close()


def test_a_crash_loses_only_what_was_never_committed(tmp_path):
    path = tmp_path / "j.log"
    j = Journal(path)
    for seq in range(1, 6):
        j.append(seq, payload(seq))
    acked = j.commit()
    j.append(6, b"not yet durable")
    os.close(j.fd)                                         # the process dies here
    j.fd = -1
    assert [s for s, _ in read_journal(path)] == list(range(1, acked + 1))
    with Journal(path) as again:
        assert again.durable_seq == acked == 5


def test_sequence_payload_and_size_are_checked(tmp_path):
    with Journal(tmp_path / "j.log") as j:
        j.append(1, b"a")
        with pytest.raises(ValueError):
            j.append(1, b"b")
        with pytest.raises(TypeError):
            j.append(2.0, b"b")
        with pytest.raises(TypeError):
            j.append(2, "text")
        with pytest.raises(ValueError):
            j.append(2, bytes(MAX_RECORD + 1))
        assert j.pending == 1 and j.last_seq == 1
    with pytest.raises(ValueError):
        Journal(tmp_path / "k.log", fsync="sometimes")


def test_one_writer_per_journal(tmp_path):
    path = tmp_path / "j.log"
    j = Journal(path)
    with pytest.raises(JournalError, match="another writer"):
        Journal(path)
    j.close()
    Journal(path).close()                                  # free again once closed


def test_write_error_stops_the_journal_for_good(tmp_path):
    j = Journal(tmp_path / "j.log")
    j.append(1, b"a")
    good = j.fd
    j.fd = os.open(os.devnull, os.O_RDONLY)                # every write now fails
    with pytest.raises(JournalError):
        j.commit()
    assert j.durable_seq == 0 and j.failed is not None
    with pytest.raises(JournalError):
        j.append(2, b"b")
    os.close(j.fd)
    j.fd = good                                            # even a healthy fd is not retried
    with pytest.raises(JournalError):
        j.commit()
    assert j.durable_seq == 0
    j.close()
    assert list(read_journal(tmp_path / "j.log")) == []


# ---------------------------------------------------------------------- policies
@pytest.mark.parametrize("policy, writes, syncs", [
    ("always", 10, 10), ("group", 3, 3), ("none", 3, 0)])
def test_each_policy_writes_and_syncs_as_documented(tmp_path, monkeypatch, policy, writes, syncs):
    calls = {"write": 0, "sync": 0}
    real_write, real_sync = os.pwrite, os.fdatasync

    def counting_write(fd, data, offset):
        calls["write"] += 1
        return real_write(fd, data, offset)

    def counting_sync(fd):
        calls["sync"] += 1
        return real_sync(fd)

    monkeypatch.setattr(jmod.os, "pwrite", counting_write)
    monkeypatch.setattr(jmod.os, "fdatasync", counting_sync)
    path = tmp_path / f"{policy}.log"
    j = Journal(path, fsync=policy, group_records=4, group_interval_ms=1e6)
    for seq in range(1, 11):
        j.append(seq, payload(seq))
        j.maybe_commit()
    assert j.durable_seq == (10 if policy == "always" else 8)
    j.commit()
    j.close()
    assert calls == {"write": writes, "sync": syncs}
    assert list(read_journal(path)) == [(s, payload(s)) for s in range(1, 11)]


# ---------------------------------------------------------------------- snapshots
def test_snapshot_is_atomic_and_a_leftover_temp_file_is_ignored(tmp_path):
    write_snapshot(tmp_path, 10, b"state-10")
    (tmp_path / ".snapshot-00000000000000000011.bin.tmp").write_bytes(b"half")
    (tmp_path / "snapshot-00000000000000000012.bin").write_bytes(b"\x00" * 5)  # truncated
    assert latest_snapshot(tmp_path) == (10, b"state-10")
    assert not list(tmp_path.glob(".snapshot-00000000000000000010*"))   # temp renamed away
    write_snapshot(tmp_path, 20, b"state-20")
    assert latest_snapshot(tmp_path) == (20, b"state-20")


def test_a_corrupt_or_misnamed_snapshot_is_skipped(tmp_path):
    write_snapshot(tmp_path, 10, b"state-10")
    bad = write_snapshot(tmp_path, 30, b"state-30")
    data = bytearray(bad.read_bytes())
    data[-1] ^= 1
    bad.write_bytes(bytes(data))                           # crc mismatch
    moved = write_snapshot(tmp_path, 20, b"state-20")
    moved.rename(tmp_path / "snapshot-00000000000000000025.bin")   # name and header disagree
    (tmp_path / "snapshot-latest.bin").write_bytes(b"junk")         # not a snapshot name
    assert latest_snapshot(tmp_path) == (10, b"state-10")


def test_no_snapshot_is_none(tmp_path):
    assert latest_snapshot(tmp_path / "missing") is None
    assert latest_snapshot(tmp_path) is None


# ---------------------------------------------------------------------- preallocated space
def _frames(n: int) -> bytes:
    return b"".join(_frame(s, payload(s)) for s in range(1, n + 1))


def _committed(path, n: int) -> Journal:
    """An open journal at ``path`` with records 1..n committed."""
    j = Journal(path)
    for seq in range(1, n + 1):
        j.append(seq, payload(seq))
    j.commit()
    return j


def test_commits_go_into_preallocated_space_and_close_cuts_the_file_to_its_data(tmp_path):
    path = tmp_path / "j.log"
    j = _committed(path, 5)
    assert path.stat().st_size > len(_frames(5))           # grown ahead of the data
    assert list(read_journal(path)) == [(s, payload(s)) for s in range(1, 6)]  # zeros end it
    j.close()
    assert path.read_bytes() == _frames(5)


def test_preallocation_doubles_as_the_journal_grows(tmp_path):
    path = tmp_path / "j.log"
    big = b"x" * 200_000
    sizes = []
    with Journal(path) as j:
        for seq in range(1, 41):                           # 8 MB of records
            j.append(seq, big)
            j.commit()
            sizes.append(os.stat(path).st_size)
    steps = [b - a for a, b in itertools.pairwise(sizes) if b > a]
    assert len(steps) >= 3 and all(a < b for a, b in itertools.pairwise(steps))  # doubling
    assert path.stat().st_size == 40 * (HEADER.size + len(big))


def test_a_crash_leaves_zeros_that_reopening_drops_silently(tmp_path):
    path = tmp_path / "j.log"
    j = _committed(path, 5)
    os.close(j.fd)                                         # the process dies here
    j.fd = -1
    assert path.stat().st_size > len(_frames(5))
    with Journal(path) as again:
        assert again.durable_seq == 5
        again.append(6, payload(6))
        again.commit()
    assert path.read_bytes() == _frames(6)
    assert not list(tmp_path.glob("*.torn-*"))             # zeros carry nothing to keep


def test_a_torn_record_in_preallocated_space_is_kept_aside_without_the_zeros(tmp_path):
    path = tmp_path / "j.log"
    j = _committed(path, 3)
    torn = _frame(4, b"cut short by the crash")[:-5]
    os.pwrite(j.fd, torn, j._end)                          # a commit the crash tore
    os.close(j.fd)
    j.fd = -1
    assert recover(path) == 3 and path.read_bytes() == _frames(3)
    [aside] = tmp_path.glob("j.log.torn-*")
    kept = aside.read_bytes()
    assert kept.startswith(torn) and len(kept) <= 4096 and not kept[len(torn):].strip(b"\0")


def test_where_the_file_system_cannot_preallocate_commits_extend_the_file(tmp_path,
                                                                         monkeypatch):
    calls = []

    def refused(fd, offset, length):
        calls.append(length)
        raise OSError(95, "Operation not supported")
    monkeypatch.setattr(jmod.os, "posix_fallocate", refused)
    path = tmp_path / "j.log"
    with Journal(path) as j:
        for seq in range(1, 8):
            j.append(seq, payload(seq))
            assert j.commit() == seq
            assert path.stat().st_size == len(_frames(seq))
    assert len(calls) == 1                                  # asked once, not per commit
    assert list(read_journal(path)) == [(s, payload(s)) for s in range(1, 8)]

"""The journal keeps every committed record and drops only a torn tail."""
import os

import pytest

from matching.journal import (
    HEADER, Journal, JournalError, latest_snapshot, read_journal, recover, write_snapshot,
)


def _write(path, n, policy="group"):
    j = Journal(path, fsync=policy)
    for seq in range(1, n + 1):
        j.append(seq, f"record-{seq}".encode() * seq)
    j.commit()
    j.close()


@pytest.mark.parametrize("policy", ["group", "always", "none"])
def test_records_round_trip_under_every_policy(tmp_path, policy):
    path = tmp_path / "j.log"
    _write(path, 20, policy)
    assert [(s, p) for s, p in read_journal(path)] == [
        (s, f"record-{s}".encode() * s) for s in range(1, 21)]


def test_torn_last_record_is_dropped_and_everything_before_kept(tmp_path):
    path = tmp_path / "j.log"
    _write(path, 5)
    full = path.read_bytes()
    last_len = HEADER.size + len(b"record-5" * 5)
    start_of_last = len(full) - last_len
    for cut in range(start_of_last + 1, len(full)):      # every byte inside the last record
        path.write_bytes(full[:cut])
        assert recover(path) == 4
        assert path.stat().st_size == start_of_last
        assert [s for s, _ in read_journal(path)] == [1, 2, 3, 4]


def test_corrupt_record_ends_the_readable_journal(tmp_path):
    path = tmp_path / "j.log"
    _write(path, 5)
    data = bytearray(path.read_bytes())
    data[HEADER.size + 3] ^= 0xFF                      # a payload byte of record 1
    path.write_bytes(bytes(data))
    assert list(read_journal(path)) == []


def test_reopening_recovers_then_appends_after_the_last_good_record(tmp_path):
    path = tmp_path / "j.log"
    _write(path, 3)
    with open(path, "ab") as f:
        f.write(b"\x10\x00\x00")                        # a crash mid-header
    j = Journal(path)
    assert j.durable_seq == 3
    j.append(4, b"four")
    j.commit()
    j.close()
    assert [s for s, _ in read_journal(path)] == [1, 2, 3, 4]


def test_group_commit_watermark_moves_only_on_commit(tmp_path):
    j = Journal(tmp_path / "j.log", group_records=3, group_interval_ms=1e9)
    j.append(1, b"a")
    j.append(2, b"b")
    assert j.maybe_commit() == 0 and j.durable_seq == 0
    j.append(3, b"c")
    assert j.maybe_commit() == 3
    j.append(4, b"d")
    assert j.maybe_commit(now_ns=j._oldest_ns + 2 * 10**15) == 4


def test_sequence_must_increase(tmp_path):
    j = Journal(tmp_path / "j.log")
    j.append(1, b"a")
    with pytest.raises(ValueError):
        j.append(1, b"b")


def test_write_error_stops_the_journal(tmp_path):
    j = Journal(tmp_path / "j.log")
    j.append(1, b"a")
    os.close(j.fd)
    j.fd = os.open(os.devnull, os.O_RDONLY)           # every write now fails
    with pytest.raises(JournalError):
        j.commit()
    assert j.durable_seq == 0 and j.failed is not None
    with pytest.raises(JournalError):
        j.append(2, b"b")


def test_snapshot_is_atomic_and_a_leftover_temp_file_is_ignored(tmp_path):
    write_snapshot(tmp_path, 10, b"state-10")
    (tmp_path / ".snapshot-00000000000000000011.bin.tmp").write_bytes(b"half")
    (tmp_path / "snapshot-00000000000000000012.bin").write_bytes(b"\x00" * 5)  # truncated
    assert latest_snapshot(tmp_path) == (10, b"state-10")
    write_snapshot(tmp_path, 20, b"state-20")
    assert latest_snapshot(tmp_path) == (20, b"state-20")

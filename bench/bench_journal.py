"""Journal appends per second for each fsync policy, 100-byte records.

Reproduce:  .venv/bin/python -m pytest bench/bench_journal.py --benchmark-only -s
Each round appends a batch to one growing journal file the way the engine loop does
(``append`` then ``maybe_commit``; ``always`` syncs inside ``append``) and ends with a
``commit``, so every record of the round is durable per its policy when the clock stops.
``extra_info`` keeps records/s (median round) and syncs per round. No timing is asserted.
"""
from __future__ import annotations

import os

import pytest

import matching.journal as jmod
from matching.journal import Journal, read_journal

RECORD = bytes(range(100))


def _filesystem(path) -> str:
    """Type of the filesystem holding ``path`` (fsync on tmpfs costs nothing: say so)."""
    path, best = os.path.realpath(path), ("", "?")
    with open("/proc/mounts") as f:
        for line in f:
            mount, fstype = line.split()[1:3]
            inside = path == mount or path.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) > len(best[0]):
                best = (mount, fstype)
    return best[1]

# Enough records for ~0.1-0.5 s a round at the rates seen here (FIELD-NOTES.md).
BATCH = {"always": 2_000, "group": 100_000, "none": 200_000}
ROUNDS = 5


@pytest.mark.parametrize("policy", ["always", "group", "none"])
def test_journal_appends_per_second(benchmark, tmp_path, monkeypatch, policy):
    syncs = 0
    real_sync = os.fdatasync

    def counted_sync(fd):
        nonlocal syncs
        syncs += 1
        real_sync(fd)

    monkeypatch.setattr(jmod.os, "fdatasync", counted_sync)
    path = tmp_path / f"{policy}.log"
    journal = Journal(path, fsync=policy, group_records=1000, group_interval_ms=1.0)
    n = BATCH[policy]
    next_seq = 1

    def run():
        nonlocal next_seq
        append, maybe_commit = journal.append, journal.maybe_commit
        for seq in range(next_seq, next_seq + n):
            append(seq, RECORD)
            maybe_commit()
        journal.commit()
        next_seq += n

    benchmark.pedantic(run, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    journal.close()
    total = (ROUNDS + 1) * n
    rate = n / benchmark.stats.stats.median
    fs = _filesystem(tmp_path)
    benchmark.extra_info.update(policy=policy, filesystem=fs, records_per_round=n,
                                records_per_s=round(rate),
                                us_per_record=round(1e6 / rate, 3),
                                syncs_per_round=syncs / (ROUNDS + 1))
    print(f"\n{policy:>6}: {rate:,.0f} records/s ({1e6 / rate:.2f} us/record), "
          f"{syncs / (ROUNDS + 1):.0f} fdatasync per {n} records, on {fs}")
    # What was measured is a real journal: every record is there and readable.
    assert journal.durable_seq == total == sum(1 for _ in read_journal(path))
    expected = {"always": (total, total), "group": (total // 1000, total), "none": (0, 0)}
    assert expected[policy][0] <= syncs <= expected[policy][1]

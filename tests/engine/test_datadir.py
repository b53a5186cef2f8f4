"""The data directory: one engine at a time (the lock), an epoch per start, and ids that
stay unique for the venue's life (E ids are engine state, R ids carry the epoch)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from matching import recovery
from matching.datadir import DataDir, DataDirError, DataDirLocked
from matching.engine import Engine
from matching.instruments import Registry
from matching.messages import NewOrderSingle
from testkit.mqtt import two_broker_engine

REG = Registry.load_default()


def open_venue(data):
    return recovery.open_engine(Engine, data, REG, new_ledger=lambda: two_broker_engine().ledger,
                                fsync="none")


def crash(engine: Engine) -> None:
    """What the kernel does to a process killed -9: its descriptors close (the flocks go),
    the journal's uncommitted group is lost, no final snapshot is written."""
    journal = engine.journal
    os.close(journal.fd)
    journal.fd = -1
    engine.data_dir.close()


def bid(cl: str, price: str = "99.000") -> NewOrderSingle:
    return NewOrderSingle(cl, 1, "TB3M", "buy", "1", price=price, time_in_force="gtc")


def test_each_open_starts_the_next_epoch_and_persists_it(tmp_path):
    for expected in (1, 2, 3):
        with DataDir.open(tmp_path / "d") as d:
            assert d.epoch == expected and d.locked
        assert not d.locked
        assert (tmp_path / "d" / "epoch").read_text() == f"{expected}\n"
    assert not (tmp_path / "d" / "epoch.tmp").exists()


def test_a_data_dir_from_before_epochs_counts_as_epoch_one(tmp_path):
    (tmp_path / "journal.log").write_bytes(b"")
    with DataDir.open(tmp_path) as d:
        assert d.epoch == 2
    (tmp_path / "epoch").write_text("garbage\n")
    with pytest.raises(DataDirError, match="not an epoch number"):
        DataDir.open(tmp_path)
    with DataDir.open(tmp_path / "again"):   # a refused open left no lock behind
        pass
    (tmp_path / "epoch").write_text("7\n")
    with DataDir.open(tmp_path) as d:
        assert d.epoch == 8


def test_a_second_open_is_refused_in_one_line_and_changes_nothing(tmp_path):
    first = DataDir.open(tmp_path)
    with pytest.raises(DataDirLocked) as err:
        DataDir.open(tmp_path)
    text = str(err.value)
    assert "\n" not in text and str(tmp_path) in text and f"pid {os.getpid()}" in text
    assert (tmp_path / "epoch").read_text() == "1\n"        # the refused open took no epoch
    first.close()
    with DataDir.open(tmp_path) as d:
        assert d.epoch == 2


def test_the_lock_goes_with_its_process_even_killed(tmp_path):
    code = ("import sys, time; from matching.datadir import DataDir; "
            "d = DataDir.open(sys.argv[1]); print(d.epoch, flush=True); time.sleep(60)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], env=env,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "1"
        with pytest.raises(DataDirLocked, match=f"pid {proc.pid}"):
            DataDir.open(tmp_path)
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
    with DataDir.open(tmp_path) as d:
        assert d.epoch == 2


def test_open_engine_holds_the_data_dir_and_numbers_its_starts(tmp_path):
    engine, _ = open_venue(tmp_path)
    assert engine.epoch == 1 and engine.data_dir.epoch == 1
    before = engine.state_hash()
    with pytest.raises(DataDirLocked):
        open_venue(tmp_path)                               # cannot be bypassed
    assert engine.state_hash() == before and engine.journal.fd >= 0
    out = engine.submit("alpha", bid("c1"))                # the first engine goes on
    assert out.reports[0][1].exec_type == "new"
    engine.commit()
    engine.close()
    again, _ = open_venue(tmp_path)
    assert again.epoch == 2 and again.seq == 1 and len(again.books["TB3M"]) == 1
    again.close()


def test_reject_ids_of_undecodable_messages_never_repeat_across_restarts(tmp_path):
    seen = []
    for _ in range(3):
        engine, _ = open_venue(tmp_path)
        for _ in range(2):
            [(_, r)] = engine.refuse("alpha", "MALFORMED_JSON", "not JSON").reports
            seen.append(r.exec_id)
        crash(engine)
    assert seen == ["R1.1", "R1.2", "R2.1", "R2.2", "R3.1", "R3.2"]


def test_exec_ids_stay_unique_across_a_crash_and_restarts(tmp_path):
    """E ids are engine state: journaled, recovered. Reports of an input that was not yet
    durable at the crash never left, so reusing their numbers repeats nothing published."""
    published: list[str] = []
    engine, _ = open_venue(tmp_path)
    for n in range(3):
        published += [r.exec_id for _, r in engine.submit("alpha", bid(f"a{n}")).reports]
    engine.commit()
    engine.submit("alpha", bid("lost"))                    # journaled, never committed
    crash(engine)
    engine, _ = open_venue(tmp_path)
    assert engine.seq == 3 and engine.epoch == 2
    sell = NewOrderSingle("s1", 2, "TB3M", "sell", "2", price="99.000")
    published += [r.exec_id for _, r in engine.submit("beta", sell).reports]
    engine.commit()
    engine.close()
    engine, _ = open_venue(tmp_path)                       # a clean restart as well
    published += [r.exec_id for _, r in engine.submit("alpha", bid("b1")).reports]
    engine.close()
    assert len(published) == len(set(published)) > 8, published
    assert all(e.startswith("E") for e in published)

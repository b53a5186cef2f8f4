"""Replay and recovery reproduce the state hash across lifecycle inputs: the golden stream
(its recorded answers unchanged), then a coupon recorded and paid, a bill matured and
redeemed, replayed from the journal alone and from a snapshot taken between them."""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from matching.engine import Engine
from matching.journal import Journal, read_journal
from matching.ledger import CASH
from matching.timetable import Timetable
from testkit import golden

ISSUER = 9000


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


def instruments():
    return [dataclasses.replace(i, issuer_account=ISSUER) if i.maturity else i
            for i in golden.registry()]


def new_engine(journal=None):
    engine, clock = golden.new_engine(journal)
    fresh = Engine(instruments(), engine.ledger, clock=clock, journal=journal,
                   resend_window=golden.RESEND_WINDOW)
    fresh.ledger.open_account(ISSUER, "treasury", "institutional")
    fresh.ledger.deposit(ISSUER, CASH, 10**15)
    return fresh, clock


#: Lifecycle steps after the golden stream (2026-11-26): BD3Y's first coupon, TB3M's end.
STEPS = [("2026-12-15T00:00:00", "record", "BD3Y"), ("2026-12-15T00:00:00", "pay_coupon", "BD3Y"),
         ("2027-02-01T00:00:00", "mature", "TB3M"), ("2027-02-01T00:00:00", "redeem", "TB3M")]


def test_replay_and_recovery_reproduce_the_hash_across_lifecycle_inputs(tmp_path):
    inputs = golden.load_inputs()
    journal = Journal(tmp_path / "journal.log")
    live, clock = new_engine(journal)
    live.write_snapshot(tmp_path / "founded")
    for rec in inputs:
        golden.apply(live, clock, rec)
    hashes = []
    for when, action, symbol in STEPS:
        clock.now = ns(when)
        out = live.lifecycle(action, symbol)
        assert out.sequenced, out.refused
        hashes.append(live.state_hash())
        if action == "pay_coupon":
            live.write_snapshot(tmp_path / "midway")
    assert live.ledger.supply("TB3M") == 0 and live.trading_status("TB3M").state == "matured"
    live.commit()
    journal.close()
    # From the journal alone, into an engine in the founding state.
    again, _ = new_engine()
    again.replay(read_journal(tmp_path / "journal.log"))
    assert again.state_hash() == live.state_hash() == hashes[-1]
    # From the snapshot after the coupon, plus the journal after it.
    rec = Engine.recover(instruments(), snapshot_dir=tmp_path / "midway",
                         journal_path=tmp_path / "journal.log", clock=clock)
    assert rec.state_hash() == live.state_hash()
    assert rec.corporate.paid == live.corporate.paid == {("BD3Y", "2026-12-15")}
    # The timetable of the recovered engine has nothing left to do for these steps.
    table = Timetable(rec.instruments.values(), rec.corporate.since)
    due = table.due(ns("2027-02-01T00:00:00"), lambda d: rec.corporate.done(
        d.action, d.symbol, d.coupon_date))
    assert not [d for d in due if d.symbol in ("TB3M", "BD3Y")]


def test_the_golden_stream_hashes_as_recorded_with_lifecycle_state_empty():
    """A venue with no lifecycle input keeps the state hash it always had."""
    expected = golden.load_expected()
    final = next(line for line in expected if line.get("final"))["state_hash"]
    engine, clock = golden.new_engine()
    for rec in golden.load_inputs():
        golden.apply(engine, clock, rec)
    assert engine.corporate.state_doc() == [] and engine.state_hash() == final

"""A broker's cash moved between shards (matching.transfers): the out leg takes only free
cash and is journaled before the in leg, the in leg is idempotent by transfer id, a crash
between the halves is completed on restart, and replay reproduces every shard's state."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from matching import recovery
from matching.engine import Engine
from matching.journal import Journal, read_journal
from matching.ledger import CASH, Ledger
from matching.messages import NewOrderSingle
from matching.transfers import (
    ShardTransferCoordinator,
    TransferFailed,
    transfer_in,
    transfer_out,
)
from testkit import golden

ROOT = Path(__file__).resolve().parents[2]
ACCT = 7001
USDC = 10**6


def allocation_ledger(cash_units: int) -> Ledger:
    """One shard's ledger: broker alpha's account with its pre-funded cash allocation."""
    led = Ledger()
    led.open_account(ACCT, "alpha", "retail")
    if cash_units:
        led.deposit(ACCT, CASH, cash_units)
    for inst in golden.registry():
        led.whitelist(ACCT, inst.symbol)
    return led


def shard_engine(cash_units: int, journal=None) -> Engine:
    clock = golden.new_engine()[1]
    clock.now = golden.load_inputs()[0]["now"]
    engine = Engine(golden.registry(), allocation_ledger(cash_units), clock=clock,
                    journal=journal)
    engine.admin("open")
    return engine


def cash(engine: Engine) -> int:
    return engine.ledger.balance(ACCT, CASH)


def refused(engine: Engine, msg, code: str) -> None:
    seq, digest = engine.seq, engine.state_hash()
    out = engine.account_input(msg)
    assert not out.sequenced and out.refused.startswith(f"{code}: "), out.refused
    assert engine.seq == seq and engine.state_hash() == digest      # nothing journaled


def test_transfer_moves_cash_from_one_shard_allocation_to_the_other():
    a, b = shard_engine(1000 * USDC), shard_engine(0)
    ShardTransferCoordinator({"s1": a, "s2": b}).move_cash("t-1", ACCT, "250.5", "s1", "s2")
    assert cash(a) == 1000 * USDC - 250_500_000 and cash(b) == 250_500_000
    assert a.accounts_admin.transfers.outgoing["t-1"].peer_shard == "s2"
    assert b.accounts_admin.transfers.incoming["t-1"].units == 250_500_000


def test_transfer_out_never_takes_cash_reserved_by_a_resting_buy():
    a = shard_engine(1000 * USDC)
    out = a.submit("alpha", NewOrderSingle("buy-1", ACCT, "TB3M", "buy", "1", price="99.5"))
    assert out.sequenced
    free = a.ledger.free(ACCT, CASH)
    assert 0 < free < 1000 * USDC                   # the buy reserved part of it
    over = f"{(free + 1) // USDC}.{(free + 1) % USDC:06d}"
    refused(a, transfer_out("t-over", ACCT, over, "s2"), "INSUFFICIENT_FUNDS")


def test_transfer_in_twice_with_one_id_credits_once():
    b = shard_engine(0)
    assert b.account_input(transfer_in("t-2", ACCT, "10", "s1")).sequenced
    refused(b, transfer_in("t-2", ACCT, "10", "s1"), "DUPLICATE_TRANSFER")
    assert cash(b) == 10 * USDC


def test_transfer_id_reused_with_another_amount_is_a_conflict():
    b = shard_engine(0)
    assert b.account_input(transfer_in("t-3", ACCT, "10", "s1")).sequenced
    refused(b, transfer_in("t-3", ACCT, "11", "s1"), "TRANSFER_CONFLICT")


@pytest.mark.parametrize("msg, code", [
    (transfer_out("", ACCT, "1", "s2"), "INVALID_TRANSFER"),
    (transfer_out("t/4", ACCT, "1", "s2"), "INVALID_TRANSFER"),
    (transfer_out("t-4", ACCT, "1", ""), "INVALID_TRANSFER"),
    (transfer_out("t-4", 9999, "1", "s2"), "UNKNOWN_ACCOUNT"),
    (transfer_out("t-4", ACCT, "-1", "s2"), "INVALID_AMOUNT"),
    (transfer_out("t-4", ACCT, "0.0000001", "s2"), "INVALID_AMOUNT"),
])
def test_bad_transfer_leg_is_refused_with_its_code_and_journals_nothing(msg, code):
    refused(shard_engine(1000 * USDC), msg, code)


def test_frozen_account_cannot_move_cash_out():
    from matching.messages import AccountInput
    a = shard_engine(1000 * USDC)
    assert a.account_input(AccountInput("freeze", account=ACCT)).sequenced
    refused(a, transfer_out("t-5", ACCT, "1", "s2"), "ACCOUNT_FROZEN")


def test_coordinator_refuses_a_transfer_to_the_same_shard():
    a = shard_engine(1000 * USDC)
    with pytest.raises(TransferFailed, match="INVALID_TRANSFER"):
        ShardTransferCoordinator({"s1": a}).move_cash("t-6", ACCT, "1", "s1", "s1")
    assert cash(a) == 1000 * USDC


def test_replay_and_snapshot_of_transfer_legs_reproduce_the_state_hash(tmp_path):
    journal = Journal(tmp_path / "a.journal", fsync="none")
    a = shard_engine(1000 * USDC, journal=journal)
    snapshot, snapshot_seq = a.snapshot(), a.seq
    b = shard_engine(0)
    coord = ShardTransferCoordinator({"s1": a, "s2": b})
    coord.move_cash("t-7", ACCT, "100", "s1", "s2")
    assert b.account_input(transfer_out("t-8", ACCT, "40", "s1")).sequenced
    assert a.account_input(transfer_in("t-8", ACCT, "40", "s2")).sequenced
    a.commit()
    fresh = Engine.from_snapshot(golden.registry(), snapshot, clock=a.clock)
    recovery.replay(fresh, read_journal(tmp_path / "a.journal", after_seq=snapshot_seq))
    assert fresh.state_hash() == a.state_hash()
    assert fresh.accounts_admin.transfers.state_doc() == a.accounts_admin.transfers.state_doc()
    restored = Engine.from_snapshot(golden.registry(), a.snapshot(), clock=a.clock)
    assert restored.state_hash() == a.state_hash()
    journal.close()


CRASH = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from tests.shards.test_cash_transfers import open_shards
    from matching.transfers import ShardTransferCoordinator
    engines = open_shards({data!r})
    def die(_tid):
        os.kill(os.getpid(), signal.SIGKILL)       # out is durable, in never sent
    ShardTransferCoordinator(engines, after_out=die).move_cash(
        "t-kill", {acct}, "300", "s1", "s2")
""")


def open_shards(data: str) -> dict[str, Engine]:
    """Both shards' engines on their data directories (founded, or recovered)."""
    funds = {"s1": 1000 * USDC, "s2": 0}
    return {sid: recovery.open_engine(Engine, Path(data) / sid, golden.registry(),
                                      new_ledger=lambda u=units: allocation_ledger(u),
                                      fsync="group")[0]
            for sid, units in funds.items()}


def test_kill_between_the_halves_is_completed_on_restart_never_lost_never_doubled(tmp_path):
    proc = subprocess.run([sys.executable, "-c", CRASH.format(root=str(ROOT), data=str(tmp_path),
                                                              acct=ACCT)],
                          cwd=ROOT, capture_output=True, timeout=60, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    engines = open_shards(str(tmp_path))
    a, b = engines["s1"], engines["s2"]
    assert cash(a) == 700 * USDC and cash(b) == 0      # out durable: reserved, not lost
    coord = ShardTransferCoordinator(engines)
    assert coord.complete_pending() == ["t-kill"]
    assert cash(a) + cash(b) == 1000 * USDC and cash(b) == 300 * USDC
    assert coord.complete_pending() == []               # done once
    coord.move_cash("t-kill", ACCT, "300", "s1", "s2")  # a retry of the whole move: no-op
    assert cash(a) == 700 * USDC and cash(b) == 300 * USDC
    for engine in engines.values():
        engine.close()
    assert os.path.isdir(tmp_path / "s1")

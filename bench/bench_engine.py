"""The engine (risk, ledger, FIX reports, journal) against the bare core, in one run.

Reproduce:  .venv/bin/python -m pytest bench/bench_engine.py --benchmark-only
            TOKENBOOK_RECOVERY_N=1000000 ... for recovery of a 1M-input journal.
The same order flow (adds, cancels, crossing orders on one bill) goes through the full
engine with a group-committed journal and through a bare core book; ``extra_info``
keeps both rates and their ratio. No timing is asserted.
"""
from __future__ import annotations

import os
import random
import time
from datetime import UTC, datetime

from matching._core import Book
from matching.engine import _JOURNAL_ENCODER, Engine
from matching.instruments import Registry
from matching.journal import Journal
from matching.ledger import CASH, Ledger
from matching.messages import JournalEntry, NewOrderSingle, OrderCancelRequest

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
REG = Registry.load_default()
SYMBOL = "TB3M"
N = 20_000


def _ledger(n_accounts=20, symbol: str = SYMBOL):
    led = Ledger()
    for a in range(1, n_accounts + 1):
        led.open_account(a, f"b{a % 4}")
        led.deposit(a, CASH, 10**16)
        led.deposit(a, symbol, 10**12)
        led.whitelist(a, symbol)
    return led


def _flow(n: int, seed: int = 7, symbol: str = SYMBOL):
    """(broker, message, core command) triples: 60% passive adds, 25% cancels, 15% takers."""
    rng = random.Random(seed)
    inst = REG[symbol]
    ref = inst.reference_ticks()
    live: list[tuple[str, str, int]] = []
    out = []
    oid = 0
    for i in range(n):
        r = rng.random()
        if r < 0.25 and live:
            broker, cl, core_id = live.pop(rng.randrange(len(live)))
            out.append((broker, OrderCancelRequest(f"x{i}", cl, symbol), ("cancel", core_id)))
            continue
        acct = rng.randint(1, 20)
        broker = f"b{acct % 4}"
        side = "buy" if rng.random() < 0.5 else "sell"
        passive = r < 0.85
        off = rng.randint(1, 30) if passive else -rng.randint(0, 5)
        ticks = ref - off if side == "buy" else ref + off
        lots = 100 * rng.randint(1, 50)
        oid += 1
        cl = f"o{i}"
        msg = NewOrderSingle(cl, acct, symbol, side, str(inst.lots_to_qty(lots)),
                             price=str(inst.ticks_to_price(ticks)),
                             time_in_force="gtc" if passive else "ioc", stp="none")
        out.append((broker, msg, ("new", oid, 1 if side == "buy" else 2, ticks, lots,
                                  1 if passive else 3)))
        if passive:
            live.append((broker, cl, oid))
    return out


def run_engine(flow, journal_dir=None):
    journal = Journal(os.path.join(journal_dir, "j.log")) if journal_dir else None
    eng = Engine(REG, _ledger(), clock=lambda: T0, journal=journal)
    t0 = time.perf_counter()
    for i, (broker, msg, _) in enumerate(flow):
        eng.submit(broker, msg)
        if journal and i % 1000 == 999:
            eng.commit()                          # group commit, as the gateway does per cycle
    eng.commit()
    return time.perf_counter() - t0, eng


def run_journal_only(flow, journal_dir):
    """Only the engine's journaling of the same inputs (encode, frame, group commit every
    1000): the part of the engine's cost that durability alone sets."""
    journal = Journal(os.path.join(journal_dir, "jo.log"))
    t0 = time.perf_counter()
    for i, (broker, msg, _) in enumerate(flow):
        journal.append(i + 1, _JOURNAL_ENCODER.encode(JournalEntry(i + 1, T0, broker, msg)))
        if i % 1000 == 999:
            journal.commit()
    journal.commit()
    seconds = time.perf_counter() - t0
    journal.close()
    return seconds


def budget(core_s: float, journal_s: float, engine_s: float, n: int) -> dict:
    """Per input, in us: what the 0.25 target leaves for everything but the core call and
    the journal (risk, ledger, FIX reports, dedup), beside what the engine spends on it."""
    return {"core_us": core_s / n * 1e6, "journal_us": journal_s / n * 1e6,
            "engine_own_us": (engine_s - core_s - journal_s) / n * 1e6,
            "target_leaves_us": (core_s / 0.25 - core_s - journal_s) / n * 1e6}


def run_core(flow):
    lo, n = REG[SYMBOL].ladder()
    book = Book(lo, n)
    calls = [c for _, _, c in flow]
    t0 = time.perf_counter()
    for c in calls:
        if c[0] == "new":
            book.new_order(c[1], c[2], c[3], c[4], tif=c[5])
        else:
            book.cancel(c[1])
        book.take_events()
    return time.perf_counter() - t0


def test_engine_with_journal_vs_bare_core(benchmark, tmp_path):
    flow = _flow(N)
    core_s = min(run_core(flow) for _ in range(3))
    seconds, eng = benchmark.pedantic(run_engine, args=(flow, str(tmp_path)), rounds=1,
                                      warmup_rounds=0)
    assert eng.seq == N
    # The core's figure is a best of 3; so is the engine's (each run on a new journal).
    for k in range(2):
        os.makedirs(tmp_path / f"e{k}")
        seconds = min(seconds, run_engine(flow, str(tmp_path / f"e{k}"))[0])
    # The same engine without a journal isolates what durability costs.
    bare_engine_s = min(run_engine(flow)[0] for _ in range(2))
    benchmark.extra_info["engine_inputs_per_s"] = int(N / seconds)
    benchmark.extra_info["engine_no_journal_inputs_per_s"] = int(N / bare_engine_s)
    benchmark.extra_info["journal_keeps"] = round(bare_engine_s / seconds, 4)
    benchmark.extra_info["core_commands_per_s"] = int(N / core_s)
    benchmark.extra_info["engine_over_core"] = round(core_s / seconds, 4)
    journal_s = float("inf")
    for k in range(3):                            # best of 3, each on a new journal
        os.makedirs(tmp_path / f"j{k}")
        journal_s = min(journal_s, run_journal_only(flow, str(tmp_path / f"j{k}")))
    for key, us in budget(core_s, journal_s, seconds, N).items():
        benchmark.extra_info[key] = round(us, 3)


def test_recovery_time(benchmark, tmp_path):
    n = int(os.environ.get("TOKENBOOK_RECOVERY_N", "50000"))
    flow = _flow(n, seed=11)
    _, eng = run_engine(flow, str(tmp_path))
    snaps = tmp_path / "snaps"
    # Snapshot at 0 (the starting balances), then recover by replaying all n inputs.
    from matching.journal import write_snapshot
    fresh = Engine(REG, _ledger(), clock=lambda: T0)
    write_snapshot(snaps, 0, fresh.snapshot())

    def recover():
        return Engine.recover(REG, snapshot_dir=snaps, journal_path=tmp_path / "j.log",
                              clock=lambda: T0)
    rec = benchmark.pedantic(recover, rounds=1, warmup_rounds=0)
    assert rec.state_hash() == eng.state_hash()
    benchmark.extra_info["inputs_replayed"] = n
    benchmark.extra_info["recovery_inputs_per_s"] = int(n / benchmark.stats.stats.median)

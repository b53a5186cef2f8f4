"""Orders/s of a venue whose instruments are sharded over 1 vs 2 engine processes.

Reproduce:  .venv/bin/python -m bench.bench_shards [--orders 40000]
            .venv/bin/python -m pytest bench/bench_shards.py --benchmark-only
Each shard is its own process with its own engine (risk, ledger, FIX reports) and its own
group-committed file journal, serving its own bill (TB3M, TB6M): the partitioning of
``feeds.shard``, where nothing is shared between shards but the MQTT broker. Every shard
takes the same flow (60% passive adds, 25% cancels, 15% takers) of ``--orders`` inputs;
the rate is all shards' inputs over the wall time from the first start to the last end
(one monotonic clock). The machine has 2 cores, so 2 is the most shards that can grow the
rate. What this does not measure: the MQTT hop (each shard's gateway on the embedded
broker), which is one more process per shard competing for the same 2 cores.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import tempfile
import time
from datetime import UTC, datetime

from bench.bench_engine import _flow, _ledger
from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import Journal

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
SHARD_SYMBOLS = ("TB3M", "TB6M")
N = 40_000


def shard_flow(symbol: str, n: int, seed: int = 7) -> list:
    """``(broker, message)`` pairs on one symbol: the engine bench's flow (passive adds,
    cancels, crossing IOCs), so one shard's figure compares with ``bench_engine``'s."""
    return [(broker, msg) for broker, msg, _ in _flow(n, seed, symbol)]


def _shard_main(symbol: str, n: int, journal_dir: str, start, results) -> None:
    """One shard process: build its engine and flow, wait for the start, run, report."""
    registry = Registry.load_default()
    flow = shard_flow(symbol, n)
    journal = Journal(os.path.join(journal_dir, f"{symbol}.journal"))
    engine = Engine([registry[symbol]], _ledger(symbol=symbol), clock=lambda: T0,
                    journal=journal)
    engine.admin("open", symbol)
    opened = engine.seq                    # the session's open is not an order
    start.wait()
    t0 = time.monotonic()
    for i, (broker, msg) in enumerate(flow):
        engine.submit(broker, msg)
        if i % 1000 == 999:
            engine.commit()                # group commit, as the gateway does per cycle
    engine.commit()
    results.put((symbol, t0, time.monotonic(), engine.seq - opened))
    journal.close()


def run_sharded(n_shards: int, n: int) -> dict:
    """All shards' inputs per second of wall time, for ``n_shards`` processes."""
    ctx = mp.get_context("fork")
    start, results = ctx.Event(), ctx.Queue()
    with tempfile.TemporaryDirectory() as tmp:
        procs = [ctx.Process(target=_shard_main, args=(s, n, tmp, start, results))
                 for s in SHARD_SYMBOLS[:n_shards]]
        for p in procs:
            p.start()
        time.sleep(0.2)
        start.set()
        rows = [results.get(timeout=600) for _ in procs]
        for p in procs:
            p.join(timeout=60)
    inputs = sum(r[3] for r in rows)
    wall = max(r[2] for r in rows) - min(r[1] for r in rows)
    return {"shards": n_shards, "inputs": inputs, "seconds": wall,
            "inputs_per_s": int(inputs / wall)}


def test_orders_per_s_with_one_and_two_shards(benchmark):
    one = run_sharded(1, N)
    two = benchmark.pedantic(run_sharded, args=(2, N), rounds=1, warmup_rounds=0)
    assert one["inputs"] == N and two["inputs"] == 2 * N     # every input sequenced
    benchmark.extra_info["one_shard_inputs_per_s"] = one["inputs_per_s"]
    benchmark.extra_info["two_shards_inputs_per_s"] = two["inputs_per_s"]
    benchmark.extra_info["two_over_one"] = round(two["inputs_per_s"] / one["inputs_per_s"], 3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_shards",
                                 description="orders/s with 1 and 2 engine shards")
    ap.add_argument("--orders", type=int, default=N, help="inputs per shard")
    ap.add_argument("--repeat", type=int, default=3, help="runs per shard count (best kept)")
    args = ap.parse_args(argv)
    best = {}
    for n_shards in (1, 2):
        runs = [run_sharded(n_shards, args.orders) for _ in range(args.repeat)]
        best[n_shards] = max(runs, key=lambda r: r["inputs_per_s"])
        r = best[n_shards]
        print(f"{n_shards} shard(s): {r['inputs']} inputs in {r['seconds']:.3f} s = "
              f"{r['inputs_per_s']} inputs/s (best of {args.repeat}, {os.cpu_count()} cores)")
    print(f"2 shards / 1 shard: {best[2]['inputs_per_s'] / best[1]['inputs_per_s']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())

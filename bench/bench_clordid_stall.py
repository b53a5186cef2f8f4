"""The longest single ClOrdID bind, and all binds' time, over a day of ClOrdIDs.

    .venv/bin/python -m bench.bench_clordid_stall [--keys 1500000] [--runs 1]

Binds ``keys`` fresh ClOrdIDs (one broker, 12-character ids, as the soak's and
``bench_clordid_memory``'s) to sequential order ids through ``ClOrdIdMemory.bind``, timing
each call alone (``perf_counter_ns``; the id string is built outside the timed call), and
prints one line per run: the worst bind on the wall and in CPU time and the key number
each happened at, the binds over 1 ms, the total of the timed binds and an untimed day's
total. A stop-the-world rehash shows as one worst bind of tens
of ms; run it on two checkouts, interleaved, to compare.
"""
from __future__ import annotations

import argparse
import gc
import time

from matching.clordid import ClOrdIdMemory


def run(keys: int) -> dict:
    """One day of ``keys`` binds: the worst bind's wall time (and at which key) and its
    CPU time (``thread_time_ns``: a bind the scheduler preempted on this shared host is
    slow on the wall, not in CPU; a page fault or an unmap is slow in both), the binds
    over 1 ms of wall, the sum of the timed binds, and then a second index's binds
    untimed (the whole loop, the ids' formatting included)."""
    mem = ClOrdIdMemory(100)
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    worst = worst_at = worst_cpu = worst_cpu_at = over = total = 0
    for oid in range(1, keys + 1):
        cl = f"S{oid:011d}"
        c0 = cpu()
        t0 = wall()
        mem.bind("soak", cl, oid)
        dt = wall() - t0
        dc = cpu() - c0
        total += dt
        if dt > worst:
            worst, worst_at = dt, oid
        if dc > worst_cpu:
            worst_cpu, worst_cpu_at = dc, oid
        if dt > 1_000_000:
            over += 1
    assert mem.order_of("soak", f"S{keys:011d}") == keys
    assert mem.order_of("soak", "S00000000001") == 1
    del mem
    mem = ClOrdIdMemory(100)
    t0 = wall()
    for oid in range(1, keys + 1):
        mem.bind("soak", f"S{oid:011d}", oid)
    untimed = wall() - t0
    return {"worst": worst, "at": worst_at, "worst_cpu": worst_cpu, "cpu_at": worst_cpu_at,
            "over": over, "total": total, "untimed": untimed}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_clordid_stall")
    ap.add_argument("--keys", type=int, default=1_500_000)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args(argv)
    gc.disable()            # a collection inside a timed bind is not the index's cost
    for _ in range(args.runs):
        r = run(args.keys)
        print(f"ClOrdID binds: {args.keys:,} keys, worst {r['worst'] / 1e6:.3f} ms at key "
              f"{r['at']:,} (CPU: worst {r['worst_cpu'] / 1e6:.3f} ms at key {r['cpu_at']:,}), "
              f"{r['over']} over 1 ms, timed total {r['total'] / 1e9:.3f} s, "
              f"untimed {r['untimed'] / 1e9:.3f} s ({r['untimed'] / args.keys:.0f} ns a bind)")
        gc.collect()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Core vs reference on the conformance flows, as ratios measured in one run.

Reproduce:  .venv/bin/python -m pytest bench/bench_core.py --benchmark-only
Each benchmark stores ``commands_per_s`` (and ratios) in its ``extra_info``; run with
``--benchmark-json out.json`` to keep them. No timing is asserted: the machine is shared.
"""
from __future__ import annotations

import time

from bench.replay import LADDER, replay_batch, replay_per_command
from matching.book import make_book
from testkit.flow import digest

CHUNK = 8192
KNOWN_1M = (481243, 95850735, "81184154fbdc10d3")
KNOWN_100K = (27565, 5433276, "250ec1376f23ee9d")


def _run(engine, flow, path=replay_batch):
    book = make_book(engine, *LADDER)
    trades, seconds = path(book, flow, CHUNK)
    return book, trades, seconds


def test_core_batch_1m(benchmark, flow_1m):
    """The batch path on 1M commands (target: at least 5M commands/s)."""
    result = benchmark.pedantic(_run, args=("core", flow_1m), rounds=5, warmup_rounds=1)
    _book, trades, seconds = result
    assert digest(trades) == KNOWN_1M
    benchmark.extra_info["commands_per_s"] = int(len(flow_1m) / benchmark.stats.stats.median)
    benchmark.extra_info["book_seconds_last_round"] = seconds


def test_core_per_command_1m(benchmark, flow_1m):
    """One Python call per command (target: at least 1M commands/s)."""
    result = benchmark.pedantic(_run, args=("core", flow_1m, replay_per_command), rounds=3,
                                warmup_rounds=0)
    _book, trades, seconds = result
    assert digest(trades) == KNOWN_1M
    benchmark.extra_info["commands_per_s_book_only"] = int(len(flow_1m) / seconds)


def test_core_vs_reference_100k(benchmark, flow_100k):
    """The same 100k flow through both books; the ratio is the figure that travels."""
    t0 = time.perf_counter()
    _, ref_trades, ref_seconds = _run("reference", flow_100k)
    assert digest(ref_trades) == KNOWN_100K
    _, core_trades, _ = benchmark.pedantic(_run, args=("core", flow_100k), rounds=5,
                                           warmup_rounds=1)
    assert digest(core_trades) == KNOWN_100K
    core_median = benchmark.stats.stats.median
    benchmark.extra_info["reference_commands_per_s"] = int(len(flow_100k) / ref_seconds)
    benchmark.extra_info["core_commands_per_s"] = int(len(flow_100k) / core_median)
    benchmark.extra_info["core_over_reference"] = round(ref_seconds / core_median, 1)
    benchmark.extra_info["reference_wall_s"] = round(time.perf_counter() - t0, 2)


def test_memory_per_resting_order(benchmark):
    """Bytes of pool + id index per resting order with 1M orders resting (budget: 96)."""
    def fill():
        book = make_book("core", 0, 1 << 16)
        for i in range(1, 1_000_001):
            sell = i & 1   # bids at 20,000+ and asks at 30,000+ never cross
            book.new_order(i, 2 if sell else 1, (30_000 if sell else 20_000) + i % 500, 10)
            if i % 65536 == 0:
                book.take_event_array()
        return book
    book = benchmark.pedantic(fill, rounds=1, warmup_rounds=0)
    per_order = book.memory_bytes()["orders"] / len(book)
    benchmark.extra_info["bytes_per_resting_order"] = round(per_order, 1)
    assert len(book) == 1_000_000
    assert per_order <= 96

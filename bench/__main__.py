"""Every tokenbook benchmark in one sitting: ``python -m bench [--quick] [--out DIR]``.

Runs, on this machine, in one process: the core (batch and per-command) and the reference
on the conformance flow, memory per resting order, scaling with resting orders, price
levels and instruments, the engine with risk and journal, journal recovery, and the
gateway end to end beside the raw MQTT round trip, then over resting books of 3k and 100k
orders (that load generator in a child process), then the gateway against the native MQTT
ceiling (C libmosquitto clients, ``bench.native``; "not run" without libmosquitto-dev).
Each figure is the median of several runs; comparisons are ratios from this run. Writes
``report.md`` and PNG plots to DIR (default bench/results). ``--quick`` finishes in about
a minute (the native MQTT part ~30 s of it).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from bench import bench_engine, bench_gateway, bench_scaling
from bench.replay import LADDER, replay_batch, replay_per_command
from bench.report import write_plots, write_report
from matching._core import Book
from matching.book import make_book
from matching.constants import Op
from matching.records import COMMAND_DTYPE
from testkit.flow import digest, load_flow

GEN = Path(os.environ.get("TOKENBOOK_GEN",
                          Path(__file__).resolve().parents[2] / "shared/conformance/gen.py"))
CACHE = Path(__file__).resolve().parents[1] / ".cache"


def flow(n: int, seed: int) -> np.ndarray:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"flow-{n}-{seed}.csv"
    if not path.exists() or path.stat().st_size == 0:
        if not GEN.exists():
            sys.exit(f"conformance generator missing at {GEN}; set TOKENBOOK_GEN")
        with open(path, "w") as out:
            subprocess.run([sys.executable, str(GEN), str(n), str(seed)], stdout=out, check=True)
    return load_flow(path)


def median_time(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def core_figures(cfg, R):
    commands = flow(cfg.n_flow, cfg.seed)
    n = len(commands)
    secs, (book, trades, _) = median_time(
        lambda: (lambda b: (b, *replay_batch(b, commands, 8192)))(make_book("core", *LADDER)),
        cfg.runs)
    R["flow"] = {"commands": n, "digest": digest(trades), "resting": len(book)}
    R["core_batch"] = {"commands_per_s": n / secs, "ns_per_command": secs / n * 1e9}
    secs_pc, _ = median_time(lambda: replay_per_command(make_book("core", *LADDER), commands,
                                                        8192), max(1, cfg.runs // 2))
    R["core_per_command"] = {"commands_per_s": n / secs_pc, "ns_per_command": secs_pc / n * 1e9}
    ref_cmds = commands[:cfg.n_reference]
    core_s, _ = median_time(lambda: replay_batch(make_book("core", *LADDER), ref_cmds, 8192),
                            cfg.runs)
    ref_s, _ = median_time(lambda: replay_batch(make_book("reference", *LADDER), ref_cmds,
                                                8192), 1)
    R["reference"] = {"commands": len(ref_cmds), "commands_per_s": len(ref_cmds) / ref_s,
                      "core_commands_per_s": len(ref_cmds) / core_s, "ratio": ref_s / core_s}


def memory_figure(cfg, R):
    n = cfg.n_memory
    book = Book(0, 1 << 16)
    ids = np.arange(1, n + 1)
    arr = np.zeros(n, dtype=COMMAND_DTYPE)
    sell = ids & 1
    arr["op"], arr["order_id"], arr["side"] = Op.NEW, ids, np.where(sell, 2, 1)
    arr["ord_type"], arr["tif"], arr["qty"] = 2, 1, 10
    arr["price"] = np.where(sell, 30_000, 20_000) + ids % 500
    for s in range(0, n, 65536):
        book.process(arr[s:s + 65536])
    R["memory"] = {"resting": len(book),
                   "bytes_per_order": book.memory_bytes()["orders"] / len(book)}


def scaling_figures(cfg, R):
    R["scaling_orders"] = [(n, bench_scaling._cost(n, 1000, rounds=cfg.runs))
                           for n in cfg.scaling_sizes]
    R["scaling_levels"] = [(lv, bench_scaling._cost(min(100_000, cfg.scaling_sizes[-1]), lv,
                                                    rounds=cfg.runs))
                           for lv in (10, 100, 1_000, 10_000, 50_000)]
    R["scaling_instruments"] = [(k, instruments_cost(k, cfg)) for k in (1, 4, 16, 64)]
    small, large = R["scaling_orders"][0][1], R["scaling_orders"][-1][1]
    growth = large / small
    size_ratio = cfg.scaling_sizes[-1] / cfg.scaling_sizes[0]
    # Flag growth beyond a log factor: O(log n) would grow about log2(size ratio) times.
    R["scaling_flag"] = growth > max(4.0, np.log2(size_ratio))
    R["scaling_growth"] = growth


def instruments_cost(k: int, cfg) -> float:
    """ns per command when the conformance flow is spread over ``k`` books by order id."""
    commands = flow(cfg.n_flow, cfg.seed)[:200_000]
    parts = [commands[commands["order_id"] % k == i] for i in range(k)]
    best = float("inf")
    for _ in range(cfg.runs):
        books = [Book(*LADDER) for _ in range(k)]
        t0 = time.perf_counter()
        for start in range(0, max(len(p) for p in parts), 8192 // k + 1):
            for b, p in zip(books, parts, strict=True):
                b.process(p[start:start + 8192 // k + 1])
        best = min(best, time.perf_counter() - t0)
    return best / len(commands) * 1e9


def engine_figures(cfg, R):
    f = bench_engine._flow(cfg.n_engine)
    core_s = min(bench_engine.run_core(f) for _ in range(cfg.runs))
    # The same statistic for every figure (best of cfg.runs), each run on a new journal.
    eng_runs = []
    for _ in range(cfg.runs):
        with tempfile.TemporaryDirectory() as d:
            eng_runs.append(bench_engine.run_engine(f, d)[0])
    eng_s = min(eng_runs)
    bare_s = min(bench_engine.run_engine(f)[0] for _ in range(cfg.runs))
    journal_s = []
    for _ in range(cfg.runs):
        with tempfile.TemporaryDirectory() as d:
            journal_s.append(bench_engine.run_journal_only(f, d))
    R["engine"] = {"inputs": len(f), "inputs_per_s": len(f) / eng_s,
                   "no_journal_per_s": len(f) / bare_s, "journal_keeps": bare_s / eng_s,
                   "core_per_s": len(f) / core_s, "ratio": core_s / eng_s,
                   **bench_engine.budget(core_s, min(journal_s), eng_s, len(f))}
    with tempfile.TemporaryDirectory() as d:
        from matching.engine import Engine
        from matching.journal import write_snapshot
        rf = bench_engine._flow(cfg.n_recovery, seed=11)
        _, live = bench_engine.run_engine(rf, d)
        fresh = Engine(bench_engine.REG, bench_engine._ledger(), clock=lambda: bench_engine.T0)
        write_snapshot(Path(d) / "snaps", 0, fresh.snapshot())
        t0 = time.perf_counter()
        rec = Engine.recover(bench_engine.REG, snapshot_dir=Path(d) / "snaps",
                             journal_path=Path(d) / "j.log", clock=lambda: bench_engine.T0)
        secs = time.perf_counter() - t0
        R["recovery"] = {"inputs": len(rf), "seconds": secs, "inputs_per_s": len(rf) / secs,
                         "hash_equal": rec.state_hash() == live.state_hash()}


def gateway_figures(cfg, R):
    lat: dict = {}
    R["gateway"] = asyncio.run(bench_gateway.measure(cfg.n_gateway, lat))
    R["gateway_resting"] = asyncio.run(bench_gateway.measure_resting(n=cfg.n_gateway))
    R["latencies"] = {k: [x * 1e3 for x in v] for k, v in lat.items()}


def native_figures(cfg, R):
    from bench import native
    R["mqtt_native"] = native.measure(native.QUICK if cfg.quick else native.FULL)


def machine() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}


class Config(argparse.Namespace):
    pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    cfg = ap.parse_args(argv, namespace=Config())
    quick = cfg.quick
    cfg.seed = 7 if quick else 42
    cfg.n_flow = 100_000 if quick else 1_000_000
    cfg.n_reference = 20_000 if quick else 1_000_000
    cfg.n_memory = 100_000 if quick else 1_000_000
    cfg.scaling_sizes = [1_000, 10_000, 100_000] if quick else [1_000, 10_000, 100_000,
                                                                1_000_000]
    cfg.n_engine = 5_000 if quick else 20_000
    cfg.n_recovery = 10_000 if quick else 100_000
    cfg.n_gateway = 1_000 if quick else 3_000
    cfg.runs = 3 if quick else 5
    R: dict = {"machine": machine(), "quick": quick,
               "command": "python -m bench" + (" --quick" if quick else "")}
    steps = [("core and reference on the conformance flow", core_figures),
             ("memory per resting order", memory_figure),
             ("scaling: orders, levels, instruments", scaling_figures),
             ("engine with journal, and recovery", engine_figures),
             ("gateway end to end and raw MQTT", gateway_figures),
             ("MQTT against the native ceiling", native_figures)]
    console = Console()
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("benchmarks", total=len(steps))
        for name, step in steps:
            progress.update(task, description=name)
            step(cfg, R)
            progress.advance(task)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    plots = write_plots(R, out)
    report = write_report(R, out, plots)
    console.print(f"report: {report}")
    console.print(report.read_text(), markup=False, highlight=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

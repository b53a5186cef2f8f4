"""The floor experiment (see floor_engine.pyx): ``python -m bench.floor``.

Builds floor_engine.pyx on the fly (pyximport), runs the engine benchmark's flow through
it, the real engine and the bare core in one process, and prints each one's time per
input split like ``bench_engine``. It first checks the floor engine does the same
matching work as the real one (same trades, same resting book): a floor that skipped
work would prove nothing.
"""
import os
import sys
import tempfile
import time

import pyximport

from bench import bench_engine as be
from matching._core import Book
from matching.economics import Economics
from matching.engine import _Conversions
from matching.journal import Journal

pyximport.install(language_level=3, build_dir=os.path.join(tempfile.gettempdir(), "tokenbook-floor"))
from bench.floor.floor_engine import FloorEngine  # noqa: E402

N = be.N


def run_floor(flow, journal_dir=None, records=False):
    inst = be.REG[be.SYMBOL]
    lo, n = inst.ladder()
    journal = Journal(os.path.join(journal_dir, "f.log")) if journal_dir else None
    band_lo, band_hi = inst.band_ticks(inst.reference_ticks())
    eng = FloorEngine(Book(lo, n), journal, Economics(inst), _Conversions(inst), be.SYMBOL,
                      be.N, 20, band_lo, band_hi, be.T0, records)
    t0 = time.perf_counter()
    for i, (broker, msg, _) in enumerate(flow):
        eng.submit(broker, msg)
        if journal and i % 1000 == 999:
            journal.commit()
    if journal:
        journal.commit()
    seconds = time.perf_counter() - t0
    if journal:
        journal.close()
    return seconds, eng


def engine_outputs(flow, run):
    """(reports, trades, levels, resting book) of one engine on ``flow``."""
    reports, trades, levels = [], [], []
    _, eng = run(flow[:0])
    for broker, msg, _ in flow:
        out = eng.submit(broker, msg)
        reports += [(b, r.exec_type, r.cl_ord_id, r.order_id, r.price, r.cum_qty,
                     r.leaves_qty, r.last_px, r.last_qty) for b, r in out.reports]
        trades += [(t.trade_id, t.price_ticks, t.qty_lots, t.aggressor) for t in out.trades]
        levels += [(lv.side, lv.price_ticks, lv.qty_lots, lv.count) for lv in out.levels]
    book = eng.book if isinstance(eng, FloorEngine) else eng.books[be.SYMBOL]
    return reports, trades, levels, book.resting_orders()


def main() -> int:
    flow = be._flow(N)
    # Same matching work: every report, trade and level change, and the resting book,
    # equal the real engine's on the fields both make; cash and tokens are conserved.
    floor, real = engine_outputs(flow, run_floor), engine_outputs(flow, be.run_engine)
    assert floor[0] == real[0] and floor[1] == real[1] and floor[2] == real[2], \
        "the floor engine does not do the engine's matching work"
    assert floor[3] == real[3], "the resting books differ"
    print(f"checked: {len(real[0]):,} reports, {len(real[1]):,} trades, "
          f"{len(real[2]):,} level changes and the resting book equal the engine's")
    print(f"{'':34}{'per input':>12}{'/ core':>9}")
    for k in range(3):
        core_s = min(be.run_core(flow) for _ in range(5))
        runs = {}
        for name, fn in (("engine + journal", lambda d: be.run_engine(flow, d)[0]),
                         ("floor engine + journal", lambda d: run_floor(flow, d)[0]),
                         ("floor, reports as int records", lambda d: run_floor(flow, d, True)[0])):
            best = float("inf")
            for _ in range(3):
                with tempfile.TemporaryDirectory() as d:
                    best = min(best, fn(d))
            runs[name] = best
        journal_s = float("inf")
        for _ in range(3):
            with tempfile.TemporaryDirectory() as d:
                journal_s = min(journal_s, be.run_journal_only(flow, d))
        print(f"sitting {k + 1}: core {core_s / N * 1e6:.2f} us, journal alone "
              f"{journal_s / N * 1e6:.2f} us")
        for name, s in runs.items():
            own = (s - core_s - journal_s) / N * 1e6
            print(f"  {name:32}{s / N * 1e6:9.2f} us{core_s / s:9.3f}   own work {own:.2f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())

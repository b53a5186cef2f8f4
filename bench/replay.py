"""Replay a conformance flow through a book and print its digest and speed.

    python -m bench.replay FLOW.csv --engine core|reference [--chunk N] [--per-command]

First line: ``trades=N traded_qty=N resting=N digest=HEX16`` (the format of
../shared/conformance/README.md); second: ``commands=N seconds=F commands_per_s=N``.
``seconds`` covers only the book's work (batch ``process`` calls, or the per-command
calls); reading the file and hashing the trades are outside it.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from matching.book import make_book
from matching.constants import EventType
from testkit.flow import digest, load_flow

#: A ladder wide enough for the conformance generator's prices (mid 10,000 ticks).
LADDER = (0, 1 << 15)


def replay_batch(book, commands: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
    """Feed ``commands`` in chunks through ``book.process``; returns trades and seconds."""
    trades = []
    elapsed = 0.0
    for start in range(0, len(commands), chunk):
        t0 = time.perf_counter()
        events = book.process(commands[start:start + chunk])
        elapsed += time.perf_counter() - t0
        trades.append(events[events["type"] == EventType.TRADE])
    return np.concatenate(trades) if trades else np.empty(0, events.dtype), elapsed


def replay_per_command(book, commands: np.ndarray, chunk: int) -> tuple[np.ndarray, float]:
    """Feed ``commands`` one Python call each (the gateway's path); events drained per chunk."""
    fields = ("op", "order_id", "side", "ord_type", "tif", "stp", "post_only", "account",
              "price", "qty", "min_qty", "expire_time")
    trades = []
    elapsed = 0.0
    for start in range(0, len(commands), chunk):
        part = commands[start:start + chunk]
        rows = list(zip(*(part[f].tolist() for f in fields), strict=True))
        submit = book.submit
        t0 = time.perf_counter()
        for row in rows:
            submit(*row)
        events = book.process(commands[:0])   # an empty batch drains the pending events
        elapsed += time.perf_counter() - t0
        trades.append(events[events["type"] == EventType.TRADE])
    return np.concatenate(trades), elapsed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.replay", description=__doc__.split("\n")[0])
    ap.add_argument("flow", help="CSV written by ../shared/conformance/gen.py")
    ap.add_argument("--engine", choices=("core", "reference"), default="core")
    ap.add_argument("--chunk", type=int, default=8192,
                    help="commands per batch call (small batches keep the event buffer in cache)")
    ap.add_argument("--per-command", action="store_true",
                    help="one Python call per command instead of the batch path")
    args = ap.parse_args(argv)

    commands = load_flow(args.flow)
    book = make_book(args.engine, *LADDER)
    run = replay_per_command if args.per_command else replay_batch
    trades, seconds = run(book, commands, args.chunk)
    n_trades, traded_qty, hex16 = digest(trades)
    print(f"trades={n_trades} traded_qty={traded_qty} resting={len(book)} digest={hex16}")
    rate = int(len(commands) / seconds) if seconds > 0 else 0
    print(f"commands={len(commands)} seconds={seconds:.3f} commands_per_s={rate}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How the core's cost per command grows with resting orders and with price levels.

Reproduce:  .venv/bin/python -m pytest bench/bench_scaling.py --benchmark-only
A book is filled with N resting orders spread over L levels per side, then a fixed mix
of 20k commands (adds, cancels of random resting orders, crossing IOCs) is timed. Each
case stores ``ns_per_command``; ``test_cost_grows_no_worse_than_log`` compares the
extremes in one run: from 1k to 1M resting orders the cost may not grow like n.
"""
from __future__ import annotations

import random
import time

import numpy as np
import pytest

from matching._core import Book
from matching.constants import Op, OrdType, Side, TimeInForce
from matching.records import COMMAND_DTYPE

MID = 100_000
MIX = 20_000


def _filled_book(n_orders: int, n_levels: int, seed: int = 1):
    rng = random.Random(seed)
    cmds = np.zeros(n_orders, dtype=COMMAND_DTYPE)
    sides = np.array([Side.BUY if i % 2 else Side.SELL for i in range(n_orders)])
    offs = np.array([rng.randrange(1, n_levels + 1) for _ in range(n_orders)])
    cmds["op"] = Op.NEW
    cmds["order_id"] = np.arange(1, n_orders + 1)
    cmds["side"] = sides
    cmds["ord_type"] = OrdType.LIMIT
    cmds["tif"] = TimeInForce.GTC
    cmds["price"] = np.where(sides == Side.BUY, MID - offs, MID + offs)
    cmds["qty"] = 10
    book = Book(0, 2 * MID)
    for start in range(0, n_orders, 65536):
        book.process(cmds[start:start + 65536])
    return book


def _mix(n_orders: int, n_levels: int, seed: int = 2):
    """Adds at random depth, cancels of random live orders, small crossing IOCs."""
    rng = random.Random(seed)
    cmds = np.zeros(MIX, dtype=COMMAND_DTYPE)
    next_id = n_orders + 1
    for i in range(MIX):
        r = rng.random()
        c = cmds[i]
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        if r < 0.45:
            off = rng.randrange(1, n_levels + 1)
            c["op"], c["order_id"], c["side"] = Op.NEW, next_id, side
            c["ord_type"], c["tif"] = OrdType.LIMIT, TimeInForce.GTC
            c["price"], c["qty"] = (MID - off if side == Side.BUY else MID + off), 10
            next_id += 1
        elif r < 0.9:
            c["op"], c["order_id"] = Op.CANCEL, rng.randrange(1, next_id)
        else:
            c["op"], c["order_id"], c["side"] = Op.NEW, next_id, side
            c["ord_type"], c["tif"] = OrdType.LIMIT, TimeInForce.IOC
            c["price"], c["qty"] = (MID + n_levels if side == Side.BUY else MID - n_levels), 5
            next_id += 1
    return cmds


SIZES = [1_000, 10_000, 100_000, 1_000_000]
RESULTS: dict[tuple[int, int], float] = {}


def _cost(n_orders: int, n_levels: int, rounds: int = 3) -> float:
    mix = _mix(n_orders, n_levels)
    best = float("inf")
    for _ in range(rounds):
        book = _filled_book(n_orders, n_levels)
        t0 = time.perf_counter()
        book.process(mix)
        best = min(best, time.perf_counter() - t0)
    return best / MIX * 1e9


@pytest.mark.parametrize("n_orders", SIZES)
def test_cost_per_command_vs_resting_orders(benchmark, n_orders):
    ns = benchmark.pedantic(_cost, args=(n_orders, 1000), rounds=1, warmup_rounds=0)
    RESULTS[(n_orders, 1000)] = ns
    benchmark.extra_info["ns_per_command"] = round(ns, 1)


@pytest.mark.parametrize("n_levels", [10, 1_000, 50_000])
def test_cost_per_command_vs_price_levels(benchmark, n_levels):
    ns = benchmark.pedantic(_cost, args=(100_000, n_levels), rounds=1, warmup_rounds=0)
    benchmark.extra_info["ns_per_command"] = round(ns, 1)


def test_cost_grows_no_worse_than_log(benchmark):
    """1000x more resting orders may cost cache misses, never 1000x (O(n)) per command."""
    small = RESULTS.get((1_000, 1000)) or _cost(1_000, 1000)
    large = RESULTS.get((1_000_000, 1000)) or _cost(1_000_000, 1000)
    benchmark.extra_info["growth_1k_to_1m"] = round(large / small, 2)
    benchmark.pedantic(lambda: None, rounds=1)
    assert large / small < 20, f"cost per command grew {large / small:.1f}x from 1k to 1M orders"

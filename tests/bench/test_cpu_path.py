"""``python -m bench.native.cpu_path``: the link gateway's in-process CPU per order."""
from __future__ import annotations

import asyncio

from bench.native import cpu_path


def test_cpu_path_runs_every_order_through_the_gateway_and_reports_its_cost():
    r = asyncio.run(cpu_path.measure(n=90, batch=30, resting=40, rounds=2))
    assert len(r["cpu_us"]) == 2 and r["cpu_us_min"] > 0
    assert r["cpu_us_min"] <= r["cpu_us_median"]
    # Each order makes at least its execution report; a third trade (fills, trades, md).
    assert r["published_per_order"] > 1.5
    assert 0 < r["writes_per_order"] < 1        # several publishes to a write
    assert r["orders_per_cycle"] >= 10


def test_generated_orders_cross_every_third():
    assert b'"side":"sell"' in cpu_path.order(2) and b'"ioc"' in cpu_path.order(5)
    assert b'"side":"buy"' in cpu_path.order(0) and b'"gtc"' in cpu_path.order(1)

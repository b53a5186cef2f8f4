"""Orders through the gateway vs the raw MQTT round trip of the same client and broker.

Reproduce:  .venv/bin/python -m pytest bench/bench_gateway.py --benchmark-only -s
            (or: .venv/bin/python -m bench.bench_gateway for a printed table)
Three phases on one private mosquitto, in one run:
1. raw ceiling: a publisher and an echo client, QoS 1 both ways, W messages in flight;
2. gateway peak: orders (passive limits on a bill) with W in flight, time to the New report;
3. gateway at half of that peak rate, paced: order-to-ack latency percentiles.
No timing is asserted.
"""
from __future__ import annotations

import asyncio
import json
import statistics
import time

import aiomqtt

from feeds import mqtt, topics
from feeds.broker import EmbeddedBroker
from feeds.gateway import Gateway
from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger

N = 3000
WINDOW = 100
V5 = aiomqtt.ProtocolVersion.V5


def _engine():
    reg = Registry.load_default()
    led = Ledger()
    led.open_account(1, "bench")
    led.deposit(1, CASH, 10**18)
    led.whitelist(1, "TB3M")
    return Engine(reg, led, clock=time.time_ns)


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


async def _drive(port, send_topic, recv_topic, payload_of, key_of, n, window, rate=None):
    """Send n messages, at most ``window`` unanswered (or paced at ``rate``/s); latencies."""
    sent: dict[str, float] = {}
    lat: list[float] = []
    done = asyncio.Event()
    free = asyncio.Semaphore(window)
    async with mqtt.client("127.0.0.1", port) as c:
        await c.subscribe(recv_topic, qos=1)

        async def receive():
            async for m in c.messages:
                k = key_of(m.payload)
                if k in sent:
                    lat.append(time.perf_counter() - sent.pop(k))
                    free.release()
                    if len(lat) == n:
                        done.set()
                        return
        rx = asyncio.create_task(receive())
        t0 = time.perf_counter()
        for i in range(n):
            await free.acquire()
            if rate:
                await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            k = f"k{i}"
            sent[k] = time.perf_counter()
            await c.publish(send_topic, payload_of(k), qos=1)
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - t0
        rx.cancel()
    return n / elapsed, lat


async def raw_ceiling(port, n=N, window=WINDOW, rate=None):
    async def echo(ready):
        async with mqtt.client("127.0.0.1", port) as e:
            await e.subscribe("bench/in", qos=1)
            ready.set()
            async for m in e.messages:
                await e.publish("bench/out", m.payload, qos=1)
    ready = asyncio.Event()
    task = asyncio.create_task(echo(ready))
    await ready.wait()
    try:
        return await _drive(port, "bench/in", "bench/out", lambda k: k.encode(),
                            lambda p: p.decode(), n, window, rate)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.05)          # let paho drop its socket callbacks before reuse


def _order(k):
    return json.dumps({"msg": "new_order", "cl_ord_id": k, "account": 1, "symbol": "TB3M",
                       "side": "buy", "qty": "0.01", "price": "98.000",
                       "time_in_force": "gtc"}).encode()


async def through_gateway(port, n=N, window=WINDOW, rate=None):
    gw = Gateway(_engine(), "127.0.0.1", port, client_id=f"bench-engine-{time.time_ns()}")
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    await gw.ready.wait()
    try:
        return await _drive(port, topics.orders("bench"), topics.exec_reports("bench"), _order,
                            lambda p: json.loads(p)["cl_ord_id"], n, window, rate)
    finally:
        stop.set()
        await task


async def measure(n: int = N, latencies: dict | None = None):
    """The three phases; ``latencies`` (if given) receives the raw and half-load samples."""
    with EmbeddedBroker() as b:
        raw_rate, raw_lat = await raw_ceiling(b.port, n=n)
        peak, peak_lat = await through_gateway(b.port, n=n)
        _half, half_lat = await through_gateway(b.port, n=n // 2, rate=peak / 2)
        _, raw_half_lat = await raw_ceiling(b.port, n=n // 2, rate=peak / 2)
    if latencies is not None:
        latencies.update(raw_half=raw_half_lat, half=half_lat)
    ms = 1e3
    return {
        "raw_round_trips_per_s": int(raw_rate),
        "raw_p50_ms": round(_pct(raw_lat, 50) * ms, 3),
        "gateway_orders_per_s": int(peak),
        "gateway_over_raw": round(peak / raw_rate, 3),
        "peak_p50_ms": round(_pct(peak_lat, 50) * ms, 3),
        "half_load_orders_per_s": int(peak / 2),
        "half_p50_ms": round(_pct(half_lat, 50) * ms, 3),
        "half_p99_ms": round(_pct(half_lat, 99) * ms, 3),
        "half_p999_ms": round(_pct(half_lat, 99.9) * ms, 3),
        "half_mean_ms": round(statistics.mean(half_lat) * ms, 3),
        "raw_at_same_rate_p50_ms": round(_pct(raw_half_lat, 50) * ms, 3),
        "raw_at_same_rate_p99_ms": round(_pct(raw_half_lat, 99) * ms, 3),
    }


def test_gateway_vs_raw_mqtt(benchmark):
    result = benchmark.pedantic(lambda: asyncio.run(measure()), rounds=1, warmup_rounds=0)
    benchmark.extra_info.update(result)
    print(result)
    assert result["gateway_orders_per_s"] > 0


if __name__ == "__main__":
    for k, v in asyncio.run(measure()).items():
        print(f"{k:24} {v}")

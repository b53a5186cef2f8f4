"""The raw MQTT round-trip ceiling: what aiomqtt + a private mosquitto can do with no engine.

Reproduce:  .venv/bin/python -m bench.bench_mqtt_raw [-n 20000] [--window 1 --window 64]
            (or: .venv/bin/python -m pytest bench/bench_mqtt_raw.py --benchmark-only -s)

A driver publishes N messages at QoS 1 to ``bench/<run>/in``; an echo client publishes
each one back at QoS 1 to ``bench/<run>/out``; the driver times every round trip from the
send timestamp carried in the payload (one clock, one process). Both hops go through the
broker, so one round trip = 4 MQTT messages plus their PUBACKs, like order in / report out
through the gateway. ``window`` messages are in flight at most: 1 gives the latency floor,
a larger window the throughput ceiling. The echo runs in its own process by default (as
the gateway would); ``--echo-inline`` puts it on the driver's event loop to show what
sharing one Python process costs. Reports round trips/s and p50/p99/p99.9/max latency.
No timing is asserted anywhere.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import platform
import struct
import subprocess
import sys
import time
import uuid

import aiomqtt

from feeds import mqtt
from feeds.broker import EmbeddedBroker, parse_broker_url

N = 20_000
WARMUP = 1_000
WINDOWS = (1, 64)
PAYLOAD = 100                  # bytes, about an order message
_HEAD = struct.Struct("<qq")   # sequence number, send time (perf_counter_ns)
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the echo's cwd


def _pct(sorted_xs: list[float], p: float) -> float:
    return sorted_xs[min(len(sorted_xs) - 1, int(p / 100 * len(sorted_xs)))]


def _client(host: str, port: int, window: int, name: str) -> aiomqtt.Client:
    # paho keeps 20 QoS 1 messages in flight by default: open it to the window.
    return mqtt.client(host, port, identifier=f"{name}-{uuid.uuid4().hex[:8]}",
                       max_inflight_messages=max(20, window))


async def echo(host: str, port: int, topic_in: str, topic_out: str, window: int,
               ready: asyncio.Event | None = None) -> None:
    """Publish every message of ``topic_in`` back on ``topic_out`` (QoS 1), pipelined."""
    async with _client(host, port, window, "echo") as e:
        await e.subscribe(topic_in, qos=1)
        if ready is not None:
            ready.set()
        else:
            print("ready", flush=True)
        pending: set[asyncio.Task] = set()
        async for m in e.messages:
            t = asyncio.create_task(e.publish(topic_out, m.payload, qos=1))
            pending.add(t)
            t.add_done_callback(pending.discard)


async def drive(host: str, port: int, topic_in: str, topic_out: str, n: int, window: int,
                payload: int) -> tuple[float, list[float]]:
    """Send n messages, at most ``window`` unanswered; (round trips/s, latencies in s)."""
    lat: list[float] = []
    free = asyncio.Semaphore(window)
    done = asyncio.Event()
    pad = b"x" * max(0, payload - _HEAD.size)
    async with _client(host, port, window, "driver") as c:
        await c.subscribe(topic_out, qos=1)

        async def receive():
            async for m in c.messages:
                _, sent = _HEAD.unpack_from(m.payload)
                lat.append((time.perf_counter_ns() - sent) / 1e9)
                free.release()
                if len(lat) == n:
                    done.set()
                    return

        rx = asyncio.create_task(receive())
        pending: set[asyncio.Task] = set()
        t0 = time.perf_counter()
        for i in range(n):
            await free.acquire()
            body = _HEAD.pack(i, time.perf_counter_ns()) + pad
            t = asyncio.create_task(c.publish(topic_in, body, qos=1))
            pending.add(t)
            t.add_done_callback(pending.discard)
        async with asyncio.timeout(120):
            await done.wait()
        elapsed = time.perf_counter() - t0
        rx.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
    return n / elapsed, lat


async def run_window(host: str, port: int, n: int, window: int, payload: int = PAYLOAD,
                     inline: bool = False, warmup: int = WARMUP) -> dict:
    """One measurement: a fresh echo (process or task), a warm-up, then n round trips."""
    run = uuid.uuid4().hex[:8]
    t_in, t_out = f"bench/{run}/in", f"bench/{run}/out"
    proc = task = None
    if inline:
        ready = asyncio.Event()
        task = asyncio.create_task(echo(host, port, t_in, t_out, window, ready))
        async with asyncio.timeout(10):
            await ready.wait()
    else:
        # Popen returns once the child is forked; its output is read off the loop below.
        proc = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "bench.bench_mqtt_raw", "--echo", f"mqtt://{host}:{port}",
             t_in, t_out, str(window)], stdout=subprocess.PIPE, cwd=_ROOT)
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 15)
        if line.strip() != b"ready":
            proc.kill()
            raise RuntimeError("echo process did not start")
    try:
        if warmup:
            await drive(host, port, t_in, t_out, warmup, window, payload)
        rate, lat = await drive(host, port, t_in, t_out, n, window, payload)
    finally:
        if task is not None:
            task.cancel()
        if proc is not None:
            proc.kill()
            proc.wait()
            proc.stdout.close()
    lat.sort()
    ms = 1e3
    return {"window": window, "echo": "inline" if inline else "process", "n": n,
            "round_trips_per_s": round(rate), "p50_ms": round(_pct(lat, 50) * ms, 3),
            "p99_ms": round(_pct(lat, 99) * ms, 3), "p999_ms": round(_pct(lat, 99.9) * ms, 3),
            "max_ms": round(lat[-1] * ms, 3), "received": len(lat)}


async def measure(n: int = N, windows=WINDOWS, payload: int = PAYLOAD, inline: bool = False,
                  url: str | None = None) -> list[dict]:
    """Every window on one broker: a private mosquitto unless ``url`` names one."""
    if url:
        host, port = parse_broker_url(url)
        return [await run_window(host, port, n, w, payload, inline) for w in windows]
    async with EmbeddedBroker() as b:
        return [await run_window(b.host, b.port, n, w, payload, inline) for w in windows]


def test_raw_mqtt_round_trip(benchmark):
    """Numbers go to extra_info; the only check is that every message came back."""
    results = benchmark.pedantic(lambda: asyncio.run(measure(n=5_000)), rounds=1,
                                 warmup_rounds=0)
    for r in results:
        benchmark.extra_info[f"window_{r['window']}"] = r
        print(r)
    assert all(r["received"] == r["n"] for r in results)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=N, help="round trips per window")
    ap.add_argument("--window", type=int, action="append", help="messages in flight (repeat)")
    ap.add_argument("--payload", type=int, default=PAYLOAD, help="payload bytes")
    ap.add_argument("--echo-inline", action="store_true",
                    help="echo on the driver's event loop instead of its own process")
    ap.add_argument("--broker", help="mqtt://host:port of a running broker (default: private)")
    ap.add_argument("--echo", nargs=4, metavar=("URL", "IN", "OUT", "WINDOW"),
                    help=argparse.SUPPRESS)              # internal: run as the echo process
    args = ap.parse_args(argv)
    if args.echo:
        url, t_in, t_out, window = args.echo
        host, port = parse_broker_url(url)
        try:
            asyncio.run(echo(host, port, t_in, t_out, int(window)))
        except KeyboardInterrupt:
            pass
        return 0
    windows = tuple(args.window or WINDOWS)
    results = asyncio.run(measure(args.n, windows, args.payload, args.echo_inline, args.broker))
    version = getattr(aiomqtt, "__version__", "?")
    print(f"raw MQTT round trip, aiomqtt {version}"
          f" MQTT 5 QoS 1, {args.payload}-byte payload, Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, broker {args.broker or 'private mosquitto'}")
    print(f"{'window':>6} {'echo':>8} {'n':>7} {'rt/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
          f"{'p99.9 ms':>9} {'max ms':>8}")
    for r in results:
        print(f"{r['window']:>6} {r['echo']:>8} {r['n']:>7} {r['round_trips_per_s']:>8} "
              f"{r['p50_ms']:>8} {r['p99_ms']:>8} {r['p999_ms']:>9} {r['max_ms']:>8}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Orders through the gateway vs the raw MQTT round trip of the same client and broker.

Reproduce:  .venv/bin/python -m pytest bench/bench_gateway.py --benchmark-only -s
            (or: .venv/bin/python -m bench.bench_gateway for a printed table)
Three phases on one private mosquitto, in one run:
1. raw ceiling: a publisher and an echo client, QoS 1 both ways, W messages in flight;
2. gateway peak: orders (passive limits on a bill) with W in flight, time to the New report;
3. gateway at half of that peak rate, paced: order-to-ack latency percentiles.
Then the gateway on resting books (``measure_resting``, also ``--resting``): the same peak
phase with 3,000 and with 100,000 GTD and DAY orders seeded far from the touch before it,
in the same sitting, the load generator in a process of its own (so it takes no time from
the gateway's), plus the cost of one empty cycle (the GTD expiry check) at each size.
No timing is asserted.
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import time

import aiomqtt

from feeds import mqtt, topics
from feeds.broker import EmbeddedBroker
from feeds.cycle import GatewayCycle
from feeds.gateway import Gateway, GatewayConfig
from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger
from matching.messages import NewOrderSingle

N = 3000
WINDOW = 100
RESTING = (3_000, 100_000)
V5 = aiomqtt.ProtocolVersion.V5


def _engine(resting: int = 0):
    """The bench broker's engine; with ``resting``, that many orders of another broker
    (alternately GTD a week out and DAY; buys 97.300-97.799 and sells 100.700-101.199 on
    TB3M, far from the bench's 98.000 bids) rest in the book before anything is measured."""
    reg = Registry.load_default()
    led = Ledger()
    led.open_account(1, "bench")
    led.deposit(1, CASH, 10**18)
    led.whitelist(1, "TB3M")
    eng = Engine(reg, led, clock=time.time_ns)
    if resting:
        led.open_account(2, "seed")
        led.deposit(2, CASH, 10**18)
        led.deposit(2, "TB3M", 10**12)
        led.whitelist(2, "TB3M")
        week = time.time_ns() + 7 * 86_400 * 10**9
        for i in range(resting):
            side, px = ("buy", 97_300 + i % 500) if i % 2 else ("sell", 100_700 + i % 500)
            gtd = i % 4 < 2
            out = eng.submit("seed", NewOrderSingle(
                f"seed{i}", 2, "TB3M", side, "0.01", price=f"{px // 1000}.{px % 1000:03d}",
                time_in_force="gtd" if gtd else "day", expire_time=week + i if gtd else None))
            assert out.reports[0][1].exec_type == "new", out.reports
    return eng


def _pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


async def _drive(port, send_topic, recv_topic, payload_of, key_of, n, window, rate=None,
                 pipelined=False):
    """Send n messages, at most ``window`` unanswered (or paced at ``rate``/s); latencies.
    ``pipelined``: do not wait for each PUBACK before the next publish."""
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
        pubs: list[asyncio.Future] = []
        t0 = time.perf_counter()
        for i in range(n):
            await free.acquire()
            if rate:
                await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
            k = f"k{i}"
            sent[k] = time.perf_counter()
            if pipelined:
                pubs.append(asyncio.ensure_future(c.publish(send_topic, payload_of(k), qos=1)))
            else:
                await c.publish(send_topic, payload_of(k), qos=1)
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - t0
        await asyncio.gather(*pubs)
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
    gw = Gateway(_engine(), "127.0.0.1", port,
                 GatewayConfig(client_id=f"bench-engine-{time.time_ns()}"))
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    await gw.ready.wait()
    try:
        return await _drive(port, topics.orders("bench"), topics.exec_reports("bench"), _order,
                            lambda p: json.loads(p)["cl_ord_id"], n, window, rate)
    finally:
        stop.set()
        await task


def _generator_main(port: int, n: int, window: int, conn, raw: bool) -> None:
    """The load generator's process: peak orders with ``window`` in flight (``raw``: plain
    messages to an echo client instead); sends back (messages/s, latencies)."""
    if raw:
        args = ("bench/in", "bench/out", lambda k: k.encode(), lambda p: p.decode())
    else:
        args = (topics.orders("bench"), topics.exec_reports("bench"), _order,
                lambda p: json.loads(p)["cl_ord_id"])
    conn.send(asyncio.run(_drive(port, *args, n, window, pipelined=True)))
    conn.close()


def _generate(port: int, n: int, window: int, raw: bool = False) -> tuple[float, list]:
    """Run the load generator in a child process and wait for its figures."""
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_generator_main, args=(port, n, window, theirs, raw),
                        daemon=True)
    child.start()
    try:
        if not mine.poll(180):
            raise TimeoutError("load generator gave no figures within 180 s")
        return mine.recv()
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()


def empty_cycle_ms(engine: Engine, runs: int = 30) -> float:
    """Median wall time of one cycle with nothing to do (the expiry check on the book)."""
    cycle = GatewayCycle(engine)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        cycle.process([], time.time_ns())
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


async def resting_book(port: int, resting: int, n: int = N, window: int = WINDOW,
                       own_process: bool = True) -> dict:
    """Peak orders/s through the gateway over a book of ``resting`` seeded orders; the
    load generator runs in a child process (``own_process``) or on this event loop."""
    eng = _engine(resting)
    idle_ms = empty_cycle_ms(eng)
    gw = Gateway(eng, "127.0.0.1", port, GatewayConfig(
        client_id=f"bench-resting-{time.time_ns()}", freeze_gc=True))   # as tokenbook serve
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    await gw.ready.wait()
    try:
        if own_process:
            rate, lat = await asyncio.to_thread(_generate, port, n, window)
        else:
            rate, lat = await _drive(port, topics.orders("bench"), topics.exec_reports("bench"),
                                     _order, lambda p: json.loads(p)["cl_ord_id"], n, window)
    finally:
        stop.set()
        await task
    return {"resting": resting, "orders_per_s": int(rate),
            "p50_ms": round(_pct(lat, 50) * 1e3, 3), "p99_ms": round(_pct(lat, 99) * 1e3, 3),
            "cycles": gw.stats.cycles, "empty_cycle_ms": round(idle_ms, 3)}


async def generator_ceiling(port: int, n: int = N, window: int = WINDOW) -> float:
    """Round trips/s of the child-process load generator against an echo client on this
    loop: what it can drive at most, to compare the gateway's rates with."""
    async def echo(ready):
        async with mqtt.client("127.0.0.1", port) as e:
            await e.subscribe("bench/in", qos=1)
            ready.set()
            answers: set[asyncio.Future] = set()      # held until done (a task is weak)
            async for m in e.messages:          # answers pipelined, as the gateway does
                answer = asyncio.ensure_future(e.publish("bench/out", m.payload, qos=1))
                answers.add(answer)
                answer.add_done_callback(answers.discard)
    ready = asyncio.Event()
    task = asyncio.create_task(echo(ready))
    await ready.wait()
    try:
        rate, _ = await asyncio.to_thread(_generate, port, n, window, True)
        return rate
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0.05)          # let paho drop its socket callbacks before reuse


async def measure_resting(sizes=RESTING, n: int = N, window: int = WINDOW,
                          own_process: bool = True) -> dict:
    """The gateway's peak at each resting-book size, in one sitting on one mosquitto;
    ``largest_over_smallest`` is the rate at the largest book over the rate at the
    smallest (the requirement: no slower, i.e. >= 1 within noise). With the generator in
    its own process, ``generator_ceiling_per_s`` is what it drives through a bare echo."""
    runs = []
    with EmbeddedBroker() as b:
        ceiling = await generator_ceiling(b.port, n, window) if own_process else None
        for size in sizes:
            runs.append(await resting_book(b.port, size, n, window, own_process))
    return {"runs": runs, "generator": "own process" if own_process else "same event loop",
            "generator_ceiling_per_s": None if ceiling is None else int(ceiling),
            "largest_over_smallest": round(runs[-1]["orders_per_s"] / runs[0]["orders_per_s"], 3)}


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


def test_gateway_on_resting_books(benchmark):
    result = benchmark.pedantic(lambda: asyncio.run(measure_resting()), rounds=1,
                                warmup_rounds=0)
    benchmark.extra_info.update(result)
    print(result)
    assert all(r["orders_per_s"] > 0 for r in result["runs"])


def _print_resting(result: dict) -> None:
    for r in result["runs"]:
        print(f"resting {r['resting']:>7,}: {r['orders_per_s']:>6,} orders/s, p50 "
              f"{r['p50_ms']} ms, p99 {r['p99_ms']} ms, empty cycle {r['empty_cycle_ms']} ms")
    print(f"largest / smallest book: {result['largest_over_smallest']}; load generator: "
          f"{result['generator']}, its echo ceiling {result['generator_ceiling_per_s']}/s")


if __name__ == "__main__":
    if "--resting" in sys.argv[1:]:
        _print_resting(asyncio.run(measure_resting(own_process="--inline" not in sys.argv)))
    else:
        for k, v in asyncio.run(measure()).items():
            print(f"{k:24} {v}")

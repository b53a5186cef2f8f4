"""Gateway orders/s on the link transport vs aiomqtt, one sitting, one private mosquitto.

Reproduce:  .venv/bin/python -m bench.bench_link [-n 20000] [--window 200] [--rounds 2]
                [--broker-inflight 20]
            (or: .venv/bin/python -m pytest bench/bench_link.py --benchmark-only -s)

The load generator is a child process of its own, written on the same sans-I/O session
as the link (``feeds.link.Session`` on an asyncio Protocol: no aiomqtt, so it is not the
4k/s limit): it sends new orders (passive buys on TB3M) with ``window`` unanswered at
most and times each to its New report. Phases, alternated ``rounds`` times:

- echo: the generator against a bare echo (the same Protocol code, in this process)
  republishing every message: what generator + broker can drive at most;
- link / aiomqtt: the engine (journal with group commit, fdatasync) behind each gateway.

The broker is ``reliability.faults.Mosquitto`` with ``max_inflight_messages`` =
``--broker-inflight``: mosquitto's default, 20, is also the Receive Maximum it announces,
so it caps the gateway's publishes in flight. Each phase reports its rate, p50/p99
order-to-ack, orders per cycle, and the CPU seconds per second of wall time (while the
generator's load runs) of the generator, this process (the gateway or the echo) and
mosquitto: 1.0 is a saturated core (this VM has 2). No timing is asserted.
"""
from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.bench_gateway import _engine, _pct
from feeds import topics
from feeds.config import GatewayConfig
from feeds.link import LinkOptions, Session
from feeds.outbox import Publish
from feeds.transports import make_gateway
from matching.journal import Journal
from reliability.faults import Mosquitto

N = 20_000
WINDOW = 200
ECHO_IN, ECHO_OUT = "bench/link/in", "bench/link/out"
_KEY = b'"cl_ord_id":"'


def _order(k: int) -> bytes:
    return (b'{"msg":"new_order","cl_ord_id":"g%d","account":1,"symbol":"TB3M",'
            b'"side":"buy","qty":"0.01","price":"98.000","time_in_force":"gtc"}' % k)


def _key(payload: bytes) -> bytes | None:
    """The ClOrdID of an exec report (or an echoed order) without a JSON parse."""
    at = payload.find(_KEY)
    if at < 0:
        return None
    at += len(_KEY)
    return payload[at:payload.index(b'"', at)]


class _Peer(asyncio.Protocol):
    """An MQTT 5 client on ``feeds.link.Session``: subscribes, then ``on_message``."""

    def __init__(self, name: str, subscribe: str, ready: asyncio.Future):
        self.s = Session(LinkOptions(f"{name}-{uuid.uuid4().hex[:8]}", keepalive=0,
                                     session_expiry=0, clean_start=True))
        self.subscribe, self.ready = subscribe, ready
        self.t: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.t = transport
        self.s.connect(time.monotonic())
        self.flush()

    def flush(self) -> None:
        data = self.s.data_to_send(0.0)
        if data and self.t is not None:
            self.t.write(data)

    def data_received(self, data: bytes) -> None:
        s = self.s
        messages = s.feed(data, 0.0)
        s.acked.clear()
        for e in s.events:
            if type(e).__name__ == "ConnAckPacket":
                s.subscribe([self.subscribe])
            elif type(e).__name__ == "SubAckPacket" and not self.ready.done():
                self.ready.set_result(True)
                self.started()
        s.events.clear()
        if messages:
            self.on_message(messages)
            s.ack_received()
        self.flush()

    def started(self) -> None:
        pass

    def on_message(self, messages: list) -> None:
        pass


class _Echo(_Peer):
    def on_message(self, messages: list) -> None:
        self.s.publish([Publish(ECHO_OUT, m.payload, False, "bench") for m in messages])


class _Generator(_Peer):
    def __init__(self, n: int, window: int, send: str, recv: str, done: asyncio.Future,
                 conn):
        super().__init__("bench-gen", recv, asyncio.get_running_loop().create_future())
        self.n, self.window, self.send, self.done, self.conn = n, window, send, done, conn
        self.sent: dict[bytes, int] = {}
        self.lat: list[int] = []
        self.next = 0
        self.t0 = self.cpu0 = 0.0

    def started(self) -> None:
        self.conn.send("started")                 # the parent's CPU window starts too
        self.t0, self.cpu0 = time.perf_counter(), time.process_time()
        self._send(self.window)

    def _send(self, k: int) -> None:
        now, batch = time.perf_counter_ns(), []
        for _ in range(min(k, self.n - self.next)):
            batch.append(Publish(self.send, _order(self.next), False, "bench"))
            self.sent[b"g%d" % self.next] = now
            self.next += 1
        self.s.publish(batch)

    def on_message(self, messages: list) -> None:
        now, answered = time.perf_counter_ns(), 0
        for m in messages:
            t = self.sent.pop(_key(m.payload), None)
            if t is not None:
                self.lat.append(now - t)
                answered += 1
        self._send(answered)
        if len(self.lat) >= self.n and not self.done.done():
            self.done.set_result((time.perf_counter() - self.t0,
                                  time.process_time() - self.cpu0))


def _generator_main(port: int, n: int, window: int, echo: bool, conn) -> None:
    async def main():
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        send, recv = (ECHO_IN, ECHO_OUT) if echo else (topics.orders("bench"),
                                                         topics.exec_reports("bench"))
        gen = _Generator(n, window, send, recv, done, conn)
        t, _ = await loop.create_connection(lambda: gen, "127.0.0.1", port)
        try:
            secs, cpu = await asyncio.wait_for(done, 300)
        finally:
            t.close()
        lat = sorted(gen.lat)
        return {"rate": n / secs, "secs": secs, "gen_cpu": cpu / secs,
                "p50_ms": _pct(lat, 50) / 1e6, "p99_ms": _pct(lat, 99) / 1e6}
    conn.send(asyncio.run(main()))
    conn.close()


def _proc_cpu(pid: int | None) -> float:
    """utime + stime (s) of a process, from /proc; 0 where there is none."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


async def _load(broker: Mosquitto, n: int, window: int, echo: bool) -> dict:
    """Run the generator child against whatever serves the broker now; with the CPU
    shares of this process and the broker while the generator's load runs."""
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_generator_main, args=(broker.port, n, window, echo, theirs),
                        daemon=True)
    child.start()
    try:
        for _ in ("started", "figures"):
            if not await asyncio.to_thread(mine.poll, 300):
                raise TimeoutError("the load generator gave no figures within 300 s")
            res = mine.recv()
            if res == "started":
                cpu0, bcpu0 = time.process_time(), _proc_cpu(broker.proc.pid)
                t0 = time.perf_counter()
        wall = time.perf_counter() - t0
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    res["server_cpu"] = (time.process_time() - cpu0) / wall
    res["broker_cpu"] = (_proc_cpu(broker.proc.pid) - bcpu0) / wall
    # CPU per order (or echo) of the gateway (or echo) and of the generator: what a
    # contended host changes least.
    res["server_us"] = res["server_cpu"] / res["rate"] * 1e6
    res["gen_us"] = res["gen_cpu"] / res["rate"] * 1e6
    return res


async def phase(broker: Mosquitto, what: str, n: int, window: int) -> dict:
    """One measurement: ``echo``, ``link`` or ``aiomqtt``."""
    loop = asyncio.get_running_loop()
    if what == "echo":
        ready = loop.create_future()
        t, _ = await loop.create_connection(lambda: _Echo("bench-echo", ECHO_IN, ready),
                                            "127.0.0.1", broker.port)
        await asyncio.wait_for(ready, 10)
        try:
            res = await _load(broker, n, window, echo=True)
        finally:
            t.close()
        return {"phase": what, **res}
    with tempfile.TemporaryDirectory(prefix="tokenbook-bench-link-") as d:
        engine = _engine()
        engine.journal = Journal(Path(d) / "journal.log")       # group commit, fdatasync
        gw = make_gateway(engine, "127.0.0.1", broker.port, GatewayConfig(
            client_id=f"bench-{what}-{time.time_ns()}", freeze_gc=True), transport=what)
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        await asyncio.wait_for(gw.ready.wait(), 10)
        try:
            res = await _load(broker, n, window, echo=False)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            engine.journal.close()
        return {"phase": what, **res, "cycles": gw.stats.cycles,
                "orders_per_cycle": round(gw.stats.received / max(1, gw.stats.cycles), 1)}


async def measure(n: int = N, window: int = WINDOW, rounds: int = 2,
                  phases=("echo", "link", "aiomqtt"), inflight: int = 20) -> dict:
    """Every phase ``rounds`` times, alternated, on one broker (``max_inflight_messages
    inflight``: mosquitto's default is 20, and it announces it as its Receive Maximum);
    medians per phase."""
    runs = []
    with Mosquitto(max_queued=100_000, max_inflight=inflight) as b:
        for _ in range(rounds):
            for what in phases:
                runs.append(await phase(b, what, n, window))
    med = {what: round(statistics.median(r["rate"] for r in runs if r["phase"] == what))
           for what in phases}
    out = {"n": n, "window": window, "broker_inflight": inflight, "runs": runs,
           "median_per_s": med}
    if "link" in med and "aiomqtt" in med:
        out["link_over_aiomqtt"] = round(med["link"] / med["aiomqtt"], 2)
    if "link" in med and "echo" in med:
        out["link_over_echo"] = round(med["link"] / med["echo"], 2)
    return out


def test_link_vs_aiomqtt(benchmark):
    result = benchmark.pedantic(lambda: asyncio.run(measure(n=5_000, rounds=1)), rounds=1,
                                warmup_rounds=0)
    benchmark.extra_info.update({k: v for k, v in result.items() if k != "runs"})
    print(result)
    assert all(r["rate"] > 0 for r in result["runs"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=N, help="orders (or echoes) per phase")
    ap.add_argument("--window", type=int, default=WINDOW, help="unanswered at most")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--phase", action="append", choices=("echo", "link", "aiomqtt"))
    ap.add_argument("--broker-inflight", type=int, default=20,
                    help="mosquitto max_inflight_messages (its Receive Maximum; default 20)")
    args = ap.parse_args(argv)
    res = asyncio.run(measure(args.n, args.window, args.rounds,
                              tuple(args.phase or ("echo", "link", "aiomqtt")),
                              args.broker_inflight))
    print(f"n={res['n']} window={res['window']} broker max_inflight_messages="
          f"{res['broker_inflight']}, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}; CPU shares in s/s (1.0 = one core)")
    print(f"{'phase':>8} {'per s':>8} {'p50 ms':>7} {'p99 ms':>7} {'gen cpu':>7} "
          f"{'srv cpu':>7} {'mosq cpu':>8} {'srv us/msg':>10} {'gen us/msg':>10} "
          f"{'orders/cycle':>12}")
    for r in res["runs"]:
        print(f"{r['phase']:>8} {r['rate']:>8.0f} {r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} "
              f"{r['gen_cpu']:>7.2f} {r['server_cpu']:>7.2f} {r['broker_cpu']:>8.2f} "
              f"{r['server_us']:>10.1f} {r['gen_us']:>10.1f} "
              f"{r.get('orders_per_cycle', ''):>12}")
    print("median per s:", res["median_per_s"],
          {k: v for k, v in res.items() if k.startswith("link_over")})
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The replicated journal against the file journal, in one sitting, on this machine.

Reproduce:  .venv/bin/python -m bench.bench_jetstream [--inputs 30000] [--kills 10]

1. Engine inputs/s: the same seeded order flow through the engine in groups of 500 (the
   gateway's batch), one commit per group: the file journal (fdatasync per group) and the
   JetStream journal (one message per group, 3 replicas, sync_interval always).
2. Order-to-ack p50/p99 through MQTT: ``tokenbook serve`` (file journal) and ``serve
   --journal`` behind a private mosquitto, 4 BrokerClients each with one order in flight.
3. Takeover time over N kills -9 of the primary: last ack of the old primary to first
   ack of the new, with a standby started beside each primary.

A private 3-node cluster and mosquitto on free loopback ports; nothing on 4222/1883.
Prints one table; timings are not asserted.
"""
from __future__ import annotations

import argparse
import asyncio
import itertools
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from feeds.broker import EmbeddedBroker
from feeds.client import BrokerClient, RequestTimeout
from feeds.cluster import NatsCluster
from matching.jetstream import EPOCH, NatsLink
from matching.journal import Journal
from matching.journal_jetstream import JetStreamJournal, claim_id
from matching.messages import NewOrderSingle
from testkit.mqtt import two_broker_engine
from testkit.nats import ROOT, ServeProcess, unique_names

__all__ = ["main"]

BATCH = 500


def _flow(n: int):
    """A seeded two-broker flow on TB3M that trades about every other order."""
    for i in range(n):
        side = "buy" if i % 2 else "sell"
        broker, account = ("alpha", 1) if i % 3 else ("beta", 2)
        price = f"99.{10 + (i * 7919) % 11:03d}"
        yield broker, NewOrderSingle(f"c{i}", account, "TB3M", side, "1", price=price)


def engine_rate(journal, n: int) -> float:
    engine = two_broker_engine(journal=journal)
    orders = list(_flow(n))
    t0 = time.perf_counter()
    for k in range(0, n, BATCH):
        for broker, msg in orders[k:k + BATCH]:
            engine.submit(broker, msg)
        engine.commit()
    return n / (time.perf_counter() - t0)


def journal_rate(journal, n: int, group: int = 1000) -> float:
    """Records/s of 100-byte records, one commit per ``group`` (the journal alone)."""
    record = bytes(range(100))
    t0 = time.perf_counter()
    for seq in range(1, n + 1):
        journal.append(seq, record)
        if seq % group == 0:
            journal.commit()
    journal.commit()
    return n / (time.perf_counter() - t0)


def inputs_per_second(cluster: NatsCluster, n: int) -> dict[str, tuple[float, float]]:
    """(engine inputs/s, journal records/s) with each journal."""
    with tempfile.TemporaryDirectory() as d:
        file_rate = engine_rate(Journal(Path(d) / "journal.log", fsync="group"), n)
        with Journal(Path(d) / "records.log", fsync="group") as j:
            file_records = journal_rate(j, 10 * n)
    link = NatsLink.parse(cluster.urls)
    link.call(link.connect(), 15)
    names = unique_names("rate")
    link.call(link.ensure_stream(names))
    seq, _ = link.call(link.append(names.subject(EPOCH), b"{}", expected=0,
                                   msg_id=claim_id(1, "bench")))
    journal = JetStreamJournal(link, names, last_seq=0, stream_seq=seq, epoch=1,
                               instance="bench")
    try:
        js_rate = engine_rate(journal, n)
        names2 = unique_names("records")
        link.call(link.ensure_stream(names2))
        seq, _ = link.call(link.append(names2.subject(EPOCH), b"{}", expected=0,
                                       msg_id=claim_id(1, "bench")))
        records = JetStreamJournal(link, names2, last_seq=0, stream_seq=seq, epoch=1,
                                   instance="bench")
        try:
            js_records = journal_rate(records, 10 * n)
        finally:
            records.close()
    finally:
        journal.close()
        link.shutdown()
    return {"file": (file_rate, file_records), "jetstream": (js_rate, js_records)}


async def _acks(port: int, seconds: float, clients: int = 4) -> list[float]:
    latencies: list[float] = []

    async def one(name: str, account: int) -> None:
        async with BrokerClient(name, "127.0.0.1", port, timeout=3.0, retries=5) as c:
            i, end = 0, time.monotonic() + seconds
            while time.monotonic() < end:
                i += 1
                side = "buy" if i % 2 else "sell"
                msg = NewOrderSingle(f"{name}-{i}-{time.monotonic_ns()}", account, "TB3M",
                                     side, "1", price="99.020" if side == "buy" else "99.010")
                t0 = time.perf_counter()
                try:
                    await c.submit(msg)
                except RequestTimeout:
                    continue
                latencies.append(time.perf_counter() - t0)
    accounts = [("alpha", 1001), ("beta", 2001), ("gamma", 3001), ("mm", 9001)]
    await asyncio.gather(*(one(b, a) for b, a in accounts[:clients]))
    return latencies


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] * 1000 if xs else float("nan")


def order_to_ack(cluster: NatsCluster, seconds: float,
                 extra: tuple[str, ...]) -> dict[str, tuple[float, float, int]]:
    out = {}
    with tempfile.TemporaryDirectory() as d, EmbeddedBroker() as broker:
        tmp = Path(d)
        argv = [sys.executable, "-m", "feeds.cli", "serve", "--broker", broker.url, "--data",
                str(tmp / "data"), "--log-level", "warning", *extra]
        with open(tmp / "file.out", "wb") as o:
            proc = subprocess.Popen(argv, cwd=ROOT, stdout=o, stderr=subprocess.DEVNULL)
        try:
            _wait_text(tmp / "file.out", "session", 30)
            time.sleep(1.5)                   # banner printed; connecting, subscribing
            lat = asyncio.run(_acks(broker.port, seconds))
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
        out["file"] = (_pct(lat, 0.5), _pct(lat, 0.99), len(lat))
    with tempfile.TemporaryDirectory() as d, EmbeddedBroker() as broker:
        p = ServeProcess(Path(d), "js", cluster.urls, broker.url, unique_names("ack").venue,
                         False, extra)
        try:
            p.wait_for("  primary      epoch", 30)
            time.sleep(1.5)
            lat = asyncio.run(_acks(broker.port, seconds))
        finally:
            p.stop()
        out["jetstream"] = (_pct(lat, 0.5), _pct(lat, 0.99), len(lat))
    return out


def _wait_text(path: Path, needle: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and needle in path.read_text()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path}: no {needle!r}")
        time.sleep(0.05)


async def _takeover(p_old: ServeProcess, port: int) -> float:
    """Kill -9 the primary under a steady flow of 4 brokers (one order in flight each):
    the longest time without any ack around the kill (last ack of the old primary to the
    first of the new), s."""
    acks: list[float] = []
    stop = False

    async def flow(name: str, account: int) -> None:
        async with BrokerClient(name, "127.0.0.1", port, timeout=3.0, retries=8) as c:
            i = 0
            while not stop:
                i += 1
                side = "buy" if i % 2 else "sell"
                try:
                    await c.submit(NewOrderSingle(
                        f"k{time.monotonic_ns()}", account, "TB3M", side, "1",
                        price="99.020" if side == "buy" else "99.010"))
                except RequestTimeout:
                    continue
                acks.append(time.monotonic())
                await asyncio.sleep(0.005)
    tasks = [asyncio.create_task(flow(b, a))
             for b, a in (("alpha", 1001), ("beta", 2001), ("gamma", 3001), ("mm", 9001))]
    await asyncio.sleep(1.5)
    killed = time.monotonic()
    p_old.proc.kill()
    while len([t for t in acks if t > killed]) < 20:
        await asyncio.sleep(0.01)
        if time.monotonic() - killed > 30:
            raise RuntimeError("no acks after the kill")
    stop = True
    await asyncio.gather(*tasks)
    around = sorted(t for t in acks if t > killed - 1.0)
    return max(b - a for a, b in itertools.pairwise(around))


def takeovers(cluster: NatsCluster, kills: int, extra: tuple[str, ...]) -> list[float]:
    times = []
    with tempfile.TemporaryDirectory() as d, EmbeddedBroker() as broker:
        tmp, stream = Path(d), unique_names("takeover").venue
        primary = ServeProcess(tmp, "p0", cluster.urls, broker.url, stream, False, extra)
        procs = [primary]
        try:
            primary.wait_for("  primary      epoch", 30)
            for k in range(kills):
                standby = ServeProcess(tmp, f"s{k}", cluster.urls, broker.url, stream, True,
                                       extra)
                procs.append(standby)
                standby.wait_for("serve (standby)", 30)
                time.sleep(0.5)
                times.append(asyncio.run(_takeover(primary, broker.port)))
                standby.wait_for("  primary      epoch", 10)
                primary = standby
        finally:
            for p in procs:
                p.stop()
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=30_000)
    ap.add_argument("--seconds", type=float, default=8.0, help="per order-to-ack run")
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--transport", choices=("aiomqtt", "link"), default="aiomqtt",
                    help="the serve processes' MQTT transport")
    args = ap.parse_args(argv)
    with NatsCluster.start() as cluster:
        rates = inputs_per_second(cluster, args.inputs)
        extra = ("--transport", args.transport)
        acks = order_to_ack(cluster, args.seconds, extra)
        kills = takeovers(cluster, args.kills, extra) if args.kills else []
    print(f"## JetStream journal vs file journal ({args.inputs} inputs in groups of {BATCH};"
          f" 3 nodes, sync_interval always, loopback; MQTT transport {args.transport})")
    print("| journal | engine inputs/s | journal alone, records/s (100 B, 1000 a group) "
          "| order-to-ack p50 ms | p99 ms | acks |")
    print("|---|---|---|---|---|---|")
    for k in ("file", "jetstream"):
        p50, p99, n = acks[k]
        inputs, records = rates[k]
        print(f"| {k} | {inputs:,.0f} | {records:,.0f} | {p50:.2f} | {p99:.2f} | {n} |")
    if kills:
        print(f"\ntakeover (last ack of the old primary to first ack of the new) over "
              f"{len(kills)} kills -9: median {statistics.median(kills):.2f} s, min "
              f"{min(kills):.2f}, max {max(kills):.2f} (--takeover-after 1 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())


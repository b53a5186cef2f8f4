"""The link gateway's CPU per order without sockets: synthetic reads in, writes counted.

    python -m bench.native.cpu_path [-n 6000] [--batch 30] [--resting 100000] [--rounds 5]

``gateway_proc``'s engine (journal with fdatasync group commit, ``--resting`` orders of
another broker) behind a ``LinkGateway`` whose connection is a fake transport: CONNACK
(Receive Maximum 20, as mosquitto), the retained state acknowledged, SUBACK, then per
round ``-n`` orders as QoS 1 PUBLISH packets, ``--batch`` to a read, and after each read
the broker's PUBACKs four to a read until nothing is in flight. The orders are the C
generator's (two GTC buys resting, then a sell IOC crossing them). The fsync runs in the
cycle (``sync_off_loop`` off), so ``time.process_time`` per order is the Python path and
the engine, no kernel socket work and no thread: a figure that moves far less with the
host's load than the socket bench. Prints one JSON line: CPU us per order per round,
their min and median, writes per order.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time

import mqtt5

from bench.native.gateway_proc import bench_ledger, seed

ORDERS = "tokenbook/v1/orders/bench"


def order(seq: int) -> bytes:
    """The ``seq``-th order of ``mqtt_rt -m order``: every third a crossing IOC sell."""
    if seq % 3 == 2:
        return (f'{{"msg":"new_order","cl_ord_id":"c-{seq}","account":3,"symbol":"TB3M",'
                f'"side":"sell","qty":"0.02","price":"97.900","time_in_force":"ioc"}}'
                ).encode()
    return (f'{{"msg":"new_order","cl_ord_id":"c-{seq}","account":1,"symbol":"TB3M",'
            f'"side":"buy","qty":"0.01","price":"97.{950 + seq % 50:03d}",'
            f'"time_in_force":"gtc"}}').encode()


class _Transport:
    """What asyncio's transport is to ``_Link``: writes counted, kept nowhere."""

    def __init__(self) -> None:
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


async def measure(n: int, batch: int, resting: int, rounds: int) -> dict:
    from feeds.config import GatewayConfig
    from feeds.link_gateway import LinkGateway, _Link
    from matching import recovery
    from matching.engine import Engine
    from matching.instruments import Registry

    with tempfile.TemporaryDirectory(prefix="tokenbook-cpu-") as tmp:
        engine, recovered = recovery.open_engine(Engine, tmp, Registry.load_default(),
                                                 new_ledger=bench_ledger, fsync="group")
        try:
            seed(engine, resting)
            gw = LinkGateway(engine, "127.0.0.1", 1, GatewayConfig(), recovered=recovered)
            gw.sync_off_loop = False
            link, t = _Link(gw, asyncio.get_running_loop()), _Transport()
            link.connection_made(t)
            gw._link = link
            s = gw.session
            s.connect(time.monotonic())
            link.flush(time.monotonic())
            link.data_received(mqtt5.ConnAckPacket(receive_max=20).write())
            while s.inflight:                             # the retained state
                link.data_received(b"".join(mqtt5.PubAckPacket(p).write() for p in s.inflight))
            link.data_received(mqtt5.SubAckPacket(link.sub_id, [
                mqtt5.SubAckReasonCode.GRANTED_QOS_AT_LEAST_ONCE]
                * (len(gw._inputs) + (gw.guard is not None))).write())
            if link.phase != "online":
                raise RuntimeError(f"the fake connection did not get online: {link.phase}")
            pid = 1

            def run(count: int, base: int) -> None:
                nonlocal pid
                for i in range(0, count, batch):
                    data = []
                    for seq in range(base + i, base + min(i + batch, count)):
                        data.append(mqtt5.PublishPacket(ORDERS, order(seq), packet_id=pid,
                                                        qos=mqtt5.QoS.AT_LEAST_ONCE).write())
                        pid = pid % 60_000 + 1
                    link.data_received(b"".join(data))
                    while s.inflight:
                        pids = list(s.inflight)
                        for k in range(0, len(pids), 4):
                            link.data_received(b"".join(mqtt5.PubAckPacket(p).write()
                                                        for p in pids[k:k + 4]))
            run(min(3000, n), 0)                          # warm up
            cpu, writes = [], []
            for r in range(rounds):
                t.writes = 0
                c0 = time.process_time()
                run(n, (r + 1) * 10_000_000)
                cpu.append((time.process_time() - c0) / n * 1e6)
                writes.append(t.writes / n)
            st = gw.stats
            if st.decode_rejects or st.reject_reasons:
                raise RuntimeError(f"orders refused: {st.reject_reasons}")
            return {"cpu_us": [round(x, 2) for x in cpu], "cpu_us_min": round(min(cpu), 2),
                    "cpu_us_median": round(statistics.median(cpu), 2),
                    "writes_per_order": round(statistics.median(writes), 3),
                    "published_per_order": round(st.published / st.received, 3),
                    "orders_per_cycle": round(st.received / max(st.cycles, 1), 1),
                    "resting": resting, "batch": batch, "n": n}
        finally:
            engine.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.native.cpu_path",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=6000, help="orders per round")
    ap.add_argument("--batch", type=int, default=30, help="orders per read")
    ap.add_argument("--resting", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    print(json.dumps(asyncio.run(measure(args.n, args.batch, args.resting, args.rounds))))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The gateway under test, in a process of its own, started the way ``tokenbook serve`` is.

    python -m bench.native.gateway_proc --port PORT --data DIR [--resting N]
                                        [--transport aiomqtt|link]

As ``serve``: ``recovery.open_engine`` on a new data directory (journal with fdatasync group
commit, a snapshot at once), then the gateway with serve's ``GatewayConfig`` (snapshots
every 100,000 inputs into the data directory, ``freeze_gc``) on the broker at PORT. Before
the gateway connects, ``--resting`` orders of another broker are entered through the
engine (journaled) and a snapshot is written, as ``bench_gateway``'s resting books: GTD a
week out and DAY alternately, buys 97.300-97.799 and sells 100.700-101.199 on TB3M, far
from the bench's orders. The ledger is the bench's, not the demo's: broker ``bench`` owns
account 1 (cash, buys) and account 3 (bills, the crossing sells of ``mqtt_rt -m order``);
broker ``seed`` owns account 2 (the resting book).

Prints ``ready`` once the gateway is subscribed; on SIGTERM it stops as serve does and
prints one JSON line of the gateway's counters. With ``--events FILE`` it also writes
there, as JSON, what held up its event loop, with wall-clock times for the parent to place
in its runs: the loop blocked for 20 ms or more (a task that wakes every 5 ms and measures
how late it is: a long cycle, a collection, a snapshot), full (generation 2) garbage
collections from ``gc.callbacks``, and the snapshots written (file times).

``--transport link`` runs ``LinkGateway`` (the asyncio Protocol transport), looked up only
then: ``feeds.transports.gateway_class("link")`` where that module exists, else whichever
``feeds`` module defines the class; on a tree without it the process exits
with status 4 and says "not available". It is constructed like ``Gateway``:
``LinkGateway(engine, host, port, config, recovered=...)``, with ``ready``, ``run(stop)``
and ``stats``.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import importlib.util
import json
import pkgutil
import signal
import sys
import time
from pathlib import Path

from bench.native import NOT_AVAILABLE, TRANSPORTS

BENCH_BROKER = "bench"
SEED_BROKER = "seed"
SYMBOL = "TB3M"


def gateway_class(transport: str) -> tuple[type | None, str]:
    """The gateway class of ``transport`` and "", or None and why it is not available."""
    if transport == "aiomqtt":
        from feeds.gateway import Gateway
        return Gateway, ""
    if transport != "link":
        return None, f"unknown transport {transport!r} (one of {', '.join(TRANSPORTS)})"
    if importlib.util.find_spec("feeds.transports") is not None:   # the merged selector
        try:
            return importlib.import_module("feeds.transports").gateway_class("link"), ""
        except (ImportError, AttributeError, ValueError) as exc:
            return None, f"not available: feeds.transports has no link gateway ({exc})"
    import feeds
    for info in pkgutil.iter_modules(feeds.__path__):
        spec = importlib.util.find_spec(f"feeds.{info.name}")
        origin = spec.origin if spec else None
        if not origin or not origin.endswith(".py"):
            continue
        try:
            text = Path(origin).read_text()
        except OSError:
            continue
        if "class LinkGateway" in text:
            cls = getattr(importlib.import_module(f"feeds.{info.name}"), "LinkGateway", None)
            if cls is not None:
                return cls, ""
    return None, "not available: no feeds module defines LinkGateway in this tree"


class Pauses:
    """Loop stalls and full collections, each ``[kind, wall-clock start, ms]``."""

    def __init__(self, threshold_s: float = 0.02, tick_s: float = 0.005):
        self.threshold, self.tick = threshold_s, tick_s
        self.events: list[list] = []
        self._gc_t0 = 0.0

    def on_gc(self, phase: str, info: dict) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._gc_t0 = time.perf_counter()
        else:
            ms = (time.perf_counter() - self._gc_t0) * 1e3
            self.events.append(["gc2", time.time() - ms / 1e3, round(ms, 3)])

    async def watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(self.tick)
            late = time.perf_counter() - t - self.tick
            if late >= self.threshold:
                self.events.append(["stall", time.time() - late, round(late * 1e3, 3)])


def bench_ledger():
    from matching.ledger import CASH, Ledger
    led = Ledger()
    led.open_account(1, BENCH_BROKER)
    led.deposit(1, CASH, 10**18)
    led.whitelist(1, SYMBOL)
    led.open_account(3, BENCH_BROKER)
    led.deposit(3, CASH, 10**18)
    led.deposit(3, SYMBOL, 10**12)
    led.whitelist(3, SYMBOL)
    led.open_account(2, SEED_BROKER)
    led.deposit(2, CASH, 10**18)
    led.deposit(2, SYMBOL, 10**12)
    led.whitelist(2, SYMBOL)
    return led


def seed(engine, resting: int) -> None:
    """``resting`` orders of broker seed (account 2) far from the touch; as bench_gateway."""
    from matching.messages import NewOrderSingle
    week = time.time_ns() + 7 * 86_400 * 10**9
    for i in range(resting):
        side, px = ("buy", 97_300 + i % 500) if i % 2 else ("sell", 100_700 + i % 500)
        gtd = i % 4 < 2
        out = engine.submit(SEED_BROKER, NewOrderSingle(
            f"seed{i}", 2, SYMBOL, side, "0.01", price=f"{px // 1000}.{px % 1000:03d}",
            time_in_force="gtd" if gtd else "day", expire_time=week + i if gtd else None))
        if out.reports[0][1].exec_type != "new":
            raise RuntimeError(f"seed order {i} not accepted: {out.reports}")


async def serve(args, cls, pauses: Pauses) -> dict:
    from feeds.config import GatewayConfig
    from matching import recovery
    from matching.engine import Engine
    from matching.instruments import Registry

    registry = Registry.load_default()
    engine, recovered = recovery.open_engine(Engine, args.data, registry,
                                             new_ledger=bench_ledger, fsync="group")
    try:
        t0 = time.perf_counter()
        seed(engine, args.resting)
        engine.write_snapshot(Path(args.data) / "snapshots")
        seeded_s = time.perf_counter() - t0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        gateway = cls(engine, "127.0.0.1", args.port, GatewayConfig(
            snapshot_dir=Path(args.data) / "snapshots", snapshot_every=100_000,
            freeze_gc=True), recovered=recovered)
        task = asyncio.create_task(gateway.run(stop))
        watcher = asyncio.create_task(pauses.watch(stop))
        ready = asyncio.create_task(gateway.ready.wait())
        await asyncio.wait({task, ready}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            stop.set()
            await task                       # raises what stopped it, if anything did
            raise RuntimeError("the gateway did not get ready within 30 s")
        gc.callbacks.append(pauses.on_gc)
        print("ready", flush=True)
        await task
        await watcher
        gc.callbacks.remove(pauses.on_gc)
        pauses.events += [["snapshot", f.stat().st_mtime, 0.0]
                          for f in sorted((Path(args.data) / "snapshots").iterdir())]
        engine.write_snapshot(Path(args.data) / "snapshots")
        st = gateway.stats
        return {"received": st.received, "acks": st.acks, "reports": st.reports,
                "trades": st.trades, "reject_reasons": dict(st.reject_reasons),
                "decode_rejects": st.decode_rejects, "cycles": st.cycles,
                "published": st.published, "seeded": args.resting,
                "seed_s": round(seeded_s, 3), "resting_at_end": len(engine.books[SYMBOL])}
    finally:
        engine.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.native.gateway_proc",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data", required=True, help="a new data directory")
    ap.add_argument("--resting", type=int, default=100_000)
    ap.add_argument("--transport", default="aiomqtt")
    ap.add_argument("--events", help="write loop stalls, full collections and snapshots here")
    ap.add_argument("--sync-inline", action="store_true",
                    help="link: each group's fdatasync in the cycle, on the loop (the default)")
    ap.add_argument("--sync-off-loop", action="store_true",
                    help="link: each group's fdatasync on a thread of its own (to compare)")
    args = ap.parse_args(argv)
    cls, why = gateway_class(args.transport)
    if cls is None:
        print(f"transport {args.transport}: {why}", file=sys.stderr)
        return NOT_AVAILABLE
    if (args.sync_inline or args.sync_off_loop) and hasattr(cls, "sync_off_loop"):
        cls.sync_off_loop = args.sync_off_loop
    pauses = Pauses()
    stats = asyncio.run(serve(args, cls, pauses))
    if args.events:
        Path(args.events).write_text(json.dumps(pauses.events))
    print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Soak: a steady order load through the real gateway on an embedded broker, watched for drift.

    .venv/bin/python -m reliability.soak --seconds 300 [--rate 500] [--window 5] [--json]

This process runs the engine (journaled, group commit) and the MQTT gateway; the broker
is a private mosquitto; the load client is a child process (so it does not take the
engine's CPU, and the RSS sampled is the engine's and gateway's). The client publishes at
a steady ``rate`` a mix that keeps the books bounded: passive GTC limits on four
instruments (45 %), cancels of the oldest live one (25 %, more when too many are live),
IOC orders that cross (20 %) and bad input (10 %: a wrong JSON type, an off-tick price,
an unknown account, a cancel of an unknown id; each named by its ClOrdID so its Rejected
report closes it). Every few seconds (``window``) it samples: the process's RSS
(``VmRSS`` of /proc/self/status), order-to-ack latency p50/p99 in that window (publish to
the first report for the ClOrdID), acks/s, and the engine's sizes (live orders, ClOrdID
index, resend cache, journal bytes) and the garbage collector's pauses in each process
(the longest, and the count of full collections: a latency spike that lines up with one
is the GC's, not the engine's). Drift = last window vs first (memory, p99). Not part of
the test suite.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import multiprocessing as mp
import queue
import random
import tempfile
import time
from collections import deque
from pathlib import Path

from feeds import mqtt, topics
from feeds.broker import EmbeddedBroker
from feeds.gateway import Gateway, GatewayConfig
from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import Journal
from matching.ledger import CASH, Ledger

__all__ = ["soak"]

BROKER = "soak"
ACCOUNTS = (1, 2)
SYMBOLS = ("TB3M", "TB6M", "BD3Y", "GOLD")
MAX_LIVE = 1000                # live passive orders the client aims to keep at most
MAX_IN_FLIGHT = 2000           # unanswered orders before the client waits (backpressure)
LOST_AFTER = 10.0              # seconds without an answer: counted as lost


def rss_kb() -> int:
    """Resident set size of this process in kB (VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class GcPauses:
    """Times every garbage collection of this process (``gc.callbacks``) and hands out,
    per window, the longest pause and how many full (generation 2) collections ran."""

    def __init__(self):
        self._t0 = 0.0
        self.max_s = 0.0
        self.full = 0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
            return
        self.max_s = max(self.max_s, time.perf_counter() - self._t0)
        self.full += info["generation"] == 2

    def take(self, prefix: str = "") -> dict:
        out = {f"{prefix}gc_max_ms": round(self.max_s * 1e3, 1), f"{prefix}gc_full": self.full}
        self.max_s, self.full = 0.0, 0
        return out

    def close(self) -> None:
        gc.callbacks.remove(self._on_gc)


def _pct(xs: list[float], p: float) -> float | None:
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def _ledger(registry: Registry) -> Ledger:
    led = Ledger()
    for acct in ACCOUNTS:
        led.open_account(acct, BROKER, "institutional")
        led.deposit(acct, CASH, 10**16)                       # ten billion dollars
        for inst in registry:
            led.deposit(acct, inst.symbol, inst.qty_to_lots(1_000_000))
            led.whitelist(acct, inst.symbol)
    return led


class Load:
    """The order mix; ``next()`` gives ``(cl_ord_id, payload bytes)``."""

    def __init__(self, registry: Registry, seed: int):
        self.r = random.Random(seed)
        self.insts = {s: registry[s] for s in SYMBOLS}
        self.live: deque[tuple[str, str]] = deque()          # (cl_ord_id, symbol), oldest first
        self.n = 0
        self.kinds: dict[str, int] = {}

    def _price(self, symbol: str, ticks_from_ref: int) -> str:
        inst = self.insts[symbol]
        return str(inst.ticks_to_price(inst.reference_ticks() + ticks_from_ref))

    def next(self) -> tuple[str, bytes]:
        r = self.r
        self.n += 1
        cl = f"s{self.n}"
        k = r.random()
        if len(self.live) > MAX_LIVE:
            k = 0.5                                          # cancel the oldest
        symbol = r.choice(SYMBOLS)
        side = r.choice(("buy", "sell"))
        sign = -1 if side == "buy" else 1
        if k < 0.45 or (0.45 <= k < 0.70 and not self.live):
            kind = "passive"
            doc = {"msg": "new_order", "cl_ord_id": cl, "account": r.choice(ACCOUNTS),
                   "symbol": symbol, "side": side, "qty": str(r.choice((1, 2, 5))),
                   "price": self._price(symbol, sign * r.randint(1, 30)),
                   "time_in_force": "gtc", "stp": "cancel_resting"}
            self.live.append((cl, symbol))
        elif k < 0.70:
            kind = "cancel"
            orig, sym = self.live.popleft()
            doc = {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": orig, "symbol": sym}
        elif k < 0.90:
            kind = "ioc"
            doc = {"msg": "new_order", "cl_ord_id": cl, "account": r.choice(ACCOUNTS),
                   "symbol": symbol, "side": side, "qty": str(r.choice((1, 2, 3))),
                   "price": self._price(symbol, -sign * r.randint(0, 10)),
                   "time_in_force": "ioc"}
        else:
            kind = "bad"
            doc = {"msg": "new_order", "cl_ord_id": cl, "account": ACCOUNTS[0],
                   "symbol": symbol, "side": side, "qty": "1", "price": self._price(symbol, 0)}
            how = r.randrange(4)
            if how == 0:
                doc["price"] = 99.27                         # a JSON number: refused
            elif how == 1:
                doc["price"] += "1"                          # off the tick
            elif how == 2:
                doc["account"] = 424242                      # unknown account
            else:
                doc = {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": "nope",
                       "symbol": symbol}
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        return cl, json.dumps(doc).encode()


async def _client(port: int, seconds: float, rate: int, window: float, seed: int,
                  go, out) -> None:
    """The load client (its own process): paced orders, latency per window into ``out``."""
    registry = Registry.load_default()
    load = Load(registry, seed)
    sent: dict[str, float] = {}
    lat: list[float] = []
    acks = 0
    reasons: dict[str, int] = {}
    free = asyncio.Semaphore(MAX_IN_FLIGHT)
    pauses = GcPauses()        # the client's own pauses delay the acks it timestamps
    async with mqtt.client("127.0.0.1", port, identifier=f"soak-{time.time_ns()}") as c:
        await c.subscribe(topics.exec_reports(BROKER), qos=1)

        async def receive():
            nonlocal acks
            async for m in c.messages:
                doc = json.loads(m.payload)
                t = sent.pop(doc.get("cl_ord_id"), None)
                if t is not None:
                    lat.append(time.perf_counter() - t)
                    acks += 1
                    free.release()
                    if doc.get("exec_type") == "rejected":
                        reason = doc.get("ord_rej_reason") or "?"
                        reasons[reason] = reasons.get(reason, 0) + 1

        rx = asyncio.create_task(receive())
        publishing: set[asyncio.Task] = set()
        if not await asyncio.to_thread(go.wait, 60):
            raise RuntimeError("the gateway never came up")
        gc.collect()
        gc.freeze()                  # set-up objects out of the collector's way, as serve does
        orders_topic = topics.orders(BROKER)
        t0 = time.perf_counter()
        next_sample = t0 + window
        i = w_sent = w_acks0 = lost = 0
        waited = 0.0
        while (now := time.perf_counter()) < t0 + seconds:
            if now >= next_sample:
                w_lat, lat[:] = list(lat), []
                # Orders unanswered for too long count as lost (and free their slot).
                stale = [k for k, ts in sent.items() if now - ts > LOST_AFTER]
                for k in stale:
                    del sent[k]
                    free.release()
                lost += len(stale)
                out.put({
                    "t_s": round(now - t0, 1), "sent": w_sent, "acks": acks - w_acks0,
                    "orders_per_s": round((acks - w_acks0) / window, 1),
                    "p50_ms": None if not w_lat else round(_pct(w_lat, 50) * 1e3, 3),
                    "p99_ms": None if not w_lat else round(_pct(w_lat, 99) * 1e3, 3),
                    "max_ms": None if not w_lat else round(max(w_lat) * 1e3, 3),
                    "in_flight": len(sent), "lost": len(stale), **pauses.take("client_")})
                w_sent, w_acks0 = 0, acks
                next_sample += window
                continue
            due = t0 + i / rate
            if due > now:
                await asyncio.sleep(min(due - now, next_sample - now, 0.05))
                continue
            w0 = time.perf_counter()
            await free.acquire()
            waited += time.perf_counter() - w0
            cl, payload = load.next()
            sent[cl] = time.perf_counter()
            # Not awaited (the PUBACK would pace the load): a steady rate, as brokers send.
            task = asyncio.ensure_future(c.publish(orders_topic, payload, qos=1))
            publishing.add(task)
            task.add_done_callback(publishing.discard)
            i += 1
            w_sent += 1
        elapsed = time.perf_counter() - t0
        # Drain: an order still unanswered LOST_AFTER seconds after the load stops is lost;
        # one merely queued behind the load is not.
        drain_end = time.perf_counter() + LOST_AFTER
        while sent and time.perf_counter() < drain_end:  # noqa: ASYNC110 - a deadline poll
            await asyncio.sleep(0.05)
        rx.cancel()
    out.put({"done": True, "seconds": round(elapsed, 1), "sent": i, "acked": acks,
             "lost": lost + len(sent), "mix": dict(sorted(load.kinds.items())),
             "rejections_by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
             "backpressure_wait_s": round(waited, 3)})


def _client_main(*args) -> None:
    asyncio.run(_client(*args))


def gc_census(top: int = 6) -> dict:
    """Objects the collector tracks in this process (frozen ones excluded) and the most
    common types among them: what a full collection has to walk. Walking them is itself
    a pause of a few ms, so only ``--gc-census`` takes it."""
    objs = gc.get_objects()
    kinds: dict[str, int] = {}
    for o in objs:
        name = type(o).__qualname__
        kinds[name] = kinds.get(name, 0) + 1
    del objs
    return {"gc_tracked": sum(kinds.values()),
            "gc_top": dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:top])}


async def _soak(seconds: float, rate: int, window: float, seed: int, progress,
                census: bool = False) -> dict:
    registry = Registry.load_default()
    ledger = _ledger(registry)
    totals_before = ledger.totals()
    data = tempfile.TemporaryDirectory(prefix="tokenbook-soak-")
    journal = Journal(Path(data.name) / "journal.log")
    engine = Engine(registry, ledger, clock=time.time_ns, journal=journal)
    broker = EmbeddedBroker()
    await broker.astart()
    stop = asyncio.Event()
    gw = Gateway(engine, "127.0.0.1", broker.port, GatewayConfig(
        client_id=f"soak-engine-{time.time_ns()}", freeze_gc=True))   # as tokenbook serve
    gw_task = asyncio.create_task(gw.run(stop))
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    child = ctx.Process(target=_client_main, daemon=True,
                        args=(broker.port, seconds, rate, window, seed, go, out))
    windows: list[dict] = []
    summary: dict = {}
    pauses = GcPauses()
    try:
        child.start()
        await asyncio.wait_for(gw.ready.wait(), 30)
        go.set()
        deadline = time.monotonic() + seconds + 60
        while time.monotonic() < deadline:
            try:
                item = await asyncio.to_thread(out.get, True, 0.5)
            except queue.Empty:
                if not child.is_alive():
                    break
                continue
            if item.get("done"):
                summary = item
                break
            # This process: engine, gateway and journal; sampled as the window closes.
            item.update(rss_mb=round(rss_kb() / 1024, 1), live_orders=len(engine.orders),
                        clordid_index=len(engine.clordids.orders),
                        resend_cache=len(engine.clordids.outcomes),
                        journal_mb=round(journal.path.stat().st_size / 2**20, 2),
                        **pauses.take())
            if census:
                item.update(gc_census())
            windows.append(item)
            if progress:
                progress(item)
    finally:
        pauses.close()
        child.join(10)
        if child.is_alive():
            child.terminate()
            child.join(5)
        stop.set()
        try:
            await asyncio.wait_for(gw_task, 30)
        finally:
            journal.close()
            await broker.astop()
            data.cleanup()
    if not summary:
        raise RuntimeError(f"the load client ended without a summary (exit {child.exitcode})")
    conserved = engine.ledger.totals() == totals_before
    full = [w for w in windows if w["acks"]]
    first, last = (full[0], full[-1]) if full else ({}, {})

    def drift(key):
        a, b = first.get(key), last.get(key)
        return None if a is None or b is None else round(b - a, 3)

    minutes = (last.get("t_s", 0) - first.get("t_s", 0)) / 60 if full else 0
    grown = last.get("resend_cache", 0) - first.get("resend_cache", 0)
    return {
        **{k: v for k, v in summary.items() if k != "done"},
        "target_rate": rate,
        "window_s": window,
        "broker": broker.kind,
        "orders_per_s": round(summary["acked"] / summary["seconds"], 1),
        "ledger_conserved": conserved,
        "gateway": {"received": gw.stats.received, "decode_rejects": gw.stats.decode_rejects,
                    "trades": gw.stats.trades, "cycles": gw.stats.cycles},
        "first_window": first,
        "last_window": last,
        "drift": {
            "rss_mb": drift("rss_mb"),
            "rss_mb_per_min": round(drift("rss_mb") / minutes, 3) if minutes else None,
            "p50_ms": drift("p50_ms"),
            "p99_ms": drift("p99_ms"),
            "p99_ratio": (round(last["p99_ms"] / first["p99_ms"], 2)
                          if full and first.get("p99_ms") and last.get("p99_ms") else None),
            "resend_cache_entries": drift("resend_cache"),
            "rss_bytes_per_input": (round(drift("rss_mb") * 2**20 / grown) if grown > 0
                                    else None),
        },
        "windows": windows,
    }


def soak(seconds: float = 120, rate: int = 500, *, window: float = 5.0, seed: int = 1,
         progress=None, census: bool = False) -> dict:
    """Run the soak (see the module doc) and return its figures; ``progress(window)`` is
    called with each window's sample as it is taken (``census``: with gc_census())."""
    return asyncio.run(_soak(seconds, rate, window, seed, progress, census))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reliability.soak",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--window", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--gc-census", action="store_true",
                    help="each window, count the objects the collector tracks, by type")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("tokenbook.gateway").setLevel(logging.ERROR)
    cols = ("t_s", "rss_mb", "orders_per_s", "p50_ms", "p99_ms", "max_ms", "in_flight",
            "live_orders", "resend_cache", "gc_max_ms", "gc_full", "client_gc_max_ms")

    def show(w):
        if not args.json:
            print("  ".join(f"{w[c]!s:>12}" for c in cols), flush=True)
            if "gc_tracked" in w:
                print(f"{'':>12}  tracked {w['gc_tracked']}: {w['gc_top']}", flush=True)

    if not args.json:
        print(f"soak: {args.seconds:.0f} s at {args.rate} orders/s, a sample every "
              f"{args.window:.0f} s")
        print("  ".join(f"{c:>12}" for c in cols))
    res = soak(args.seconds, args.rate, window=args.window, seed=args.seed, progress=show,
               census=args.gc_census)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    d = res["drift"]
    print(f"sent {res['sent']}, acked {res['acked']} ({res['orders_per_s']}/s), lost "
          f"{res['lost']}, broker {res['broker']}, ledger conserved: {res['ledger_conserved']}")
    print(f"mix: {res['mix']}; rejections: {res['rejections_by_reason']}")
    print(f"gateway: {res['gateway']}; client waited {res['backpressure_wait_s']} s on "
          f"{MAX_IN_FLIGHT} in flight")
    f, last = res["first_window"], res["last_window"]
    if f:
        print(f"drift first -> last window: RSS {f['rss_mb']} -> {last['rss_mb']} MB "
              f"({d['rss_mb']:+} MB, {d['rss_mb_per_min']} MB/min, ~{d['rss_bytes_per_input']} "
              f"bytes per input kept in the resend cache), "
              f"p50 {f['p50_ms']} -> {last['p50_ms']} ms, "
              f"p99 {f['p99_ms']} -> {last['p99_ms']} ms (x{d['p99_ratio']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

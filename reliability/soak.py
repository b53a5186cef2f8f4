"""Soak: a steady order load through the real gateway on an embedded broker, watched for drift.

    .venv/bin/python -m reliability.soak --seconds 300 [--rate 500] [--window 5] [--json]
                                         [--transport link|aiomqtt]

This process runs the engine (journaled, group commit) and the MQTT gateway (the link
transport unless ``--transport aiomqtt``); the broker is a private mosquitto; the load
client is a child process (so it does not take the engine's CPU, and the RSS sampled is
the engine's and gateway's) on the link's sans-I/O MQTT session, one write per
millisecond of due orders, so it can offer 5,000 orders/s and more. The client publishes at
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
import socket
import tempfile
import time
from collections import deque
from pathlib import Path

import msgspec

from feeds import topics
from feeds.broker import EmbeddedBroker
from feeds.config import GatewayConfig
from feeds.link import LinkOptions, Session
from feeds.outbox import Publish
from feeds.transports import DEFAULT_TRANSPORT, TRANSPORTS, make_gateway
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


class _SoakLink(asyncio.Protocol):
    """The load client's MQTT 5 connection: ``feeds.link.Session`` on an asyncio Protocol
    (no task per publish, so one process offers thousands of orders/s; aiomqtt's client
    tops out near 4k round trips/s here). Reports go to ``on_reports``, PUBACKed at once."""

    def __init__(self, on_reports, ready: asyncio.Future):
        self.s = Session(LinkOptions(f"soak-{time.time_ns()}", keepalive=0, session_expiry=0,
                                     clean_start=True))
        self.on_reports, self.ready = on_reports, ready
        self.t: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.t = transport
        self.s.connect(time.monotonic())
        self.flush()

    def connection_lost(self, exc) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)

    def flush(self) -> None:
        data = self.s.data_to_send(time.monotonic())
        if data and self.t is not None and not self.t.is_closing():
            self.t.write(data)

    def data_received(self, data: bytes) -> None:
        s = self.s
        messages = s.feed(data, time.monotonic())
        s.acked.clear()
        s.refused.clear()
        for e in s.events:
            if type(e).__name__ == "ConnAckPacket":
                s.subscribe([topics.exec_reports(BROKER)])
            elif type(e).__name__ == "SubAckPacket" and not self.ready.done():
                self.ready.set_result(True)
        s.events.clear()
        if messages:
            self.on_reports(messages)
            s.ack_received()
        self.flush()

    def send(self, topic: str, payloads: list[bytes]) -> None:
        self.s.publish([Publish(topic, p, False, "order") for p in payloads])
        self.flush()


async def _client(port: int, seconds: float, rate: int, window: float, seed: int,
                  go, out) -> None:
    """The load client (its own process): paced orders, latency per window into ``out``."""
    registry = Registry.load_default()
    load = Load(registry, seed)
    sent: dict[str, float] = {}
    lat: list[float] = []
    acks = 0
    reasons: dict[str, int] = {}
    pauses = GcPauses()        # the client's own pauses delay the acks it timestamps
    decode = msgspec.json.decode

    def on_reports(messages) -> None:
        nonlocal acks
        now = time.perf_counter()
        for m in messages:
            doc = decode(m.payload)
            t = sent.pop(doc.get("cl_ord_id"), None)
            if t is not None:
                lat.append(now - t)
                acks += 1
                if doc.get("exec_type") == "rejected":
                    reason = doc.get("ord_rej_reason") or "?"
                    reasons[reason] = reasons.get(reason, 0) + 1

    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    _, c = await loop.create_connection(lambda: _SoakLink(on_reports, ready), "127.0.0.1",
                                        port)
    c.t.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await asyncio.wait_for(ready, 30)
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
        if c.closed.done():
            raise RuntimeError(f"the load client lost the broker: {c.closed.result()}")
        if now >= next_sample:
            w_lat, lat[:] = list(lat), []
            # Orders unanswered for too long count as lost.
            stale = [k for k, ts in sent.items() if now - ts > LOST_AFTER]
            for k in stale:
                del sent[k]
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
        # Every order due by now goes in one write (a steady rate, as brokers send), unless
        # MAX_IN_FLIGHT are unanswered (backpressure: the wait is counted).
        due = min(int((now - t0) * rate) + 1 - i, MAX_IN_FLIGHT - len(sent))
        if due > 0:
            batch = []
            stamp = time.perf_counter()
            for _ in range(due):
                cl, payload = load.next()
                sent[cl] = stamp
                batch.append(payload)
            c.send(orders_topic, batch)
            i += due
            w_sent += due
        elif len(sent) >= MAX_IN_FLIGHT:
            waited += 0.001
        await asyncio.sleep(0.001)
    elapsed = time.perf_counter() - t0
    # Drain: an order still unanswered LOST_AFTER seconds after the load stops is lost;
    # one merely queued behind the load is not.
    drain_end = time.perf_counter() + LOST_AFTER
    while sent and time.perf_counter() < drain_end:  # noqa: ASYNC110 - a deadline poll
        await asyncio.sleep(0.05)
    c.t.close()
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
                census: bool = False, transport: str = DEFAULT_TRANSPORT) -> dict:
    registry = Registry.load_default()
    ledger = _ledger(registry)
    totals_before = ledger.totals()
    data = tempfile.TemporaryDirectory(prefix="tokenbook-soak-")
    journal = Journal(Path(data.name) / "journal.log")
    engine = Engine(registry, ledger, clock=time.time_ns, journal=journal)
    broker = EmbeddedBroker()
    await broker.astart()
    stop = asyncio.Event()
    gw = make_gateway(engine, "127.0.0.1", broker.port, GatewayConfig(
        client_id=f"soak-engine-{time.time_ns()}", freeze_gc=True),   # as tokenbook serve
        transport=transport)
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
        "transport": transport,
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
         progress=None, census: bool = False, transport: str = DEFAULT_TRANSPORT) -> dict:
    """Run the soak (see the module doc) and return its figures; ``progress(window)`` is
    called with each window's sample as it is taken (``census``: with gc_census())."""
    return asyncio.run(_soak(seconds, rate, window, seed, progress, census, transport))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reliability.soak",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--rate", type=int, default=500)
    ap.add_argument("--window", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--transport", choices=TRANSPORTS, default=DEFAULT_TRANSPORT,
                    help="the gateway's MQTT transport (default: %(default)s)")
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
        print(f"soak: {args.seconds:.0f} s at {args.rate} orders/s ({args.transport} "
              f"transport), a sample every {args.window:.0f} s")
        print("  ".join(f"{c:>12}" for c in cols))
    res = soak(args.seconds, args.rate, window=args.window, seed=args.seed, progress=show,
               census=args.gc_census, transport=args.transport)
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

"""Venue integrity as an outsider sees it: market data across a kill -9, one writer per
venue, and a burst on a stock broker. Each check returns a dict of figures with ``ok``;
``tests/reliability/test_integrity.py`` asserts on them and ``reliability/campaign.py``
(``python -m reliability``) reports them.

- ``restart_md``: ``tokenbook serve`` with resting orders is killed -9 and started again on
  the same ``--data``. The retained ``md/{symbol}/snapshot`` of every instrument must
  equal the book recovered from the journal, in the next epoch, at a ``seq`` above every
  one published before; a subscriber connected across the restart must be in sync again.
  Figure: the time from the restart to the last instrument's republished snapshot.
- ``second_writer``: while one ``tokenbook serve`` serves under load, a second one on the
  same ``--data`` (exit 5) and one on the same broker with another ``--data`` (exit 4)
  must refuse in one line, and the first must go on (orders acknowledged meanwhile, its
  status unchanged, no reconnect). Figures: refusal times, orders acknowledged during the
  attempts.
- ``burst``: 10,000 QoS 1 orders from one ``mosquitto_pub -q 1 -l`` on a stock
  ``mosquitto -p PORT`` (no configuration file: 20 in flight, 1000 queued) must all reach
  the engine. Figures: arrived / sent, seconds.

Each runs on the transport ``tokenbook serve`` runs by default (``DEFAULT_TRANSPORT``;
``transport=`` for the other). The helpers (``stock_mosquitto``, ``retained_md``,
``attempt_serve``, ``burst_orders``, ``mosquitto_pub``) are shared with
``tests/mqtt/test_restart.py``, ``test_guard.py`` and ``test_burst.py``.
"""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import aiomqtt

from feeds import mqtt, topics
from feeds.broker import find_mosquitto
from feeds.client import BrokerClient
from feeds.config import GatewayConfig
from feeds.exits import EXIT_ANOTHER_ENGINE, EXIT_DATA
from feeds.localproc import free_port
from feeds.transports import DEFAULT_TRANSPORT, make_gateway
from feeds.watch import MarketView
from matching.engine import Engine
from matching.messages import NewOrderSingle
from reliability.faults import REG, ROOT, Load, Mosquitto, Server, verify
from testkit.mqtt import two_broker_engine

__all__ = ["MD", "stock_mosquitto", "retained_md", "attempt_serve", "Attempt",
           "burst_orders", "mosquitto_pub", "burst_through_gateway", "restart_md",
           "second_writer", "burst"]

#: How long after the publisher finished a burst may take to arrive whole.
DEADLINE_S = 90.0
#: The retained market-data channels of one instrument.
MD = ("snapshot", "bbo", "state")


# ---------------------------------------------------------------------- helpers
@contextmanager
def stock_mosquitto(config: str | None = None) -> Iterator[int]:
    """``mosquitto -p PORT``: mosquitto 2's defaults, no configuration file (or, with
    ``config``, that text as its only configuration); yields the port."""
    binary = find_mosquitto()
    if binary is None:
        raise RuntimeError("mosquitto is needed for a stock broker")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="tokenbook-stock-") as tmp:
        cmd = [binary, "-p", str(port)]
        if config is not None:
            conf = Path(tmp) / "m.conf"
            conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{config}")
            cmd = [binary, "-c", str(conf)]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("mosquitto exited at start")
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("mosquitto did not start") from None
                    time.sleep(0.02)
            yield port
        finally:
            proc.terminate()
            proc.wait(5)


async def retained_md(port: int, epoch: int, symbols: tuple[str, ...] = ("TB3M",),
                      timeout: float = 10.0) -> dict[str, dict[str, dict]]:
    """A fresh subscriber's retained snapshot, BBO and state of each of ``symbols``, once
    all are of ``epoch`` (copies of an earlier epoch may come first, until the gateway
    replaced them): ``{symbol: {channel: doc}}``. AssertionError past ``timeout``."""
    deadline = time.monotonic() + timeout
    want = len(symbols) * len(MD)
    got: dict[str, dict[str, dict]] = {}
    while True:
        got = {}
        n = 0
        async with mqtt.client("127.0.0.1", port, timeout=5) as c:
            for symbol in symbols:
                for channel in MD:
                    await c.subscribe(topics.md(symbol, channel), qos=1)
            try:
                async with asyncio.timeout(1.0):
                    async for m in c.messages:
                        if not m.retain:            # a live update raced the subscription
                            continue
                        parsed = topics.parse_md_topic(m.topic.value)
                        if parsed is None:
                            continue
                        symbol, channel = parsed
                        if channel not in got.setdefault(symbol, {}):
                            n += 1
                        got[symbol][channel] = json.loads(m.payload)
                        if n == want:
                            break
            except TimeoutError:
                pass
        if n == want and all(d["epoch"] == epoch for s in got.values() for d in s.values()):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"retained market data of epoch {epoch}: {got}")
        await asyncio.sleep(0.1)


@dataclass
class Attempt:
    """One ``tokenbook serve`` run to its end: exit code, last stderr line, seconds."""
    returncode: int
    line: str
    seconds: float
    stderr: str


def serve_argv(url: str, data: str | os.PathLike, *extra: str) -> list[str]:
    """``python -m feeds.cli serve --broker URL --data DIR ...``."""
    return [sys.executable, "-m", "feeds.cli", "serve", "--broker", url, "--data", str(data),
            *extra]


def attempt_serve(url: str, data: str | os.PathLike, *extra: str,
                  timeout: float = 60.0) -> Attempt:
    """Run ``tokenbook serve`` (as a child process) until it exits, e.g. refused."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    t0 = time.monotonic()
    res = subprocess.run(serve_argv(url, data, *extra), env=env, cwd=ROOT,
                         stdin=subprocess.DEVNULL, capture_output=True, text=True,
                         timeout=timeout)
    took = time.monotonic() - t0
    lines = res.stderr.strip().splitlines()
    return Attempt(res.returncode, lines[-1] if lines else "", took, res.stderr)


def burst_orders(n: int, broker: str = "alpha", account: int = 1) -> bytes:
    """``n`` resting GTC buy orders of ``account``, one JSON document per line."""
    return b"".join(json.dumps({
        "msg": "new_order", "cl_ord_id": f"burst-{i}", "account": account, "symbol": "TB3M",
        "side": "buy", "qty": "0.01", "price": "98.000", "time_in_force": "gtc"}).encode()
        + b"\n" for i in range(n))


async def mosquitto_pub(port: int, n: int) -> None:
    """``mosquitto_pub -q 1 -l``: one order per line at QoS 1 (its limit is ~24.5k)."""
    proc = await asyncio.create_subprocess_exec(
        shutil.which("mosquitto_pub") or "mosquitto_pub", "-p", str(port), "-q", "1", "-l",
        "-t", topics.orders("alpha"), stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(burst_orders(n)), 60)
    if proc.returncode != 0:
        raise RuntimeError(f"mosquitto_pub failed: {err.decode(errors='replace')[-300:]}")


async def burst_through_gateway(port: int, n: int, publish: Callable[[int, int], Awaitable],
                                transport: str = DEFAULT_TRANSPORT) -> tuple[int, int, float]:
    """A gateway (two-broker engine) on ``port``; ``publish(port, n)``; then wait until
    ``n`` orders arrived and were acknowledged, or ``DEADLINE_S`` passed: (arrived,
    acknowledged, seconds since the publisher started)."""
    gw = make_gateway(two_broker_engine(), "127.0.0.1", port, GatewayConfig(hold_reports=0),
                      transport=transport)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        await asyncio.wait_for(gw.ready.wait(), 10)
        t0 = time.monotonic()
        await publish(port, n)
        # Until all arrived and were acknowledged (the last cycle's commit may still be
        # under way when the last order arrived), on a deadline, not on a pause in the
        # count: one cycle may take a large part of the burst at once, and on a busy host
        # the aiomqtt gateway was seen to pause 3-5.5 s between cycles, then take the rest.
        stats = gw.stats
        deadline = time.monotonic() + DEADLINE_S
        while ((stats.received < n or stats.acks < stats.received)  # noqa: ASYNC110
               and time.monotonic() < deadline):
            await asyncio.sleep(0.05)
        return stats.received, stats.acks, time.monotonic() - t0
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def _ladder(engine: Engine, symbol: str, side: int) -> list[list]:
    """One side of a recovered book as a snapshot shows it: ``[price, qty, count]``."""
    inst = engine.instruments[symbol]
    return [[str(inst.ticks_to_price(p)), str(inst.lots_to_qty(q)), c]
            for p, q, c in engine.books[symbol].depth(side, 1000)]


def _resting(symbol: str, k: int, broker: str, account: int) -> list[NewOrderSingle]:
    """``k`` GTC bids and ``k`` GTC offers around ``symbol``'s reference, not crossing."""
    inst = REG[symbol]
    ref = inst.reference_price
    out = []
    for i in range(1, k + 1):
        for side, sign in (("buy", -1), ("sell", 1)):
            px = ref + sign * (2 * i) * inst.tick_size
            out.append(NewOrderSingle(f"md-{symbol}-{side}-{i}", account, symbol, side,
                                      str(i), price=str(px), time_in_force="gtc"))
    return out


# ---------------------------------------------------------------------- checks
async def restart_md(*, symbols: tuple[str, ...] = ("TB3M", "TB6M"), per_side: int = 2,
                     transport: str = DEFAULT_TRANSPORT) -> dict:
    """kill -9 of ``tokenbook serve`` with resting orders, restart on the same --data: the
    retained market data of every instrument shows the recovered books (module doc)."""
    every = tuple(inst.symbol for inst in REG)
    tmp = tempfile.TemporaryDirectory(prefix="tokenbook-restart-md-")
    data = Path(tmp.name) / "data"
    view = MarketView()
    arrived: dict[str, float] = {}              # symbol -> when its epoch-2 snapshot came
    seen_before: dict[str, int] = {}            # symbol -> highest seq seen in epoch 1
    with Mosquitto(max_queued=100_000) as broker:
        server = Server(broker.url, data, transport=transport)
        try:
            t0 = time.time_ns()
            server.start()
            await server.wait_online(t0)
            async with mqtt.client("127.0.0.1", broker.port, timeout=5) as watcher, \
                    BrokerClient("alpha", "127.0.0.1", broker.port, timeout=2.0,
                                 client_id="restart-md-alpha") as alpha:
                await watcher.subscribe(f"{topics.ROOT}/md/#", qos=1)

                async def feed() -> None:
                    async for m in watcher.messages:
                        topic = m.topic.value
                        view.on_message(topic, m.payload)
                        parsed = topics.parse_md_topic(topic)
                        if parsed is None:
                            continue
                        doc = json.loads(m.payload)
                        if doc.get("epoch") == 1 and "seq" in doc and parsed[1] != "state":
                            seen_before[parsed[0]] = max(seen_before.get(parsed[0], 0),
                                                         doc["seq"])
                        if parsed[1] == "snapshot" and doc.get("epoch") == 2:
                            arrived.setdefault(parsed[0], time.monotonic())
                feeding = asyncio.create_task(feed())
                try:
                    acks = [await alpha.submit(o) for s in symbols
                            for o in _resting(s, per_side, "alpha", 1001)]
                    before = await retained_md(broker.port, 1, every)
                    await asyncio.sleep(0.3)        # the watcher has every depth update
                    server.kill()                   # kill -9: no final snapshot, no goodbye
                    restarted = time.monotonic()
                    t1 = time.time_ns()
                    server.start()
                    await server.wait_online(t1)
                    online_s = time.monotonic() - restarted
                    after = await retained_md(broker.port, 2, every)
                    deadline = time.monotonic() + 5
                    while len(arrived) < len(every) and time.monotonic() < deadline:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                    await asyncio.sleep(0.2)
                finally:
                    feeding.cancel()
                    await asyncio.gather(feeding, return_exceptions=True)
            code = server.terminate()
            recovered = Engine.recover(REG, snapshot_dir=data / "snapshots",
                                       journal_path=data / "journal.log", clock=time.time_ns)
            epoch_file = (data / "epoch").read_text().strip()
        finally:
            server.kill()
            tmp.cleanup()
    equal = {s: [after[s]["snapshot"]["bids"], after[s]["snapshot"]["asks"]]
             == [_ladder(recovered, s, 1), _ladder(recovered, s, 2)] for s in every}
    forward = {s: after[s]["snapshot"]["seq"] > max(seen_before.get(s, 0),
                                                    before[s]["snapshot"]["seq"])
               for s in every}
    bbo_ok = all(after[s]["bbo"]["seq"] == after[s]["snapshot"]["seq"] for s in every)
    books = [view.books[s] for s in symbols if s in view.books]
    in_sync = len(books) == len(symbols) and all(
        b.in_sync and b.epoch == 2 and b.restarts == 1 for b in books)
    res = {
        "symbols": len(every), "orders_resting": len(acks),
        "acked": sum(a.exec_type == "new" for a in acks),
        "levels_recovered": sum(len(_ladder(recovered, s, side)) for s in every
                                for side in (1, 2)),
        "snapshot_equals_recovered": all(equal.values()),
        "seq_forward": all(forward.values()), "bbo_at_snapshot_seq": bbo_ok,
        "epochs": [before[every[0]]["snapshot"]["epoch"], after[every[0]]["snapshot"]["epoch"]],
        "epoch_file": epoch_file, "watcher_in_sync": in_sync,
        "online_s": round(online_s, 2),
        "republish_s": round(max(arrived.values()) - restarted, 2)
        if len(arrived) == len(every) else None,
        "exit_code": code,
    }
    res["ok"] = (res["acked"] == res["orders_resting"] > 0 and res["snapshot_equals_recovered"]
                 and res["seq_forward"] and bbo_ok and res["epochs"] == [1, 2]
                 and epoch_file == "2" and in_sync and res["republish_s"] is not None
                 and res["levels_recovered"] == res["orders_resting"])
    return res


async def _status(port: int, timeout: float = 5.0) -> dict:
    """The retained engine status (a fresh subscriber's first message)."""
    async with mqtt.client("127.0.0.1", port, timeout=5) as c:
        await c.subscribe(topics.STATUS, qos=1)
        async with asyncio.timeout(timeout):
            async for m in c.messages:
                return json.loads(m.payload)
    raise AssertionError("no status")


async def second_writer(*, rate: float = 100, seed: int = 21,
                        transport: str = DEFAULT_TRANSPORT) -> dict:
    """Two second engines tried while one serves under load (module doc)."""
    tmp = tempfile.TemporaryDirectory(prefix="tokenbook-second-")
    data, other = Path(tmp.name) / "data", Path(tmp.name) / "other"
    attempts: dict[str, dict] = {}
    with Mosquitto(max_queued=100_000) as broker:
        server = Server(broker.url, data, transport=transport)
        try:
            t0 = time.time_ns()
            server.start()
            await server.wait_online(t0)
            first = await _status(broker.port)
            async with Load("127.0.0.1", broker.port, rate=rate, seed=seed, tag="w") as load:
                sender = asyncio.create_task(load.run(120))
                await asyncio.sleep(0.5)
                for name, target, code in (("same_data", data, EXIT_DATA),
                                           ("same_broker", other, EXIT_ANOTHER_ENGINE)):
                    acked = len(load.answers)
                    a = await asyncio.to_thread(attempt_serve, broker.url, target,
                                                "--transport", transport)
                    attempts[name] = {
                        "exit_code": a.returncode, "expected": code, "line": a.line,
                        "refusal_s": round(a.seconds, 2),
                        "acked_during": len(load.answers) - acked,
                        "one_line": "Traceback" not in a.stderr and bool(a.line)}
                await asyncio.sleep(0.5)
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
                await load.settle()
                still = server.proc is not None and server.proc.poll() is None
                last = await _status(broker.port)
            code = server.terminate()
            checked = verify(data, load)
            log = server.tail(100_000)
            untouched = not (other / "journal.log").exists()
            epoch_file = (data / "epoch").read_text().strip()
        finally:
            server.kill()
            tmp.cleanup()
    res = {
        **{f"{k}_{name}": v for name, a in attempts.items() for k, v in a.items()},
        "orders_sent": checked["orders_sent"], "unanswered": checked["unanswered"],
        "lost": checked["lost"], "state_hash_equal": checked["state_hash_equal"],
        "first_kept_serving": still, "first_exit_code": code,
        "status_instance_unchanged": first.get("instance") == last.get("instance")
        and last.get("status") == "online",
        "first_reconnected": "reconnecting" in log or "lost mqtt" in log,
        "refused_start_opened_nothing": untouched, "epoch_file": epoch_file,
    }
    res["acked_during_attempts"] = sum(a["acked_during"] for a in attempts.values())
    res["ok"] = (all(a["exit_code"] == a["expected"] and a["one_line"]
                     for a in attempts.values())
                 and "in use by another tokenbook serve" in attempts["same_data"]["line"]
                 and "another engine serves this venue" in attempts["same_broker"]["line"]
                 and all(a["acked_during"] > 0 for a in attempts.values())
                 and still and code == 0 and res["status_instance_unchanged"]
                 and not res["first_reconnected"] and untouched and epoch_file == "1"
                 and checked["unanswered"] == 0 and checked["lost"] == 0
                 and checked["state_hash_equal"])
    return res


async def burst(n: int = 10_000, *, transport: str = DEFAULT_TRANSPORT) -> dict:
    """``n`` orders from one ``mosquitto_pub -q 1 -l`` on a stock mosquitto (module doc)."""
    if shutil.which("mosquitto_pub") is None:
        return {"ok": None, "not_run": "mosquitto_pub is not installed"}
    with stock_mosquitto() as port:
        try:
            arrived, acked, took = await burst_through_gateway(port, n, mosquitto_pub,
                                                               transport)
        except aiomqtt.MqttError as exc:
            return {"ok": False, "error": str(exc)}
    return {"sent": n, "arrived": arrived, "acked": acked, "seconds": round(took, 2),
            "orders_per_s": round(arrived / took) if took else None, "transport": transport,
            "publisher": "mosquitto_pub -q 1 -l", "broker": "mosquitto -p PORT (no config)",
            "ok": arrived == acked == n}

"""Fault injection: kill -9 of the engine under load, broker restart, a stalled market-data
subscriber, a journal that cannot be written. Each scenario returns a dict of figures and
the checks behind them; ``tests/reliability/test_faults.py`` asserts on small runs and
``reliability/campaign.py`` (``python -m reliability``) reports larger ones.

Everything runs on loopback: a private mosquitto (``Mosquitto``, restartable on the same
port), the engine as ``python -m feeds.cli serve --data DIR`` in a child process
(``Server``; ``--transport link`` for the link transport: every scenario takes
``transport``, "aiomqtt" or "link"), and brokers as ``feeds.client.BrokerClient``
(``Load``). The checks read the engine's own files afterwards:

- ``verify(data, ...)``: recovery (latest snapshot + journal) equals a fresh replay of the
  whole journal from the first snapshot (state hash); every report a client received is
  reproduced, field for field, by that replay (nothing acknowledged was lost, nothing was
  made up); every trade has exactly one buyer and one seller report, no order entered
  twice for one ClOrdID, no client saw two executions of one trade, and the ledger equals
  the initial balances plus the replayed fills (no fill settled twice or lost).
"""
from __future__ import annotations

import asyncio
import errno
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import aiomqtt
import msgspec

from feeds import mqtt, topics
from feeds.broker import find_mosquitto
from feeds.client import BrokerClient, RequestTimeout
from feeds.config import GatewayConfig
from feeds.localproc import accepts as _accepts
from feeds.localproc import free_port as _free_port
from feeds.serve import DEMO_BROKERS, demo_ledger
from feeds.transports import make_gateway
from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import SNAP, Journal, read_journal
from matching.ledger import CASH, Ledger
from matching.messages import JournalEntry, NewOrderSingle, utc_timestamp

__all__ = ["Mosquitto", "Server", "Load", "verify", "kills_under_load", "broker_restart",
           "slow_subscriber", "disk_full", "disk_full_real"]

ROOT = Path(__file__).resolve().parent.parent
REG = Registry.load_default()
SYMBOL = "TB3M"
ACCOUNTS = {b: accts for b, accts, _ in DEMO_BROKERS}


# ---------------------------------------------------------------------- processes
class Mosquitto:
    """A private mosquitto that can be SIGKILLed and started again on the same port.

    No persistence: a restart loses every session, subscription, retained and queued
    message, which is the worst case the gateway and clients must survive.
    ``max_queued`` bounds what it queues per slow or offline client (then it drops).
    """

    def __init__(self, port: int | None = None, *, max_queued: int = 1000,
                 max_inflight: int = 20):
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError("mosquitto is needed for the fault harness")
        self.binary = binary
        self.port = port or _free_port()
        self.dir = tempfile.TemporaryDirectory(prefix="tokenbook-faults-mqtt-")
        self.conf = Path(self.dir.name) / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            f"log_dest stderr\nlog_type error\nlog_type warning\n"
            f"max_queued_messages {max_queued}\nmax_inflight_messages {max_inflight}\n"
            f"set_tcp_nodelay true\nsys_interval 1\n")
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        deadline = time.monotonic() + timeout
        while True:                     # the old socket may linger a moment after a kill
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=open(Path(self.dir.name) / "stderr.log", "ab"))
            while self.proc.poll() is None and not _accepts(self.port):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"mosquitto did not listen on {self.port}")
                time.sleep(0.01)
            if self.proc.poll() is None:
                self.starts += 1
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto could not bind port {self.port}")
            time.sleep(0.05)

    async def sys_value(self, topic: str, timeout: float = 3.0, *,
                        until=lambda v: True) -> int:
        """A ``$SYS/broker/...`` counter (published every second), or -1 if none came.

        The first value is the retained one, up to a second stale; with ``until`` the
        counter is read again each second until it holds or ``timeout`` ends (then the
        last value seen)."""
        value = -1
        try:
            async with mqtt.client("127.0.0.1", self.port, timeout=5) as c:
                await c.subscribe(topic, qos=0)
                async with asyncio.timeout(timeout):
                    async for m in c.messages:
                        value = int(m.payload)
                        if until(value):
                            return value
        except (TimeoutError, ValueError, aiomqtt.MqttError):
            pass
        return value

    def kill(self) -> None:
        """SIGKILL: in-flight and queued messages die with it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        self.dir.cleanup()


class Server:
    """``tokenbook serve --broker URL --data DIR`` in a child process."""

    def __init__(self, broker_url: str, data: str | os.PathLike, *, snapshot_every: int = 400,
                 fsync: str = "group", transport: str = "aiomqtt"):
        self.broker_url, self.data, self.transport = broker_url, Path(data), transport
        self.snapshot_every, self.fsync = snapshot_every, fsync
        self.proc: subprocess.Popen | None = None
        self.log = self.data.parent / f"{self.data.name}-serve.log"
        self.starts = 0

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "feeds.cli", "serve", "--transport", self.transport,
             "--broker", self.broker_url,
             "--data", str(self.data), "--fsync", self.fsync,
             "--snapshot-every", str(self.snapshot_every)],
            cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=open(self.log, "ab"),
            stderr=subprocess.STDOUT)
        self.starts += 1

    async def wait_online(self, since_ns: int, timeout: float = 20.0) -> None:
        """Until the engine's retained status says online, published after ``since_ns``."""
        host, port = "127.0.0.1", int(self.broker_url.rsplit(":", 1)[1])
        since = utc_timestamp(since_ns)
        async with asyncio.timeout(timeout):
            while True:
                try:
                    async with mqtt.client(host, port, timeout=5) as c:
                        await c.subscribe(topics.STATUS, qos=1)
                        async for m in c.messages:
                            st = json.loads(m.payload)
                            # UTCTimestamps: fixed width, so text order is time order.
                            if st["status"] == "online" and st["time"] >= since:
                                return
                            if self.proc.poll() is not None:
                                raise RuntimeError(f"serve exited: {self.tail()}")
                except aiomqtt.MqttError:
                    await asyncio.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 20.0) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""


# ---------------------------------------------------------------------- load
class Load:
    """Brokers sending new orders at ``rate`` per second (at most ``window`` unanswered).

    Every ClOrdID sent, the first answer to it, and every report received are kept for
    the checks. Orders cross often (one bill, a 21-tick range), so there are many fills,
    passive ones included.
    """

    def __init__(self, host: str, port: int, *, rate: float = 300, window: int = 64,
                 seed: int = 1, timeout: float = 1.0, retries: int = 60,
                 brokers: tuple[str, ...] = ("alpha", "beta", "mm"), tag: str = "o"):
        self.host, self.port, self.rate, self.window = host, port, rate, window
        self.rng = random.Random(seed)
        self.timeout, self.retries, self.brokers, self.tag = timeout, retries, brokers, tag
        self.clients: dict[str, BrokerClient] = {}
        self.sent: dict[tuple[str, str], NewOrderSingle] = {}
        self.answers: dict[tuple[str, str], object] = {}
        self.answer_times: list[float] = []
        self.timeouts: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.reports: dict[str, dict[tuple[str, str], object]] = {b: {} for b in brokers}
        self._tasks: set[asyncio.Task] = set()
        self._n = 0

    async def __aenter__(self) -> Load:
        for b in self.brokers:
            c = BrokerClient(b, self.host, self.port, timeout=self.timeout,
                             retries=self.retries, client_id=f"faults-{b}")
            await c.__aenter__()
            self.clients[b] = c
        return self

    async def __aexit__(self, *exc) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.collect()
        for c in self.clients.values():
            await c.__aexit__()

    def order(self, broker: str) -> NewOrderSingle:
        self._n += 1
        r = self.rng
        side = r.choice(("buy", "sell"))
        px = Decimal("99.260") + Decimal(r.randrange(21)) / 1000
        tif = "ioc" if r.random() < 0.2 else "gtc"
        return NewOrderSingle(f"{self.tag}{self._n}", r.choice(ACCOUNTS[broker]), SYMBOL, side,
                              str(r.choice((1, 2, 3))), price=str(px), time_in_force=tif)

    async def _one(self, broker: str, msg, sem: asyncio.Semaphore) -> None:
        try:
            t0 = time.monotonic()
            rep = await self.clients[broker].submit(msg)
            self.answers[(broker, msg.cl_ord_id)] = rep
            self.answer_times.append(time.monotonic() - t0)
        except RequestTimeout:
            self.timeouts.append((broker, msg.cl_ord_id))
        except BaseException as exc:                # counted as unanswered, kept for the report
            self.errors.append(repr(exc))
            if not isinstance(exc, Exception):
                raise
        finally:
            sem.release()

    async def run(self, seconds: float) -> None:
        """Send for ``seconds`` (whatever happens to the engine or broker meanwhile)."""
        sem = asyncio.Semaphore(self.window)
        start = time.monotonic()
        k = 0
        while (now := time.monotonic()) - start < seconds:
            due = start + k / self.rate
            if due > now:
                await asyncio.sleep(due - now)
            await sem.acquire()
            self._launch(k, sem)
            k += 1

    def _launch(self, k: int, sem: asyncio.Semaphore) -> None:
        """Send order ``k`` (round robin over the brokers) as a task holding one ``sem``."""
        broker = self.brokers[k % len(self.brokers)]
        msg = self.order(broker)
        self.sent[(broker, msg.cl_ord_id)] = msg
        t = asyncio.create_task(self._one(broker, msg, sem))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def settle(self, timeout: float = 30.0) -> None:
        """Until every request is answered or gave up, then take the reports."""
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
        await asyncio.sleep(0.3)                    # passive fills still in flight
        self.collect()

    def collect(self) -> None:
        for b, c in self.clients.items():
            for r in c.pending_reports():
                self.reports[b][(r.exec_id, r.cl_ord_id)] = r

    def seen(self) -> list[tuple[str, object]]:
        return [(b, r) for b, rs in self.reports.items() for r in rs.values()]


# ---------------------------------------------------------------------- checks
def _snapshots(data: Path) -> list[Path]:
    return sorted((data / "snapshots").glob("snapshot-*.bin"))


def replay_from_first(data: str | os.PathLike):
    """A fresh engine from the FIRST snapshot plus the whole journal, every report kept.

    Returns (engine, initial ledger, reports as (broker, report), journal keys in order).
    """
    data = Path(data)
    raw = _snapshots(data)[0].read_bytes()
    first_seq, _ = SNAP.unpack_from(raw)
    eng = Engine.from_snapshot(REG, raw[SNAP.size:], clock=time.time_ns)
    initial = Ledger.restore(eng.ledger.snapshot())
    reports, keys = [], []

    def records():
        for seq, payload in read_journal(data / "journal.log", after_seq=first_seq):
            entry = msgspec.msgpack.decode(payload, type=JournalEntry)
            if entry.broker:
                keys.append((entry.broker, entry.msg.cl_ord_id))
            yield seq, payload

    # The engine's own replay (it refuses a gap), every outcome's reports kept.
    eng.replay(records(), lambda out: reports.extend(out.reports))
    return eng, initial, reports, keys


def _strip(r):
    return msgspec.structs.replace(r, poss_resend=False)


def verify(data: str | os.PathLike, load: Load | None = None, *,
           resent: dict | None = None) -> dict:
    """The checks in the module docstring, as figures (``ok`` when every one holds)."""
    data = Path(data)
    recovered = Engine.recover(REG, snapshot_dir=data / "snapshots",
                               journal_path=data / "journal.log", clock=time.time_ns)
    fresh, initial, reports, keys = replay_from_first(data)
    by_exec = {(r.exec_id, r.cl_ord_id): (b, r) for b, r in reports}
    res: dict = {"journal_inputs": fresh.seq, "snapshots": len(_snapshots(data)),
                 "state_hash_equal": recovered.state_hash() == fresh.state_hash()}
    # One journal entry per ClOrdID: a resend never became a second order.
    dup_inputs = sum(n - 1 for n in Counter(keys).values() if n > 1)
    # Every trade: one buyer report and one seller report.
    trades = Counter((r.trade_id, r.side) for _, r in reports if r.exec_type == "trade")
    trade_ids = {t for t, _ in trades}
    bad_trades = sum(1 for t in trade_ids if trades[(t, "buy")] != 1 or trades[(t, "sell")] != 1)
    # The ledger: initial balances + the replayed fills, nothing twice, nothing missing.
    expect: Counter = Counter()
    for _b, r in reports:
        if r.exec_type != "trade" or r.side != "buy":
            continue
        inst = REG[r.symbol]
        lots = inst.qty_to_lots(Decimal(r.last_qty))
        cash = int(Decimal(r.settl_amount) * 10**6)
        expect[(r.account, r.symbol)] += lots
        expect[(r.account, CASH)] -= cash
    for _b, r in reports:
        if r.exec_type == "trade" and r.side == "sell":
            inst = REG[r.symbol]
            expect[(r.account, r.symbol)] -= inst.qty_to_lots(Decimal(r.last_qty))
            expect[(r.account, CASH)] += int(Decimal(r.settl_amount) * 10**6)
    ledger_bad = 0
    for acct in initial.accounts:
        for asset in [CASH, *(i.symbol for i in REG)]:
            want = initial.balance(acct, asset) + expect[(acct, asset)]
            if recovered.ledger.balance(acct, asset) != want:
                ledger_bad += 1
    res.update(trades=len(trade_ids), bad_trades=bad_trades, duplicate_inputs=dup_inputs,
               ledger_mismatches=ledger_bad,
               ledger_conserved=recovered.ledger.totals() == initial.totals())
    if load is not None:
        seen = load.seen()
        acked = {k: r for k, r in load.answers.items() if r.exec_type != "rejected"
                 or not r.exec_id.startswith("R")}
        lost_acks = [k for k, r in acked.items()
                     if (r.exec_id, r.cl_ord_id) not in by_exec
                     or k not in recovered.clordids.outcomes]
        # Reports a client received that the journal does not reproduce exactly.
        lost_reports = [(b, r.exec_id) for b, r in seen if r.exec_id.startswith("E") and (
            (r.exec_id, r.cl_ord_id) not in by_exec
            or by_exec[(r.exec_id, r.cl_ord_id)] != (b, _strip(r)))]
        fills_seen = [(b, r) for b, r in seen if r.exec_type == "trade"]
        per_fill = Counter((b, r.cl_ord_id, r.trade_id) for b, r in fills_seen)
        dup_fills = sum(n - 1 for n in per_fill.values() if n > 1)
        engine_reports = {(b, r.exec_id, r.cl_ord_id) for b, r in reports
                          if b in load.reports}
        seen_keys = {(b, r.exec_id, r.cl_ord_id) for b, r in seen}
        unseen = engine_reports - seen_keys
        res.update(
            orders_sent=len(load.sent), answered=len(load.answers),
            unanswered=len(load.sent) - len(load.answers), client_errors=load.errors[:5],
            acked_checked=len(acked), lost=len(lost_acks) + len(lost_reports),
            lost_acks=len(lost_acks), lost_reports=len(lost_reports),
            fills_seen=len(fills_seen),
            fills_lost=sum(1 for b, r in fills_seen if (r.exec_id, r.cl_ord_id) not in by_exec),
            duplicated=dup_inputs + dup_fills + bad_trades,
            reports_engine=len(engine_reports), reports_seen=len(seen_keys & engine_reports),
            reports_unseen=len(unseen),
            unseen_fills=sum(1 for b, e, c in unseen
                             if by_exec[(e, c)][1].exec_type == "trade"),
            not_in_journal=sum(1 for k in load.sent if k not in set(keys)),
            extra_in_journal=sum(1 for k in set(keys) if k not in load.sent
                                 and k[1].startswith(load.tag)),
            rejects=Counter(r.ord_rej_reason for r in load.answers.values()
                            if r.exec_type == "rejected"),
        )
    if resent is not None:
        res.update(resent)
    checks = [res["state_hash_equal"], res["bad_trades"] == 0, res["duplicate_inputs"] == 0,
              res["ledger_mismatches"] == 0, res["ledger_conserved"]]
    if load is not None:
        checks += [res["lost"] == 0, res["duplicated"] == 0, res["fills_lost"] == 0,
                   res["reports_unseen"] == 0]
    res["ok"] = all(checks)
    return res


async def resend_check(load: Load, n: int = 20, seed: int = 5) -> dict:
    """Send ``n`` answered ClOrdIDs again: each must come back PossResend, same exec id."""
    rng = random.Random(seed)
    keys = rng.sample(sorted(load.answers), min(n, len(load.answers)))
    ok = 0
    for b, cl in keys:
        rep = await load.clients[b].submit(load.sent[(b, cl)])
        orig = load.answers[(b, cl)]
        if rep.poss_resend and rep.exec_id == orig.exec_id and rep.order_id == orig.order_id:
            ok += 1
    return {"resends_checked": len(keys), "resends_original": ok}


# ---------------------------------------------------------------------- scenarios
async def kills_under_load(kills: int = 3, *, rate: float = 300, seed: int = 1,
                           between: tuple[float, float] = (0.6, 1.6),
                           workdir: str | None = None, transport: str = "aiomqtt") -> dict:
    """SIGKILL the engine process ``kills`` times at random moments under load, restart it
    on the same --data each time, then check everything (see ``verify``)."""
    rng = random.Random(seed)
    tmp = tempfile.TemporaryDirectory(prefix="tokenbook-kills-", dir=workdir)
    data = Path(tmp.name) / "data"
    down: list[float] = []
    with Mosquitto(max_queued=100_000) as broker:
        server = Server(broker.url, data, transport=transport)
        try:
            t0 = time.time_ns()
            server.start()
            await server.wait_online(t0)
            async with Load("127.0.0.1", broker.port, rate=rate, seed=seed) as load:
                gaps = [rng.uniform(*between) for _ in range(kills)]
                start = time.monotonic()
                sender = asyncio.create_task(load.run(sum(gaps) + 30))
                for gap in gaps:
                    await asyncio.sleep(gap)
                    server.kill()
                    killed = time.monotonic()
                    t0 = time.time_ns()
                    server.start()
                    await server.wait_online(t0)
                    down.append(time.monotonic() - killed)
                await asyncio.sleep(rng.uniform(*between))
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
                await load.settle()
                elapsed = time.monotonic() - start
                resent = await resend_check(load)
            server.terminate()
            res = verify(data, load, resent=resent)
        finally:
            server.kill()
            tmp.cleanup()
    res.update(kills=kills, seconds=round(elapsed, 2),
               load_orders_per_s=round(len(load.answers) / elapsed, 1),
               target_orders_per_s=rate,
               downtime_s_max=round(max(down), 2) if down else 0,
               downtime_s_mean=round(sum(down) / len(down), 2) if down else 0)
    res["ok"] = res["ok"] and res["resends_original"] == res["resends_checked"] > 0 \
        and res["unanswered"] == 0
    return res


async def broker_restart(restarts: int = 1, *, rate: float = 300, seed: int = 2,
                         seconds: float = 4.0, down: float = 0.3,
                         transport: str = "aiomqtt") -> dict:
    """SIGKILL mosquitto mid-stream and start it again on the same port ``restarts`` times;
    the engine (child process) and clients must reconnect by themselves. Every order must
    get one outcome, and each client must see every report the engine made for it."""
    tmp = tempfile.TemporaryDirectory(prefix="tokenbook-brk-")
    data = Path(tmp.name) / "data"
    with Mosquitto(max_queued=100_000) as broker:
        server = Server(broker.url, data, transport=transport)
        try:
            t0 = time.time_ns()
            server.start()
            await server.wait_online(t0)
            async with Load("127.0.0.1", broker.port, rate=rate, seed=seed,
                            tag="r") as load:
                start = time.monotonic()
                sender = asyncio.create_task(load.run(seconds))
                for _i in range(restarts):
                    await asyncio.sleep(seconds / (restarts + 1))
                    broker.kill()
                    await asyncio.sleep(down)
                    broker.start()
                await sender
                await load.settle()
                elapsed = time.monotonic() - start
                # Reports the gateway still holds are released within hold_reports (2 s).
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    await asyncio.sleep(0.5)
                    load.collect()
                    if _all_seen(data, load):
                        break
            server.terminate()
            res = verify(data, load)
        finally:
            server.kill()
            tmp.cleanup()
    res.update(broker_restarts=restarts, seconds=round(elapsed, 2),
               load_orders_per_s=round(len(load.answers) / elapsed, 1),
               client_reconnects=sum(c.reconnects for c in load.clients.values()))
    res["ok"] = res["ok"] and res["unanswered"] == 0 and res["reports_unseen"] == 0 \
        and res["not_in_journal"] == 0
    return res


def _all_seen(data: Path, load: Load) -> bool:
    """Whether the clients saw every report in the journal so far (a cheap re-check)."""
    try:
        _, _, reports, _ = replay_from_first(data)
    except Exception:          # noqa: BLE001 - any failure to replay means "not equal"
        return False
    seen = {(b, r.exec_id, r.cl_ord_id) for b, r in load.seen()}
    return all((b, r.exec_id, r.cl_ord_id) in seen for b, r in reports if b in load.reports)


async def slow_subscriber(orders: int = 600, *, payload_pad: int = 0, seed: int = 3,
                          max_queued: int = 200, transport: str = "aiomqtt") -> dict:
    """A raw socket subscribes to tokenbook/v1/md/# with QoS 1 and never reads again.

    The same ``orders`` are timed with and without it; the engine must keep acknowledging
    at a similar rate while mosquitto queues (then drops) for the stalled one.
    """
    with Mosquitto(max_queued=max_queued) as broker:
        base = await _timed_orders(broker, orders, seed, stalled=False, transport=transport)
        slow = await _timed_orders(broker, orders, seed + 1, stalled=True, transport=transport)
        dropped = await broker.sys_value("$SYS/broker/publish/messages/dropped",
                                         timeout=4.0, until=lambda v: v > 0)
    return {"orders": orders, "baseline_orders_per_s": round(base["rate"], 1),
            "stalled_orders_per_s": round(slow["rate"], 1),
            "ratio": round(slow["rate"] / base["rate"], 2),
            "md_messages_published": slow["md"], "stalled_socket_bytes_read": 0,
            "broker_dropped_for_stalled": dropped, "broker_max_queued": max_queued,
            "stalled_still_connected": slow["connected"],
            "acked_with_stall": slow["acked"], "seconds_with_stall": round(slow["secs"], 2),
            "ok": slow["acked"] == orders and slow["rate"] >= 0.5 * base["rate"]
            and dropped > 0}


def _stalled_socket(port: int) -> socket.socket:
    """MQTT 3.1.1 CONNECT + SUBSCRIBE tokenbook/v1/md/# QoS 1, written by hand; never read."""
    def s_(txt: str) -> bytes:
        return len(txt).to_bytes(2, "big") + txt.encode()
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    body = s_("MQTT") + bytes([4, 0x02]) + (600).to_bytes(2, "big") + s_("stalled-md")
    sock.sendall(bytes([0x10, len(body)]) + body)
    sub = (1).to_bytes(2, "big") + s_("tokenbook/v1/md/#") + bytes([1])
    sock.sendall(bytes([0x82, len(sub)]) + sub)
    return sock


async def _timed_orders(broker: Mosquitto, n: int, seed: int, stalled: bool,
                        transport: str = "aiomqtt") -> dict:
    tmp = tempfile.TemporaryDirectory(prefix="tokenbook-slow-")
    journal = Journal(Path(tmp.name) / "journal.log", fsync="none")
    engine = Engine(REG, demo_ledger(REG), clock=time.time_ns, journal=journal)
    gw = make_gateway(engine, "127.0.0.1", broker.port,
                      GatewayConfig(client_id=f"slow-gw-{seed}"), transport=transport)
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    sock = None
    try:
        await asyncio.wait_for(gw.ready.wait(), 10)
        if stalled:
            sock = _stalled_socket(broker.port)
            await asyncio.sleep(0.2)
        async with Load("127.0.0.1", broker.port, rate=10_000, window=32, seed=seed,
                        tag=f"s{seed}-") as load:
            t = time.monotonic()
            await _count(load, n)
            await load.settle(20)
            secs = time.monotonic() - t
        connected = False
        if sock is not None:
            try:
                sock.setblocking(False)
                connected = sock.recv(1, socket.MSG_PEEK) != b""
            except BlockingIOError:
                connected = True
            except OSError:
                connected = False
        return {"rate": len(load.answers) / secs, "acked": len(load.answers), "secs": secs,
                "md": gw.stats.published, "connected": connected}
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        if sock is not None:
            sock.close()
        journal.close()
        tmp.cleanup()


async def _count(load: Load, n: int) -> None:
    """Send exactly ``n`` orders as fast as the window allows."""
    sem = asyncio.Semaphore(load.window)
    for k in range(n):
        await sem.acquire()
        load._launch(k, sem)


def _recover_acked(data: Path, acked: dict) -> tuple[Engine, list]:
    """Recover the engine from ``data``; the acknowledged orders (key -> first report) it
    does not hold with their original report are the lost ones."""
    recovered = Engine.recover(REG, snapshot_dir=data / "snapshots",
                               journal_path=data / "journal.log", clock=time.time_ns)
    lost = [k for k, r in acked.items() if k not in recovered.clordids.outcomes
            or recovered.clordids.outcomes[k][0].exec_id != r.exec_id]
    return recovered, lost


async def disk_full(before: int = 100, after: int = 50, *, seed: int = 4,
                    transport: str = "aiomqtt") -> dict:
    """The journal's writes start failing with ENOSPC mid-stream (os.pwrite patched in the
    journal's module): the engine must refuse from then on (JOURNAL_UNAVAILABLE, status
    not_accepting with the reason), acknowledge nothing it could not persist, and a
    restart on the same files must hold every order acknowledged before the failure."""
    import matching.journal as jmod
    tmp = tempfile.TemporaryDirectory(prefix="tokenbook-full-")
    data = Path(tmp.name)
    journal = Journal(data / "journal.log")
    engine = Engine(REG, demo_ledger(REG), clock=time.time_ns, journal=journal)
    engine.write_snapshot(data / "snapshots")
    with Mosquitto() as broker:
        gw = make_gateway(engine, "127.0.0.1", broker.port,
                          GatewayConfig(client_id=f"full-gw-{seed}"), transport=transport)
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        real_write, real_sync = jmod.os.pwrite, jmod.os.fdatasync
        statuses: list[dict] = []
        try:
            await asyncio.wait_for(gw.ready.wait(), 10)
            async with mqtt.client("127.0.0.1", broker.port) as watcher:
                await watcher.subscribe(topics.STATUS, qos=1)
                watch = asyncio.create_task(_statuses(watcher, statuses))
                async with Load("127.0.0.1", broker.port, rate=10_000, window=16, seed=seed,
                                tag="d", timeout=1.0, retries=3) as load:
                    await _count(load, before)
                    await load.settle(20)
                    acked_before = dict(load.answers)

                    def full(*a):
                        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                    # Both paths: the write fails, or the write passes and the sync fails.
                    jmod.os.pwrite = full
                    jmod.os.fdatasync = full
                    await _count(load, after)
                    await load.settle(20)
                    # Resend a few acknowledged ones: still their original outcome.
                    resend_keys = sorted(acked_before)[:5]
                    resends = [await load.clients[b].submit(load.sent[(b, c)])
                               for b, c in resend_keys]
                    await asyncio.sleep(0.3)
                watch.cancel()
        finally:
            jmod.os.pwrite, jmod.os.fdatasync = real_write, real_sync
            stop.set()
            await asyncio.wait_for(task, 20)
            journal.close()
    after_keys = [k for k in load.sent if k not in acked_before]
    after_answers = [load.answers.get(k) for k in after_keys]
    acked_after = [r for r in after_answers if r is not None and r.exec_type != "rejected"]
    refused = [r for r in after_answers if r is not None and r.exec_type == "rejected"
               and r.ord_rej_reason == "JOURNAL_UNAVAILABLE"]
    last = statuses[-1] if statuses else {}
    # Restart on the same files: every order acknowledged before the failure is there.
    recovered, lost = _recover_acked(data, acked_before)
    v = verify(data)
    tmp.cleanup()
    res = {"acked_before_failure": len(acked_before), "sent_after_failure": len(after_keys),
           "acked_after_failure": len(acked_after), "refused_journal_unavailable": len(refused),
           "unanswered_after_failure": sum(1 for r in after_answers if r is None),
           "status": last.get("status"), "status_text": last.get("text", ""),
           "resends_after_failure_original": sum(
               1 for (k, r) in zip(resend_keys, resends, strict=False)
               if r.poss_resend and r.exec_id == acked_before[k].exec_id),
           "resends_checked": len(resend_keys),
           "lost_after_restart": len(lost), "recovered_seq": recovered.seq,
           "state_hash_equal": v["state_hash_equal"]}
    res["ok"] = (res["acked_after_failure"] == 0 and len(refused) == len(after_keys)
                 and res["status"] == "not_accepting" and "No space" in res["status_text"]
                 and res["lost_after_restart"] == 0 and v["ok"]
                 and res["resends_after_failure_original"] == len(resend_keys))
    return res


async def disk_full_real(size_kb: int = 96, after: int = 50, *, seed: int = 5,
                         cap: int = 20_000, transport: str = "aiomqtt") -> dict:
    """The journal's file system really fills up: the data folder is a ``size_kb`` tmpfs
    (mounting one needs root; elsewhere the result says why it did not run). Orders go in
    until the engine says ``not_accepting``, then ``after`` more: all must be refused
    JOURNAL_UNAVAILABLE. The files are then copied to a roomy disk (an operator's move)
    and recovered: every order ever acknowledged must be there, with its original report,
    and the state must equal a fresh replay."""
    mnt = Path(tempfile.mkdtemp(prefix="tokenbook-tmpfs-"))
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs",
                            str(mnt)], capture_output=True, text=True)
    if mount.returncode != 0:
        mnt.rmdir()
        return {"ok": None, "not_run": f"cannot mount a tmpfs here: "
                f"{(mount.stderr or mount.stdout).strip()[:120]}"}
    moved = tempfile.TemporaryDirectory(prefix="tokenbook-moved-")
    try:
        journal = Journal(mnt / "journal.log")
        engine = Engine(REG, demo_ledger(REG), clock=time.time_ns, journal=journal)
        engine.write_snapshot(mnt / "snapshots")
        statuses: list[dict] = []
        with Mosquitto() as broker:
            gw = make_gateway(engine, "127.0.0.1", broker.port, GatewayConfig(
                client_id=f"tmpfs-gw-{seed}", snapshot_dir=mnt / "snapshots",
                snapshot_every=200), transport=transport)
            stop = asyncio.Event()
            task = asyncio.create_task(gw.run(stop))
            try:
                await asyncio.wait_for(gw.ready.wait(), 10)
                async with mqtt.client("127.0.0.1", broker.port) as watcher:
                    await watcher.subscribe(topics.STATUS, qos=1)
                    watch = asyncio.create_task(_statuses(watcher, statuses))
                    async with Load("127.0.0.1", broker.port, rate=10_000, window=16,
                                    seed=seed, tag="t", timeout=1.0, retries=3) as load:
                        while gw.cycle.accepting and len(load.sent) < cap:
                            await _count(load, 100)
                            await load.settle(20)
                        sent_before = set(load.sent)
                        await _count(load, after)
                        await load.settle(20)
                    watch.cancel()
            finally:
                stop.set()
                await asyncio.wait_for(task, 20)
                try:
                    journal.close()
                except OSError:
                    pass                          # the failed journal cannot commit; fine
        used = {p.name: p.stat().st_size for p in mnt.iterdir() if p.is_file()}
        shutil.copytree(mnt, moved.name, dirs_exist_ok=True)
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
        mnt.rmdir()
    data = Path(moved.name)
    # Reopening the journal for writing, as a restarted server does, cuts a torn last
    # record (a write the full disk cut short) and keeps its bytes aside.
    Journal(data / "journal.log").close()
    torn = sorted(p.name for p in data.iterdir() if ".torn-" in p.name)
    acked = {k: r for k, r in load.answers.items() if r.exec_type != "rejected"}
    after_keys = [k for k in load.sent if k not in sent_before]
    refused = [k for k in after_keys if (r := load.answers.get(k)) is not None
               and r.ord_rej_reason == "JOURNAL_UNAVAILABLE"]
    recovered, lost = _recover_acked(data, acked)
    v = verify(data)
    moved.cleanup()
    last = statuses[-1] if statuses else {}
    res = {"tmpfs_kb": size_kb, "orders_until_full": len(sent_before),
           "acknowledged": len(acked), "sent_after_full": len(after_keys),
           "refused_journal_unavailable": len(refused),
           "acked_after_full": sum(1 for k in after_keys if k in acked),
           "status": last.get("status"), "status_text": last.get("text", ""),
           "journal_bytes": used.get("journal.log", 0), "torn_tail_kept": torn,
           "lost_after_restart": len(lost), "recovered_seq": recovered.seq,
           "state_hash_equal": v["state_hash_equal"]}
    res["ok"] = (len(sent_before) < cap and res["acked_after_full"] == 0
                 and len(refused) == len(after_keys) and res["status"] == "not_accepting"
                 and "No space" in res["status_text"] and not lost and v["ok"])
    return res


async def _statuses(client: aiomqtt.Client, out: list) -> None:
    async for m in client.messages:
        out.append(json.loads(m.payload))

"""One engine per venue (``feeds.guard``), on real private mosquittos.

``tokenbook serve`` runs as a subprocess like an operator would start it; the checks
themselves (``VenueGuard``) and two gateways racing run in-process. Every wait is bounded.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from feeds import topics
from feeds.broker import EmbeddedBroker
from feeds.codec import EngineStatus, encode, utc_timestamp
from feeds.config import GatewayConfig
from feeds.guard import AnotherEngine, VenueGuard, decode_status
from feeds.transports import make_gateway
from matching.messages import parse_utc_timestamp
from reliability.integrity import attempt_serve
from testkit.mqtt import connect, run, two_broker_engine

pytestmark = pytest.mark.network
ROOT = Path(__file__).resolve().parents[2]
WAIT = 15.0


def tokenbook(*args: str) -> list[str]:
    return [sys.executable, "-m", "feeds.cli", *args]


@pytest.fixture()
def broker():
    """A broker of its own per test: no retained status left by another test."""
    with EmbeddedBroker() as b:
        yield b


class Watcher:
    """A paho MQTT 5 client recording every message of some topics (its own thread)."""

    def __init__(self, port: int, *filters: str):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        self.c.on_message = lambda c, ud, m: self.messages.append((m.topic, m.payload,
                                                                   m.retain))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        for f in filters:
            self.c.subscribe(f, qos=1)

    def status(self) -> EngineStatus | None:
        """The latest engine status seen."""
        found = [decode_status(p) for t, p, _ in list(self.messages) if t == topics.STATUS]
        return found[-1] if found else None

    def wait(self, pred, what: str, timeout: float = WAIT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = pred()
            if got:
                return got
            time.sleep(0.02)
        raise AssertionError(f"timed out waiting for {what}")

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.c.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@contextmanager
def watcher(port, *filters):
    w = Watcher(port, *filters)
    try:
        yield w
    finally:
        w.close()


@contextmanager
def serving(url: str, data: Path, *extra: str):
    """``tokenbook serve`` in a subprocess; stopped (SIGTERM) at the end. ``extra``
    names the transport (``--transport``) when a test runs on both."""
    proc = subprocess.Popen(tokenbook("serve", "--broker", url, "--data", str(data), *extra),
                            cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def online_status_of(w: Watcher, pid: int):
    def pred():
        st = w.status()
        return st if st is not None and st.status == "online" and st.pid == pid else None
    return pred


def order(cl: str, account: int = 1001) -> bytes:
    return json.dumps({"msg": "new_order", "cl_ord_id": cl, "account": account,
                       "symbol": "TB3M", "side": "buy", "qty": "1", "price": "99.000"}).encode()


# ---------------------------------------------------------------------- tokenbook serve
def test_a_second_engine_on_the_same_broker_refuses_and_the_first_is_undisturbed(
        broker, tmp_path, transport):
    with watcher(broker.port, topics.STATUS, topics.exec_reports("alpha")) as w, \
            serving(broker.url, tmp_path / "one", "--transport", transport) as first:
        first_status = w.wait(online_status_of(w, first.pid), "the first engine online")
        assert first_status.instance and first_status.host
        # Its start is a FIX UTCTimestamp (ints on the wire are for sequence numbers only).
        assert 0 < parse_utc_timestamp(first_status.started) <= time.time_ns()
        second = attempt_serve(broker.url, tmp_path / "two", "--seconds", "20",
                               "--transport", transport)
        took = second.seconds
        assert second.returncode == 4, second.stderr
        last = second.line
        assert "refusing to start: another engine serves this venue" in last
        assert f"instance {first_status.instance}" in last and f"pid {first.pid}" in last
        assert "Traceback" not in second.stderr and took < 10
        assert not (tmp_path / "two" / "journal.log").exists()   # it opened nothing
        # The first one still serves: an order is acknowledged, its status is still the
        # retained one, and it never lost its connection.
        w.publish(topics.orders("alpha"), order("after-second"))
        w.wait(lambda: any(t == topics.exec_reports("alpha") and b"after-second" in p
                           for t, p, _ in list(w.messages)), "the first engine's ack")
        assert w.status().instance == first_status.instance
        assert first.poll() is None
        first.send_signal(signal.SIGTERM)
        out, err = first.communicate(timeout=15)
        assert first.returncode == 0, err
        assert "lost mqtt" not in err and "reconnecting" not in err and "served 1 messages" in out


def test_a_killed_engine_does_not_block_a_restart(broker, tmp_path, transport):
    with watcher(broker.port, topics.STATUS) as w:
        with serving(broker.url, tmp_path / "one", "--transport", transport) as first:
            w.wait(online_status_of(w, first.pid), "the first engine online")
            first.kill()                                   # no shutdown: its will says offline
            first.wait(10)
        w.wait(lambda: (st := w.status()) is not None and st.status == "offline",
               "the dead engine's will")
        t0 = time.monotonic()
        with serving(broker.url, tmp_path / "one", "--transport", transport) as again:
            w.wait(online_status_of(w, again.pid), "the restarted engine online", timeout=10)
            assert time.monotonic() - t0 < 10


# ---------------------------------------------------------------------- the check itself
def _fake_status(status: str, instance: str, **kw) -> bytes:
    fields = {"host": "elsewhere", "pid": 4242, "started": utc_timestamp(time.time_ns() - 10**9),
              "heartbeat": 0.2, "keepalive": 1, **kw}
    return encode(EngineStatus(status, "", utc_timestamp(time.time_ns()), instance, **fields))


def _guard(port, **kw) -> VenueGuard:
    return VenueGuard("127.0.0.1", port, instance="mine", started=time.time_ns(), **kw)


def test_the_check_goes_ahead_on_no_status_offline_or_its_own(broker):
    async def body():
        guard = _guard(broker.port)
        none = await guard.check()
        async with connect(broker.url) as c:
            await c.publish(topics.STATUS, _fake_status("offline", "other"), qos=1, retain=True)
            offline = await guard.check()
            await c.publish(topics.STATUS, _fake_status("online", "mine"), qos=1, retain=True)
            own = await guard.check()
        return none.why, offline.why, own.why
    t0 = time.monotonic()
    none, offline, own = run(body(), 15)
    assert "no engine status" in none and "is offline" in offline and "own" in own
    assert time.monotonic() - t0 < 3                   # no waiting for any of them


def test_a_resent_status_of_an_earlier_engine_does_not_make_its_successor_step_down():
    """A killed engine's session may hold a status it never PUBACKed; the broker resends it
    (DUP) to the restarted engine, which takes the session. It predates the restarted
    engine's check, so it is ignored; the same status sent afresh is a live rival."""
    guard = VenueGuard("127.0.0.1", 1, instance="mine", started=time.time_ns())
    earlier = decode_status(_fake_status("online", "killed"))
    assert earlier is not None
    assert guard.on_status(earlier, resent=True) is False
    with pytest.raises(AnotherEngine):
        guard.on_status(earlier)


def test_a_stale_online_status_does_not_block_but_a_heartbeat_refuses(broker):
    """An online status nobody renews (its engine died without a will, or a broker kept
    it across a restart) is given its liveness window (1.5 x keepalive + heartbeat, its
    own values: 1.7 s here), then the check goes ahead; a live heartbeat refuses at once."""
    async def beat(stop: asyncio.Event):
        async with connect(broker.url) as c:
            while not stop.is_set():
                await c.publish(topics.STATUS, _fake_status("online", "live"), qos=1,
                                retain=True)
                await asyncio.sleep(0.2)

    async def body():
        async with connect(broker.url) as c:
            await c.publish(topics.STATUS, _fake_status("online", "ghost"), qos=1, retain=True)
        guard = _guard(broker.port)
        t0 = time.monotonic()
        stale = await guard.check()
        stale_s = time.monotonic() - t0
        t0 = time.monotonic()
        again = await guard.check()          # known dead now: no second wait
        again_s = time.monotonic() - t0
        stop = asyncio.Event()
        task = asyncio.create_task(beat(stop))
        await asyncio.sleep(0.3)
        t0 = time.monotonic()
        try:
            await guard.check()
            busy = None
        except AnotherEngine as exc:
            busy = exc
        busy_s = time.monotonic() - t0
        stop.set()
        await task
        return stale, stale_s, again, again_s, busy, busy_s

    stale, stale_s, again, again_s, busy, busy_s = run(body(), 20)
    assert "stale status of instance ghost" in stale.why and 1.5 < stale_s < 5
    assert "checked before" in again.why and again_s < 1
    assert isinstance(busy, AnotherEngine) and busy.other.instance == "live"
    assert "another engine serves this venue: instance live on elsewhere pid 4242" in str(busy)
    assert busy_s < 1.5


@pytest.mark.parametrize("same_client_id", [False, True], ids=["own-ids", "same-id"])
def test_two_engines_started_together_leave_exactly_one(broker, same_client_id, transport):
    """Both may pass their checks at the same moment. With their own client ids both
    connect, read each other's status, and the later-started one steps down; with the
    same client id the later connection takes the session and the other, checking before
    it reconnects, hears the winner's heartbeat and steps down instead."""
    def gateway(n):
        return make_gateway(two_broker_engine(), "127.0.0.1", broker.port, GatewayConfig(
            client_id="tokenbook-engine" if same_client_id else f"engine-{n}",
            heartbeat=0.3, hold_reports=0), transport=transport)

    async def body():
        gws = [gateway(0), gateway(1)]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(g.run(stop)) for g in gws]
        t0 = time.monotonic()
        await asyncio.wait(tasks, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        took = time.monotonic() - t0
        await asyncio.sleep(1.0)                        # a few heartbeats more: still one
        survivors = [g for g, t in zip(gws, tasks, strict=True) if not t.done()]
        errors = [t.exception() for t in tasks if t.done()]
        async with connect(broker.url) as c:
            await c.subscribe(topics.STATUS, qos=1)
            async with asyncio.timeout(5):
                retained = decode_status((await anext(aiter(c.messages))).payload)
        connected = [g.connected for g in survivors]        # before the shutdown
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        return took, survivors, errors, retained, connected

    took, survivors, errors, retained, connected = run(body(), 30)
    assert len(survivors) == 1 and len(errors) == 1, errors
    assert took < 5                                     # a few heartbeats, no timeouts
    assert isinstance(errors[0], AnotherEngine)
    assert retained.instance == survivors[0].config.instance and retained.status == "online"
    assert connected == [True]


def test_the_status_names_the_engine_and_its_heartbeat_renews_it(broker, transport):
    async def body():
        gw = make_gateway(two_broker_engine(), "127.0.0.1", broker.port,
                          GatewayConfig(heartbeat=0.2), transport=transport)
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        await asyncio.wait_for(gw.ready.wait(), 10)
        seen = []
        async with connect(broker.url) as c:
            await c.subscribe(topics.STATUS, qos=1)
            async with asyncio.timeout(5):
                async for m in c.messages:
                    seen.append(decode_status(m.payload))
                    if len(seen) == 4:
                        break
        stop.set()
        await asyncio.wait_for(task, 10)
        return gw, seen

    gw, seen = run(body(), 20)
    assert {(s.status, s.instance, s.pid, s.host) for s in seen} == {
        ("online", gw.config.instance, os.getpid(), __import__("socket").gethostname())}
    assert [s.time for s in seen] == sorted(s.time for s in seen) and seen[0].time < seen[-1].time
    assert seen[0].heartbeat == 0.2 and seen[0].keepalive == gw.config.keepalive

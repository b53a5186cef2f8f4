"""Test helpers for anything that talks MQTT: a private broker fixture, bounded waits and
the network tests' engine (``two_broker_engine``).

``tests/mqtt/conftest.py`` imports the fixtures for the MQTT tests; elsewhere, import them
into a test module (or a conftest.py)::

    from testkit.mqtt import mqtt_broker, mosquitto_url, run   # noqa: F401

    def test_something(mqtt_broker):
        async def body():
            async with connect(mqtt_broker) as c: ...
        run(body())

Everything here is bounded in time: no helper can hang a test run. pytest is needed only
by the fixtures, so importing this module without pytest still works.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable
from typing import Any, TypeVar

import aiomqtt

from feeds import mqtt
from feeds.broker import EmbeddedBroker, parse_broker_url
from feeds.transports import TRANSPORTS
from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger

__all__ = ["mqtt_broker", "mosquitto_url", "transport", "run", "connect", "unique_topic",
           "next_message", "VanishingClient", "two_broker_engine"]

T = TypeVar("T")

try:
    import pytest
except ImportError:                                   # pragma: no cover - runtime install
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="module")
    def mqtt_broker():
        """A private broker (mosquitto) shared by one test module, stopped after it."""
        with EmbeddedBroker() as broker:
            yield broker

    @pytest.fixture(scope="module")
    def mosquitto_url(mqtt_broker) -> str:
        """``mqtt://127.0.0.1:PORT`` of the module's private broker."""
        return mqtt_broker.url

    @pytest.fixture(params=TRANSPORTS)
    def transport(request) -> str:
        """The gateway's MQTT transport under test: every test taking it runs on both
        (``feeds.transports.make_gateway``)."""
        return request.param


def two_broker_engine(clock=time.time_ns, journal=None, symbols=None):
    """The network tests' engine: broker alpha owns account 1 and beta account 2, both
    funded with cash and every instrument (or only ``symbols``: a shard's), whitelisted
    everywhere; wall-clock time unless ``clock`` says otherwise."""
    reg = Registry.load_default()
    if symbols is not None:
        reg = Registry(reg[s] for s in symbols)
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta")):
        led.open_account(acct, broker)
        led.deposit(acct, CASH, 10**13)
        for inst in reg:
            led.deposit(acct, inst.symbol, 10**8)
            led.whitelist(acct, inst.symbol)
    return Engine(reg, led, clock=clock, journal=journal)


def run(coro: Awaitable[T], timeout: float = 20.0) -> T:
    """``asyncio.run`` with a deadline: a stuck network test fails instead of hanging."""
    async def bounded():
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


def connect(broker: EmbeddedBroker | str, **kwargs: Any) -> aiomqtt.Client:
    """An MQTT 5 client (TCP_NODELAY) for a broker or an ``mqtt://`` URL; ``async with`` it."""
    host, port = parse_broker_url(broker if isinstance(broker, str) else broker.url)
    kwargs.setdefault("identifier", f"test-{uuid.uuid4().hex[:12]}")
    kwargs.setdefault("timeout", 5)
    return mqtt.client(host, port, **kwargs)


def unique_topic(label: str = "t") -> str:
    """A topic no other test (or test run on the same broker) publishes to."""
    return f"test/{label}/{uuid.uuid4().hex}"


async def next_message(client: aiomqtt.Client, timeout: float = 5.0) -> aiomqtt.Message:
    """The client's next message, or ``TimeoutError`` after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        return await anext(aiter(client.messages))


_VANISHING = r"""
import asyncio, sys
import aiomqtt
host, port, topic, payload = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
retain = sys.argv[5] == "1"
async def main():
    will = aiomqtt.Will(topic, payload.encode(), qos=1, retain=retain)
    async with aiomqtt.Client(host, port, protocol=aiomqtt.ProtocolVersion.V5, will=will):
        print("connected", flush=True)
        await asyncio.sleep(3600)
asyncio.run(main())
"""


class VanishingClient:
    """An MQTT 5 client in a child process with a last will; ``kill()`` drops it uncleanly.

    SIGKILL closes its socket without a DISCONNECT packet: exactly what the broker sees when
    a broker's process or host dies, so its will is published.
    """

    def __init__(self, broker: EmbeddedBroker | str, will_topic: str, will_payload: str,
                 retain: bool = False, timeout: float = 15.0):
        host, port = parse_broker_url(broker if isinstance(broker, str) else broker.url)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _VANISHING, host, str(port), will_topic, will_payload,
             "1" if retain else "0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        self.timeout = timeout

    async def connected(self) -> None:
        """Wait (bounded) until the child is connected, its will registered."""
        async with asyncio.timeout(self.timeout):
            line = await asyncio.to_thread(self.proc.stdout.readline)
        if line.strip() != b"connected":
            self.kill()
            raise RuntimeError(f"will client failed: {self.proc.stderr.read().decode()[-500:]}")

    def kill(self) -> None:
        """SIGKILL the child and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()

    async def __aenter__(self) -> VanishingClient:
        try:
            await self.connected()
        except BaseException:
            self.kill()
            raise
        return self

    async def __aexit__(self, *exc) -> None:
        self.kill()

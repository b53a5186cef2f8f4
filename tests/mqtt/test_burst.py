"""No silent loss on a stock broker: bursts reach the engine whole; limits are reported.

A stock mosquitto 2 (``mosquitto -p PORT``, no configuration file) sends a subscriber at
most 20 QoS 1 messages in flight (``max_inflight_messages``) unless the subscriber
announces a larger MQTT 5 Receive Maximum, and queues only 1000 more
(``max_queued_messages``): the rest of a burst is dropped without a word. The gateway
announces 65535 and reads as fast as the socket delivers.
"""
from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from feeds import topics
from feeds.broker import _free_port, find_mosquitto
from feeds.gateway import Gateway, GatewayConfig
from testkit.mqtt import run, two_broker_engine

pytestmark = pytest.mark.network
BURST = 10_000


@contextmanager
def stock_mosquitto(config: str | None = None):
    """``mosquitto -p PORT``: the defaults of mosquitto 2, no configuration file (or,
    with ``config``, that text as its only configuration)."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="tokenbook-stock-") as tmp:
        cmd = [find_mosquitto(), "-p", str(port)]
        if config is not None:
            conf = Path(tmp) / "m.conf"
            conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n{config}")
            cmd = [find_mosquitto(), "-c", str(conf)]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while True:
                assert proc.poll() is None, "mosquitto exited at start"
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    assert time.monotonic() < deadline, "mosquitto did not start"
                    time.sleep(0.02)
            yield port
        finally:
            proc.terminate()
            proc.wait(5)


def _orders(n: int) -> bytes:
    return b"".join(json.dumps({
        "msg": "new_order", "cl_ord_id": f"burst-{i}", "account": 1, "symbol": "TB3M",
        "side": "buy", "qty": "0.01", "price": "98.000", "time_in_force": "gtc"}).encode()
        + b"\n" for i in range(n))


async def _burst_through_gateway(port: int, n: int, publish) -> tuple[int, int, float]:
    gw = Gateway(two_broker_engine(), "127.0.0.1", port, GatewayConfig(hold_reports=0))
    stop = asyncio.Event()
    task = asyncio.create_task(gw.run(stop))
    try:
        await asyncio.wait_for(gw.ready.wait(), 10)
        t0 = time.monotonic()
        await publish(port, n)
        # One cycle may take a large part of the burst at once (and seconds on a busy
        # host), so wait on a deadline, not on a pause in the count.
        deadline = time.monotonic() + 90
        while gw.stats.received < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return gw.stats.received, gw.stats.acks, time.monotonic() - t0
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def _mosquitto_pub(port: int, n: int) -> None:
    """``mosquitto_pub -q 1 -l``: one order per line at QoS 1 (its limit is ~24.5k)."""
    proc = await asyncio.create_subprocess_exec(
        shutil.which("mosquitto_pub") or "mosquitto_pub", "-p", str(port), "-q", "1", "-l",
        "-t", topics.orders("alpha"), stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(_orders(n)), 60)
    assert proc.returncode == 0, err


async def _paho_pub(port: int, n: int) -> None:
    """A paho MQTT 5 publisher with no in-flight limit of its own."""
    def publish():
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="burst-pub",
                        protocol=paho.MQTTv5)
        c.max_inflight_messages_set(0)
        c.connect("127.0.0.1", port)
        c.loop_start()
        try:
            infos = [c.publish(topics.orders("alpha"), line, qos=1)
                     for line in _orders(n).splitlines()]
            for info in infos:
                info.wait_for_publish(30)
        finally:
            c.disconnect()
            c.loop_stop()
    await asyncio.to_thread(publish)


def test_a_burst_of_10000_orders_from_one_publisher_reaches_the_engine_whole():
    """mosquitto_pub -q 1 -l (as an operator would send a file of orders), or where it is
    not installed a paho publisher with no in-flight limit of its own."""
    publish = _mosquitto_pub if shutil.which("mosquitto_pub") else _paho_pub
    with stock_mosquitto() as port:
        received, acks, took = run(_burst_through_gateway(port, BURST, publish), 180)
    assert (received, acks) == (BURST, BURST), f"{received} of {BURST} arrived in {took:.1f} s"


def test_the_gateway_announces_the_largest_receive_maximum():
    async def props():
        return Gateway(two_broker_engine(), "127.0.0.1", 1)._client()._properties
    assert run(props(), 5).ReceiveMaximum == 65535


def test_low_broker_limits_and_dropped_messages_are_warned_about(caplog):
    """A broker taking fewer than 20 messages in flight is named at connect; messages it
    drops (here: a persistent session's queue past max_queued_messages) are reported from
    its $SYS counter."""
    caplog.set_level(logging.INFO, logger="tokenbook.gateway")
    conf = "max_inflight_messages 5\nmax_queued_messages 10\nsys_interval 1\n"
    with stock_mosquitto(conf) as port:
        # A subscriber that went away, its session kept: its queue holds 10, drops the rest.
        away = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="away",
                           protocol=paho.MQTTv5)
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 600
        away.connect("127.0.0.1", port, clean_start=False, properties=props)
        away.loop_start()
        away.subscribe("test/away", qos=1)
        time.sleep(0.3)
        away.disconnect()
        away.loop_stop()

        async def body():
            gw = Gateway(two_broker_engine(), "127.0.0.1", port, GatewayConfig())
            stop = asyncio.Event()
            task = asyncio.create_task(gw.run(stop))
            await asyncio.wait_for(gw.ready.wait(), 10)
            pub = paho.Client(paho.CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
            pub.connect("127.0.0.1", port)
            pub.loop_start()
            for i in range(40):
                pub.publish("test/away", str(i), qos=1).wait_for_publish(5)
            pub.disconnect()
            pub.loop_stop()
            deadline = time.monotonic() + 8
            while gw.broker_dropped == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
            stop.set()
            await asyncio.wait_for(task, 10)
            return gw
        gw = run(body(), 30)
    text = caplog.text
    assert "takes only 5 QoS 1 messages in flight" in text
    assert "max_queued_messages cannot be read by a client" in text
    assert gw.broker_dropped >= 30 and "the broker dropped" in text
    assert "mosquitto version 2" in gw.broker_version

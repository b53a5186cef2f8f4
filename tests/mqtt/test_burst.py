"""No silent loss on a stock broker: bursts reach the engine whole; limits are reported.

A stock mosquitto 2 (``mosquitto -p PORT``, no configuration file) sends a subscriber at
most 20 QoS 1 messages in flight (``max_inflight_messages``) unless the subscriber
announces a larger MQTT 5 Receive Maximum, and queues only 1000 more
(``max_queued_messages``): the rest of a burst is dropped without a word. The gateway
announces 65535 and reads as fast as the socket delivers.
"""
from __future__ import annotations

import asyncio
import logging
import shutil
import time

import paho.mqtt.client as paho
import pytest

from feeds import topics
from feeds.gateway import Gateway, GatewayConfig
from reliability.integrity import (
    burst_orders,
    burst_through_gateway,
    mosquitto_pub,
    stock_mosquitto,
)
from testkit.mqtt import run, two_broker_engine

pytestmark = pytest.mark.network
BURST = 10_000


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
                     for line in burst_orders(n).splitlines()]
            for info in infos:
                info.wait_for_publish(30)
        finally:
            c.disconnect()
            c.loop_stop()
    await asyncio.to_thread(publish)


def test_a_burst_of_10000_orders_from_one_publisher_reaches_the_engine_whole():
    """mosquitto_pub -q 1 -l (as an operator would send a file of orders), or where it is
    not installed a paho publisher with no in-flight limit of its own."""
    publish = mosquitto_pub if shutil.which("mosquitto_pub") else _paho_pub
    with stock_mosquitto() as port:
        received, acks, took = run(burst_through_gateway(port, BURST, publish), 180)
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

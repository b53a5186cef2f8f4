"""The venue's two uses of aiomqtt internals (``feeds.aiomqtt_seams``) against a broker."""
from __future__ import annotations

import asyncio
import uuid

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from feeds.aiomqtt_seams import disconnect_ending_session, keep_connack_properties, paho_client
from feeds.security import BROKER_RECEIVE_MAXIMUM
from testkit.mqtt import connect, run, unique_topic


def _persistent(broker, ident: str) -> aiomqtt.Client:
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 300
    return connect(broker, identifier=ident, clean_start=False, properties=props)


def test_a_non_aiomqtt_client_is_refused_loudly():
    with pytest.raises(TypeError, match="aiomqtt_seams"):
        paho_client(object())  # type: ignore[arg-type]


def test_connack_properties_reach_the_sink_with_the_brokers_receive_maximum(mqtt_broker):
    seen: list[dict] = []

    async def main():
        client = connect(mqtt_broker)
        keep_connack_properties(client, seen.append)
        async with client:
            pass
    run(main())
    assert len(seen) == 1
    assert seen[0].get("ReceiveMaximum") == BROKER_RECEIVE_MAXIMUM   # max_inflight_messages


def test_clean_goodbye_ends_the_session_so_nothing_queues_for_the_client(mqtt_broker):
    ident, topic = f"seam-{uuid.uuid4().hex[:8]}", unique_topic("seam")

    async def queued_after(goodbye) -> list[bytes]:
        async with _persistent(mqtt_broker, ident) as c:
            await c.subscribe(topic, qos=1)
            goodbye(c)
        await asyncio.sleep(0.2)
        async with connect(mqtt_broker) as other:
            await other.publish(topic, b"while away", qos=1)
        got: list[bytes] = []
        async with _persistent(mqtt_broker, ident) as c:
            try:
                async with asyncio.timeout(0.7):
                    async for m in c.messages:
                        got.append(bytes(m.payload))
            except TimeoutError:
                pass
            disconnect_ending_session(c)
        return got

    assert run(queued_after(lambda c: None)) == [b"while away"]   # the session was kept
    assert run(queued_after(disconnect_ending_session)) == []

"""The embedded broker: a private mosquitto that starts, carries MQTT 5 traffic, keeps
retained messages, publishes a vanished client's last will, and leaves no process behind.
Every wait is bounded; every test uses its own topics."""
from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
import sys
import time
import types

import aiomqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from feeds import broker as broker_mod
from feeds.broker import BrokerUnavailable, EmbeddedBroker, parse_broker_url
from testkit.mqtt import VanishingClient, connect, next_message, run, unique_topic

network = pytest.mark.network


def gone(pid: int) -> bool:
    """True if no process (not even a zombie) has this pid any more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def refuses(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


# ------------------------------------------------------------------ URL parsing
@pytest.mark.parametrize("url, expected", [
    ("mqtt://127.0.0.1:1884", ("127.0.0.1", 1884)),
    ("mqtt://localhost", ("localhost", 1883)),
    ("mqtt://broker.example.com:8883/", ("broker.example.com", 8883)),
    ("mqtt://[::1]:1883", ("::1", 1883)),
])
def test_parse_broker_url(url, expected):
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize("url", [
    "", "127.0.0.1:1883", "tcp://h:1883", "http://h:1883", "mqtts://h:8883", "mqtt://",
    "mqtt://:1883", "mqtt://h:0", "mqtt://h:65536", "mqtt://h:port", "mqtt://h:",
    "mqtt://u:p@h:1883", "mqtt://h:1883/topic", "mqtt://h:1883?x=1", "mqtt://h:1883#f",
    "mqtt://h :1883", "mqtt://h:1883\n", "mqtt://::1:1883", "mqtt://[nothost]:1883", None,
])
def test_parse_broker_url_refuses(url):
    with pytest.raises(ValueError):
        parse_broker_url(url)


# ------------------------------------------------------------------ start, traffic, exit
@network
def test_embedded_broker_starts_private_mosquitto(mqtt_broker, caplog):
    b = mqtt_broker
    assert b.kind == "mosquitto" and b.mqtt5 and b.running
    assert b.url == f"mqtt://127.0.0.1:{b.port}" and b.port not in (0, 1883)
    assert parse_broker_url(b.url) == ("127.0.0.1", b.port)
    assert not refuses(b.port) and not gone(b.pid)
    with open(os.path.join(b.workdir, "mosquitto.conf")) as f:
        conf = f.read()
    assert f"listener {b.port} 127.0.0.1" in conf and "persistence false" in conf
    assert "allow_anonymous true" in conf and "log_dest file" not in conf


@network
def test_start_is_logged(caplog):
    with caplog.at_level(logging.INFO, logger="tokenbook.broker"):
        with EmbeddedBroker() as b:
            pass
    assert f"private mosquitto at {b.url}" in caplog.text


@network
def test_mqtt5_publish_subscribe_round_trip(mosquitto_url):
    topic = unique_topic("roundtrip")

    async def body():
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = [("source", "test")]
        props.ContentType = "application/json"
        async with connect(mosquitto_url) as sub, connect(mosquitto_url) as pub:
            granted = await sub.subscribe(topic, qos=1)
            await pub.publish(topic, b'{"n":1}', qos=1, properties=props)
            return granted, await next_message(sub)

    granted, msg = run(body())
    assert [rc.value for rc in granted] == [1]              # MQTT 5 reason code: QoS 1 granted
    assert msg.topic.value == topic and msg.payload == b'{"n":1}' and msg.qos == 1
    assert msg.properties.ContentType == "application/json"  # MQTT 5 properties survive
    assert msg.properties.UserProperty == [("source", "test")]


@network
def test_retained_message_reaches_a_late_subscriber_and_can_be_cleared(mqtt_broker):
    topic = unique_topic("retained")

    async def body():
        async with connect(mqtt_broker) as pub:
            await pub.publish(topic, b"snapshot@7", qos=1, retain=True)
        async with connect(mqtt_broker) as late:
            await late.subscribe(topic, qos=1)
            first = await next_message(late)
        async with connect(mqtt_broker) as pub:
            await pub.publish(topic, b"", qos=1, retain=True)       # clears the retained one
        async with connect(mqtt_broker) as later:
            await later.subscribe(topic, qos=1)
            await later.publish(topic, b"marker", qos=1)
            second = await next_message(later)
        return first, second

    first, second = run(body())
    assert first.payload == b"snapshot@7" and first.retain
    assert second.payload == b"marker" and not second.retain      # nothing retained before it


@network
def test_last_will_fires_on_unclean_drop_not_on_clean_disconnect(mqtt_broker):
    topic = unique_topic("will")

    async def body():
        async with connect(mqtt_broker) as watcher:
            await watcher.subscribe(topic, qos=1)
            polite = aiomqtt.Will(topic, b"polite-offline", qos=1, retain=True)
            async with connect(mqtt_broker, will=polite):
                pass                                     # clean DISCONNECT: will discarded
            async with VanishingClient(mqtt_broker, topic, "offline", retain=True) as c:
                c.kill()                                 # no DISCONNECT: will published
                will = await next_message(watcher, timeout=10)
        async with connect(mqtt_broker) as late:
            await late.subscribe(topic, qos=1)
            kept = await next_message(late)
        return will, kept

    will, kept = run(body(), timeout=30)
    assert will.payload == b"offline"                    # the first message is not the polite one
    assert kept.payload == b"offline" and kept.retain    # retained, like the engine's status


def _assert_cleaned_up(pid, port, workdir):
    deadline = time.monotonic() + 5
    while (not gone(pid) or os.path.exists(workdir)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert gone(pid), f"mosquitto pid {pid} still alive"
    assert refuses(port) and not os.path.exists(workdir)


@network
def test_async_exit_kills_the_process_even_on_exception():
    seen = {}

    async def body():
        async with EmbeddedBroker() as b:
            seen.update(pid=b.pid, port=b.port, workdir=b.workdir)
            async with connect(b) as c:
                await c.publish(unique_topic("x"), b"1", qos=1)
            raise KeyError("boom")

    with pytest.raises(KeyError):
        run(body())
    _assert_cleaned_up(seen["pid"], seen["port"], seen["workdir"])


@network
def test_sync_start_stop_for_the_cli():
    b = EmbeddedBroker().start()
    pid, port, workdir = b.pid, b.port, b.workdir
    assert not refuses(port)
    b.stop()
    b.stop()                                             # idempotent
    assert not b.running
    _assert_cleaned_up(pid, port, workdir)


@network
def test_cancelled_startup_leaves_nothing_behind():
    """A caller's timeout firing while the broker comes up still reaps the process."""
    b = EmbeddedBroker()
    pids = []
    spawn = b._spawn

    def spy(binary):
        spawn(binary)
        pids.append(b.pid)
    b._spawn = spy

    async def body():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await b.astart()

    asyncio.run(body())
    assert len(pids) == 1 and gone(pids[0])
    assert b.pid is None and not b.running and b.workdir is None


@network
def test_a_taken_port_is_retried_on_another(monkeypatch):
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    ports = iter([taken])
    real = broker_mod._free_port
    monkeypatch.setattr(broker_mod, "_free_port", lambda: next(ports, None) or real())
    try:
        with EmbeddedBroker() as b:
            assert b.port != taken and b.kind == "mosquitto" and not refuses(b.port)
    finally:
        squatter.close()


@network
def test_startup_wait_is_bounded_and_kills_a_broker_that_never_listens(tmp_path):
    fake = tmp_path / "mosquitto"
    fake.write_text(f"#!/bin/sh\necho $$ > {tmp_path}/pid\nexec sleep 60\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    b = EmbeddedBroker(startup_timeout=0.5, binary=str(fake))
    t0 = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="did not accept connections"):
        b.start()
    assert time.monotonic() - t0 < 5
    assert b.pid is None and b.workdir is None
    assert gone(int((tmp_path / "pid").read_text()))


def test_a_broker_that_exits_at_start_reports_its_error(tmp_path):
    fake = tmp_path / "mosquitto"
    fake.write_text("#!/bin/sh\necho 'Error: Unable to open config' >&2\nexit 3\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    with pytest.raises(BrokerUnavailable, match=r"code 3\).*Unable to open config"):
        EmbeddedBroker(binary=str(fake)).start()


# ------------------------------------------------------------------ no mosquitto binary
def test_without_mosquitto_or_amqtt_the_error_says_how_to_install(monkeypatch):
    monkeypatch.setattr(broker_mod, "find_mosquitto", lambda: None)
    monkeypatch.setitem(sys.modules, "amqtt", None)          # makes the import fail
    monkeypatch.setitem(sys.modules, "amqtt.broker", None)
    with pytest.raises(BrokerUnavailable, match="apt-get install mosquitto"):
        EmbeddedBroker().start()

    async def body():
        async with EmbeddedBroker():
            pass
    with pytest.raises(BrokerUnavailable, match="apt-get install mosquitto"):
        run(body())


def _fake_amqtt():
    """A stand-in for ``amqtt.broker``: a TCP server bound where the config says."""
    class Broker:
        def __init__(self, config):
            self.host, port = config["listeners"]["default"]["bind"].rsplit(":", 1)
            self.port = int(port)
            self.server = None

        async def start(self):
            self.server = await asyncio.start_server(lambda r, w: w.close(), self.host,
                                                     self.port)

        async def shutdown(self):
            self.server.close()
            await self.server.wait_closed()

    pkg, mod = types.ModuleType("amqtt"), types.ModuleType("amqtt.broker")
    mod.Broker = Broker
    pkg.broker = mod
    return pkg, mod


@network
def test_without_mosquitto_an_importable_amqtt_is_started_in_process(monkeypatch, caplog):
    pkg, mod = _fake_amqtt()
    monkeypatch.setattr(broker_mod, "find_mosquitto", lambda: None)
    monkeypatch.setitem(sys.modules, "amqtt", pkg)
    monkeypatch.setitem(sys.modules, "amqtt.broker", mod)
    with caplog.at_level(logging.WARNING, logger="tokenbook.broker"):
        with EmbeddedBroker() as b:
            port = b.port
            assert b.kind == "amqtt" and not b.mqtt5 and b.pid is None
            assert not refuses(port)
    assert refuses(port)
    assert "in-process amqtt broker" in caplog.text and "MQTT 3.1.1 only" in caplog.text


_OWNER = """
import sys, time
from feeds.broker import EmbeddedBroker
b = EmbeddedBroker().start()
print(b.pid, b.port, b.workdir, flush=True)
time.sleep(60)
"""


@network
def test_broker_dies_with_a_killed_owner_process():
    """SIGKILL skips every cleanup; the parent-death signal still takes mosquitto down."""
    import subprocess
    owner = subprocess.Popen([sys.executable, "-c", _OWNER], stdout=subprocess.PIPE,
                             cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    try:
        pid, port, workdir = owner.stdout.readline().split()
        pid, port = int(pid), int(port)
        assert not gone(pid) and os.path.isdir(workdir)
    finally:
        owner.kill()
        owner.wait(10)
        owner.stdout.close()
    _assert_cleaned_up(pid, port, workdir)


@network
def test_shipped_broker_lets_the_engine_keep_many_publishes_in_flight(mqtt_broker):
    """CONNACK carries the shipped Receive Maximum, not mosquitto's 20: the engine's
    reports and market data of one cycle go out without waiting on PUBACK round trips."""
    import mqtt5

    from feeds.security import BROKER_RECEIVE_MAXIMUM
    with socket.create_connection(("127.0.0.1", mqtt_broker.port), timeout=5) as sock:
        sock.sendall(mqtt5.ConnectPacket(client_id=unique_topic("rm").replace("/", "-"),
                                         clean_start=True).write())
        data = b""
        while len(data) < 2 or len(data) < 2 + data[1]:
            data += sock.recv(4096)
    connack, _ = mqtt5.read(memoryview(data))
    assert isinstance(connack, mqtt5.ConnAckPacket)
    assert connack.receive_max == BROKER_RECEIVE_MAXIMUM > 20

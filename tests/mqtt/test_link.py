"""The link transport without a socket: the sans-I/O MQTT 5 session (``feeds.link``) byte
for byte, and the gateway's read -> cycle -> one write path (``feeds.link_gateway``) on a
fake transport. The network tests of both transports are in test_gateway.py and the rest.
"""
from __future__ import annotations

import asyncio
import json

import mqtt5
import pytest

from feeds import topics
from feeds.config import GatewayConfig
from feeds.link import (
    RECEIVE_MAXIMUM,
    InboundRefused,
    LinkError,
    LinkOptions,
    Session,
    connect_packet,
)
from feeds.link_gateway import LinkGateway, _Link
from feeds.link_options import link_options
from feeds.outbox import Publish
from testkit.mqtt import two_broker_engine

QOS1 = mqtt5.QoS.AT_LEAST_ONCE
WILL = Publish(topics.STATUS, b'{"status":"offline"}', True, "status")


def packets(data: bytes) -> list:
    """Every packet in ``data`` (what a session wrote)."""
    out, view, pos = [], memoryview(data), 0
    while pos < len(data):
        p, n = mqtt5.read(view[pos:])
        out.append(p)
        pos += n
    return out


def pub(i: int, kind: str = "exec") -> Publish:
    return Publish(f"tokenbook/v1/exec/b{i}", f"r{i}".encode(), False, kind, f"b{i}")


def connack(**kw) -> bytes:
    return mqtt5.ConnAckPacket(**kw).write()


def online(receive_max: int = 65535, keepalive: int = 60, **opts) -> Session:
    s = Session(LinkOptions("engine", keepalive=keepalive, will=WILL, **opts))
    s.connect(0.0)
    s.data_to_send(0.0)
    s.feed(connack(receive_max=receive_max), 0.0)
    s.events.clear()
    return s


def sent_publishes(s: Session, now: float = 0.0) -> list[mqtt5.PublishPacket]:
    return [p for p in packets(s.data_to_send(now)) if isinstance(p, mqtt5.PublishPacket)]


# ---------------------------------------------------------------------- connect
def test_connect_is_a_persistent_mqtt5_session_with_receive_maximum_65535_on_the_wire():
    data = connect_packet(LinkOptions("tokenbook-engine", "tokenbook-engine", "secret",
                                      keepalive=30, session_expiry=3600, will=WILL))
    assert b"\x21\xff\xff" in data                 # said, not left to the default
    [c] = packets(data)
    assert (c.client_id, c.username, c.password, c.clean_start) == \
        ("tokenbook-engine", "tokenbook-engine", b"secret", False)
    assert (c.keep_alive, c.session_expiry_interval, c.receive_max, c.topic_alias_max) == \
        (30, 3600, RECEIVE_MAXIMUM, 0)
    assert (c.will.topic, c.will.payload, c.will.retain, int(c.will.qos)) == \
        (topics.STATUS, WILL.payload, True, 1)


def test_connack_sets_the_servers_limits_and_a_refusal_keeps_its_reason_code():
    s = Session(LinkOptions("engine"))
    s.connect(0.0)
    s.feed(connack(session_present=True, receive_max=20, max_packet_size=1000,
                   server_keep_alive=5), 0.0)
    assert s.state == "connected" and s.session_present
    assert (s.server_receive_max, s.server_max_packet, s.keepalive) == (20, 1000, 5)
    assert isinstance(s.events[0], mqtt5.ConnAckPacket)
    refused = Session(LinkOptions("engine"))
    refused.connect(0.0)
    with pytest.raises(LinkError) as err:
        refused.feed(connack(reason_code=mqtt5.ConnAckReasonCode.BAD_USER_NAME_OR_PASSWORD),
                     0.0)
    assert err.value.code == 0x86 and "BAD_USER_NAME_OR_PASSWORD (0x86)" in str(err.value)


def test_no_connack_in_time_is_a_link_error():
    s = Session(LinkOptions("engine", connect_timeout=2.0))
    s.connect(10.0)
    assert s.next_due() == 12.0
    s.tick(11.9)
    with pytest.raises(LinkError, match="no CONNACK"):
        s.tick(12.0)


# ---------------------------------------------------------------------- publish / PUBACK
def test_publishes_are_pipelined_up_to_the_servers_receive_maximum_and_acked_by_id():
    s = Session(LinkOptions("engine"))
    s.connect(0.0)
    s.publish([pub(0)])                            # before CONNACK: waits
    assert [p for p in packets(s.data_to_send(0.0)) if isinstance(p, mqtt5.PublishPacket)] \
        == []
    s.feed(connack(receive_max=3), 0.0)
    s.publish([pub(i) for i in range(1, 6)])
    first = sent_publishes(s)
    assert [p.payload for p in first] == [b"r0", b"r1", b"r2"]
    assert all(int(p.qos) == 1 and not p.duplicate for p in first)
    ids = [p.packet_id for p in first]
    assert len(set(ids)) == 3 and len(s.queue) == 3
    # Acknowledged out of order: each by its id; the window refills in order.
    s.feed(mqtt5.PubAckPacket(ids[2]).write() + mqtt5.PubAckPacket(ids[0]).write(), 1.0)
    assert [p.payload for p in s.acked] == [b"r2", b"r0"]
    assert [p.payload for p in sent_publishes(s)] == [b"r3", b"r4"]
    assert set(s.inflight) & {ids[0], ids[2]} == set()


def test_a_refused_puback_is_reported_with_its_reason_and_never_sent_again():
    s = online(receive_max=10)
    s.publish([pub(0), pub(1)])
    a, b = (p.packet_id for p in sent_publishes(s))
    s.feed(mqtt5.PubAckPacket(a, reason_code=mqtt5.PubAckReasonCode.NOT_AUTHORIZED,
                              reason_str="acl").write()
           + mqtt5.PubAckPacket(b, reason_code=mqtt5.PubAckReasonCode.NO_MATCHING_SUBSCRIBERS
                                ).write(), 0.0)
    [r] = s.refused
    assert (r.publish.payload, r.code, r.text) == (b"r0", 0x87, "NOT_AUTHORIZED (0x87): acl")
    assert [p.payload for p in s.acked] == [b"r1"]           # 0x10 is a success
    assert not s.inflight and not s.queue and s.data_to_send(0.0) == b""
    assert s.connection_lost() == []                         # nothing left to resend


def test_a_publish_over_the_servers_maximum_packet_size_is_refused_not_sent():
    s = Session(LinkOptions("engine"))
    s.connect(0.0)
    s.feed(connack(max_packet_size=64), 0.0)
    s.data_to_send(0.0)
    big = Publish("t", b"x" * 100, False, "exec", "b")
    s.publish([big, pub(1)])
    assert [p.payload for p in sent_publishes(s)] == [b"r1"]
    assert s.refused[0].publish is big and s.refused[0].code == 0x95


def test_packet_ids_skip_those_in_use_and_wrap_after_65535():
    s = online()
    s._last_id = 65534
    s.publish([pub(0), pub(1)])
    a, b = (p.packet_id for p in sent_publishes(s))
    assert (a, b) == (65535, 1)
    s.feed(mqtt5.PubAckPacket(65535).write(), 0.0)
    s._last_id = 65534
    s.publish([pub(2), pub(3)])
    assert [p.packet_id for p in sent_publishes(s)] == [65535, 2]   # 1 is still in flight


# ---------------------------------------------------------------------- inbound
def test_inbound_qos1_is_acked_only_when_the_caller_says_and_partial_reads_wait():
    s = online()
    m1 = mqtt5.PublishPacket("tokenbook/v1/orders/a", b"o1", qos=QOS1, packet_id=7).write()
    m0 = mqtt5.PublishPacket("tokenbook/v1/presence/a", b"online").write()
    data = m1 + m0
    got = []
    for i in range(len(data)):                         # one byte per read
        got += s.feed(data[i:i + 1], 0.0)
    assert [(m.topic, m.payload) for m in got] == [("tokenbook/v1/orders/a", b"o1"),
                                                   ("tokenbook/v1/presence/a", b"online")]
    assert s.data_to_send(0.0) == b""                  # not before the commit
    s.ack_received()
    [ack] = packets(s.data_to_send(0.0))
    assert isinstance(ack, mqtt5.PubAckPacket) and ack.packet_id == 7   # QoS 0: none


def test_inbound_qos2_is_refused_with_pubrec_0x83_and_not_handed_on():
    s = online()
    q2 = mqtt5.PublishPacket("tokenbook/v1/orders/a", b"o", qos=mqtt5.QoS.EXACTLY_ONCE,
                             packet_id=9).write()
    assert s.feed(q2, 0.0) == []
    [rec] = packets(s.data_to_send(0.0))
    assert isinstance(rec, mqtt5.PubRecPacket) and rec.packet_id == 9
    assert int(rec.reason_code) == 0x83 and s.state == "connected"
    assert s.events == [InboundRefused("tokenbook/v1/orders/a", 2, 0x83)]
    s.feed(mqtt5.PubRelPacket(9).write(), 0.0)         # a server that goes on anyway
    [comp] = packets(s.data_to_send(0.0))
    assert isinstance(comp, mqtt5.PubCompPacket) and int(comp.reason_code) == 0x92


def test_a_topic_alias_or_an_oversized_packet_ends_the_connection_with_a_disconnect():
    s = online()
    with pytest.raises(LinkError) as err:
        s.feed(mqtt5.PublishPacket("t", b"x", topic_alias=1).write(), 0.0)
    assert err.value.code == 0x94
    [d] = packets(s.data_to_send(0.0))
    assert isinstance(d, mqtt5.DisconnectPacket) and int(d.reason_code) == 0x94
    small = online(max_packet_size=32)
    with pytest.raises(LinkError) as err:
        small.feed(mqtt5.PublishPacket("t", b"x" * 64).write()[:10], 0.0)   # header says
    assert err.value.code == 0x95


def test_a_disconnect_from_the_server_is_a_link_error_with_its_reason():
    s = online()
    d = mqtt5.DisconnectPacket(reason_code=mqtt5.DisconnectReasonCode.SESSION_TAKEN_OVER)
    with pytest.raises(LinkError, match=r"SESSION_TAKEN_OVER \(0x8E\)") as err:
        s.feed(d.write(), 0.0)
    assert err.value.code == 0x8E


# ---------------------------------------------------------------------- keepalive
def test_keepalive_pings_when_idle_and_fails_without_an_answer():
    s = online(keepalive=10)
    s.data_to_send(0.0)
    assert s.next_due() == 10.0
    s.tick(9.9)
    assert s.data_to_send(9.9) == b""
    s.tick(10.0)
    assert isinstance(packets(s.data_to_send(10.0))[0], mqtt5.PingReqPacket)
    assert s.next_due() == 20.0
    s.feed(mqtt5.PingRespPacket().write(), 11.0)       # answered: no failure
    assert s.next_due() == 20.0                        # 10 s after the last traffic out
    s.tick(19.9)
    assert s.data_to_send(19.9) == b""
    s.tick(20.0)
    assert isinstance(packets(s.data_to_send(20.0))[0], mqtt5.PingReqPacket)
    s.tick(29.9)                                       # unanswered, not yet too long
    with pytest.raises(LinkError) as err:
        s.tick(30.0)
    assert err.value.code == 0x8D
    assert isinstance(packets(s.data_to_send(30.0))[0], mqtt5.DisconnectPacket)


# ---------------------------------------------------------------------- reconnect
def test_unacknowledged_publishes_go_again_with_their_packet_ids_and_dup_after_a_reconnect():
    s = online(receive_max=2)
    sent = [pub(0), pub(1), pub(2, "md")]
    s.publish(sent)
    ids = {p.payload: p.packet_id for p in sent_publishes(s)}
    assert set(ids) == {b"r0", b"r1"}
    unacked = s.connection_lost()
    assert unacked == sent                            # in flight, then waiting, in order
    assert not s.inflight and not s.queue
    s.connect(5.0)
    s.data_to_send(5.0)
    s.feed(connack(session_present=True, receive_max=10), 5.0)
    s.forget([sent[1], sent[2]])                      # the caller dropped r0 meanwhile
    s.publish([sent[1], sent[2], pub(3)])
    again = sent_publishes(s, 5.0)
    assert [(p.payload, p.duplicate) for p in again] == [(b"r1", True), (b"r2", False),
                                                        (b"r3", False)]
    assert again[0].packet_id == ids[b"r1"]
    assert again[1].packet_id != ids[b"r1"] and again[2].packet_id != ids[b"r1"]


def test_subscribe_asks_qos1_at_most_and_its_suback_frees_the_packet_id():
    s = online()
    pid = s.subscribe([topics.ORDERS_WILDCARD, topics.ADMIN])
    [sub] = packets(s.data_to_send(0.0))
    assert [(f.pattern, int(f.max_qos)) for f in sub.topic_filters] == \
        [(topics.ORDERS_WILDCARD, 1), (topics.ADMIN, 1)]
    assert pid in s._reserved
    s.feed(mqtt5.SubAckPacket(pid, [mqtt5.SubAckReasonCode.GRANTED_QOS_AT_LEAST_ONCE] * 2)
           .write(), 0.0)
    assert pid not in s._reserved and isinstance(s.events[0], mqtt5.SubAckPacket)


# ---------------------------------------------------------------------- the gateway's path
class FakeTransport(asyncio.Transport):
    def __init__(self):
        super().__init__()
        self.writes: list[bytes] = []
        self.closing = False

    def write(self, data) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True


def order(cl: str) -> bytes:
    return json.dumps({"msg": "new_order", "cl_ord_id": cl, "account": 1, "symbol": "TB3M",
                       "side": "buy", "qty": "1", "price": "99.000"}).encode()


def test_one_read_is_one_cycle_one_commit_and_one_write():
    async def body():
        gw = LinkGateway(two_broker_engine(), "127.0.0.1", 1, GatewayConfig(hold_reports=0))
        link, t = _Link(gw, asyncio.get_running_loop()), FakeTransport()
        link.connection_made(t)
        gw.session.options = link_options(gw.config, gw.cycle.status("offline"))
        gw.session.connect(0.0)
        link.flush(0.0)
        assert isinstance(packets(t.writes.pop())[0], mqtt5.ConnectPacket)
        # CONNACK: the retained state goes first, then SUBSCRIBE once it is acknowledged.
        link.data_received(connack(receive_max=1000))
        retained = [p for p in packets(t.writes.pop()) if isinstance(p, mqtt5.PublishPacket)]
        assert retained[0].topic == topics.STATUS and all(p.retain for p in retained)
        link.data_received(b"".join(mqtt5.PubAckPacket(p.packet_id).write() for p in retained))
        [sub] = packets(t.writes.pop())
        link.data_received(mqtt5.SubAckPacket(sub.packet_id, [
            mqtt5.SubAckReasonCode.GRANTED_QOS_AT_LEAST_ONCE] * len(sub.topic_filters)).write())
        assert link.online.is_set() and gw.connected
        cycles, commits = gw.stats.cycles, gw.engine.durable_seq
        t.writes.clear()
        # Three orders in one read.
        link.data_received(b"".join(mqtt5.PublishPacket(
            topics.orders("alpha"), order(f"c{i}"), qos=QOS1, packet_id=100 + i).write()
            for i in range(3)))
        assert gw.stats.cycles == cycles + 1 and gw.engine.durable_seq == commits + 3
        [write] = t.writes
        out = packets(write)
        reports = [p for p in out if isinstance(p, mqtt5.PublishPacket)
                   and p.topic == topics.exec_reports("alpha")]
        acks = [p.packet_id for p in out if isinstance(p, mqtt5.PubAckPacket)]
        assert [json.loads(p.payload)["cl_ord_id"] for p in reports] == ["c0", "c1", "c2"]
        assert acks == [100, 101, 102]
        assert out.index(reports[-1]) < len(out) - 3  # acks after the cycle's publishes
        link.end(LinkError("test over"))

    asyncio.run(body())


def test_a_cycle_waits_while_the_last_ones_publishes_wait_for_the_brokers_window():
    """Receive Maximum 2: the orders read while reports still wait for room are not
    cycled (no commit) until the PUBACKs have let those out; then one cycle takes them."""
    async def body():
        gw = LinkGateway(two_broker_engine(), "127.0.0.1", 1, GatewayConfig(hold_reports=0,
                                                                   depth_snapshot_interval=0))
        link, t = _Link(gw, asyncio.get_running_loop()), FakeTransport()
        link.connection_made(t)
        gw.session.options = link_options(gw.config, gw.cycle.status("offline"))
        gw.session.connect(0.0)
        link.data_received(connack(receive_max=2))
        while not link.online.is_set():              # ack whatever is sent until online
            out = packets(b"".join(t.writes))
            t.writes.clear()
            acks = [mqtt5.PubAckPacket(p.packet_id).write() for p in out
                    if isinstance(p, mqtt5.PublishPacket)]
            subs = [mqtt5.SubAckPacket(p.packet_id, [
                mqtt5.SubAckReasonCode.GRANTED_QOS_AT_LEAST_ONCE] * len(p.topic_filters)).write()
                for p in out if isinstance(p, mqtt5.SubscribePacket)]
            link.data_received(b"".join(acks + subs))
        t.writes.clear()

        def orders(first, n):
            return b"".join(mqtt5.PublishPacket(topics.orders("alpha"), order(f"c{i}"),
                                                qos=QOS1, packet_id=200 + i).write()
                            for i in range(first, first + n))
        cycles = gw.stats.cycles
        link.data_received(orders(0, 2))             # 2 reports + 3 md: 3 wait for room
        assert gw.stats.cycles == cycles + 1 and len(gw.session.queue) == 3
        link.data_received(orders(2, 3))             # window busy: no cycle yet
        assert gw.stats.cycles == cycles + 1 and len(link.pending) == 3
        sent = [p for p in packets(b"".join(t.writes)) if isinstance(p, mqtt5.PublishPacket)]
        link.data_received(b"".join(mqtt5.PubAckPacket(p.packet_id).write() for p in sent))
        assert len(gw.session.queue) == 1 and len(link.pending) == 3    # still busy
        sent = [p for p in packets(b"".join(t.writes)) if isinstance(p, mqtt5.PublishPacket)]
        t.writes.clear()
        link.data_received(b"".join(mqtt5.PubAckPacket(p.packet_id).write()
                                    for p in sent[-2:]))
        assert gw.stats.cycles == cycles + 2 and not link.pending   # one cycle for all 3
        link.end(LinkError("test over"))

    asyncio.run(body())


def _online(gw: LinkGateway, link: _Link, t: FakeTransport, receive_max: int = 1000) -> None:
    """CONNECT, CONNACK, then every publish and the SUBSCRIBE acknowledged until online."""
    gw.session.options = link_options(gw.config, gw.cycle.status("offline"))
    gw.session.connect(0.0)
    link.data_received(connack(receive_max=receive_max))
    while not link.online.is_set():
        out = packets(b"".join(t.writes))
        t.writes.clear()
        acks = [mqtt5.PubAckPacket(p.packet_id).write() for p in out
                if isinstance(p, mqtt5.PublishPacket)]
        subs = [mqtt5.SubAckPacket(p.packet_id, [
            mqtt5.SubAckReasonCode.GRANTED_QOS_AT_LEAST_ONCE] * len(p.topic_filters)).write()
            for p in out if isinstance(p, mqtt5.SubscribePacket)]
        link.data_received(b"".join(acks + subs))
    t.writes.clear()


def _orders(first: int, n: int) -> bytes:
    return b"".join(mqtt5.PublishPacket(topics.orders("alpha"), order(f"c{i}"), qos=QOS1,
                                        packet_id=100 + i).write()
                    for i in range(first, first + n))


def _sent(t: FakeTransport) -> tuple[list[str], list[int], list[bytes]]:
    """ClOrdIDs of the exec reports, PUBACKed packet ids, status payloads written so far."""
    out = packets(b"".join(t.writes))
    reports = [json.loads(p.payload)["cl_ord_id"] for p in out
               if isinstance(p, mqtt5.PublishPacket) and p.topic == topics.exec_reports("alpha")]
    acks = [p.packet_id for p in out if isinstance(p, mqtt5.PubAckPacket)]
    status = [p.payload for p in out
              if isinstance(p, mqtt5.PublishPacket) and p.topic == topics.STATUS]
    return reports, acks, status


async def _until(pred, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not pred():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_reports_and_pubacks_wait_for_their_groups_fdatasync_which_runs_off_the_loop(
        tmp_path, monkeypatch):
    """The group is written at once and its fdatasync runs on a thread: the loop cycles
    the next read meanwhile, and neither read's reports nor PUBACKs leave before the sync
    that covers their inputs has returned."""
    import os
    import threading

    from matching.journal import Journal
    real, entered, go = os.fdatasync, threading.Event(), threading.Event()

    def slow_sync(fd):
        entered.set()
        assert go.wait(5), "never released"
        real(fd)

    async def body():
        journal = Journal(tmp_path / "journal.log")
        gw = LinkGateway(two_broker_engine(journal=journal), "127.0.0.1", 1,
                         GatewayConfig(hold_reports=0))
        gw.gate.start(asyncio.get_running_loop())
        link, t = _Link(gw, asyncio.get_running_loop()), FakeTransport()
        link.connection_made(t)
        gw._link = link
        _online(gw, link, t)
        monkeypatch.setattr(os, "fdatasync", slow_sync)
        durable, cycles = journal.durable_seq, gw.stats.cycles
        link.data_received(_orders(0, 3))
        await _until(entered.is_set)                    # the sync is running, off the loop
        link.data_received(_orders(3, 2))               # the next read is cycled meanwhile
        assert gw.stats.cycles == cycles + 2
        assert journal.written_seq == durable + 5 and journal.durable_seq == durable
        reports, acks, _ = _sent(t)
        assert reports == [] and acks == []
        go.set()
        await _until(lambda: len(_sent(t)[1]) == 5)
        reports, acks, _ = _sent(t)
        assert reports == [f"c{i}" for i in range(5)] and acks == list(range(100, 105))
        assert journal.durable_seq == durable + 5
        link.end(LinkError("test over"))
        gw.gate.stop()
        journal.close()

    asyncio.run(body())


def test_a_failed_group_sync_publishes_nothing_of_its_inputs_and_stops_taking_orders(
        tmp_path, monkeypatch):
    import errno
    import os

    from matching.journal import Journal

    def failing_sync(fd):
        raise OSError(errno.EIO, "I/O error")

    async def body():
        journal = Journal(tmp_path / "journal.log")
        gw = LinkGateway(two_broker_engine(journal=journal), "127.0.0.1", 1,
                         GatewayConfig(hold_reports=0))
        gw.gate.start(asyncio.get_running_loop())
        link, t = _Link(gw, asyncio.get_running_loop()), FakeTransport()
        link.connection_made(t)
        gw._link = link
        _online(gw, link, t)
        monkeypatch.setattr(os, "fdatasync", failing_sync)
        link.data_received(_orders(0, 2))
        await _until(lambda: not gw.cycle.accepting)
        await _until(lambda: _sent(t)[2] != [])
        reports, acks, status = _sent(t)
        assert reports == [] and acks == []               # nothing of the lost group
        assert json.loads(status[-1])["status"] == "not_accepting"
        assert journal.failed is not None and journal.durable_seq < journal.written_seq
        t.writes.clear()
        link.data_received(_orders(2, 1))                 # refused: the journal is down
        reports, acks, _ = _sent(t)
        assert reports == ["c2"] and acks == [102]
        link.end(LinkError("test over"))
        gw.gate.stop()

    asyncio.run(body())


def test_a_status_read_alone_is_pubacked_at_once_so_no_later_session_gets_it_again():
    """A retained status (this engine's own, delivered at subscription: No Local does not
    cover retained messages) needs no journal: PUBACKed in the same read. Left unacked, the
    broker would send it again to the next connection of this session, whose new instance
    would take it for a live earlier engine and step down."""
    async def body():
        gw = LinkGateway(two_broker_engine(), "127.0.0.1", 1, GatewayConfig(hold_reports=0))
        link, t = _Link(gw, asyncio.get_running_loop()), FakeTransport()
        link.connection_made(t)
        _online(gw, link, t)
        own = gw.cycle.status("online", "", 1).payload
        link.data_received(mqtt5.PublishPacket(topics.STATUS, own, qos=QOS1, retain=True,
                                               packet_id=77).write())
        _, acks, _ = _sent(t)
        assert acks == [77] and gw.connected
        link.end(LinkError("test over"))

    asyncio.run(body())


def test_the_guarded_subscription_asks_other_engines_statuses_with_no_local():
    async def body():
        gw = LinkGateway(two_broker_engine(), "127.0.0.1", 1, GatewayConfig(hold_reports=0))
        link, t = _Link(gw, asyncio.get_running_loop()), FakeTransport()
        link.connection_made(t)
        gw.session.options = link_options(gw.config, gw.cycle.status("offline"))
        gw.session.connect(0.0)
        link.data_received(connack())
        retained = [p for p in packets(b"".join(t.writes)) if isinstance(p, mqtt5.PublishPacket)]
        t.writes.clear()
        link.data_received(b"".join(mqtt5.PubAckPacket(p.packet_id).write() for p in retained))
        [sub] = packets(b"".join(t.writes))
        filters = {f.pattern: f for f in sub.topic_filters}
        assert filters[topics.STATUS].no_local and not filters[topics.ORDERS_WILDCARD].no_local
        assert not any(f.retain_as_published for f in sub.topic_filters)
        link.end(LinkError("test over"))

    asyncio.run(body())

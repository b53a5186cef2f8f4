"""The engine's MQTT 5 session with its broker, sans-I/O: bytes in, bytes out, no socket.

``Session`` keeps what one MQTT 5 client session is, across connections: packet ids, the
QoS 1 publishes in flight (PUBACK tracked by packet id, reason codes kept), the server's
limits from CONNACK (Receive Maximum, Maximum Packet Size, Server Keep Alive) and the
keepalive timers as plain values. The transport (``feeds.link_gateway``) feeds it what
one socket read returned and writes what ``data_to_send`` returns in one write::

    s = Session(LinkOptions("tokenbook-engine", will=offline_status))
    s.connect(now)                           # CONNECT queued
    messages = s.feed(data, now)             # PUBLISH packets received, in order
    s.publish(publishes)                     # QoS 1, as far as the server's window allows
    s.ack_received()                         # PUBACK what ``feed`` returned (after commit)
    transport.write(s.data_to_send(now))

then drains ``s.acked`` (PUBACKed with a success code), ``s.refused`` (reason code >=
0x80, or too large for the server: never retried) and ``s.events`` (CONNACK, SUBACK,
UNSUBACK, inbound QoS 2 refused). A failed connection (CONNACK refusal, DISCONNECT from
the server, protocol error, keepalive timeout) raises ``LinkError``, with the DISCONNECT
the client owes queued.

Across a reconnect ``connection_lost`` returns every unacknowledged publish in send order
(the caller puts them back in its outbox) and remembers the packet ids of those in
flight: published again, they go with that id and DUP, as MQTT 5 asks of a persistent
session. ``forget`` drops the ids of those the caller dropped (stale retained state).

Refused by design: QoS 2 and topic aliases. CONNECT says Topic Alias Maximum 0 and every
subscription is at most QoS 1, so a conforming server sends neither; a QoS 2 PUBLISH
anyway is answered PUBREC 0x83 (Implementation specific error: the flow ends there,
nothing reaches the engine, the connection stays up) and reported in ``events``; a topic
alias is a protocol error (DISCONNECT 0x94). Inbound QoS 1 is PUBACKed when the caller
says (``ack_received``): the gateway does it after its group commit, so a message the
engine never journaled is still the broker's and comes again (DUP) after a crash; the
engine answers a resent ClOrdID with its original outcome.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple, NoReturn

import mqtt5

from feeds.outbox import Publish

__all__ = ["LinkError", "LinkOptions", "Refused", "InboundRefused", "Session",
           "RECEIVE_MAXIMUM", "connect_packet"]

#: The gateway's own Receive Maximum: the broker may have this many QoS 1 messages in
#: flight to it, so it never queues for the engine (mosquitto's default would be 20).
RECEIVE_MAXIMUM = 65535
_QOS1 = mqtt5.QoS.AT_LEAST_ONCE
_PACKET_ID_MAX = 65535
# MQTT 5 reason codes the session itself sends or reports (names in mqtt5's enums).
IMPLEMENTATION_SPECIFIC = 0x83
KEEP_ALIVE_TIMEOUT = 0x8D
PROTOCOL_ERROR = 0x82
MALFORMED_PACKET = 0x81
PACKET_TOO_LARGE = 0x95
TOPIC_ALIAS_INVALID = 0x94


class LinkError(Exception):
    """The connection failed or must end: ``code`` is the MQTT 5 reason code (CONNACK or
    DISCONNECT), 0 if there is none (socket closed, timeout)."""

    def __init__(self, text: str, code: int = 0):
        super().__init__(text)
        self.code = code


class Refused(NamedTuple):
    """A publish the server refused (PUBACK reason >= 0x80) or could not take (too large)."""
    publish: Publish
    code: int
    text: str


class InboundRefused(NamedTuple):
    """An inbound PUBLISH the session would not take (QoS 2): answered PUBREC ``code``."""
    topic: str
    qos: int
    code: int


@dataclass(frozen=True)
class LinkOptions:
    """What CONNECT says. ``will``: the last will (QoS 1; retained as the Publish says).
    ``max_packet_size``: the largest packet the gateway accepts (None: no limit announced).
    ``connect_timeout``: seconds for the CONNACK. ``clean_start`` only for a throwaway
    session (a probe, a load generator): the gateway's is persistent."""
    client_id: str
    username: str | None = None
    password: str | None = None
    keepalive: int = 60
    session_expiry: int = 3600
    will: Publish | None = None
    max_packet_size: int | None = None
    connect_timeout: float = 10.0
    clean_start: bool = False


def connect_packet(opts: LinkOptions) -> bytes:
    """CONNECT (MQTT 5) with Receive Maximum 65535 said explicitly.

    mqtt5 leaves the property out at 65535, its default in the standard; mosquitto then
    takes its own ``max_inflight_messages`` (20) instead. So the packet is written with
    65534 and that value patched to 65535 (same length), then read back to check it."""
    will = None
    if opts.will is not None:
        w = opts.will
        will = mqtt5.Will(w.topic, payload=w.payload, qos=_QOS1, retain=w.retain)
    packet = mqtt5.ConnectPacket(
        opts.client_id, username=opts.username,
        password=None if opts.password is None else opts.password.encode(),
        clean_start=opts.clean_start, will=will, keep_alive=opts.keepalive,
        session_expiry_interval=opts.session_expiry, receive_max=RECEIVE_MAXIMUM - 1,
        topic_alias_max=0, max_packet_size=opts.max_packet_size)
    data = bytearray(packet.write())
    header = 2
    while data[header - 1] & 0x80:              # the remaining length's bytes
        header += 1
    at = data.find(b"\x21\xff\xfe", header + 10)  # after name, level, flags, keep alive
    data[at + 2] = 0xFF
    again, _ = mqtt5.read(memoryview(bytes(data)))
    assert isinstance(again, mqtt5.ConnectPacket) and again.receive_max == RECEIVE_MAXIMUM \
        and again.client_id == opts.client_id, "CONNECT patch went wrong"
    return bytes(data)


class Session:
    """One MQTT 5 client session (see the module docstring). Times are monotonic seconds."""

    def __init__(self, options: LinkOptions):
        self.options = options
        self.state = "idle"                # idle, connecting, connected, closed
        self.session_present = False
        # The server's limits (CONNACK); MQTT 5 defaults until one arrives.
        self.server_receive_max = 65535
        self.server_max_packet: int | None = None
        self.keepalive = options.keepalive
        # Publishes: waiting for the window, then in flight by packet id (send order).
        self.queue: deque[Publish] = deque()
        self.inflight: dict[int, Publish] = {}
        # Unacknowledged at the last connection loss: id(publish) -> (publish, packet id).
        self._memo: dict[int, tuple[Publish, int]] = {}
        self._reserved: set[int] = set()
        self._control_ids: set[int] = set()           # SUBSCRIBE / UNSUBSCRIBE unanswered
        self._last_id = 0
        # What the caller drains after each feed.
        self.acked: list[Publish] = []
        self.refused: list[Refused] = []
        self.events: list[object] = []
        self._to_ack: list[int] = []
        self._out: list[bytes] = []
        self._rest = b""
        # Timers (monotonic s): last bytes out / in, PINGREQ outstanding since, CONNACK due.
        self._sent_at = self._received_at = 0.0
        self._ping_at: float | None = None
        self._connack_due = 0.0

    # ------------------------------------------------------------------ connection
    def connect(self, now: float) -> None:
        """A new connection: CONNECT queued, a CONNACK due within ``connect_timeout``."""
        self.state, self._rest, self._out = "connecting", b"", [connect_packet(self.options)]
        self._to_ack, self._ping_at, self.keepalive = [], None, self.options.keepalive
        self._sent_at = self._received_at = now
        self._connack_due = now + self.options.connect_timeout

    def connection_lost(self) -> list[Publish]:
        """The connection is gone: every unacknowledged publish in send order (in flight,
        then waiting); those in flight keep their packet ids for a DUP resend."""
        unacked = [*self.inflight.values(), *self.queue]
        for pid, p in self.inflight.items():
            self._memo[id(p)] = (p, pid)
            self._reserved.add(pid)
        self.inflight.clear()
        self.queue.clear()
        self._reserved -= self._control_ids
        self._control_ids.clear()
        self.state, self._rest, self._out, self._to_ack = "idle", b"", [], []
        self._ping_at = None
        return unacked

    def forget(self, keep: Iterable[Publish]) -> None:
        """Drop the remembered packet ids of publishes not in ``keep`` (never resent)."""
        alive = {id(p) for p in keep}
        for key in [k for k in self._memo if k not in alive]:
            self._reserved.discard(self._memo.pop(key)[1])

    def disconnect(self, code: int = 0, text: str | None = None) -> None:
        """DISCONNECT queued (0: normal, the server drops the will); the session closes."""
        self._out.append(mqtt5.DisconnectPacket(
            reason_code=mqtt5.DisconnectReasonCode(code), reason_str=text).write())
        self.state = "closed"

    def subscribe(self, filters: Iterable[str], no_local: Iterable[str] = ()) -> int:
        """SUBSCRIBE at most QoS 1 (the gateway refuses QoS 2); returns its packet id.
        Filters in ``no_local`` are subscribed with MQTT 5 No Local: the server does not
        send this session's own publishes back (the engine's own status). Retain As
        Published is off: a message arrives with RETAIN set only when it is a stored
        retained message sent for the new subscription (a retained presence is not news)."""
        pid = self._control_id()
        local = set(no_local)
        self._out.append(mqtt5.SubscribePacket(
            pid, [mqtt5.TopicFilter(f, max_qos=_QOS1, no_local=f in local,
                                    retain_as_published=False)
                  for f in filters]).write())
        return pid

    def unsubscribe(self, filters: Iterable[str]) -> int:
        """UNSUBSCRIBE; returns its packet id."""
        pid = self._control_id()
        self._out.append(mqtt5.UnsubscribePacket(pid, list(filters)).write())
        return pid

    def _control_id(self) -> int:
        pid = self._new_id()
        if pid == 0:
            raise LinkError("no packet id free")
        self._reserved.add(pid)
        self._control_ids.add(pid)
        return pid

    # ------------------------------------------------------------------ timers
    def next_due(self) -> float:
        """When ``tick`` has something to do (monotonic s)."""
        if self.state == "connecting":
            return self._connack_due
        if self.state != "connected" or not self.keepalive:
            return float("inf")
        if self._ping_at is not None:
            return self._ping_at + self.keepalive
        return min(self._sent_at, self._received_at) + self.keepalive

    def tick(self, now: float) -> None:
        """Keepalive: PINGREQ after ``keepalive`` s without traffic either way; LinkError
        if its PINGRESP (or any packet) did not come within another ``keepalive``."""
        if self.state == "connecting" and now >= self._connack_due:
            raise LinkError(f"no CONNACK within {self.options.connect_timeout:g} s")
        if self.state != "connected" or not self.keepalive:
            return
        if self._ping_at is not None:
            if now - self._ping_at >= self.keepalive:
                self.disconnect(KEEP_ALIVE_TIMEOUT)
                raise LinkError(f"no PINGRESP within {self.keepalive} s", KEEP_ALIVE_TIMEOUT)
        elif now - min(self._sent_at, self._received_at) >= self.keepalive:
            self._out.append(b"\xc0\x00")                   # PINGREQ
            self._ping_at = now

    # ------------------------------------------------------------------ outbound
    def publish(self, publishes: Iterable[Publish]) -> None:
        """Queue QoS 1 publishes; they go out, in order, as the server's window allows."""
        self.queue.extend(publishes)
        if self.state == "connected":
            self._pump()

    def take_received(self) -> list[int]:
        """The packet ids of the QoS 1 messages ``feed`` returned since the last call, not
        PUBACKed: the caller sends them with ``ack`` once their input is durable."""
        pids, self._to_ack = self._to_ack, []
        return pids

    def has_received(self) -> bool:
        """Whether QoS 1 messages wait for their PUBACK (``take_received``)."""
        return bool(self._to_ack)

    def ack(self, pids: list[int]) -> None:
        """PUBACK (success) these packet ids (``take_received``)."""
        if pids and self.state == "connected":
            self._out += [b"\x40\x02" + pid.to_bytes(2, "big") for pid in pids]

    def ack_received(self) -> None:
        """PUBACK (success) every QoS 1 message ``feed`` returned since the last call."""
        if self._to_ack:
            self._out += [b"\x40\x02" + pid.to_bytes(2, "big") for pid in self._to_ack]
            self._to_ack = []

    def data_to_send(self, now: float) -> bytes:
        """Everything queued for the socket, as one buffer (one write)."""
        if not self._out:
            return b""
        out, self._out = self._out, []
        self._sent_at = now
        return b"".join(out)

    def _pump(self, refill: bool = False) -> None:
        """Send queued publishes while the server's Receive Maximum leaves room. A
        ``refill`` (PUBACKs freed room) waits until a quarter of the window is free, or
        the queue fits: publishes then go, and PUBACKs come back, several to a segment
        instead of one per read (fewer syscalls for the gateway and the broker)."""
        queue, inflight, out = self.queue, self.inflight, self._out
        room = self.server_receive_max - len(inflight)
        if refill and room < min(len(queue), (self.server_receive_max + 3) // 4):
            return
        limit = self.server_max_packet
        while queue and room > 0:
            p = queue.popleft()
            memo = self._memo.pop(id(p), None) if self._memo else None
            if memo is not None:
                pid, dup = memo[1], True
                self._reserved.discard(pid)
            else:
                dup = False
                pid = self._last_id % _PACKET_ID_MAX + 1      # the next id, if it is free
                if pid in inflight or pid in self._reserved:
                    pid = self._new_id()
                    if pid == 0:                          # every packet id in use
                        queue.appendleft(p)
                        break
                else:
                    self._last_id = pid
            data = mqtt5.PublishPacket(p.topic, p.payload, qos=_QOS1, retain=p.retain,
                                       packet_id=pid, duplicate=dup).write()
            if limit is not None and len(data) > limit:
                self.refused.append(Refused(p, PACKET_TOO_LARGE, f"{len(data)} bytes is more "
                                            f"than the server's Maximum Packet Size {limit}"))
                continue
            inflight[pid] = p
            out.append(data)
            room -= 1

    def _new_id(self) -> int:
        """A free packet id (1-65535), 0 if none is."""
        inflight, reserved = self.inflight, self._reserved
        if len(inflight) + len(reserved) >= _PACKET_ID_MAX:
            return 0
        pid = self._last_id
        while True:
            pid = pid % _PACKET_ID_MAX + 1
            if pid not in inflight and pid not in reserved:
                self._last_id = pid
                return pid

    # ------------------------------------------------------------------ inbound
    def feed(self, data: bytes, now: float) -> list[mqtt5.PublishPacket]:
        """Parse every complete packet of what was read (a partial one waits for more);
        returns the PUBLISH packets to hand on, in order."""
        if self.state not in ("connecting", "connected"):
            return []
        if self._rest:
            data = self._rest + data
        self._received_at, self._ping_at = now, None
        messages: list[mqtt5.PublishPacket] = []
        inflight, acked = self.inflight, self.acked
        limit = self.options.max_packet_size
        view = memoryview(data)
        pos, n = 0, len(data)
        while n - pos >= 2:
            i, length, shift = pos + 1, 0, 0               # the remaining length (varint)
            while i < n:
                b = data[i]
                i += 1
                length |= (b & 0x7F) << shift
                if b < 0x80:
                    break
                shift += 7
                if shift > 21:
                    self._fail(MALFORMED_PACKET, "remaining length over 4 bytes")
            else:
                break                                      # its length is not all here
            end = i + length
            if limit is not None and end - pos > limit:
                self._fail(PACKET_TOO_LARGE, f"a {end - pos}-byte packet")
            if end > n:
                break
            if data[pos] == 0x40 and length == 2:         # PUBACK success: the hot path
                p = inflight.pop((data[i] << 8) | data[i + 1], None)
                if p is not None:
                    acked.append(p)
            else:
                try:
                    packet, _ = mqtt5.read(view[pos:end])
                except (ValueError, IndexError) as exc:
                    self._fail(MALFORMED_PACKET, f"packet type {data[pos] >> 4}: {exc}")
                if isinstance(packet, mqtt5.PublishPacket):
                    self._inbound(packet, messages)
                else:
                    self._control(packet)
            pos = end
        self._rest = data[pos:] if pos < n else b""
        if self.state == "connected" and self.queue:
            self._pump(refill=True)
        return messages

    def _inbound(self, p: mqtt5.PublishPacket, messages: list) -> None:
        if p.topic_alias is not None:
            self._fail(TOPIC_ALIAS_INVALID, "topic alias received: none was allowed")
        qos, pid = p.qos, p.packet_id
        if qos == 0:
            messages.append(p)
            return
        if pid is None:
            self._fail(MALFORMED_PACKET, "a QoS 1 or 2 PUBLISH without a packet id")
        if qos == 1:
            messages.append(p)
            self._to_ack.append(pid)
        else:
            self._out.append(mqtt5.PubRecPacket(
                pid, reason_code=mqtt5.PubRecReasonCode.IMPLEMENTATION_SPECIFIC_ERROR,
                reason_str="QoS 2 is not supported").write())
            self.events.append(InboundRefused(p.topic, int(qos), IMPLEMENTATION_SPECIFIC))

    def _control(self, p: object) -> None:
        """Every packet but PUBLISH and a plain PUBACK."""
        if isinstance(p, mqtt5.PubAckPacket):
            publish = self.inflight.pop(p.packet_id, None)
            if publish is None:
                return
            code = int(p.reason_code)
            if code < 0x80:
                self.acked.append(publish)
            else:
                self.refused.append(Refused(publish, code, _name(p.reason_code)
                                            + (f": {p.reason_str}" if p.reason_str else "")))
        elif isinstance(p, mqtt5.ConnAckPacket):
            if self.state != "connecting":
                self._fail(PROTOCOL_ERROR, "CONNACK twice")
            if p.reason_code != 0:
                self.state = "closed"
                raise LinkError(f"connection refused: {_name(p.reason_code)}"
                                f"{f' ({p.reason_str})' if p.reason_str else ''}",
                                int(p.reason_code))
            if int(p.max_qos) < 1 or not p.retain_available:
                self.disconnect(IMPLEMENTATION_SPECIFIC)
                raise LinkError("the server offers no QoS 1 or no retained messages; the "
                                "gateway needs both", IMPLEMENTATION_SPECIFIC)
            self.state, self.session_present = "connected", p.session_present
            self.server_receive_max = p.receive_max
            self.server_max_packet = p.max_packet_size
            if p.server_keep_alive is not None:
                self.keepalive = p.server_keep_alive
            self.events.append(p)
        elif isinstance(p, (mqtt5.SubAckPacket, mqtt5.UnsubAckPacket)):
            if p.packet_id in self._control_ids:
                self._control_ids.discard(p.packet_id)
                self._reserved.discard(p.packet_id)
            self.events.append(p)
        elif isinstance(p, mqtt5.PingRespPacket):
            pass
        elif isinstance(p, mqtt5.DisconnectPacket):
            self.state = "closed"
            raise LinkError(f"server disconnected: {_name(p.reason_code)}"
                            f"{f' ({p.reason_str})' if p.reason_str else ''}",
                            int(p.reason_code))
        elif isinstance(p, mqtt5.PubRelPacket):           # only after a QoS 2 PUBREC
            self._out.append(mqtt5.PubCompPacket(
                p.packet_id, reason_code=mqtt5.PubCompReasonCode.PACKET_ID_NOT_FOUND).write())
        else:
            self._fail(PROTOCOL_ERROR, f"unexpected {type(p).__name__}")

    def _fail(self, code: int, text: str) -> NoReturn:
        """A protocol violation by the server: DISCONNECT with ``code``, LinkError."""
        self.disconnect(code)
        raise LinkError(f"protocol error: {text}", code)


def _name(code: object) -> str:
    """``NOT_AUTHORIZED (0x87)`` for an mqtt5 reason code."""
    return f"{getattr(code, 'name', code)} (0x{int(code):02X})"  # type: ignore[call-overload]

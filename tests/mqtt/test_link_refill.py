"""The session refills the broker's window in batches (``Session._pump``'s refill rule)."""
from __future__ import annotations

import mqtt5

from feeds.link import LinkOptions, Session
from feeds.outbox import Publish


def _pub(i: int) -> Publish:
    return Publish(f"tokenbook/v1/exec/b{i % 3}", f"r{i}".encode(), False, "exec", f"b{i % 3}")


def _online(receive_max: int) -> Session:
    s = Session(LinkOptions("engine"))
    s.connect(0.0)
    s.data_to_send(0.0)
    s.feed(mqtt5.ConnAckPacket(receive_max=receive_max).write(), 0.0)
    return s


def _sent(s: Session) -> list[bytes]:
    data, out, pos = s.data_to_send(1.0), [], 0
    while pos < len(data):
        p, n = mqtt5.read(memoryview(data)[pos:])
        out.append(p.payload)
        pos += n
    return out


def _puback(s: Session, pids: list[int]) -> None:
    s.feed(b"".join(mqtt5.PubAckPacket(pid).write() for pid in pids), 1.0)


def test_window_refills_once_a_quarter_of_it_is_free_in_order():
    s = _online(receive_max=20)
    s.publish([_pub(i) for i in range(40)])
    assert _sent(s) == [f"r{i}".encode() for i in range(20)]
    first = list(s.inflight)
    _puback(s, first[:4])                        # 4 free of 20: under a quarter, wait
    assert _sent(s) == [] and len(s.queue) == 20
    _puback(s, first[4:5])                       # 5 free: the refill goes, in order
    assert _sent(s) == [f"r{i}".encode() for i in range(20, 25)]
    assert len(s.inflight) == 20


def test_a_queue_shorter_than_the_threshold_goes_at_the_first_free_slot():
    s = _online(receive_max=20)
    s.publish([_pub(i) for i in range(22)])
    _sent(s)
    _puback(s, list(s.inflight)[:2])             # 2 free, 2 waiting: both go
    assert _sent(s) == [b"r20", b"r21"] and not s.queue


def test_every_publish_is_sent_and_acked_whatever_the_acks_grouping():
    s = _online(receive_max=20)
    s.publish([_pub(i) for i in range(137)])
    seen: list[bytes] = []
    while s.inflight or s.queue:
        seen += _sent(s)
        pids = list(s.inflight)
        assert pids, "publishes queued with nothing in flight would never go"
        _puback(s, pids[:3])                     # the broker answers three at a time
    seen += _sent(s)
    assert seen == [f"r{i}".encode() for i in range(137)]
    assert [p.payload for p in s.acked] == seen

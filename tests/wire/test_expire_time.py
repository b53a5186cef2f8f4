"""ExpireTime (FIX 126) of GTD orders on the wire: a UTCTimestamp string like
TransactTime, read into the engine's int of nanoseconds; the integer of nanoseconds of
older clients is still accepted; anything else is refused INVALID_FIELD with why."""
from __future__ import annotations

import json

import msgspec
import pytest

from feeds import topics
from feeds.codec import DecodeError, WireNewOrderSingle, decode_order_message, encode
from feeds.cycle import GatewayCycle
from matching.messages import NewOrderSingle, parse_utc_timestamp, utc_timestamp
from testkit.mqtt import two_broker_engine

AT = "2026-12-02T18:00:00.123456789Z"
AT_NS = 1_796_234_400_123_456_789


def gtd(expire) -> bytes:
    return json.dumps({"msg": "new_order", "cl_ord_id": "g1", "account": 1, "symbol": "TB3M",
                       "side": "buy", "qty": "1", "price": "99.000", "time_in_force": "gtd",
                       "expire_time": expire}).encode()


def test_expire_time_is_read_from_a_utc_timestamp_into_nanoseconds():
    assert parse_utc_timestamp(AT) == AT_NS and utc_timestamp(AT_NS) == AT
    msg = decode_order_message(gtd(AT))
    assert type(msg) is NewOrderSingle and msg.expire_time == AT_NS
    # Fewer fraction digits, or none, are the same instant's shorter forms.
    assert decode_order_message(gtd("2026-12-02T18:00:00.5Z")).expire_time == (
        AT_NS - 123_456_789 + 500_000_000)
    assert decode_order_message(gtd("2026-12-02T18:00:00Z")).expire_time == AT_NS - 123_456_789


def test_integer_nanoseconds_are_still_accepted_for_older_clients():
    msg = decode_order_message(gtd(AT_NS))
    assert type(msg) is NewOrderSingle and msg.expire_time == AT_NS


def test_an_order_is_encoded_with_its_expire_time_as_a_utc_timestamp():
    order = NewOrderSingle("g1", 1, "TB3M", "buy", "1", price="99.000", time_in_force="gtd",
                           expire_time=AT_NS)
    doc = json.loads(encode(order))
    assert doc["expire_time"] == AT and doc["msg"] == "new_order"
    assert decode_order_message(encode(order)) == order          # the round trip is exact
    day = NewOrderSingle("d1", 1, "TB3M", "buy", "1", price="99.000")
    assert json.loads(encode(day))["expire_time"] is None


@pytest.mark.parametrize("bad", [
    "tomorrow", "2026-12-02 18:00:00Z", "2026-12-02T18:00:00", "2026-12-02T18:00:00+01:00",
    "2026-13-02T18:00:00Z", "2026-02-30T18:00:00Z", "2026-12-02T18:00:00.1234567890Z",
    "1969-12-31T23:59:59Z", "2262-04-12T00:00:00Z", "", " 2026-12-02T18:00:00Z", 0, -5,
    1.5, True, [], {}])
def test_a_bad_expire_time_is_refused_with_why_and_names_the_order(bad):
    msg = decode_order_message(gtd(bad))
    assert isinstance(msg, DecodeError), msg
    assert (msg.reason, msg.field) == ("INVALID_FIELD", "$.expire_time")
    assert (msg.cl_ord_id, msg.symbol) == ("g1", "TB3M")
    assert "expire_time" in msg.text or "expire_time" in (msg.field or "")


def test_a_gtd_order_with_a_timestamp_expires_at_that_instant():
    now = [AT_NS - 60 * 10**9]
    cycle = GatewayCycle(two_broker_engine(clock=lambda: now[0]))
    pubs = cycle.process([(topics.orders("alpha"), gtd(AT))], now[0])
    [ack] = [json.loads(p.payload) for p in pubs if p.kind == "exec"]
    assert ack["exec_type"] == "new"
    [order] = cycle.engine.orders.values()
    assert order.expire_time == AT_NS                  # the engine keeps int nanoseconds
    now[0] = AT_NS - 1
    assert [p for p in cycle.process([], now[0]) if p.kind == "exec"] == []
    now[0] = AT_NS
    [expired] = [json.loads(p.payload) for p in cycle.process([], now[0]) if p.kind == "exec"]
    assert (expired["cl_ord_id"], expired["exec_type"]) == ("g1", "expired")


def test_the_wire_order_is_the_engines_but_for_expire_time():
    wire = {f.name: f.type for f in msgspec.structs.fields(WireNewOrderSingle)}
    engine = {f.name: f.type for f in msgspec.structs.fields(NewOrderSingle)}
    assert list(wire) == list(engine)
    assert {k for k in wire if wire[k] != engine[k]} == {"expire_time"}

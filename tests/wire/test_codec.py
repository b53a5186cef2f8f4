"""The wire codec and topic layout: every message round trips, bad input is refused with a
reason (and the ClOrdID when it can be read), and decoding never raises, whatever the bytes."""
from __future__ import annotations

import json

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds import codec, topics
from feeds.codec import (
    BBO,
    DECODE_REASONS,
    MAX_MESSAGE_BYTES,
    DecodeError,
    DepthSnapshot,
    DepthUpdate,
    EngineStatus,
    ExecutionReport,
    NewOrderSingle,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    TradePrint,
    decode_order_message,
    encode,
)

ORDER_TYPES = (NewOrderSingle, OrderCancelRequest, OrderCancelReplaceRequest)

FULL_NEW = NewOrderSingle(
    "c1", 7, "TB3M", "sell", "1.5", ord_type="limit", price="99.125", time_in_force="gtd",
    expire_time=1_900_000_000_000_000_000, post_only=True, min_qty="0.5", stp="cancel_both")
MINIMAL_NEW = NewOrderSingle("c0", 1, "UST-10Y", "buy", "3", ord_type="market")
CANCEL = OrderCancelRequest("c2", "c1", "TB3M")
REPLACE = OrderCancelReplaceRequest("c3", "c1", "TB3M", "99.100", "2")


def new_order(**fields) -> bytes:
    """A valid new_order payload with some fields overridden (or removed with None)."""
    doc = {"msg": "new_order", "cl_ord_id": "c9", "account": 1, "symbol": "TB3M",
           "side": "buy", "qty": "1", "price": "99.5"}
    doc.update(fields)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("msg", [FULL_NEW, MINIMAL_NEW, CANCEL, REPLACE],
                         ids=["new_full", "new_minimal", "cancel", "replace"])
def test_every_order_message_round_trips(msg):
    assert decode_order_message(encode(msg)) == msg


def test_order_entry_is_tagged_and_prices_travel_as_strings():
    doc = json.loads(encode(FULL_NEW))
    assert doc["msg"] == "new_order" and doc["price"] == "99.125" and doc["qty"] == "1.5"
    assert json.loads(encode(CANCEL))["msg"] == "cancel"
    assert json.loads(encode(REPLACE))["msg"] == "replace"


def test_execution_report_round_trips_with_every_field():
    r = ExecutionReport(
        "E1", "trade", "partially_filled", "c1", "TB3M", 5, "2023-11-14T22:13:20.000000001Z",
        order_id="O1", orig_cl_ord_id="c0", account=7, side="buy", price="99.2",
        order_qty="3", last_px="99.1", last_qty="1", cum_qty="1", leaves_qty="2",
        avg_px="99.1", accrued_interest="0.0125", settl_amount="99.1125", yield_pct="4.125",
        trade_id="T9", liquidity="taker", ord_rej_reason=None, text="x", poss_resend=True)
    raw = encode(r)
    assert msgspec.json.decode(raw, type=ExecutionReport) == r
    doc = json.loads(raw)
    assert doc["msg"] == "exec_report" and doc["avg_px"] == "99.1"
    assert all(isinstance(doc[k], str) for k in ("last_px", "cum_qty", "leaves_qty",
                                                  "settl_amount", "yield_pct"))


def test_rejected_report_carries_code_and_text():
    r = ExecutionReport("R1", "rejected", "rejected", "c1", "TB3M", 0,
                        "1970-01-01T00:00:00.000000001Z", ord_rej_reason="INVALID_FIELD",
                        text="price must be ...")
    assert msgspec.json.decode(encode(r), type=ExecutionReport) == r
    # CumQty, LeavesQty and AvgPx are on the wire even when 0 (FIX requires them).
    doc = json.loads(encode(r))
    assert (doc["cum_qty"], doc["leaves_qty"], doc["avg_px"]) == ("0", "0", "0")


@pytest.mark.parametrize("obj", [
    TradePrint("TB3M", "T1", 4, "2023-11-14T22:13:20.000000000Z", "99.1", "1.5", 9910, 150,
               "buy", "4.01"),
    DepthUpdate("TB3M", 12, [("buy", "99.1", "2", 1), ("sell", "99.2", "0", 0)]),
    DepthSnapshot("TB3M", 12, [("99.1", "2", 1)], [("99.2", "1", 1), ("99.3", "5", 2)]),
    BBO("TB3M", 12, "99.1", "2", "99.2", "1"),
    BBO("TB3M", 0),
    EngineStatus("not_accepting", "journal full", "1970-01-01T00:00:00.000000005Z"),
], ids=lambda o: type(o).__name__)
def test_market_data_and_status_round_trip(obj):
    assert msgspec.json.decode(encode(obj), type=type(obj)) == obj


def test_engine_status_refuses_unknown_states():
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"status":"sleeping"}', type=EngineStatus)


# ------------------------------------------------------------------ rejects with reasons
BAD_DECIMALS = ["1e3", "1E3", "NaN", "nan", "Infinity", "inf", "-1", "+1", "1.", ".5", " 1",
                "1 ", "1,5", "1_000", "0x10", "", "1" * 16, "1." + "1" * 13, "\u0661",
                "1.5\n", "\uff11"]


@pytest.mark.parametrize("bad", BAD_DECIMALS)
@pytest.mark.parametrize("field", ["qty", "price", "min_qty"])
def test_non_plain_decimals_are_refused_with_the_field_named(field, bad):
    err = decode_order_message(new_order(**{field: bad}))
    assert isinstance(err, DecodeError) and err.reason == "INVALID_FIELD"
    assert err.field == f"$.{field}" and err.cl_ord_id == "c9" and err.symbol == "TB3M"


def test_decimal_bounds_are_inclusive():
    ok = decode_order_message(new_order(qty="9" * 15 + "." + "9" * 12, price="0.000000000001"))
    assert isinstance(ok, NewOrderSingle)


@pytest.mark.parametrize("price", [99.1, 99, True, ["99"], {"v": "99"}])
def test_price_must_be_a_string_never_a_number(price):
    err = decode_order_message(new_order(price=price))
    assert isinstance(err, DecodeError) and err.reason == "INVALID_FIELD"
    assert err.field == "$.price" and err.cl_ord_id == "c9"


@pytest.mark.parametrize("fields, path", [
    ({"cl_ord_id": ""}, "$.cl_ord_id"),
    ({"cl_ord_id": "x" * 65}, "$.cl_ord_id"),
    ({"cl_ord_id": "a b"}, "$.cl_ord_id"),
    ({"cl_ord_id": "caf\u00e9"}, "$.cl_ord_id"),
    ({"cl_ord_id": "c9\n"}, "$.cl_ord_id"),
    ({"symbol": "TB/3M"}, "$.symbol"),
    ({"symbol": "TB+"}, "$.symbol"),
    ({"symbol": "#"}, "$.symbol"),
    ({"symbol": "S" * 65}, "$.symbol"),
    ({"symbol": "TB3M\n"}, "$.symbol"),
    ({"account": 0}, "$.account"),
    ({"account": -5}, "$.account"),
    ({"account": 2**63}, "$.account"),
    ({"account": 10**30}, "$.account"),
    ({"account": True}, "$.account"),
    ({"account": "1"}, "$.account"),
    ({"expire_time": 0}, "$.expire_time"),
    ({"expire_time": 1.5}, "$.expire_time"),
    ({"side": "BUY"}, "$.side"),
    ({"ord_type": "stop"}, "$.ord_type"),
    ({"time_in_force": "gtx"}, "$.time_in_force"),
    ({"stp": "yes"}, "$.stp"),
    ({"post_only": 1}, "$.post_only"),
    ({"qty": None}, None),            # missing required field
    ({"extra": 1}, None),             # unknown field
])
def test_field_rules(fields, path):
    err = decode_order_message(new_order(**fields))
    assert isinstance(err, DecodeError) and err.reason == "INVALID_FIELD", err
    assert err.text
    if path is not None:
        assert err.field == path
    if "cl_ord_id" not in fields:
        assert err.cl_ord_id == "c9"          # the sender can be told which order failed


def test_cl_ord_id_survives_a_number_out_of_range_elsewhere():
    err = decode_order_message(b'{"msg":"new_order","cl_ord_id":"c7","account":1,'
                               b'"symbol":"TB3M","side":"buy","qty":"1","expire_time":1e400}')
    assert isinstance(err, DecodeError) and err.reason == "INVALID_FIELD"
    assert err.cl_ord_id == "c7" and err.symbol == "TB3M"


def test_cancel_and_replace_validate_their_own_fields():
    base = {"msg": "cancel", "cl_ord_id": "c", "orig_cl_ord_id": "b", "symbol": "X"}
    assert isinstance(decode_order_message(encode(base)), OrderCancelRequest)
    err = decode_order_message(encode({**base, "orig_cl_ord_id": "b c"}))
    assert isinstance(err, DecodeError) and err.field == "$.orig_cl_ord_id"
    err = decode_order_message(encode({**base, "msg": "replace", "price": "1e2", "qty": "1"}))
    assert isinstance(err, DecodeError) and err.field == "$.price" and err.cl_ord_id == "c"
    err = decode_order_message(b'{"msg":"cancel"}')
    assert isinstance(err, DecodeError) and err.reason == "INVALID_FIELD"


@pytest.mark.parametrize("payload, reason", [
    (b"", "MALFORMED_JSON"),
    (b"not json", "MALFORMED_JSON"),
    (b'{"msg":"new_order","cl_ord_id":"c1"', "MALFORMED_JSON"),
    (b"\xff\xfe{}", "MALFORMED_JSON"),
    (b'{"msg":"cancel","cl_ord_id":"\xc3"}', "MALFORMED_JSON"),
    (b"[" * 2000 + b"]" * 2000, "INVALID_FIELD"),   # valid JSON, not an object
    (b'{"x":' * 600 + b"1" + b"}" * 600, "INVALID_FIELD"),
    (b"null", "INVALID_FIELD"),
    (b"[]", "INVALID_FIELD"),
    (b'"new_order"', "INVALID_FIELD"),
    (b"1", "INVALID_FIELD"),
    (b"{}", "INVALID_FIELD"),
    (b'{"msg":"wipe_book","cl_ord_id":"c1"}', "INVALID_FIELD"),
    (b'{"msg":7}', "INVALID_FIELD"),
    (b" " * (MAX_MESSAGE_BYTES + 1), "MESSAGE_TOO_LARGE"),
])
def test_structural_rejects(payload, reason):
    err = decode_order_message(payload)
    assert isinstance(err, DecodeError) and err.reason == reason and err.text


def test_deep_nesting_inside_an_order_is_refused_not_a_crash():
    deep = b'{"msg":"new_order","cl_ord_id":"c1","x":' + b"[" * 1900 + b"]" * 1900 + b"}"
    assert len(deep) < MAX_MESSAGE_BYTES
    err = decode_order_message(deep)
    assert isinstance(err, DecodeError) and err.reason in ("MALFORMED_JSON", "INVALID_FIELD")


def test_size_limit_is_exact():
    body = encode(CANCEL)
    at_limit = body + b" " * (MAX_MESSAGE_BYTES - len(body))
    assert decode_order_message(at_limit) == CANCEL
    err = decode_order_message(at_limit + b" ")
    assert isinstance(err, DecodeError) and err.reason == "MESSAGE_TOO_LARGE"


@pytest.mark.parametrize("payload", [None, 5, 1.5, object(), ["x"]])
def test_non_bytes_input_is_an_error_value(payload):
    err = decode_order_message(payload)
    assert isinstance(err, DecodeError) and err.reason == "MALFORMED_JSON"


def test_bytes_like_and_str_payloads_decode():
    raw = encode(CANCEL)
    for p in (bytearray(raw), memoryview(raw), raw.decode()):
        assert decode_order_message(p) == CANCEL
    assert isinstance(decode_order_message("\ud800"), DecodeError)   # lone surrogate


def test_a_bug_in_validation_becomes_an_error_value(monkeypatch):
    def broken(msg):
        raise KeyError("boom")
    monkeypatch.setattr(codec, "_check", broken)
    err = decode_order_message(encode(CANCEL))
    assert isinstance(err, DecodeError) and err.reason == "DECODER_FAULT"


# ------------------------------------------------------------------ topics
def test_topic_layout():
    assert topics.orders("alpha") == "tokenbook/v1/orders/alpha"
    assert topics.exec_reports("alpha") == "tokenbook/v1/exec/alpha"
    assert topics.md_trades("TB3M") == "tokenbook/v1/md/TB3M/trades"
    assert topics.md_depth("TB3M") == "tokenbook/v1/md/TB3M/depth"
    assert topics.md_snapshot("TB3M") == "tokenbook/v1/md/TB3M/snapshot"
    assert topics.md_bbo("TB3M") == topics.md("TB3M", "bbo") == "tokenbook/v1/md/TB3M/bbo"
    assert topics.STATUS == "tokenbook/v1/status"
    assert topics.presence("alpha") == "tokenbook/v1/presence/alpha"
    assert topics.md_wildcard("TB3M") == "tokenbook/v1/md/TB3M/+"
    assert topics.md("TB3M", "state") == "tokenbook/v1/md/TB3M/state"
    assert topics.ADMIN == "tokenbook/v1/admin"
    assert topics.ADMIN_REPLIES == "tokenbook/v1/admin/replies"
    assert topics.md("TB3M", "auction") == "tokenbook/v1/md/TB3M/auction"
    assert topics.RETAINED_MD_CHANNELS == {"snapshot", "bbo", "state", "auction",
                                           "auction_result", "reference", "stats"}
    assert topics.md("TB3M", "reference") == "tokenbook/v1/md/TB3M/reference"
    assert topics.QOS == 1


@pytest.mark.parametrize("bad", ["", "a/b", "+", "#", "a+", "$SYS", "a b", "x" * 65,
                                 "alpha\n", "caf\u00e9", "a\x00", None, 5])
def test_builders_refuse_unsafe_names(bad):
    for build in (topics.orders, topics.exec_reports, topics.presence, topics.md_trades):
        with pytest.raises(ValueError):
            build(bad)
    assert not topics.valid_name(bad)


def test_md_refuses_unknown_channels():
    with pytest.raises(ValueError):
        topics.md("TB3M", "quotes")


def test_orders_topic_names_the_broker_and_nothing_else():
    assert topics.broker_from_orders_topic("tokenbook/v1/orders/alpha") == "alpha"
    assert topics.broker_from_orders_topic("tokenbook/v1/orders/" + "b" * 64) == "b" * 64
    for bad in ("tokenbook/v1/orders/", "tokenbook/v1/orders/a/b", "tokenbook/v1/orders/+",
                "tokenbook/v1/orders/#", "tokenbook/v1/orders/a#", "tokenbook/v1/exec/alpha",
                "tokenbook/v2/orders/alpha", "/tokenbook/v1/orders/alpha",
                "tokenbook/v1/orders/alpha/", "tokenbook//orders/alpha", "tokenbook/v1/orders",
                "tokenbook/v1/orders/no spaces", "tokenbook/v1/orders/alpha\n",
                "tokenbook/v1/orders/" + "b" * 65, "TOKENBOOK/v1/orders/alpha", "", None,
                b"tokenbook/v1/orders/alpha"):
        assert topics.broker_from_orders_topic(bad) is None, bad


def test_presence_and_md_topics_parse_back():
    assert topics.broker_from_presence_topic(topics.presence("beta")) == "beta"
    assert topics.broker_from_presence_topic(topics.orders("beta")) is None
    for ch in topics.MD_CHANNELS:
        assert topics.parse_md_topic(topics.md("TB3M", ch)) == ("TB3M", ch)
    assert topics.parse_md_topic("tokenbook/v1/md/TB3M/quotes") is None
    assert topics.parse_md_topic("tokenbook/v1/md/+/depth") is None


# ------------------------------------------------------------------ fuzz: never raises
json_leaf = (st.none() | st.booleans() | st.integers() | st.integers(min_value=2**63)
             | st.floats(allow_nan=True, allow_infinity=True) | st.text())
json_values = st.recursive(
    json_leaf, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20)
FIELDS = ["msg", "cl_ord_id", "orig_cl_ord_id", "account", "symbol", "side", "qty", "price",
          "ord_type", "time_in_force", "expire_time", "post_only", "min_qty", "stp"]
VALID_DOCS = [json.loads(encode(m)) for m in (FULL_NEW, MINIMAL_NEW, CANCEL, REPLACE)]


@st.composite
def mutated_orders(draw):
    """A valid order with fields replaced by random JSON values, removed or added."""
    doc = dict(draw(st.sampled_from(VALID_DOCS)))
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(FIELDS) | st.text(max_size=8))
        if draw(st.booleans()) and key in doc:
            del doc[key]
        else:
            doc[key] = draw(json_values)
    return encode(doc)


@st.composite
def corrupted_orders(draw):
    """A valid payload cut short or with bytes flipped."""
    raw = bytearray(encode(draw(st.sampled_from([FULL_NEW, CANCEL, REPLACE]))))
    if draw(st.booleans()):
        return bytes(raw[:draw(st.integers(0, len(raw)))])
    for _ in range(draw(st.integers(1, 5))):
        raw[draw(st.integers(0, len(raw) - 1))] = draw(st.integers(0, 255))
    return bytes(raw)


def check_outcome(out):
    """Whatever came back is a well-formed value; an accepted message is fully valid."""
    assert isinstance(out, (DecodeError, *ORDER_TYPES))
    if isinstance(out, DecodeError):
        assert out.reason in DECODE_REASONS and out.text
        assert out.cl_ord_id is None or codec.valid_cl_ord_id(out.cl_ord_id)
        assert out.symbol is None or topics.valid_name(out.symbol)
    else:
        assert codec.valid_cl_ord_id(out.cl_ord_id) and topics.valid_name(out.symbol)
        for f in ("qty", "price", "min_qty"):
            v = getattr(out, f, None)
            assert v is None or codec.valid_decimal(v)
        assert decode_order_message(encode(out)) == out


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400), json_values.map(encode), mutated_orders(),
                 corrupted_orders()))
def test_decoding_never_raises(payload):
    check_outcome(decode_order_message(payload))


@settings(max_examples=300, deadline=None)
@given(st.builds(
    NewOrderSingle,
    cl_ord_id=st.from_regex(r"[\x21-\x7e]{1,64}", fullmatch=True),
    account=st.integers(1, 2**63 - 1),
    symbol=st.from_regex(topics.NAME_PATTERN, fullmatch=True),
    side=st.sampled_from(["buy", "sell"]),
    qty=st.from_regex(codec.DECIMAL_PATTERN, fullmatch=True),
    ord_type=st.sampled_from(["limit", "market"]),
    price=st.none() | st.from_regex(codec.DECIMAL_PATTERN, fullmatch=True),
    time_in_force=st.sampled_from(["day", "gtc", "ioc", "fok", "gtd"]),
    expire_time=st.none() | st.integers(1, 2**63 - 1),
    post_only=st.booleans(),
    min_qty=st.none() | st.from_regex(codec.DECIMAL_PATTERN, fullmatch=True),
    stp=st.sampled_from(["none", "cancel_resting", "cancel_incoming", "cancel_both",
                         "decrement_and_cancel"])))
def test_every_valid_new_order_round_trips(msg):
    assert decode_order_message(encode(msg)) == msg


@pytest.mark.parametrize("payload, why", [
    (b"{", "truncated"), (b'{"action": "liquidate"}', "action"), (b'[]', "object"),
    (b'{"action": "halt", "symbol": "a/b"}', "symbol"), (b'{"action": "halt", "x": 1}', "x"),
    (b'{"action": "halt", "reason": "' + b"r" * 201 + b'"}', "reason"), (b"x" * 5000, "bytes"),
])
def test_bad_operator_commands_decode_to_a_refusal_not_an_exception(payload, why):
    from feeds.codec import AdminReply, decode_admin_command
    reply = decode_admin_command(payload)
    assert isinstance(reply, AdminReply) and not reply.accepted
    assert reply.text.startswith("refused:") and why in reply.text.lower()


def test_an_operator_command_decodes_with_its_request_id():
    from feeds.codec import AdminCommand, decode_admin_command
    cmd = decode_admin_command(b'{"action": "halt", "symbol": "TB3M", "reason": "notice",'
                               b' "request_id": "q7"}')
    assert cmd == AdminCommand("halt", "TB3M", "notice", "q7")

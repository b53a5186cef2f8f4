"""The wire codec decodes strictly and never raises, whatever the bytes."""
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from feeds.codec import DecodeError, decode_order_message, encode
from feeds import topics
from matching.messages import (
    ExecutionReport, NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest,
)


def test_every_order_message_round_trips():
    for msg in (NewOrderSingle("c1", 7, "TB3M", "buy", "1.5", price="99.125",
                               time_in_force="gtc", min_qty="0.5"),
                OrderCancelRequest("c2", "c1", "TB3M"),
                OrderCancelReplaceRequest("c3", "c1", "TB3M", "99.100", "2")):
        assert decode_order_message(encode(msg)) == msg


def test_exec_report_is_plain_json_with_fix_names():
    r = ExecutionReport("E1", "trade", "filled", "c1", "TB3M", 5, 1, cum_qty="1", leaves_qty="0",
                        avg_px="99.1")
    doc = msgspec.json.decode(encode(r))
    assert doc["exec_type"] == "trade" and doc["cum_qty"] == "1" and doc["avg_px"] == "99.1"


def test_float_price_is_rejected_with_the_clordid_kept():
    err = decode_order_message(b'{"msg":"new_order","cl_ord_id":"c9","account":1,'
                               b'"symbol":"TB3M","side":"buy","qty":"1","price":99.1}')
    assert isinstance(err, DecodeError) and err.reason == "INVALID_FIELD"
    assert err.cl_ord_id == "c9" and err.symbol == "TB3M"


def test_exponent_and_nan_decimals_are_rejected():
    for bad in ("1e3", "NaN", "-1", "1.", ".5", "1" * 30):
        raw = encode({"msg": "new_order", "cl_ord_id": "c", "account": 1, "symbol": "TB3M",
                      "side": "buy", "qty": bad, "price": "99"})
        assert isinstance(decode_order_message(raw), DecodeError), bad


def test_unknown_fields_and_wrong_enums_are_rejected():
    base = {"msg": "cancel", "cl_ord_id": "c", "orig_cl_ord_id": "b", "symbol": "X"}
    assert isinstance(decode_order_message(encode({**base, "extra": 1})), DecodeError)
    assert isinstance(decode_order_message(encode({**base, "msg": "wipe_book"})), DecodeError)
    assert isinstance(decode_order_message(b"x" * 5000), DecodeError)


def test_orders_topic_names_the_broker_and_nothing_else():
    assert topics.broker_from_orders_topic("tokenbook/v1/orders/alpha") == "alpha"
    for bad in ("tokenbook/v1/orders/", "tokenbook/v1/orders/a/b", "tokenbook/v1/orders/+",
                "tokenbook/v1/exec/alpha", "tokenbook/v1/orders/a#"):
        assert topics.broker_from_orders_topic(bad) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20)


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.binary(max_size=300), json_values.map(encode),
                 st.fixed_dictionaries({"msg": st.sampled_from(["new_order", "cancel", "replace"]),
                                        "cl_ord_id": st.text(max_size=80)},
                                       optional={"account": st.integers(), "qty": st.text(),
                                                 "price": st.one_of(st.text(), st.floats()),
                                                 "symbol": st.text(), "side": st.text()}
                                       ).map(encode)))
def test_decoding_never_raises(payload):
    out = decode_order_message(payload)
    assert isinstance(out, (DecodeError, NewOrderSingle, OrderCancelRequest,
                            OrderCancelReplaceRequest))
    if isinstance(out, DecodeError):
        assert out.reason and out.text

"""Orders routed by symbol to shards (feeds.shard, feeds.topics v2): each symbol has one
shard, each shard its own MQTT identity, a v2 order for an unserved symbol is refused by
the answering shard, and BrokerClient sends on v2 when asked."""
from __future__ import annotations

import pytest

from feeds import topics
from feeds.client import BrokerClient
from feeds.codec import BalancesRequest
from feeds.shard import (
    Route,
    ShardDirectory,
    ShardError,
    ShardSpec,
    parse_symbols,
    refuse_unserved,
    shard_exec_id,
    shard_trade_id,
)
from matching.errors import EngineReject
from matching.messages import NewOrderSingle, OrderCancelRequest

VENUE = ShardDirectory.from_mapping({"s1": "TB3M,TB6M", "s2": ["UST2Y"]})


def test_v2_order_topic_names_broker_and_symbol_and_parses_back():
    topic = topics.orders_v2("alpha", "TB3M")
    assert topic == "tokenbook/v2/orders/alpha/TB3M"
    assert topics.parse_orders_v2_topic(topic) == ("alpha", "TB3M")


@pytest.mark.parametrize("topic", [
    "tokenbook/v1/orders/alpha", "tokenbook/v2/orders/alpha", "tokenbook/v2/orders/+/TB3M",
    "tokenbook/v2/orders/alpha/#", "tokenbook/v2/orders/alpha/TB3M/x", "tokenbook/v2/md/a/b",
    None, 42, "tokenbook/v2/orders//TB3M",
])
def test_anything_but_a_v2_order_topic_parses_to_none(topic):
    assert topics.parse_orders_v2_topic(topic) is None


def test_v2_topic_builder_refuses_a_wildcard_symbol():
    with pytest.raises(ValueError):
        topics.orders_v2("alpha", "+")


def test_v1_order_topic_is_not_mistaken_for_v2_and_keeps_its_broker():
    assert topics.broker_from_orders_topic("tokenbook/v1/orders/alpha") == "alpha"
    assert topics.broker_from_orders_topic("tokenbook/v2/orders/alpha/TB3M") is None


def test_each_symbol_is_routed_to_the_one_shard_serving_it():
    assert VENUE.route("s1", topics.orders_v2("alpha", "TB6M")) is Route.MINE
    assert VENUE.route("s2", topics.orders_v2("alpha", "TB6M")) is Route.OTHER_SHARD
    assert VENUE.route("s2", topics.orders_v2("beta", "UST2Y")) is Route.MINE
    assert VENUE.route("s1", topics.orders("alpha")) is Route.NOT_V2


def test_symbol_no_shard_serves_is_unserved_and_the_first_shard_answers_it():
    assert VENUE.route("s1", topics.orders_v2("alpha", "NOPE")) is Route.UNSERVED
    assert VENUE.answering == "s1"
    assert topics.ORDERS_V2_WILDCARD in VENUE.shards["s1"].identity(answering=True).order_filters
    assert "NOPE" in VENUE.unserved_text("NOPE") and "s2=UST2Y" in VENUE.unserved_text("NOPE")
    assert EngineReject.WRONG_SHARD.number == 278


def test_a_symbol_served_by_two_shards_is_refused():
    with pytest.raises(ShardError, match="one sequencer"):
        ShardDirectory.from_mapping({"s1": "TB3M", "s2": "TB3M,UST2Y"})


def test_shard_identity_has_its_own_client_id_status_and_only_its_symbols():
    ident = VENUE.shards["s2"].identity()
    other = VENUE.shards["s1"].identity()
    assert ident.client_id == "tokenbook-engine-s2" != other.client_id
    assert ident.status_topic == "tokenbook/v1/status/s2" != other.status_topic
    assert ident.order_filters == ("tokenbook/v2/orders/+/UST2Y",)


@pytest.mark.parametrize("text, error", [
    ("", "at least one"), ("TB3M,TB3M", "twice"), ("TB3M,a/b", "not a valid"),
])
def test_bad_symbols_option_is_a_usage_error(text, error):
    with pytest.raises(ShardError, match=error):
        parse_symbols(text)


def test_bad_shard_id_is_refused():
    with pytest.raises(ShardError):
        ShardSpec("s/1", ("TB3M",))


def test_shard_symbols_must_be_listed_instruments():
    with pytest.raises(ShardError, match="UST2Y"):
        ShardSpec("s1", ("TB3M", "UST2Y")).check_listed(["TB3M"])


def test_exec_and_trade_ids_carry_the_shard_so_two_shards_never_collide():
    assert shard_exec_id("s1", "7") != shard_exec_id("s2", "7")
    assert shard_trade_id("s2", "7") == "s2-7"


def test_broker_client_sends_on_v2_by_symbol_when_asked():
    v2 = BrokerClient("alpha", "127.0.0.1", 1, order_topic="v2")
    order = NewOrderSingle("c1", 1001, "TB3M", "buy", "1", price="99")
    cancel = OrderCancelRequest("c2", "c1", "TB3M")
    assert v2.topic_for(order) == "tokenbook/v2/orders/alpha/TB3M"
    assert v2.topic_for(cancel) == "tokenbook/v2/orders/alpha/TB3M"
    assert v2.topic_for(BalancesRequest("q1")) == "tokenbook/v1/orders/alpha"
    v1 = BrokerClient("alpha", "127.0.0.1", 1)
    assert v1.topic_for(order) == "tokenbook/v1/orders/alpha"
    with pytest.raises(ValueError):
        BrokerClient("alpha", "127.0.0.1", 1, order_topic="v3")


def test_order_for_a_symbol_no_shard_serves_gets_wrong_shard_from_the_answering_shard():
    from testkit import golden
    engine = golden.new_engine()[0]
    seq, digest = engine.seq, engine.state_hash()
    payload = b'{"msg":"new_order","cl_ord_id":"c9","account":1001,"symbol":"NOPE",' \
              b'"side":"buy","qty":"1","price":"99"}'
    out = refuse_unserved(VENUE, engine, topics.orders_v2("alpha", "NOPE"), payload)
    [(broker, report)] = out.reports
    assert broker == "alpha" and report.exec_type == "rejected"
    assert report.ord_rej_reason == "WRONG_SHARD" and report.cl_ord_id == "c9"
    assert "s2=UST2Y" in report.text
    assert engine.seq == seq and engine.state_hash() == digest      # nothing journaled


def test_answering_shard_leaves_a_served_symbol_to_its_shard():
    from testkit import golden
    engine = golden.new_engine()[0]
    assert refuse_unserved(VENUE, engine, topics.orders_v2("alpha", "UST2Y"), b"{}") is None
    assert refuse_unserved(VENUE, engine, topics.orders("alpha"), b"{}") is None

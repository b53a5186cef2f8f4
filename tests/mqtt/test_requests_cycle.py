"""Broker queries over MQTT 5 request/response, the cycle's side (sans-I/O): answered on
the request's own Response Topic with its Correlation Data, never journaled; a request
with no usable Response Topic, or one that is not a query, refused with its reason."""
from __future__ import annotations

import json

from feeds import topics
from feeds.cycle import GatewayCycle
from feeds.outbox import KEPT_ACROSS_RECONNECT
from matching.journal import Journal
from testkit.mqtt import two_broker_engine

REPLY = topics.replies("alpha", "desk-1")
BALANCES = b'{"msg":"balances","request_id":"q1"}'
ORDER = json.dumps({"msg": "new_order", "cl_ord_id": "o1", "account": 1, "symbol": "TB3M",
                    "side": "buy", "qty": "1", "price": "99.0"}).encode()


def ask(payload: bytes = BALANCES, response: str | None = REPLY, correlation=b"\x00c1",
        broker: str = "alpha"):
    return topics.requests(broker), payload, False, response, correlation


def test_a_balances_request_is_answered_on_its_response_topic_with_its_correlation_data():
    cycle = GatewayCycle(two_broker_engine())
    [p] = cycle.process([ask()], 1)
    doc = json.loads(p.payload)
    assert (p.topic, p.correlation, p.retain, p.kind) == (REPLY, b"\x00c1", False, "reply")
    assert doc["msg"] == "balances" and doc["request_id"] == "q1"
    assert [a["account"] for a in doc["accounts"]] == [1]      # alpha's own account only
    assert cycle.stats.requests == 1 and cycle.stats.decode_rejects == 0


def test_an_answer_names_the_engine_seq_of_the_orders_before_it_in_the_same_batch(tmp_path):
    journal = Journal(str(tmp_path / "j"))
    cycle = GatewayCycle(two_broker_engine(journal=journal))
    pubs = cycle.process([(topics.orders("alpha"), ORDER), ask()], 1)
    [ack] = [json.loads(p.payload) for p in pubs if p.topic == topics.exec_reports("alpha")]
    [answer] = [json.loads(p.payload) for p in pubs if p.topic == REPLY]
    assert answer["seq"] == ack["seq"] == journal.durable_seq
    [usdc] = [a for a in answer["accounts"][0]["assets"] if a["asset"] == "USDC"]
    assert usdc["reserved"] != "0"                # the order's reservation is in the answer


def test_a_query_journals_nothing(tmp_path):
    journal = Journal(str(tmp_path / "j"))
    cycle = GatewayCycle(two_broker_engine(journal=journal))
    cycle.process([(topics.orders("alpha"), ORDER)], 1)
    size = (tmp_path / "j").stat().st_size
    cycle.process([ask(), ask(b'{"msg":"order_status","cl_ord_id":"o1"}')], 2)
    assert (tmp_path / "j").stat().st_size == size


def test_an_order_status_request_is_answered_with_exec_type_order_status():
    cycle = GatewayCycle(two_broker_engine())
    cycle.process([(topics.orders("alpha"), ORDER)], 1)
    [p] = cycle.process([ask(b'{"msg":"order_status","cl_ord_id":"o1"}')], 2)
    doc = json.loads(p.payload)
    assert p.topic == REPLY
    assert (doc["exec_type"], doc["ord_status"], doc["leaves_qty"]) == ("order_status", "new",
                                                                        "1.0000")


def test_a_request_without_response_topic_is_refused_on_the_exec_topic():
    cycle = GatewayCycle(two_broker_engine())
    [p] = cycle.process([(topics.requests("alpha"), BALANCES)], 1)
    doc = json.loads(p.payload)
    assert p.topic == topics.exec_reports("alpha")
    assert (doc["exec_type"], doc["ord_rej_reason"]) == ("rejected", "NO_RESPONSE_TOPIC")


def test_a_response_topic_of_another_broker_is_refused_and_nothing_is_written_there():
    cycle = GatewayCycle(two_broker_engine())
    others = [topics.replies("beta", "x"), "tokenbook/v1/replies/alpha",
              "tokenbook/v1/replies/alpha/+", "tokenbook/v1/replies/alpha/a/#",
              "tokenbook/v1/exec/beta", "tokenbook/v1/replies/alpha/" + "x" * 300]
    pubs = cycle.process([ask(response=t) for t in others], 1)
    assert [p.topic for p in pubs] == [topics.exec_reports("alpha")] * len(others)
    assert {json.loads(p.payload)["ord_rej_reason"] for p in pubs} == {
        "RESPONSE_TOPIC_NOT_OWN"}


def test_a_deeper_reply_topic_of_ones_own_is_taken():
    cycle = GatewayCycle(two_broker_engine())
    deep = "tokenbook/v1/replies/alpha/desk-1/session-7"
    [p] = cycle.process([ask(response=deep)], 1)
    assert p.topic == deep and json.loads(p.payload)["msg"] == "balances"


def test_an_order_on_the_requests_topic_is_refused_there_and_not_entered():
    cycle = GatewayCycle(two_broker_engine())
    [p] = cycle.process([ask(ORDER)], 1)
    doc = json.loads(p.payload)
    assert p.topic == REPLY and p.correlation == b"\x00c1"
    assert (doc["ord_rej_reason"], doc["cl_ord_id"]) == ("NOT_A_QUERY", "o1")
    assert not cycle.engine.has_live_orders("alpha")


def test_a_malformed_query_gets_the_decoders_reason_on_the_response_topic():
    cycle = GatewayCycle(two_broker_engine())
    pubs = cycle.process([ask(b"not json"), ask(b'{"msg":"balances","account":-1}')], 1)
    assert [p.topic for p in pubs] == [REPLY, REPLY]
    reasons = [json.loads(p.payload)["ord_rej_reason"] for p in pubs]
    assert reasons[0] == "MALFORMED_JSON" and reasons[1] in ("INVALID_FIELD", "NOT_A_QUERY")


def test_a_request_without_correlation_data_is_answered_without_any():
    cycle = GatewayCycle(two_broker_engine())
    [p] = cycle.process([ask(correlation=None)], 1)
    assert p.topic == REPLY and p.correlation is None


def test_replies_are_kept_across_a_reconnect():
    assert "reply" in KEPT_ACROSS_RECONNECT


def test_the_one_shard_gateway_subscribes_to_every_brokers_requests():
    assert topics.REQUESTS_WILDCARD in GatewayCycle(two_broker_engine()).config.order_filters

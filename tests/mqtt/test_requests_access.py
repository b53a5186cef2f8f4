"""Broker queries over MQTT 5 request/response on a private mosquitto with the shipped ACL
and generated passwords (as test_access.py), on both gateway transports: a broker asks on
``requests/{itself}`` and reads the answer on its own ``replies/{itself}/...`` with its
Correlation Data echoed; it can neither ask as another broker, nor read another's
replies, nor have the engine write into them. An outsider does it with ``mosquitto_rr``."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from test_access import NOT_AUTHORIZED, peer, running_gateway

from feeds import topics
from feeds.client import BrokerClient, QueryRefused
from feeds.security import ENGINE_USER, MD_USER, client_options
from matching.messages import NewOrderSingle
from testkit.mqtt import run

pytestmark = pytest.mark.network
A, B = "alpha", "beta"


def engine_options(secrets) -> dict:
    out, _ = secrets
    return client_options(credentials=out / "credentials", username=ENGINE_USER)


def request_properties(response_topic: str, correlation: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    return props


@pytest.mark.parametrize("transport", ["link", "aiomqtt"])
def test_a_broker_asks_balances_and_order_status_and_reads_the_answers(
        acl_broker, acl_secrets, transport):
    out, _ = acl_secrets

    async def body():
        async with BrokerClient(A, "127.0.0.1", acl_broker.port, client_id=A,
                                mqtt_options=client_options(
                                    credentials=out / "credentials", username=A)) as c:
            ack = await c.submit(NewOrderSingle(f"q-{transport}", 1, "TB3M", "buy", "1",
                                                price="99.0"))
            return (ack, await c.balances(), await c.order_status(cl_ord_id=ack.cl_ord_id),
                    await c.order_status(cl_ord_id="never-sent"))

    with running_gateway(acl_broker.port, engine_options(acl_secrets), transport=transport) as gw:
        ack, mine, status, unknown = run(body(), 30)
        assert [a.account for a in mine.accounts] == [1] and mine.seq >= ack.seq
        cash = next(x for x in mine.accounts[0].assets if x.asset == "USDC")
        assert cash.reserved != "0"                # the order's reservation
        assert (status.exec_type, status.ord_status, status.order_id) == (
            "order_status", "new", ack.order_id)
        assert (unknown.ord_status, unknown.ord_rej_reason) == ("rejected", "ORDER_NOT_FOUND")
        assert gw.stats.requests == 3


def test_the_answer_echoes_the_correlation_data_on_the_askers_response_topic(acl_broker,
                                                                             acl_secrets):
    _, users = acl_secrets
    reply = topics.replies(A, "desk")
    with running_gateway(acl_broker.port, engine_options(acl_secrets)), \
            peer(acl_broker.port, A, users[A]) as alpha:
        alpha.subscribe(f"{topics.ROOT}/replies/{A}/#")
        assert not alpha.publish(topics.requests(A), b'{"msg":"balances"}',
                                 properties=request_properties(reply, b"\x01corr")).is_failure
        alpha.wait_message(lambda t, p: t == reply, "the answer")
        [(_, props)] = [(t, p) for t, p in alpha.properties if t == reply]
        assert props.CorrelationData == b"\x01corr"


def test_a_broker_can_neither_ask_as_another_nor_read_or_aim_at_its_replies(
        acl_broker, acl_secrets):
    _, users = acl_secrets
    with running_gateway(acl_broker.port, engine_options(acl_secrets)), \
            peer(acl_broker.port, A, users[A]) as alpha, peer(acl_broker.port, B, users[B]) as beta:
        alpha.subscribe("tokenbook/v1/replies/#")
        beta.subscribe(topics.exec_reports(B), f"{topics.ROOT}/replies/{B}/#")
        balances = b'{"msg":"balances"}'
        # Beta may not write alpha's request topic (the ACL: requests/%u).
        assert beta.publish(topics.requests(A), balances, properties=request_properties(
            topics.replies(B, "x"), b"1")).value == NOT_AUTHORIZED
        # Beta may ask on its own topic, but an answer aimed at alpha's replies is refused
        # on beta's exec topic and never written there.
        beta.publish(topics.requests(B), balances,
                     properties=request_properties(topics.replies(A, "x"), b"2"))
        _, payload = beta.wait_message(lambda t, p: t == topics.exec_reports(B), "refusal")
        assert json.loads(payload)["ord_rej_reason"] == "RESPONSE_TOPIC_NOT_OWN"
        # Beta's own question is answered on its own replies, which alpha never reads.
        beta.publish(topics.requests(B), balances,
                     properties=request_properties(topics.replies(B, "x"), b"3"))
        beta.wait_message(lambda t, p: t == topics.replies(B, "x"), "beta's answer")
        assert not alpha.topics_seen()


def test_a_request_without_response_topic_is_refused_on_the_exec_topic(acl_broker, acl_secrets):
    _, users = acl_secrets
    with running_gateway(acl_broker.port, engine_options(acl_secrets)), \
            peer(acl_broker.port, A, users[A]) as alpha:
        alpha.subscribe(topics.exec_reports(A))
        alpha.publish(topics.requests(A), b'{"msg":"balances","request_id":"nr"}')
        _, payload = alpha.wait_message(lambda t, p: t == topics.exec_reports(A)
                                        and b"NO_RESPONSE_TOPIC" in p, "refusal")
        assert json.loads(payload)["exec_type"] == "rejected"


def test_the_market_data_user_may_not_ask(acl_broker, acl_secrets):
    _, users = acl_secrets
    with peer(acl_broker.port, MD_USER, users[MD_USER]) as md:
        assert md.publish(topics.requests(MD_USER), b'{"msg":"balances"}').value \
            == NOT_AUTHORIZED


def test_a_refused_query_raises_with_the_venues_reason(acl_broker, acl_secrets):
    out, _ = acl_secrets

    async def body():
        async with BrokerClient(A, "127.0.0.1", acl_broker.port, client_id=A,
                                mqtt_options=client_options(
                                    credentials=out / "credentials", username=A)) as c:
            with pytest.raises(QueryRefused) as refused:
                await c._query(NewOrderSingle("not-a-query", 1, "TB3M", "buy", "1",
                                              price="99.0"))
            return refused.value.report

    with running_gateway(acl_broker.port, engine_options(acl_secrets)):
        report = run(body(), 20)
        assert report.ord_rej_reason == "NOT_A_QUERY" and report.cl_ord_id == "not-a-query"


def test_an_outsider_asks_its_balances_with_mosquitto_rr(acl_broker, acl_secrets):
    _, users = acl_secrets
    assert shutil.which("mosquitto_rr"), "mosquitto-clients: scripts/ensure-mosquitto"
    with running_gateway(acl_broker.port, engine_options(acl_secrets)):
        res = subprocess.run(
            ["mosquitto_rr", "-V", "5", "-h", "127.0.0.1", "-p", str(acl_broker.port),
             "-u", A, "-P", users[A], "-q", "1", "-W", "10",
             "-t", topics.requests(A), "-e", topics.replies(A, "rr"),
             "-D", "publish", "correlation-data", "outsider-1",
             "-m", '{"msg":"balances"}'],
            capture_output=True, text=True, timeout=20)
        assert res.returncode == 0, res.stderr
        doc = json.loads(res.stdout)
        assert doc["msg"] == "balances" and [a["account"] for a in doc["accounts"]] == [1]

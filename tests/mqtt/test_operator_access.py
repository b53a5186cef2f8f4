"""Who may send the operator's account commands and the transfer agent's controls, on a
private mosquitto with the shipped ACL and generated passwords (as test_access.py): the
operator its account commands on ``tokenbook/v1/admin``, the agent its controls on its
own topic ``tokenbook/v1/orders/tokenbook-agent``, a broker neither; each sender's
commands of the other's role are refused by the engine too."""
from __future__ import annotations

import json

import pytest
from test_access import NOT_AUTHORIZED, peer, running_gateway

from feeds import topics
from feeds.security import AGENT_USER, ENGINE_USER, OPERATOR_USER, client_options

pytestmark = pytest.mark.network
A, B = "alpha", "beta"


def command(request_id: str, action: str, **fields) -> bytes:
    return json.dumps({"action": action, "request_id": request_id, **fields}).encode()


def reply_of(request_id: str):
    def pred(topic, payload):
        return topic == topics.ADMIN_REPLIES and json.loads(payload).get(
            "request_id") == request_id
    return pred


def test_agent_user_is_generated_and_reserved(acl_secrets):
    _, users = acl_secrets
    assert AGENT_USER in users and topics.AGENT == topics.orders(AGENT_USER)


def test_only_the_operator_sends_account_commands_and_only_the_agent_its_controls(
        acl_broker, acl_secrets):
    out, users = acl_secrets
    opts = client_options(credentials=out / "credentials", username=ENGINE_USER)
    with running_gateway(acl_broker.port, opts), \
            peer(acl_broker.port, OPERATOR_USER, users[OPERATOR_USER]) as op, \
            peer(acl_broker.port, AGENT_USER, users[AGENT_USER]) as agent, \
            peer(acl_broker.port, A, users[A]) as alpha:
        for p in (op, agent, alpha):
            p.subscribe(topics.ADMIN_REPLIES)
        deposit = command("d1", "deposit", account=1, asset="USDC", amount="10")
        freeze = command("f1", "freeze", account=2, symbol="TB3M")
        # A broker may send neither, on either topic.
        assert alpha.publish(topics.ADMIN, deposit).value == NOT_AUTHORIZED
        assert alpha.publish(topics.AGENT, freeze).value == NOT_AUTHORIZED
        # The agent may not use the operator's topic, nor the operator the agent's.
        assert agent.publish(topics.ADMIN, deposit).value == NOT_AUTHORIZED
        assert op.publish(topics.AGENT, freeze).value == NOT_AUTHORIZED
        # Each may send on its own, and reads the engine's reply.
        assert not op.publish(topics.ADMIN, deposit).is_failure
        _, payload = op.wait_message(reply_of("d1"), "the deposit's reply")
        reply = json.loads(payload)
        assert reply["accepted"] and reply["seq"] > 0
        assert not agent.publish(topics.AGENT, freeze).is_failure
        _, payload = agent.wait_message(reply_of("f1"), "the freeze's reply")
        assert json.loads(payload)["accepted"]
        # On its own topic, each role's commands only: the engine refuses the other's.
        op.publish(topics.ADMIN, command("f2", "freeze", account=1))
        assert "transfer agent" in json.loads(op.wait_message(reply_of("f2"))[1])["text"]
        agent.publish(topics.AGENT, command("d2", "deposit", account=1, asset="USDC",
                                            amount="1"))
        refused = json.loads(agent.wait_message(reply_of("d2"))[1])
        assert not refused["accepted"] and "not a transfer-agent control" in refused["text"]
        # A broker never reads the replies.
        assert topics.ADMIN_REPLIES not in alpha.topics_seen()


def test_a_broker_queries_only_its_own_balances_and_no_one_else_reads_them(acl_broker, acl_secrets):
    from feeds.client import BrokerClient
    from testkit.mqtt import run
    out, users = acl_secrets
    opts = client_options(credentials=out / "credentials", username=ENGINE_USER)

    async def body():
        async with BrokerClient(A, "127.0.0.1", acl_broker.port, client_id=A,
                                mqtt_options=client_options(
                                    credentials=out / "credentials", username=A)) as c:
            return await c.balances(), await c.balances(2)

    with running_gateway(acl_broker.port, opts) as gw, \
            peer(acl_broker.port, B, users[B]) as beta:
        beta.subscribe("tokenbook/v1/exec/#")
        mine, theirs = run(body(), 20)
        assert [a.account for a in mine.accounts] == [1]
        assert mine.seq == gw.engine.seq
        cash = next(x for x in mine.accounts[0].assets if x.asset == "USDC")
        assert cash.balance == cash.available == "10000000.000000"
        assert theirs.accounts == [] and theirs.text.startswith("UNKNOWN_ACCOUNT")
        # Beta's own topic still delivers, and alpha's answers never reached it.
        beta.publish(topics.orders(B), b'{"msg":"balances","request_id":"b1"}')
        beta.wait_message(lambda t, p: t == topics.exec_reports(B), "beta's own answer")
        assert topics.exec_reports(A) not in beta.topics_seen()

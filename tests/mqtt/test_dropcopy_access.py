"""The drop copy on a private mosquitto with the generated ACL (as test_access.py): every
report of broker alpha also on ``tokenbook/v1/dropcopy/alpha``, which only alpha's risk
user ``alpha-risk`` reads; beta (and beta-risk) never receive it; a risk user can neither
trade nor send the operator's or the agent's commands."""
from __future__ import annotations

import json

import pytest
from test_access import NOT_AUTHORIZED, peer, running_gateway

from feeds import topics
from feeds.security import ACL_FILE, ENGINE_USER, client_options, risk_user

pytestmark = pytest.mark.network
A, B = "alpha", "beta"


def test_each_broker_gets_a_risk_user_with_its_own_acl_section(acl_secrets):
    out, users = acl_secrets
    assert {risk_user(A), risk_user(B)} <= users.keys()
    acl = (out / "acl").read_text()
    assert acl.startswith(ACL_FILE.read_text())
    assert "user alpha-risk\n" in acl and "topic read tokenbook/v1/dropcopy/alpha\n" in acl


def test_only_the_brokers_risk_user_reads_its_drop_copy(acl_broker, acl_secrets):
    out, users = acl_secrets
    opts = client_options(credentials=out / "credentials", username=ENGINE_USER)
    order = json.dumps({"msg": "new_order", "cl_ord_id": "d1", "account": 1,
                        "symbol": "TB3M", "side": "buy", "qty": "1",
                        "price": "99.5"}).encode()
    with running_gateway(acl_broker.port, opts, drop_copy="*"), \
            peer(acl_broker.port, risk_user(A), users[risk_user(A)]) as alpha_risk, \
            peer(acl_broker.port, risk_user(B), users[risk_user(B)]) as beta_risk, \
            peer(acl_broker.port, B, users[B]) as beta, \
            peer(acl_broker.port, A, users[A]) as alpha:
        for p in (alpha_risk, beta_risk, beta):
            p.subscribe("tokenbook/v1/dropcopy/#", "tokenbook/v1/exec/#")
        alpha.subscribe(topics.exec_reports(A))
        alpha.publish(topics.orders(A), order)
        _, own = alpha.wait_message(lambda t, p: t == topics.exec_reports(A), "alpha's report")
        _, copy = alpha_risk.wait_message(lambda t, p: t == topics.dropcopy(A), "the copy")
        assert json.loads(copy) == json.loads(own)
        assert topics.exec_reports(A) not in alpha_risk.topics_seen()
        # beta's own path delivers (its order's report and copy), alpha's copy never came.
        beta.subscribe(topics.exec_reports(B))
        beta.publish(topics.orders(B), order.replace(b'"account": 1', b'"account": 2'))
        beta_risk.wait_message(lambda t, p: t == topics.dropcopy(B), "beta's copy")
        beta.wait_message(lambda t, p: t == topics.exec_reports(B), "beta's report")
        assert topics.dropcopy(A) not in beta.topics_seen()
        assert topics.dropcopy(A) not in beta_risk.topics_seen()


def test_a_risk_user_cannot_trade_nor_send_operator_or_agent_inputs(acl_broker, acl_secrets):
    _, users = acl_secrets
    with peer(acl_broker.port, risk_user(A), users[risk_user(A)]) as alpha_risk:
        for topic in (topics.orders(risk_user(A)), topics.orders(A), topics.ADMIN,
                      topics.AGENT, topics.dropcopy(A)):
            assert alpha_risk.publish(topic, b"{}") == NOT_AUTHORIZED, topic

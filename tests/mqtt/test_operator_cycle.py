"""The gateway cycle's side of the account commands and agent controls (sans-I/O): the
reply after the commit, the trading state republished for a pause only, the account's
broker told of orders a freeze cancelled, a balances query answered on the exec topic."""
from __future__ import annotations

import json

from feeds import topics
from feeds.cycle import GatewayCycle
from testkit.mqtt import two_broker_engine


def cmd(topic: str, action: str, **fields):
    return topic, json.dumps({"action": action, "request_id": f"r-{action}",
                              **fields}).encode()


def replies(pubs) -> list[dict]:
    return [json.loads(p.payload) for p in pubs if p.topic == topics.ADMIN_REPLIES]


def test_an_account_command_is_replied_without_republishing_trading_states():
    cycle = GatewayCycle(two_broker_engine())
    pubs = cycle.process([cmd(topics.ADMIN, "deposit", account=1, asset="USDC",
                              amount="1.5")], 1)
    [reply] = replies(pubs)
    assert reply["accepted"] and reply["seq"] == cycle.engine.seq
    assert not [p for p in pubs if p.topic.endswith("/state")]


def test_a_pause_republishes_the_state_and_a_freeze_tells_the_broker():
    cycle = GatewayCycle(two_broker_engine())
    order = json.dumps({"msg": "new_order", "cl_ord_id": "s1", "account": 2,
                        "symbol": "TB3M", "side": "sell", "qty": "1", "price": "99.9"})
    cycle.process([(topics.orders("beta"), order.encode())], 1)
    pubs = cycle.process([cmd(topics.AGENT, "freeze", account=2),
                          cmd(topics.AGENT, "pause", symbol="TB6M")], 2)
    assert [r["accepted"] for r in replies(pubs)] == [True, True]
    [cancel] = [json.loads(p.payload) for p in pubs if p.topic == topics.exec_reports("beta")]
    assert (cancel["exec_type"], cancel["text"]) == ("canceled", "FROZEN")
    [state] = [json.loads(p.payload) for p in pubs if p.topic == topics.md("TB6M", "state")]
    assert state["state"] == "halted"


def test_a_balances_query_is_answered_on_the_exec_topic_and_journals_nothing():
    cycle = GatewayCycle(two_broker_engine())
    seq = cycle.engine.seq
    pubs = cycle.process([(topics.orders("alpha"), b'{"msg":"balances","request_id":"q"}')],
                         1)
    [p] = pubs
    doc = json.loads(p.payload)
    assert p.topic == topics.exec_reports("alpha") and doc["msg"] == "balances"
    assert [a["account"] for a in doc["accounts"]] == [1] and doc["seq"] == seq
    assert cycle.engine.seq == seq and cycle.stats.decode_rejects == 0


def test_an_empty_object_is_a_rejected_order_not_a_balances_query():
    cycle = GatewayCycle(two_broker_engine())
    [p] = cycle.process([(topics.orders("alpha"), b"{}")], 1)
    doc = json.loads(p.payload)
    assert p.topic == topics.exec_reports("alpha")
    assert (doc["exec_type"], doc["ord_status"]) == ("rejected", "rejected")
    assert cycle.stats.decode_rejects == 1


def test_a_cash_transfer_leg_is_refused_on_a_one_shard_venue():
    cycle = GatewayCycle(two_broker_engine())
    [reply] = replies(cycle.process([cmd(topics.ADMIN, "transfer_out", account=1,
                                         amount="1", transfer_id="t1", shard="s2")], 1))
    assert not reply["accepted"] and "between shards" in reply["text"]
    assert cycle.engine.seq == 0

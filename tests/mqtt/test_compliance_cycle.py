"""The gateway cycle's side of compliance (sans-I/O): a refused order's execution report
on the broker's exec topic names the rule and the figures; a refused replace's
OrderCancelReject says the rule first."""
from __future__ import annotations

import json

from feeds import topics
from feeds.cycle import GatewayCycle
from testkit.compliance import BUYER, LOT, engine


def order(cl: str, qty: str, **more) -> tuple[str, bytes]:
    doc = {"msg": "new_order", "cl_ord_id": cl, "account": BUYER, "symbol": "TB3M",
           "side": "buy", "qty": qty, "price": "99.270", **more}
    return topics.orders("alpha"), json.dumps(doc).encode()


def reports(pubs) -> list[dict]:
    return [json.loads(p.payload) for p in pubs if p.topic == topics.exec_reports("alpha")]


def test_a_refused_order_report_carries_the_rule_and_the_figures():
    cycle = GatewayCycle(engine(max_balance=10 * LOT))
    [r] = reports(cycle.process([order("b1", "12")], 1))
    assert (r["exec_type"], r["ord_status"], r["ord_rej_reason"]) == (
        "rejected", "rejected", "MAX_BALANCE")
    assert r["text"].startswith("12.0000 would exceed 10.0000 for TB3M")
    assert cycle.engine.ledger.reserved(BUYER, "CASH") == 0


def test_a_refused_replace_says_the_rule_first():
    cycle = GatewayCycle(engine(max_balance=10 * LOT))
    [ack] = reports(cycle.process([order("b1", "8")], 1))
    assert ack["exec_type"] == "new"
    amend = {"msg": "replace", "cl_ord_id": "r1", "orig_cl_ord_id": "b1", "symbol": "TB3M",
             "price": "99.270", "qty": "11"}
    [r] = reports(cycle.process([(topics.orders("alpha"), json.dumps(amend).encode())], 2))
    assert (r["msg"], r["cxl_rej_reason"]) == ("cancel_reject", "OTHER")
    assert r["text"].startswith("MAX_BALANCE: 11.0000 would exceed 10.0000 for TB3M")


def test_the_operator_sets_rules_over_the_admin_topic_and_the_next_order_obeys_them():
    cycle = GatewayCycle(engine())
    cmd = {"action": "set_compliance", "request_id": "r-1", "symbol": "TB3M",
           "compliance": {"max_balance": "10", "countries_deny": ["US"]}}
    pubs = cycle.process([(topics.ADMIN, json.dumps(cmd).encode())], 1)
    [reply] = [json.loads(p.payload) for p in pubs if p.topic == topics.ADMIN_REPLIES]
    assert reply["accepted"] and reply["seq"] == cycle.engine.seq
    assert reply["text"] == "set_compliance TB3M: countries_deny=US, max_balance=10"
    [r] = reports(cycle.process([order("b1", "11")], 2))
    assert r["ord_rej_reason"] == "MAX_BALANCE"


def test_a_malformed_rules_command_is_refused_with_why():
    cycle = GatewayCycle(engine())
    seq = cycle.engine.seq
    cmd = {"action": "set_compliance", "request_id": "r-1", "symbol": "TB3M",
           "compliance": {"max_balance": "ten"}}
    pubs = cycle.process([(topics.ADMIN, json.dumps(cmd).encode())], 1)
    [reply] = [json.loads(p.payload) for p in pubs if p.topic == topics.ADMIN_REPLIES]
    assert not reply["accepted"] and "INVALID_FIELD: compliance: max_balance" in reply["text"]
    assert cycle.engine.seq == seq

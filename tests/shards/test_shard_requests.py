"""Broker queries on a sharded venue (sans-I/O, two shards' cycles hearing the same
requests topic): each shard answers a balances query with its own allocation, naming
itself; an order status only the shard serving its symbol answers; the answering shard
alone refuses what no shard would answer, so every request gets exactly one refusal."""
from __future__ import annotations

import json

from test_shard_admin import shard_cycles

from feeds import topics
from feeds.cycle import GatewayCycle

REPLY = topics.replies("alpha", "desk")
ORDER = json.dumps({"msg": "new_order", "cl_ord_id": "o1", "account": 1, "symbol": "TB6M",
                    "side": "buy", "qty": "1", "price": "99.0"}).encode()


def answers(cycles: dict[str, GatewayCycle], payload: bytes) -> dict[str, dict]:
    """Every shard's answer on the Response Topic, by shard (none: it left it to another)."""
    out = {}
    for sid, cycle in cycles.items():
        for p in cycle.process([(topics.requests("alpha"), payload, False, REPLY, b"c")], 2):
            assert p.topic == REPLY and p.correlation == b"c"
            out[sid] = json.loads(p.payload)
    return out


def test_every_shard_answers_balances_with_its_own_allocation_naming_itself():
    got = answers(shard_cycles(), b'{"msg":"balances"}')
    assert sorted(got) == ["s1", "s2"]
    assert {sid: a["shard"] for sid, a in got.items()} == {"s1": "s1", "s2": "s2"}
    assert all([acct["account"] for acct in a["accounts"]] == [1] for a in got.values())


def test_only_the_shard_serving_the_symbol_answers_an_order_status():
    cycles = shard_cycles()
    cycles["s2"].engine.ledger.whitelist(1, "TB6M")
    cycles["s2"].process([(topics.orders_v2("alpha", "TB6M"), ORDER)], 1)
    got = answers(cycles, b'{"msg":"order_status","cl_ord_id":"o1","symbol":"TB6M"}')
    assert list(got) == ["s2"]
    assert (got["s2"]["exec_type"], got["s2"]["ord_status"]) == ("order_status", "new")


def test_an_order_status_without_symbol_is_refused_once_by_the_answering_shard():
    got = answers(shard_cycles(), b'{"msg":"order_status","cl_ord_id":"o1"}')
    assert list(got) == ["s1"] and got["s1"]["ord_rej_reason"] == "INVALID_FIELD"


def test_an_order_status_for_a_symbol_no_shard_serves_is_wrong_shard_once():
    got = answers(shard_cycles(), b'{"msg":"order_status","cl_ord_id":"o1","symbol":"NOPE"}')
    assert list(got) == ["s1"] and got["s1"]["ord_rej_reason"] == "WRONG_SHARD"


def test_a_non_query_is_refused_once_by_the_answering_shard():
    got = answers(shard_cycles(), ORDER)
    assert list(got) == ["s1"] and got["s1"]["ord_rej_reason"] == "NOT_A_QUERY"

"""The gateway cycle's side of the broker services (sans-I/O): an order status request
and a mass cancel on a broker's order-entry topic answered on its exec topic, every report
of a broker copied on its drop-copy topic (query answers excepted), and each instrument's
reference data retained on connect and after a trading-state change."""
from __future__ import annotations

import dataclasses
import json
import time

from feeds import topics
from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle
from matching.engine import Engine
from matching.fees import parse_fees
from matching.instruments import Registry
from matching.ledger import Ledger
from testkit.mqtt import two_broker_engine

COPIED = GatewayConfig(drop_copy="*")        # the drop copy is a service brokers ask for


def order(cl: str, side: str = "buy", account: int = 1, symbol: str = "TB3M") -> bytes:
    return json.dumps({"msg": "new_order", "cl_ord_id": cl, "account": account,
                       "symbol": symbol, "side": side, "qty": "1",
                       "price": "99.5" if side == "buy" else "99.9"}).encode()


def on(pubs, topic) -> list[dict]:
    return [json.loads(p.payload) for p in pubs if p.topic == topic]


def test_order_status_request_is_answered_on_the_exec_topic_and_journals_nothing():
    cycle = GatewayCycle(two_broker_engine(), COPIED)
    cycle.process([(topics.orders("alpha"), order("b1"))], 1)
    seq = cycle.engine.seq
    pubs = cycle.process([(topics.orders("alpha"), b'{"msg":"order_status","cl_ord_id":"b1",'
                           b'"ord_status_req_id":"q1"}')], 2)
    [answer] = on(pubs, topics.exec_reports("alpha"))
    assert (answer["exec_type"], answer["ord_status"], answer["leaves_qty"],
            answer["ord_status_req_id"], answer["seq"]) == ("order_status", "new", "1.0000",
                                                           "q1", seq)
    assert cycle.engine.seq == seq
    assert on(pubs, topics.dropcopy("alpha")) == []        # a query answer: not copied


def test_mass_cancel_is_reported_then_each_cancel_and_all_go_to_the_drop_copy():
    cycle = GatewayCycle(two_broker_engine(), COPIED)
    cycle.process([(topics.orders("alpha"), order("b1")),
                   (topics.orders("alpha"), order("b2", symbol="TB6M")),
                   (topics.orders("beta"), order("s1", "sell", 2))], 1)
    pubs = cycle.process([(topics.orders("alpha"),
                           b'{"msg":"mass_cancel","cl_ord_id":"m1","symbol":"TB3M"}')], 2)
    reports = on(pubs, topics.exec_reports("alpha"))
    assert [r["msg"] for r in reports] == ["mass_cancel_report", "exec_report"]
    assert (reports[0]["mass_cancel_response"], reports[0]["total_affected_orders"]) == (
        "by_symbol", 1)
    assert (reports[1]["cl_ord_id"], reports[1]["text"]) == ("b1", "MASS_CANCEL")
    assert on(pubs, topics.dropcopy("alpha")) == reports
    assert on(pubs, topics.dropcopy("beta")) == []


def test_a_refused_mass_cancel_is_answered_and_journals_nothing():
    cycle = GatewayCycle(two_broker_engine(), COPIED)
    seq = cycle.engine.seq
    pubs = cycle.process([(topics.orders("alpha"),
                           b'{"msg":"mass_cancel","cl_ord_id":"m1","account":2}')], 1)
    [report] = on(pubs, topics.exec_reports("alpha"))
    assert (report["mass_cancel_response"], report["mass_cancel_reject_reason"]) == (
        "rejected", "UNKNOWN_ACCOUNT")
    assert cycle.engine.seq == seq


def test_every_report_of_a_broker_is_copied_on_its_drop_copy_topic():
    cycle = GatewayCycle(two_broker_engine(), COPIED)
    pubs = cycle.process([(topics.orders("alpha"), order("b1")),
                          (topics.orders("beta"), order("s1", "sell", 2)),
                          (topics.orders("beta"), b'{"msg":"new_order"}')], 1)
    for broker in ("alpha", "beta"):
        mine = on(pubs, topics.exec_reports(broker))
        assert mine and on(pubs, topics.dropcopy(broker)) == mine


def test_reference_data_is_retained_on_connect_and_follows_the_trading_state():
    cycle = GatewayCycle(two_broker_engine(), COPIED)
    [ref] = [p for p in cycle.retained(1) if p.topic == topics.md("TB3M", "reference")]
    doc = json.loads(ref.payload)
    assert ref.retain and doc["face_value"] == "1000" and doc["lot_size"] == "0.0001"
    assert doc["state"] == cycle.engine.trading_status("TB3M").state
    assert "maturity" in doc and "fees" not in doc
    pubs = cycle.process([(topics.ADMIN, b'{"action":"halt","symbol":"TB3M",'
                           b'"request_id":"h"}')], 2)
    [after] = on(pubs, topics.md("TB3M", "reference"))
    assert after["state"] == "halted" and after["seq"] == cycle.engine.seq


def test_reference_data_carries_the_fee_schedule_as_decimal_strings():
    fees = parse_fees({"account": 9000, "maker_bps": "0.5", "taker_bps": "1.25",
                       "minimum": "0.01", "retail_taker_bps": "2.5"}, 6)
    reg = Registry([dataclasses.replace(i, fees=fees) if i.symbol == "TB3M" else i
                    for i in Registry.load_default()])
    cycle = GatewayCycle(Engine(reg, Ledger(), clock=time.time_ns), COPIED)
    refs = {p.topic: json.loads(p.payload) for p in cycle.retained(1)}
    # The retail tier's maker rate and minimum default to the institutional figures.
    assert refs[topics.md("TB3M", "reference")]["fees"] == {
        "account": 9000, "maker_bps": "0.5", "taker_bps": "1.25", "minimum": "0.01",
        "retail_maker_bps": "0.5", "retail_taker_bps": "2.5", "retail_minimum": "0.01"}
    assert "fees" not in refs[topics.md("TB6M", "reference")]    # it charges none


def test_reference_data_carries_the_call_auction_terms():
    cycle = GatewayCycle(two_broker_engine(), COPIED)
    [ref] = [p for p in cycle.retained(1) if p.topic == topics.md("BD5Y", "reference")]
    assert json.loads(ref.payload)["call_auction"] == {
        "dynamic_band_pct": "2", "static_band_pct": "5", "extended_band_pct": "10",
        "pressure_limit_pct": "1", "min_call_seconds": "120", "random_end_seconds": "0",
        "closing_vwap_seconds": "300"}


def test_day_statistics_follow_the_fills_and_are_retained_on_connect():
    cycle = GatewayCycle(two_broker_engine(), COPIED)
    sell = json.dumps({"msg": "new_order", "cl_ord_id": "s1", "account": 2,
                       "symbol": "TB3M", "side": "sell", "qty": "3",
                       "price": "99.5"}).encode()
    buy2 = json.dumps({"msg": "new_order", "cl_ord_id": "b2", "account": 1,
                       "symbol": "TB3M", "side": "buy", "qty": "2",
                       "price": "99.5"}).encode()
    pubs = cycle.process([(topics.orders("beta"), sell), (topics.orders("alpha"), order("b1")),
                          (topics.orders("alpha"), buy2)], 1)
    [stats] = on(pubs, topics.md("TB3M", "stats"))
    assert (stats["trade_count"], stats["volume"], stats["open"], stats["last"],
            stats["vwap"]) == (2, "3.0000", "99.500", "99.500", "99.500")
    [kept] = [p for p in cycle.retained(2) if p.topic == topics.md("TB3M", "stats")]
    assert kept.retain and json.loads(kept.payload)["trade_count"] == 2


def test_no_drop_copy_is_published_for_a_broker_that_did_not_ask_for_one():
    cycle = GatewayCycle(two_broker_engine(), GatewayConfig(drop_copy="alpha"))
    pubs = cycle.process([(topics.orders("alpha"), order("b1")),
                          (topics.orders("beta"), order("s1", "sell", 2))], 1)
    assert on(pubs, topics.dropcopy("alpha")) == on(pubs, topics.exec_reports("alpha"))
    assert on(pubs, topics.exec_reports("beta")) and on(pubs, topics.dropcopy("beta")) == []

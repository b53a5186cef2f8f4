"""Issuance auctions through the gateway, without a broker: the issuer's inputs only on
the admin topic, sealed bids on a broker's own order topic answered on its own exec topic
only, the results retained on ``md/{symbol}/auction_result`` after the close."""
from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import msgspec
import pytest

from feeds import topics
from feeds.cycle import GatewayCycle
from feeds.issuance_wire import auction_input_of
from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger

ISSUER = 9000
ID = "TB3M-reopen-1"


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


class Clock:
    def __init__(self, text: str):
        self.t = ns(text)

    def __call__(self) -> int:
        return self.t


def new_cycle():
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta"), (ISSUER, "treasury")):
        led.open_account(acct, broker, "institutional")
        led.deposit(acct, CASH, 10**13)
        led.whitelist(acct, "TB3M")
    insts = [dataclasses.replace(i, issuer_account=ISSUER) if i.maturity else i
             for i in Registry.load_default()]
    clock = Clock("2026-12-04T09:00:00")
    engine = Engine(insts, led, clock=clock)
    return GatewayCycle(engine), engine, clock


def docs(pubs, topic):
    return [json.loads(p.payload) for p in pubs if p.topic == topic]


ANNOUNCE = {"msg": "auction", "action": "announce", "auction_id": ID, "symbol": "TB3M",
            "amount": "100000", "close_time": ns("2026-12-04T12:00:00"),
            "issue_date": "2026-12-07", "competitive_accounts": [1], "nc_max": "1000"}


def bid(broker, account, bid_id, amount, rate=""):
    return topics.orders(broker), json.dumps({
        "msg": "auction", "action": "bid", "auction_id": ID, "account": account,
        "bid_id": bid_id, "amount": amount, "rate": rate}).encode()


def test_only_the_admin_topic_announces_an_auction():
    cycle, engine, _ = new_cycle()
    pubs = cycle.process([(topics.orders("alpha"), json.dumps(ANNOUNCE).encode())], 1)
    assert not engine.issuance.auctions
    [refused] = docs(pubs, topics.exec_reports("alpha"))
    assert refused["exec_type"] == "rejected"
    pubs = cycle.process([(topics.ADMIN, json.dumps(ANNOUNCE).encode())], 2)
    [reply] = docs(pubs, topics.ADMIN_REPLIES)
    assert reply["accepted"] and reply["action"] == "auction_announce"
    assert ID in engine.issuance.auctions


def test_bids_are_sealed_each_bidder_hears_only_of_its_own():
    cycle, _, _ = new_cycle()
    cycle.process([(topics.ADMIN, json.dumps(ANNOUNCE).encode())], 1)
    pubs = cycle.process([bid("alpha", 1, "a1", "60000", "3.95"),
                          bid("beta", 2, "b1", "1000")], 2)
    [alpha] = docs(pubs, topics.exec_reports("alpha"))
    [beta] = docs(pubs, topics.exec_reports("beta"))
    assert (alpha["msg"], alpha["status"], alpha["bid_id"]) == ("auction_bid", "accepted", "a1")
    assert (beta["status"], beta["account"]) == ("accepted", 2)
    assert not [p for p in pubs if p.topic.startswith(f"{topics.ROOT}/md/")]
    # Beta is not a primary dealer: its competitive bid is refused, to beta alone.
    pubs = cycle.process([bid("beta", 2, "b2", "1000", "3.90")], 3)
    [no] = docs(pubs, topics.exec_reports("beta"))
    assert (no["status"], no["reason"]) == ("rejected", "NOT_COMPETITIVE_BIDDER")
    assert not docs(pubs, topics.exec_reports("alpha"))


def test_the_close_awards_on_exec_topics_and_retains_the_result_then_the_issue_mints():
    cycle, engine, clock = new_cycle()
    cycle.process([(topics.ADMIN, json.dumps(ANNOUNCE).encode())], 1)
    cycle.process([bid("alpha", 1, "a1", "120000", "3.95"), bid("beta", 2, "b1", "1000")], 2)
    supply = engine.ledger.supply("TB3M")
    clock.t = ns("2026-12-04T12:00:00")
    close = {"msg": "auction", "action": "close", "auction_id": ID}
    pubs = cycle.process([(topics.ADMIN, json.dumps(close).encode())], 3)
    [award_a] = docs(pubs, topics.exec_reports("alpha"))
    [award_b] = docs(pubs, topics.exec_reports("beta"))
    assert award_a["msg"] == award_b["msg"] == "auction_award"
    assert (award_a["amount"], award_b["amount"]) == ("35000", "1000")   # 35 % award limit
    result_topic = topics.md("TB3M", "auction_result")
    [result] = docs(pubs, result_topic)
    assert result["accepted_competitive"] == "35000" and result["status"] == "closed"
    assert [p.retain for p in pubs if p.topic == result_topic] == [True]
    assert docs(cycle.retained(4), result_topic) == [result]
    clock.t = ns("2026-12-07T09:00:00")
    issue = {"msg": "auction", "action": "issue", "auction_id": ID}
    pubs = cycle.process([(topics.ADMIN, json.dumps(issue).encode())], 5)
    assert docs(pubs, result_topic)[0]["status"] == "issued"
    lots = engine.instruments["TB3M"].qty_to_lots("36")       # 36,000 face of 1,000 a token
    assert engine.ledger.supply("TB3M") == supply + lots


def test_the_issuer_cli_operands_make_its_inputs():
    msg = auction_input_of(["announce", ID, "TB3M", "100000", "2026-12-04T12:00:00Z",
                            "2026-12-07", "method=multiple", "competitive=1,2",
                            "nc_max=1000"])
    assert (msg.method, msg.competitive_accounts, msg.nc_max) == ("multiple", [1, 2], "1000")
    assert msg.close_time == ns("2026-12-04T12:00:00")
    assert auction_input_of(["close", ID, "reject_all"]).reject_all
    for bad in (["bid", ID], ["announce", ID, "TB3M"], ["announce", ID, "TB3M", "1",
                                                         "2026-12-04T12:00:00Z", "2026-12-07",
                                                         "colour=red"]):
        try:
            auction_input_of(bad)
        except ValueError as exc:
            assert "usage" in str(exc) or "KEY=VALUE" in str(exc)
        else:
            raise AssertionError(f"{bad} was taken")


NEW_BILL = {"kind": "tbill", "isin": "XS00TB4W0006", "face_value": "1000",
            "token_decimals": 4, "tick_size": "0.001", "maturity": "2027-01-05",
            "day_count": "ACT/365F", "yield_convention": "money_market",
            "min_order_qty": "0.01", "reference_price": "99.700", "band_pct": "2",
            "eligibility": ["retail", "institutional"], "issuer_account": ISSUER}


def test_a_new_issue_listed_at_the_close_gets_its_market_data_books():
    """A bill defined in its announcement: no md before the close; the close lists it and
    the gateway publishes its retained depth snapshot and BBO, then its trades' depth."""
    cycle, engine, clock = new_cycle()
    assert "TB4W" not in engine.instruments
    announce = {"msg": "auction", "action": "announce", "auction_id": "TB4W-1",
                "symbol": "TB4W", "amount": "10000", "close_time": ns("2026-12-04T12:00:00"),
                "issue_date": "2026-12-07", "instrument": NEW_BILL}
    pubs = cycle.process([(topics.ADMIN, json.dumps(announce).encode())], 1)
    assert docs(pubs, topics.ADMIN_REPLIES)[0]["accepted"]
    white = {"action": "whitelist", "account": 1, "symbol": "TB4W", "request_id": "w1"}
    pubs = cycle.process([(topics.ADMIN, json.dumps(white).encode())], 2)
    assert docs(pubs, topics.ADMIN_REPLIES)[0]["accepted"], docs(pubs, topics.ADMIN_REPLIES)
    pubs += cycle.process([(topics.orders("alpha"), json.dumps({
        "msg": "auction", "action": "bid", "auction_id": "TB4W-1", "account": 1,
        "bid_id": "a1", "amount": "3000", "rate": "3.90"}).encode())], 3)
    assert not any(p.topic.startswith(f"{topics.ROOT}/md/TB4W/") for p in pubs)
    clock.t = ns("2026-12-04T12:00:00")
    close = {"msg": "auction", "action": "close", "auction_id": "TB4W-1"}
    pubs = cycle.process([(topics.ADMIN, json.dumps(close).encode())], 4)
    assert "TB4W" in engine.books
    [snap] = docs(pubs, topics.md("TB4W", "snapshot"))
    assert snap["symbol"] == "TB4W" and snap["bids"] == [] and snap["asks"] == []
    assert docs(pubs, topics.md("TB4W", "bbo"))
    [result] = docs(pubs, topics.md("TB4W", "auction_result"))
    assert result["accepted_competitive"] == "3000"
    clock.t = ns("2026-12-07T09:00:00")
    issue = {"msg": "auction", "action": "issue", "auction_id": "TB4W-1"}
    cycle.process([(topics.ADMIN, json.dumps(issue).encode())], 5)
    sell = {"msg": "new_order", "cl_ord_id": "s1", "account": 1, "symbol": "TB4W",
            "side": "sell", "qty": "1", "price": "99.700", "time_in_force": "gtc"}
    pubs = cycle.process([(topics.orders("alpha"), json.dumps(sell).encode())], 6)
    [depth] = docs(pubs, topics.md("TB4W", "depth"))
    assert depth["levels"] == [["sell", "99.700", "1.0000", 1]]
    assert any(p.topic == topics.md("TB4W", "snapshot") for p in cycle.retained(clock.t))


def test_the_issuer_cli_defines_a_new_issue_from_a_terms_file(tmp_path):
    """``terms=FILE``: the new issue's [[instrument]] table, as instruments.toml has it."""
    path = tmp_path / "tb4w.toml"
    path.write_text('[[instrument]]\nsymbol = "TB4W"\nkind = "tbill"\nisin = "XS00TB4W0006"\n'
                    'face_value = "1000"\ntoken_decimals = 4\ntick_size = "0.001"\n'
                    'maturity = 2027-01-05\nreference_price = "99.700"\nband_pct = "2"\n'
                    'min_order_qty = "0.01"\neligibility = ["retail", "institutional"]\n'
                    f'issuer_account = {ISSUER}\n')
    msg = auction_input_of(["announce", "TB4W-1", "TB4W", "10000", "2026-12-04T12:00:00Z",
                            "2026-12-07", f"terms={path}"])
    assert msg.instrument is not None and msg.instrument["maturity"] == "2027-01-05"
    assert "symbol" not in msg.instrument
    cycle, engine, _ = new_cycle()
    pubs = cycle.process([(topics.ADMIN, msgspec.json.encode(msg))], 1)
    assert docs(pubs, topics.ADMIN_REPLIES)[0]["accepted"]
    assert engine.issuance.new.pending("TB4W")
    with pytest.raises(ValueError, match="its symbol is not TB5W"):
        auction_input_of(["announce", "TB5W-1", "TB5W", "10000", "2026-12-04T12:00:00Z",
                          "2026-12-07", f"terms={path}"])

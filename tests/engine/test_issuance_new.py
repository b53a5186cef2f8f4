"""New issues defined in the announcement (matching.issuance_new): the engine lists the
instrument at the close from the journaled terms (no --instruments edit), in replay and
recovery too; a new note's coupon is set from the high yield (31 CFR 356.20(b)), as the
2011-02-09 10-year note's 3-5/8 % was from its 3.665 % high yield."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import Journal, read_journal
from matching.ledger import CASH, Ledger
from matching.messages import AccountInput, AuctionInput, NewOrderSingle

ISSUER = 9000
DEALERS = range(1, 9)
RETAIL = range(101, 130)


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


class Clock:
    def __init__(self, now: int):
        self.now = now

    def __call__(self) -> int:
        return self.now


#: The 10-year note of 2011-02-09 as a new issue: no coupon_rate, the auction sets it.
NOTE_TERMS = {"kind": "bond", "isin": "US912828PX26", "name": "Treasury note 15-Feb-2021",
              "face_value": "100", "token_decimals": 0, "tick_size": "0.01",
              "maturity": "2021-02-15", "coupon_frequency": 2, "day_count": "ACT/ACT ICMA",
              "yield_convention": "street", "reference_price": "99.66", "band_pct": "2",
              "eligibility": ["retail", "institutional"], "issuer_account": ISSUER}
NOTE = AuctionInput(
    "announce", "912828PX2-2011-02-09", symbol="T10Y21", amount="24000000000",
    close_time=ns("2011-02-09T18:00:00"), issue_date="2011-02-15", method="uniform",
    basis="yield", competitive_accounts=list(DEALERS), nc_max="5000000",
    instrument=NOTE_TERMS)
#: The bid book of tests/engine/test_issuance.py, consistent with the published result.
NOTE_BIDS = [
    (1, "3.600", "2000000000"), (2, "3.630", "3500000000"), (3, "3.640", "4000000000"),
    (4, "3.650", "4475010600"), (5, "3.660", "4000000000"),
    (6, "3.665", "4000000000"), (7, "3.665", "3000000000"), (8, "3.665", "2000000000"),
    (1, "3.665", "1000000000"),
    (2, "3.670", "10000000000"), (3, "3.680", "10000000000"), (5, "3.690", "10000000000"),
    (7, "3.700", "10000000000"), (8, "3.720", "9324989400"),
]
NC_BIDS = [(acct, "5000000") for acct in RETAIL[:28]] + [(RETAIL[28], "3999500")]

#: A 4-week bill defined in its announcement.
BILL_TERMS = {"kind": "tbill", "isin": "XS00TB4W0006", "face_value": "1000",
              "token_decimals": 4, "tick_size": "0.001", "maturity": "2027-01-05",
              "day_count": "ACT/365F", "yield_convention": "money_market",
              "min_order_qty": "0.01", "reference_price": "99.700", "band_pct": "2",
              "eligibility": ["retail", "institutional"], "issuer_account": ISSUER}
BILL = AuctionInput("announce", "TB4W-1", symbol="TB4W", amount="100000",
                    close_time=ns("2026-12-07T12:00:00"), issue_date="2026-12-08",
                    competitive_accounts=[1, 2], nc_max="5000", max_award_pct="60",
                    instrument=BILL_TERMS)


def note_engine(journal=None):
    led = Ledger()
    led.open_account(ISSUER, "treasury", "institutional")
    for acct in DEALERS:
        led.open_account(acct, "dealer", "institutional")
    for acct in RETAIL:
        led.open_account(acct, "retail", "retail")
    for acct in [*DEALERS, *RETAIL]:
        led.deposit(acct, CASH, 10**17)
        led.whitelist(acct, "T10Y21")
    clock = Clock(ns("2011-02-09T15:00:00"))
    return Engine([], led, clock=clock, journal=journal), clock


def bill_engine(journal=None):
    led = Ledger()
    led.open_account(ISSUER, "treasury", "institutional")
    for acct, broker in ((1, "alpha"), (2, "beta"), (3, "retail")):
        led.open_account(acct, broker, "institutional" if acct < 3 else "retail")
        led.deposit(acct, CASH, 10**12)
    clock = Clock(ns("2026-12-07T09:00:00"))
    return Engine(list(Registry.load_default()), led, clock=clock, journal=journal), clock


def bid(engine, auction_id, broker, account, bid_id, amount, rate=""):
    return engine.auction_input(AuctionInput("bid", auction_id, account=account,
                                             bid_id=bid_id, amount=amount, rate=rate),
                                broker=broker)


def run_bill(engine, clock):
    assert engine.auction_input(BILL).sequenced
    for acct in (1, 2, 3):        # KYC for the new token, from its announcement on
        out = engine.account_input(AccountInput("whitelist", acct, symbol="TB4W"))
        assert out.sequenced, out.refused
    for args in (("alpha", 1, "a1", "60000", "3.9000"), ("beta", 2, "b1", "60000", "3.9500"),
                 ("retail", 3, "n1", "5000")):
        out = bid(engine, BILL.auction_id, *args)
        assert out.sequenced, out.refused
    clock.now = BILL.close_time
    assert engine.auction_input(AuctionInput("close", BILL.auction_id)).sequenced
    clock.now = ns("2026-12-08T09:00:00")
    assert engine.auction_input(AuctionInput("issue", BILL.auction_id)).sequenced


def test_a_new_bill_defined_in_its_announcement_is_listed_at_the_close_and_trades():
    engine, clock = bill_engine()
    assert engine.auction_input(BILL).sequenced
    assert "TB4W" not in engine.instruments and "TB4W" not in engine.books
    engine, clock = bill_engine()
    run_bill(engine, clock)
    inst = engine.instruments["TB4W"]
    assert inst.issue_date == date(2026, 12, 8) and inst.maturity == date(2027, 1, 5)
    assert "TB4W" in engine.symbols and engine.books["TB4W"] is not None
    # NC 5,000 in full, 60,000 at 3.90 %, and 35,000 left for 60,000 at 3.95 %: 58.34 %
    # (rounded up), 35,004 face.
    assert engine.ledger.supply("TB4W") == inst.qty_to_lots("100.004")
    result = engine.auction_result("TB4W")
    assert result.high_rate == "3.9500" and result.status == "issued"
    assert result.allotted_at_high == "58.34"
    assert result.interest_rate is None                      # a bill has no coupon
    cash = engine.ledger.total(CASH)
    sell = engine.submit("alpha", NewOrderSingle("s1", 1, "TB4W", "sell", "10",
                                                 price="99.700"))
    assert sell.sequenced and not sell.refused
    engine.submit("retail", NewOrderSingle("b1", 3, "TB4W", "buy", "2", price="99.700",
                                           time_in_force="ioc"))
    assert engine.ledger.balance(3, "TB4W") == inst.qty_to_lots(7)   # NC 5 + 2 bought
    assert engine.ledger.supply("TB4W") == inst.qty_to_lots("100.004")
    assert engine.ledger.total(CASH) == cash


def test_a_new_issues_bad_terms_and_taken_symbols_are_refused_with_a_reason():
    engine, _ = bill_engine()
    cases = [
        ({**BILL_TERMS, "maturity": "not a date"}, "TB4W", "INVALID_ISSUE_TERMS"),
        ({k: v for k, v in BILL_TERMS.items() if k != "maturity"}, "TB4W",
         "INVALID_ISSUE_TERMS"),
        ({**BILL_TERMS, "fees": "x"}, "TB4W", "INVALID_ISSUE_TERMS"),
        ({**BILL_TERMS, "issue_date": "2026-12-09"}, "TB4W", "INVALID_ISSUE_TERMS"),
        ({**BILL_TERMS, "kind": "commodity"}, "TB4W", "INVALID_ISSUE_TERMS"),
        (BILL_TERMS, "TB3M", "SYMBOL_LISTED"),                       # listed: a reopening
        ({**BILL_TERMS, "isin": engine.instruments["TB3M"].isin}, "TB4W", "SYMBOL_LISTED"),
    ]
    for terms, symbol, code in cases:
        before = engine.state_hash()
        out = engine.auction_input(AuctionInput(
            "announce", "x", symbol=symbol, amount="100000", close_time=BILL.close_time,
            issue_date=BILL.issue_date, instrument=terms))
        assert not out.sequenced and out.refused.startswith(code + ": "), (terms, out.refused)
        assert engine.state_hash() == before and not engine.issuance.auctions
    assert engine.auction_input(BILL).sequenced
    again = engine.auction_input(AuctionInput(
        "announce", "TB4W-2", symbol="TB4W", amount="100000", close_time=BILL.close_time,
        issue_date=BILL.issue_date, instrument=BILL_TERMS))
    assert again.refused.startswith("SYMBOL_LISTED: ")                # announced already
    # Nothing can be deposited or ordered in it before its close lists it.
    out = engine.account_input(AccountInput("deposit", 1, asset="TB4W", amount="1"))
    assert not out.sequenced
    order = engine.submit("alpha", NewOrderSingle("o1", 1, "TB4W", "buy", "1",
                                                  price="99.700"))
    assert order.reports[0][1].ord_rej_reason == "UNKNOWN_SYMBOL"


def test_a_new_notes_coupon_is_set_from_the_high_yield_rounded_down_to_an_eighth():
    """31 CFR 356.20(b): the 2011-02-09 10-year note, announced without a coupon: high
    yield 3.665 % sets 3-5/8 %, and at that coupon the high yield's price is the
    published 99.667623; every award pays it."""
    engine, clock = note_engine()
    assert engine.auction_input(NOTE).sequenced
    for i, (acct, rate, amount) in enumerate(NOTE_BIDS):
        out = bid(engine, NOTE.auction_id, "dealer", acct, f"c{i}", amount, rate)
        assert out.sequenced, out.refused
    for acct, amount in NC_BIDS:
        assert bid(engine, NOTE.auction_id, "retail", acct, f"n{acct}", amount).sequenced
    clock.now = NOTE.close_time
    out = engine.auction_input(AuctionInput("close", NOTE.auction_id))
    assert out.sequenced, out.refused
    result = engine.auction_result("T10Y21")
    assert result.interest_rate == "3.625" and result.high_rate == "3.6650"
    assert result.high_price == "99.667623" and result.allotted_at_high == "58.81"
    assert result.bid_to_cover == "3.23"
    assert str(engine.instruments["T10Y21"].coupon_rate) == "0.03625"
    clock.now = ns("2011-02-15T12:00:00")
    assert engine.auction_input(AuctionInput("issue", NOTE.auction_id)).sequenced
    assert engine.ledger.supply("T10Y21") == 240_000_101
    assert not engine.ledger.reservations


def test_a_coupon_set_by_the_auction_needs_yield_bids():
    engine, _ = note_engine()
    out = engine.auction_input(AuctionInput(
        "announce", "p", symbol="T10Y21", amount="1000", close_time=NOTE.close_time,
        issue_date=NOTE.issue_date, basis="price", instrument=NOTE_TERMS))
    assert out.refused.startswith("INVALID_ISSUE_TERMS: ")


@pytest.mark.parametrize("snapshot_at", ["founded", "announced", "closed"])
def test_replay_and_recovery_list_the_new_issue_again_with_equal_state(tmp_path,
                                                                       snapshot_at):
    journal = Journal(tmp_path / "journal.log")
    live, clock = bill_engine(journal)
    live.write_snapshot(tmp_path / "founded")
    assert live.auction_input(BILL).sequenced
    live.write_snapshot(tmp_path / "announced")
    for acct in (1, 2, 3):
        live.account_input(AccountInput("whitelist", acct, symbol="TB4W"))
    bid(live, BILL.auction_id, "alpha", 1, "a1", "60000", "3.9000")
    bid(live, BILL.auction_id, "beta", 2, "b1", "60000", "3.9500")
    clock.now = BILL.close_time
    assert live.auction_input(AuctionInput("close", BILL.auction_id)).sequenced
    live.submit("beta", NewOrderSingle("r1", 2, "TB4W", "buy", "3", price="99.600"))
    live.write_snapshot(tmp_path / "closed")
    clock.now = ns("2026-12-08T09:00:00")
    assert live.auction_input(AuctionInput("issue", BILL.auction_id)).sequenced
    live.submit("alpha", NewOrderSingle("s1", 1, "TB4W", "sell", "5", price="99.700"))
    live.commit()
    journal.close()
    again, _ = bill_engine()
    again.replay(read_journal(tmp_path / "journal.log"))
    assert again.state_hash() == live.state_hash()
    rec = Engine.recover(list(Registry.load_default()), snapshot_dir=tmp_path / snapshot_at,
                         journal_path=tmp_path / "journal.log", clock=clock)
    assert rec.state_hash() == live.state_hash()
    assert rec.instruments["TB4W"] == live.instruments["TB4W"]
    assert rec.books["TB4W"].depth(1, 10) == live.books["TB4W"].depth(1, 10)
    assert rec.books["TB4W"].depth(2, 10) == live.books["TB4W"].depth(2, 10)

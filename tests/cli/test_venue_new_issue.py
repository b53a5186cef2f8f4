"""A venue's restart check (feeds.venue) and instruments listed by an issuance
announcement: the journal defines them, so a start need not, and may not define them."""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from feeds import venue
from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger
from matching.messages import AccountInput, AuctionInput

ISSUER = 9000
TERMS = {"kind": "tbill", "isin": "XS00TB4W0006", "face_value": "1000", "token_decimals": 4,
         "tick_size": "0.001", "maturity": "2027-01-05", "day_count": "ACT/365F",
         "yield_convention": "money_market", "min_order_qty": "0.01",
         "reference_price": "99.700", "band_pct": "2",
         "eligibility": ["retail", "institutional"], "issuer_account": ISSUER}


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


class Clock:
    now = ns("2026-12-07T09:00:00")

    def __call__(self) -> int:
        return self.now


def venue_with_a_new_issue(data):
    led = Ledger()
    led.open_account(ISSUER, "treasury", "institutional")
    led.open_account(1, "alpha", "institutional")
    led.deposit(1, CASH, 10**12)
    clock = Clock()
    engine = Engine(list(Registry.load_default()), led, clock=clock)
    announce = AuctionInput("announce", "TB4W-1", symbol="TB4W", amount="10000",
                            close_time=ns("2026-12-07T12:00:00"), issue_date="2026-12-08",
                            instrument=TERMS)
    assert engine.auction_input(announce).sequenced
    assert engine.account_input(AccountInput("whitelist", 1, symbol="TB4W")).sequenced
    assert engine.auction_input(AuctionInput("bid", "TB4W-1", account=1, bid_id="b",
                                             amount="3000", rate="3.9"),
                                broker="alpha").sequenced
    clock.now = announce.close_time
    assert engine.auction_input(AuctionInput("close", "TB4W-1")).sequenced
    assert "TB4W" in engine.instruments
    engine.write_snapshot(data / "snapshots")
    return engine


def test_a_restart_need_not_define_an_instrument_listed_by_its_announcement(tmp_path):
    engine = venue_with_a_new_issue(tmp_path)
    registry = Registry.load_default()
    venue.record(tmp_path, registry, engine.ledger, accounts_source="",
                 instruments_file=None, previous=None)
    plan = venue.check(tmp_path, registry, None)
    assert plan.added_instruments == [] and "TB4W" not in plan.recorded.instruments
    # A data directory checked against its snapshot alone (no venue.json) agrees too.
    (tmp_path / venue.VENUE_FILE).unlink()
    plan = venue.check(tmp_path, registry, None)
    assert plan.recorded.legacy and "TB4W" not in plan.recorded.instruments


def test_a_start_that_defines_a_listed_new_issue_again_is_refused(tmp_path):
    venue_with_a_new_issue(tmp_path)
    tb3m = Registry.load_default()["TB3M"]
    again = Registry([*Registry.load_default(),
                      dataclasses.replace(tb3m, symbol="TB4W", isin="XS00TB4W0006")])
    with pytest.raises(venue.VenueMismatch, match="listed TB4W from an issuance announcement"):
        venue.check(tmp_path, again, None)

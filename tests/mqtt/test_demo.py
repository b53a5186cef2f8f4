"""Simulated brokers end to end, the market-data view, and its terminal rendering."""
import argparse
import asyncio
import io
from datetime import date
from decimal import Decimal

import pytest
from rich.console import Console

from feeds.demo import demo, demo_account_inputs, demo_registry
from feeds.demo_issuance import DEMO_AUCTION, DEMO_BILL, demo_bids
from feeds.watch import BookView, MarketView, render
from matching.instruments import Registry


@pytest.mark.network
def test_demo_trades_and_its_checks_hold(capsys):
    args = argparse.Namespace(seconds=3.0, rate=120.0, seed=3, depth=3, broker=None)
    assert asyncio.run(demo(args)) == 0          # ledger conserved, view == engine books
    out = capsys.readouterr().out
    flat = " ".join(out.split())                   # rich wraps long lines at 80 columns
    assert "market-data books equal the engine's True" in flat
    assert "ledger conserved True" in flat
    # The primary market first: the new bill auctioned, awarded, issued, then traded.
    primary = flat.split("primary market: ", 1)[1].split(" operator: ", 1)[0]
    assert primary.startswith(f"{DEMO_BILL} auction {DEMO_AUCTION} issued: offering 500000, "
                              "high yield 4.0500% (price ")
    assert "allotted at high 50.00%, bid-to-cover 1.22" in primary
    assert f"{len(demo_bids())} bids, 500.0000 tokens minted" in primary
    # The minted tokens traded in the secondary book (the summary's row of the new bill).
    row = flat.split(f"│ {DEMO_BILL} │ ", 1)[1].split()
    assert int(row[0]) > 0 and Decimal(row[2]) > 0
    # The operator halted one bill mid-run and resumed it; both commands were journaled.
    assert "; accepted halt TB6M (issuer notice (demo)) at sequence" in flat
    assert "; accepted resume TB6M at sequence" in flat
    # The venue opened with a call: pre_open first, then open uncrossed at one price each.
    # The accounts were opened by operator inputs first, then the issuance auction's
    # announce, its bidders' KYC, bids, close and issue: pre_open is the one after them.
    setup = len(demo_account_inputs(demo_registry(date.today())))
    auction = 1 + len({b.account for b in demo_bids()}) + len(demo_bids()) + 2
    assert "operator: accepted pre_open every instrument (opening auction (demo)) at " \
           f"sequence {setup + auction + 1};" in flat
    assert "; accepted open every instrument at sequence" in flat
    assert f"by {setup} operator inputs (open_account, whitelist, deposit)" in flat
    auctions = flat.split("opening auctions: ", 1)[1].split(" rejects by reason", 1)[0]
    assert auctions != "none uncrossed" and " at sequence " in auctions
    assert "accounted True" in flat
    # Every instrument of the programme charges the demo's fees into a fee account of its
    # own (a ledger account): the takings add up to the fees charged, and the cash total
    # (fee accounts included) is what it was.
    cash = flat.split(" fees: ", 1)[0].rsplit(" cash: ", 1)[1]
    before, after = cash.split(" after,", 1)[0].split(" USDC before and ")
    assert Decimal(before) == Decimal(after) > 0
    charged = Decimal(cash.split("; fees charged ", 1)[1].split()[0])
    registry = demo_registry(date.today())
    accounts = {i.fees.account for i in registry if i.fees is not None}
    assert f"the {len(accounts)} fee accounts of the venue (venue) included" in cash
    takings, conserved = flat.split(" fees: ", 1)[1].split("; cash conserved", 1)
    shown = {}
    for part in takings.split(", "):
        symbol, amount, usdc, _, account = part.split()
        assert usdc == "USDC" and account == f"{registry[symbol].fees.account})"
        shown[symbol] = Decimal(amount)
    assert {i.symbol for i in Registry.load_default()} <= set(shown)
    assert sum(shown.values()) == charged > 0
    assert conserved.startswith(" including fees True")
    # The compressed life: a coupon paid, a bill matured and redeemed, all conserved.
    assert "record BD3Y" in flat and "pay_coupon BD3Y" in flat
    assert "mature TB3M" in flat and "redeem TB3M" in flat
    coupons = flat.split("coupons paid: BD3Y ", 1)[1].split()
    assert Decimal(coupons[0]) > 0 and coupons[1] == "USDC"
    redeemed = flat.split("redeemed: TB3M ", 1)[1].split()
    assert Decimal(redeemed[0]) > 0 and redeemed[1:3] == ["tokens", "burned"]
    assert (f"cash conserved True, supply conserved True, {DEMO_BILL} minted 500.0000 by its "
            "issue, redeemed TB3M to supply 0") in flat


def test_demo_instruments_are_dated_relative_to_the_day_it_runs():
    """The demo never breaks on a wall-clock date: whatever the day, its bill matures and
    its bond pays a coupon within the compressed life, and every life is still running."""
    from datetime import date, timedelta

    from feeds.demo import BILL_DAYS, COUPON_DAYS, LIFE_DAYS, demo_registry
    from matching.lifecycle import coupon_schedule
    for today in (date(2026, 12, 3), date(2027, 2, 1), date(2031, 2, 28), date(2040, 7, 31)):
        reg = demo_registry(today)
        assert reg["TB3M"].maturity == today + timedelta(days=BILL_DAYS)
        first = next(c for c in coupon_schedule(reg["BD3Y"]) if c.payment_date > today)
        assert first.payment_date - today <= timedelta(days=COUPON_DAYS) < \
            timedelta(days=LIFE_DAYS)
        assert all(i.issue_date <= today < i.maturity for i in reg if i.maturity)


def _snap(seq, bids=(), asks=()):
    return {"symbol": "TB3M", "seq": seq, "bids": list(bids), "asks": list(asks)}


def test_view_applies_increments_in_sequence():
    b = BookView("TB3M")
    b.on_snapshot(_snap(4, bids=[("99.000", "1.0000", 1)]))
    b.on_depth({"symbol": "TB3M", "seq": 5, "levels": [["sell", "99.010", "2.0000", 2],
                                                        ["buy", "99.000", "0.0000", 0]]})
    assert b.ladder("sell") == [("99.010", "2.0000", 2)] and b.ladder("buy") == []
    assert b.in_sync and b.seq == 5


def test_gap_marks_the_book_out_of_sync_until_a_later_snapshot():
    b = BookView("TB3M")
    b.on_snapshot(_snap(1))
    b.on_depth({"symbol": "TB3M", "seq": 3, "levels": [["buy", "98.000", "1.0000", 1]]})
    assert not b.in_sync and b.gaps == 1 and b.ladder("buy") == []
    b.on_depth({"symbol": "TB3M", "seq": 4, "levels": [["buy", "97.000", "1.0000", 1]]})
    assert b.ladder("buy") == []                       # ignored while out of sync
    b.on_snapshot(_snap(4, bids=[("98.000", "1.0000", 1), ("97.000", "1.0000", 1)]))
    assert b.in_sync and b.resyncs == 1 and len(b.ladder("buy")) == 2


def test_terminal_view_renders_ladders_trades_and_health():
    view = MarketView()
    view.on_message("tokenbook/v1/md/BD5Y/snapshot",
                    b'{"symbol":"BD5Y","seq":7,"bids":[["100.490","3.0000",2]],'
                    b'"asks":[["100.510","1.5000",1]]}')
    view.on_message("tokenbook/v1/md/BD5Y/trades",
                    b'{"symbol":"BD5Y","trade_id":"T1","seq":9,"time":"2026-12-02T18:00:00.000000001Z",'
                    b'"price":"100.500",'
                    b'"qty":"0.2500","price_ticks":100500,"qty_lots":2500,"aggressor":"buy",'
                    b'"yield_pct":"4.1207"}')
    console = Console(file=io.StringIO(), width=120)
    console.print(render(view))
    text = console.file.getvalue()
    for expected in ("BD5Y  seq 7  in sync", "100.490", "100.510", "3.0000",
                     "100.500 x 0.2500 @ 4.1207%", "trades 1"):
        assert expected in text


def test_ladder_shows_the_yield_of_each_bill_and_bond_level():
    from matching.instruments import Registry
    view = MarketView()
    view.on_message("tokenbook/v1/md/TB3M/snapshot",
                    b'{"symbol":"TB3M","seq":1,"bids":[["99.000","1.0000",1]],"asks":[]}')
    console = Console(file=io.StringIO(), width=140)
    console.print(render(view, registry=Registry.load_default()))
    text = console.file.getvalue()
    assert "bid yield" in text and "99.000" in text
    # 100/99 - 1 over the bill's remaining days: a yield in percent with 4 decimals.
    line = next(row for row in text.splitlines() if "99.000" in row)
    assert "%" in line


def test_terminal_view_shows_a_halted_book_with_the_operators_reason():
    view = MarketView()
    view.on_message("tokenbook/v1/md/TB6M/snapshot",
                    b'{"symbol":"TB6M","seq":3,"bids":[],"asks":[]}')
    view.on_message("tokenbook/v1/md/TB6M/state",
                    b'{"symbol":"TB6M","state":"halted","reason":"issuer notice","seq":12}')
    console = Console(file=io.StringIO(), width=120)
    console.print(render(view))
    assert "TB6M  HALTED (issuer notice)  seq 3  in sync" in console.file.getvalue()
    view.on_message("tokenbook/v1/md/TB6M/state",
                    b'{"symbol":"TB6M","state":"continuous","reason":"","seq":13}')
    console = Console(file=io.StringIO(), width=120)
    console.print(render(view))
    assert "TB6M  seq 3  in sync" in console.file.getvalue()


def test_the_demo_instruments_charge_maker_taker_fees_with_a_minimum_and_a_retail_tier():
    from feeds.demo import DEMO_FEE_ACCOUNT
    registry = demo_registry(date(2026, 12, 3))
    programme = list(Registry.load_default())
    accounts = [registry[inst.symbol].fees.account for inst in programme]
    assert accounts == [DEMO_FEE_ACCOUNT + n for n in range(1, len(programme) + 1)]
    schedule = registry["TB3M"].fees
    inst, retail = schedule.institutional, schedule.retail
    assert (inst.maker, inst.taker, inst.minimum) == (50, 100, 10_000)     # 1/100 bp, units
    assert (retail.maker, retail.taker, retail.minimum) == (100, 250, 50_000)
    assert inst.maker < inst.taker and retail.taker > inst.taker

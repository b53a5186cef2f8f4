"""Retail limits per instrument (maximum order notional, maximum position, daily buy
limit of bought today + open buys), only for retail accounts; the day's count is engine
state, replayed from the journal and restored from a snapshot to the same hash."""
from __future__ import annotations

import pytest

from matching.compliance import Compliance
from matching.engine import Engine
from matching.journal import Journal
from matching.ledger import CASH
from matching.messages import NewOrderSingle
from testkit.compliance import (
    BUYER,
    DAY,
    LOT,
    SELLER,
    T0,
    USD,
    buy,
    engine,
    registry,
    replace,
    report,
    sell,
)

INSTITUTION = SELLER


@pytest.fixture(params=["core", "reference"])
def book_engine(request) -> str:
    return request.param


def test_notional_is_the_clean_consideration_rounded_up():
    eng = engine(retail_max_order_notional=USD)
    c: Compliance = eng.risk.compliance
    assert c.notional("TB3M", 99_270, LOT) == 992_700_000       # 99.270 % of 1000
    assert c.notional("TB3M", 99_271, 1) == 99_271               # one tick, one lot


# ---------------------------------------------------------------------- order notional
def test_a_retail_order_above_the_maximum_notional_is_refused_with_the_figures(book_engine):
    eng = engine(book_engine, retail_max_order_notional=5000 * USD)
    r = report(buy(eng, "b1", BUYER, "6"))
    assert r.ord_rej_reason == "MAX_ORDER_NOTIONAL"
    assert r.text == ("5956.200000 would exceed 5000.000000 USDC for TB3M "
                      "(retail order notional)")


def test_a_retail_order_within_the_maximum_notional_is_accepted(book_engine):
    eng = engine(book_engine, retail_max_order_notional=5000 * USD)
    assert report(buy(eng, "b1", BUYER, "5")).exec_type == "new"


def test_an_institutional_order_is_not_held_to_retail_limits(book_engine):
    eng = engine(book_engine, retail_max_order_notional=5000 * USD,
                 retail_max_position=LOT, retail_daily_buy_limit=USD)
    out = buy(eng, "b1", INSTITUTION, "50", broker="beta")
    assert report(out, "beta").exec_type == "new"


def test_a_market_buy_is_valued_at_the_band_top(book_engine):
    eng = engine(book_engine, retail_max_order_notional=5000 * USD)
    sell(eng, "s1", "5")
    out = eng.submit("alpha", NewOrderSingle("b1", BUYER, "TB3M", "buy", "5",
                                             ord_type="market"), now=T0)
    # 5 tokens at the band top 101.255 is 5062.75 USDC, above the retail maximum.
    assert report(out).ord_rej_reason == "MAX_ORDER_NOTIONAL"


# ---------------------------------------------------------------------- position
def test_a_retail_buy_past_the_maximum_position_is_refused(book_engine):
    eng = engine(book_engine, retail_max_position=10 * LOT)
    sell(eng, "s1", "7")
    buy(eng, "b1", BUYER, "7")
    r = report(buy(eng, "b2", BUYER, "4"))
    assert r.ord_rej_reason == "MAX_POSITION"
    assert r.text.startswith("11.0000 would exceed 10.0000 for TB3M (retail position")


def test_a_retail_buy_up_to_the_maximum_position_is_accepted(book_engine):
    eng = engine(book_engine, retail_max_position=10 * LOT)
    buy(eng, "b1", BUYER, "4")
    assert report(buy(eng, "b2", BUYER, "6")).exec_type == "new"


# ---------------------------------------------------------------------- daily buy limit
def test_filled_and_open_buys_count_towards_the_daily_limit(book_engine):
    eng = engine(book_engine, retail_daily_buy_limit=3000 * USD)
    sell(eng, "s1", "1", price="99.000")
    assert report(buy(eng, "b1", BUYER, "1")).exec_type == "trade"     # 990.00 bought
    assert eng.risk.compliance.bought_today(BUYER, "TB3M", T0) == 990 * USD
    assert report(buy(eng, "b2", BUYER, "1")).exec_type == "new"       # 992.70 open
    r = report(buy(eng, "b3", BUYER, "1.1"))                            # 1091.97
    assert r.ord_rej_reason == "DAILY_BUY_LIMIT"
    assert r.text == ("3074.670000 would exceed 3000.000000 USDC for TB3M today (bought "
                      "990.000000, open buys 992.700000, this order 1091.970000)")


def test_the_daily_limit_resets_on_the_next_trade_date(book_engine):
    eng = engine(book_engine, retail_daily_buy_limit=1000 * USD)
    sell(eng, "s1", "2", price="99.000")
    assert report(buy(eng, "b1", BUYER, "1")).exec_type == "trade"
    assert report(buy(eng, "b2", BUYER, "1")).ord_rej_reason == "DAILY_BUY_LIMIT"
    out = buy(eng, "b3", BUYER, "1", now=T0 + DAY)
    assert report(out).exec_type == "trade"
    assert eng.risk.compliance.bought_today(BUYER, "TB3M", T0 + DAY) == 990 * USD


def test_amend_up_past_the_daily_limit_is_refused_and_amend_down_allowed(book_engine):
    eng = engine(book_engine, retail_daily_buy_limit=1981 * USD)
    buy(eng, "b1", BUYER, "2", price="99.000")                          # 1980.00 open
    up = replace(eng, "r1", "b1", "2", "99.100")
    assert report(up).text.startswith("DAILY_BUY_LIMIT: 1982.000000 would exceed")
    down = replace(eng, "r2", "b1", "1", "99.000")
    assert report(down).exec_type == "replaced"
    assert eng.ledger.reserved(BUYER, CASH) > 0


# ---------------------------------------------------------------------- replay
def test_replay_and_recovery_reproduce_the_days_count_and_the_hash(tmp_path, book_engine):
    rules = {"retail_daily_buy_limit": 5000 * USD, "max_holders": 3, "max_balance": 40 * LOT}
    journal = Journal(tmp_path / "journal.log")
    live = engine(book_engine, journal, **rules)
    live.write_snapshot(tmp_path / "founded")
    sell(live, "s1", "3.5", price="99.000")
    buy(live, "b1", BUYER, "1")
    live.write_snapshot(tmp_path / "midway")
    buy(live, "b2", BUYER, "1.5")
    assert report(buy(live, "b3", BUYER, "4")).ord_rej_reason == "DAILY_BUY_LIMIT"
    buy(live, "b4", BUYER, "1", now=T0 + DAY)
    live.commit()
    journal.close()
    bought = dict(live.risk.compliance.bought)
    assert bought == {(BUYER, "TB3M"): (T0 // DAY + 1, 990 * USD)}
    for start in ("founded", "midway"):
        again = Engine.recover(registry(**rules), snapshot_dir=tmp_path / start,
                               journal_path=tmp_path / "journal.log", clock=lambda: T0,
                               book_engine=book_engine)
        assert again.risk.compliance.bought == bought
        assert again.state_hash() == live.state_hash()
        again.close()


def test_the_days_count_is_part_of_the_state_hash():
    a, b = engine(retail_daily_buy_limit=5000 * USD), engine(retail_daily_buy_limit=5000 * USD)
    assert a.state_hash() == b.state_hash()
    b.risk.compliance.on_fill(BUYER, "TB3M", 99_000, LOT, T0)
    assert a.state_hash() != b.state_hash()

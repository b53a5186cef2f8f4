"""Call auctions in the engine: the opening call after pre_open, the uncross on open,
the closing call and price before DAY orders expire, resume through a call, the auction
fills' reports and market data, and replay of all of it (matching/auction.py)."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import Journal, read_journal
from matching.ledger import CASH, Ledger
from matching.messages import NewOrderSingle, OrderCancelRequest

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
REG = Registry.load_default()
USD = 10**6


def make_ledger():
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta")):
        led.open_account(acct, broker, "retail")
        led.deposit(acct, CASH, 100_000 * USD)
        for inst in REG:
            led.deposit(acct, inst.symbol, 50 * 10**4)
            led.whitelist(acct, inst.symbol)
    return led


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        self.now += 1_000_000
        return self.now


@pytest.fixture(params=["core", "reference"])
def eng(request):
    return Engine(REG, make_ledger(), clock=Clock(), book_engine=request.param)


def new(cl, acct, side, qty, price=None, **kw):
    return NewOrderSingle(cl, acct, "TB3M", side, qty, price=price, **kw)


def fills(out):
    return [(b, r.cl_ord_id, r.last_px, r.last_qty, r.match_type, r.liquidity)
            for b, r in out.reports if r.exec_type == "trade"]


def opening_book(eng):
    """TB3M in its opening call: crossing orders that rest instead of trading."""
    eng.admin("pre_open", "TB3M", "opening call")
    outs = [eng.submit("alpha", new("b1", 1, "buy", "2", "99.020")),
            eng.submit("alpha", new("b2", 1, "buy", "1", "99.010")),
            eng.submit("beta", new("s1", 2, "sell", "1", "99.000")),
            eng.submit("beta", new("s2", 2, "sell", "1", "99.015", time_in_force="gfa")),
            eng.submit("beta", new("s3", 2, "sell", "1", ord_type="market"))]
    return outs


def test_pre_open_accepts_orders_that_rest_in_the_call_without_trading(eng):
    outs = opening_book(eng)
    assert [o.reports[0][1].exec_type for o in outs] == ["new"] * 5
    assert not any(o.trades for o in outs)
    book = eng.books["TB3M"]
    assert book.in_call and book.best_bid() > book.best_ask()      # crossed, as calls are


def test_open_uncrosses_at_one_price_and_says_the_fills_are_auction_fills(eng):
    opening_book(eng)
    out = eng.admin("open", "TB3M")
    # Volume 2 at every candidate, surplus 1 on mixed sides: rule 4, the candidate
    # nearest the reference 99.270 (no trade yet): 99.020.
    assert {t.price for t in out.trades} == {"99.020"}
    assert sum(t.qty_lots for t in out.trades) == 20000
    assert {t.aggressor for t in out.trades} == {"auction"}
    assert all(m == "auction" and liq is None for *_, m, liq in fills(out))
    assert eng.trading_status("TB3M").state == "continuous" and not eng.books["TB3M"].in_call
    # After the open the book trades continuously again.
    out = eng.submit("beta", new("s9", 2, "sell", "1", "99.010"))
    assert fills(out)[0][4] is None and out.trades[0].aggressor == "sell"


def test_the_auction_market_data_shows_the_indicative_then_the_uncross(eng):
    opening_book(eng)
    view = eng.auction_view("TB3M")
    assert (view.phase, view.price, view.volume, view.surplus, view.surplus_side) == (
        "call", "99.020", "2.0000", "1.0000", "sell")
    eng.admin("open", "TB3M")
    view = eng.auction_view("TB3M")
    assert (view.phase, view.price, view.volume) == ("uncrossed", "99.020", "2.0000")


def test_a_call_with_nothing_crossing_shows_the_best_bid_and_ask(eng):
    eng.admin("pre_open", "TB3M")
    eng.submit("alpha", new("b1", 1, "buy", "1", "99.000"))
    eng.submit("beta", new("s1", 2, "sell", "1", "99.100"))
    view = eng.auction_view("TB3M")
    assert (view.price, view.best_bid, view.best_ask) == (None, "99.000", "99.100")


def test_immediate_orders_are_refused_in_the_call_and_gfa_outside_it(eng):
    eng.admin("pre_open", "TB3M")
    out = eng.submit("alpha", new("i", 1, "buy", "1", "99.000", time_in_force="ioc"))
    assert out.reports[0][1].ord_rej_reason == "IMMEDIATE_IN_CALL"
    eng.admin("open", "TB3M")
    out = eng.submit("alpha", new("g", 1, "buy", "1", "99.000", time_in_force="gfa"))
    assert out.reports[0][1].ord_rej_reason == "AUCTION_ONLY"
    assert eng.ledger.reserved(1, CASH) == 0                      # nothing held back


def test_close_runs_the_closing_uncross_then_expires_day_orders(eng):
    eng.submit("alpha", new("d", 1, "buy", "1", "98.000", time_in_force="day"))
    eng.admin("pre_open", "TB3M", "closing call")
    eng.submit("alpha", new("cb", 1, "buy", "1", "99.050", time_in_force="day"))
    eng.submit("beta", new("cs", 2, "sell", "1", "99.040", time_in_force="gtc"))
    out = eng.admin("close", "TB3M")
    kinds = [(r.cl_ord_id, r.exec_type) for _, r in out.reports]
    assert kinds.index(("cb", "trade")) < kinds.index(("d", "expired"))
    assert eng.closing_price("TB3M") == (99_050, "auction")
    assert len(eng.books["TB3M"]) == 0


def test_the_closing_price_is_the_vwap_of_the_last_minutes_without_an_auction(eng):
    eng.submit("beta", new("s1", 2, "sell", "1", "99.000"))
    eng.submit("beta", new("s2", 2, "sell", "3", "99.010"))
    eng.submit("alpha", new("b1", 1, "buy", "4", "99.010"))
    eng.admin("close", "TB3M")
    # (99.000 x 1 + 99.010 x 3) / 4 = 99.0075 -> 99.008 (half-even to the tick)
    assert eng.closing_price("TB3M") == (99_008, "vwap")


def test_the_closing_price_falls_back_to_the_last_trade_then_to_none(eng):
    eng.admin("close", "TB6M")
    assert eng.closing_price("TB6M") == (None, "none")
    eng.submit("beta", new("s1", 2, "sell", "1", "99.000"))
    eng.submit("alpha", new("b1", 1, "buy", "1", "99.000"))
    eng.clock.now += 10 * 60 * 10**9                               # past the VWAP window
    eng.admin("close", "TB3M")
    assert eng.closing_price("TB3M") == (99_000, "last_trade")


def test_resume_after_a_halt_in_the_opening_call_goes_through_the_uncross(eng):
    opening_book(eng)
    eng.admin("halt", "TB3M", "news")
    out = eng.submit("alpha", new("h", 1, "buy", "1", "99.000"))
    assert out.reports[0][1].ord_rej_reason == "MARKET_NOT_OPEN"
    out = eng.admin("resume", "TB3M")
    assert {t.price for t in out.trades} == {"99.020"}
    assert eng.trading_status("TB3M").state == "continuous"


def test_cancels_work_in_the_call_and_release_the_reservation(eng):
    eng.admin("pre_open", "TB3M")
    eng.submit("alpha", new("m", 1, "buy", "1", ord_type="market", time_in_force="day"))
    assert eng.ledger.reserved(1, CASH) > 0
    out = eng.submit("alpha", OrderCancelRequest("c", "m", "TB3M"))
    assert out.reports[0][1].exec_type == "canceled" and eng.ledger.reserved(1, CASH) == 0


def test_replay_and_a_snapshot_taken_in_a_call_reproduce_the_auctions(tmp_path):
    """Journal a day with an opening call, an open, a closing call and a close; a replay
    of the journal and a snapshot taken mid-call plus the journal after it both end in
    the live engine's state."""
    for book_engine in ("core", "reference"):
        path = tmp_path / f"{book_engine}.journal"
        eng = Engine(REG, make_ledger(), clock=Clock(), book_engine=book_engine,
                     journal=Journal(path, fsync="none"))
        opening_book(eng)
        payload, snap_seq = eng.snapshot(), eng.seq    # in the call: market and GFA rest
        eng.submit("alpha", new("b3", 1, "buy", "1", ord_type="market"))
        eng.admin("open", "TB3M")
        eng.admin("pre_open", "TB3M", "closing call")
        eng.submit("beta", new("s4", 2, "sell", "2", "99.005"))
        eng.submit("alpha", new("b4", 1, "buy", "1", "99.010", time_in_force="gfa"))
        eng.admin("close", "TB3M")
        eng.commit()
        assert eng.closing_price("TB3M").method == "auction"
        replayed = Engine(REG, make_ledger(), clock=Clock(), book_engine=book_engine)
        replayed.replay(read_journal(path))
        assert replayed.state_hash() == eng.state_hash()
        restored = Engine.from_snapshot(REG, payload, clock=Clock(), book_engine=book_engine)
        restored.books["TB3M"].check()
        restored.replay(read_journal(path, after_seq=snap_seq))
        assert restored.state_hash() == eng.state_hash()
        assert restored.closing_price("TB3M") == eng.closing_price("TB3M")
        eng.close()


# ---------------------------------------------------------------------- volatility
def bd(cl, acct, side, qty, price=None, **kw):
    return NewOrderSingle(cl, acct, "BD5Y", side, qty, price=price, **kw)


def volatile_book(eng):
    """BD5Y: last trade 100.000; asks 100.000 x1, 100.500 x1, 103.000 x5."""
    eng.submit("beta", bd("s0", 2, "sell", "1", "100.000"))
    eng.submit("alpha", bd("b0", 1, "buy", "1", "100.000"))
    for cl, price, qty in (("s1", "100.000", "1"), ("s2", "100.500", "1"),
                           ("s3", "103.000", "5")):
        eng.submit("beta", bd(cl, 2, "sell", qty, price))


def test_a_buy_walking_past_the_dynamic_band_fills_2_and_the_rest_waits_in_the_call(eng):
    """The issue's example: dynamic band 2% around the last trade 100: the buy of 7 at
    104 fills 100.000 and 100.500, the next fill (103.000) would be outside 98..102."""
    volatile_book(eng)
    out = eng.submit("alpha", bd("big", 1, "buy", "7", "104.000"))
    assert [(t.price, t.qty) for t in out.trades] == [("100.000", "1.0000"),
                                                       ("100.500", "1.0000")]
    status = eng.trading_status("BD5Y")
    assert status.state == "pre_open" and status.seq == out.seq
    assert "103.000" in status.reason and "dynamic band 98.000..102.000" in status.reason
    assert eng.books["BD5Y"].in_call
    oid = int(out.reports[0][1].order_id)
    assert eng.books["BD5Y"].order(oid)[1:3] == (104_000, 50_000)   # 5 left, at 104
    assert [r.exec_type for _, r in out.reports
            if r.cl_ord_id == "big"] == ["new", "trade", "trade"]     # no engine "replaced"
    # The call ends with the operator's open: the uncross executes the rest at 103.
    out = eng.admin("open", "BD5Y")
    assert {t.price for t in out.trades} == {"103.000"}
    assert eng.trading_status("BD5Y").state == "continuous"


def test_a_fok_that_would_cross_a_band_is_rejected_whole(eng):
    volatile_book(eng)
    before = eng.ledger.reserved(1, CASH)
    out = eng.submit("alpha", bd("fok", 1, "buy", "7", "104.000", time_in_force="fok"))
    assert [r.ord_rej_reason for _, r in out.reports] == ["VOLATILITY_INTERRUPTION"]
    assert not out.trades and eng.ledger.reserved(1, CASH) == before
    assert eng.trading_status("BD5Y").state == "continuous"


def test_an_order_inside_the_bands_trades_as_usual(eng):
    volatile_book(eng)
    out = eng.submit("alpha", bd("ok", 1, "buy", "2", "101.000"))
    assert len(out.trades) == 2 and eng.trading_status("BD5Y").state == "continuous"


def test_replay_reproduces_a_volatility_interruption(tmp_path):
    path = tmp_path / "v.journal"
    eng = Engine(REG, make_ledger(), clock=Clock(), journal=Journal(path, fsync="none"))
    volatile_book(eng)
    eng.submit("alpha", bd("big", 1, "buy", "7", "104.000"))
    eng.admin("open", "BD5Y")
    eng.commit()
    replayed = Engine(REG, make_ledger(), clock=Clock())
    replayed.replay(read_journal(path))
    assert replayed.state_hash() == eng.state_hash()
    eng.close()


def test_the_static_band_around_the_reference_stops_a_first_order_too(eng):
    """GOLD, no trade yet: the static band is 5% around the reference 110.00
    (104.50..115.50): a buy at 117 fills the ask at 115, not the one at 116."""
    for cl, price in (("g1", "115.00"), ("g2", "116.00")):
        eng.submit("beta", NewOrderSingle(cl, 2, "GOLD", "sell", "1", price=price))
    out = eng.submit("alpha", NewOrderSingle("g", 1, "GOLD", "buy", "2", price="117.00"))
    assert [t.price for t in out.trades] == ["115.00"]
    assert "static band 104.50..115.50" in eng.trading_status("GOLD").reason

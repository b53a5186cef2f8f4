"""Market buys reserve what they can cost: the asks they would take, with the band as cap."""
from datetime import UTC, datetime

import pytest

from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger
from matching.market_reserve import walk_asks
from matching.messages import NewOrderSingle

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
REG = Registry.load_default()
USD = 10**6
RETAIL, SELLER = 10, 20


def _engine(book_engine: str, retail_cash: int = 500 * USD) -> Engine:
    led = Ledger()
    led.open_account(RETAIL, "alpha", "retail")
    led.open_account(SELLER, "beta", "institutional")
    led.deposit(RETAIL, CASH, retail_cash)
    led.deposit(SELLER, "TB3M", 10 * 10**4)
    led.deposit(RETAIL, "TB3M", 1 * 10**4)
    for acct in (RETAIL, SELLER):
        led.whitelist(acct, "TB3M")
    return Engine(REG, led, clock=lambda: T0, book_engine=book_engine)


@pytest.fixture(params=["core", "reference"])
def book_engine(request) -> str:
    return request.param


def test_retail_investor_with_500_usdc_buys_half_a_bill_costing_496_75(book_engine):
    eng = _engine(book_engine)
    eng.submit("beta", NewOrderSingle("s1", SELLER, "TB3M", "sell", "1", price="99.350"))
    band_top = eng.risk.bands["TB3M"][1]
    # The old rule (the whole quantity at the band top) would have refused this buy.
    assert eng.economics["TB3M"].worst_case_cash(band_top, 5000) > 500 * USD
    out = eng.submit("alpha", NewOrderSingle("b1", RETAIL, "TB3M", "buy", "0.5",
                                             ord_type="market"))
    fill = [r for b, r in out.reports if b == "alpha" and r.exec_type == "trade"]
    assert [(r.last_qty, r.settl_amount, r.ord_status) for r in fill] == [
        ("0.5000", "496.750000", "filled")]
    assert eng.ledger.balance(RETAIL, CASH) == 500 * USD - 496_750_000
    assert eng.ledger.reserved(RETAIL, CASH) == 0


def test_market_buy_reserves_the_walked_levels_not_the_band_top(book_engine):
    eng = _engine(book_engine, retail_cash=1 * USD)
    eng.submit("beta", NewOrderSingle("s1", SELLER, "TB3M", "sell", "0.3", price="99.350"))
    eng.submit("beta", NewOrderSingle("s2", SELLER, "TB3M", "sell", "0.4", price="99.360"))
    hi = eng.risk.bands["TB3M"][1]
    walk = walk_asks(eng.books["TB3M"], 5000, hi, RETAIL, False)
    assert walk.levels == [(99350, 3000), (99360, 2000)] and walk.lots == 5000
    econ = eng.economics["TB3M"]
    need = econ.worst_case_cash(99350, 3000) + econ.worst_case_cash(99360, 2000)
    assert need < econ.worst_case_cash(hi, 5000)
    out = eng.submit("alpha", NewOrderSingle("b1", RETAIL, "TB3M", "buy", "0.5",
                                             ord_type="market"))
    [(_, r)] = out.reports
    assert r.text == (f"account 10 needs {need / USD:.6f} USDC, has 1.000000 USDC "
                      "available")


def test_market_buy_beyond_the_depth_reserves_only_what_rests(book_engine):
    eng = _engine(book_engine)
    eng.submit("beta", NewOrderSingle("s1", SELLER, "TB3M", "sell", "0.2", price="99.350"))
    out = eng.submit("alpha", NewOrderSingle("b1", RETAIL, "TB3M", "buy", "3",
                                             ord_type="market"))
    got = [(r.exec_type, r.ord_status, r.cum_qty) for b, r in out.reports if b == "alpha"]
    assert got[-1] == ("canceled", "canceled", "0.2000")
    assert eng.ledger.balance(RETAIL, CASH) == 500 * USD - 198_700_000


def test_market_buy_refused_names_the_depth_based_need(book_engine):
    eng = _engine(book_engine, retail_cash=400 * USD)
    eng.submit("beta", NewOrderSingle("s1", SELLER, "TB3M", "sell", "1", price="99.350"))
    out = eng.submit("alpha", NewOrderSingle("b1", RETAIL, "TB3M", "buy", "0.5",
                                             ord_type="market"))
    [(_, r)] = out.reports
    assert r.ord_rej_reason == "INSUFFICIENT_FUNDS"
    assert r.text == "account 10 needs 496.752500 USDC, has 400.000000 USDC available"


def test_own_asks_are_left_out_of_the_walk(book_engine):
    eng = _engine(book_engine, retail_cash=100_000 * USD)
    eng.submit("alpha", NewOrderSingle("o1", RETAIL, "TB3M", "sell", "0.5", price="99.300"))
    eng.submit("beta", NewOrderSingle("s1", SELLER, "TB3M", "sell", "1", price="99.400"))
    hi = eng.risk.bands["TB3M"][1]
    book = eng.books["TB3M"]
    assert walk_asks(book, 5000, hi, RETAIL, True).levels == [(99400, 5000)]
    assert walk_asks(book, 5000, hi, RETAIL, False).levels == [(99300, 5000)]


def test_market_buy_allowing_self_trade_reserves_for_its_own_asks_and_fills_them(book_engine):
    eng = _engine(book_engine, retail_cash=100_000 * USD)
    eng.submit("alpha", NewOrderSingle("o1", RETAIL, "TB3M", "sell", "0.5", price="99.300"))
    before = eng.ledger.balance(RETAIL, CASH)
    # Its only ask is its own: with STP none the buy trades with it (a reservation of
    # nothing would leave the fill unpaid, a fault inside the engine).
    out = eng.submit("alpha", NewOrderSingle("b1", RETAIL, "TB3M", "buy", "0.5",
                                             ord_type="market", stp="none"))
    trades = [r for _, r in out.reports if r.exec_type == "trade"]
    assert sorted(r.side for r in trades) == ["buy", "sell"] and eng.fault is None
    assert eng.ledger.balance(RETAIL, CASH) == before          # paid to itself
    assert eng.ledger.reserved(RETAIL, CASH) == 0 and eng.ledger.reserved(RETAIL, "TB3M") == 0


def test_core_and_reference_books_reserve_the_same_for_a_market_buy():
    texts = []
    for book_engine in ("core", "reference"):
        eng = _engine(book_engine, retail_cash=1 * USD)
        for i, (qty, px) in enumerate((("0.1", "99.350"), ("0.2", "99.350"),
                                       ("0.3", "99.380"), ("5", "99.900"))):
            eng.submit("beta", NewOrderSingle(f"s{i}", SELLER, "TB3M", "sell", qty, price=px))
        out = eng.submit("alpha", NewOrderSingle("b1", RETAIL, "TB3M", "buy", "1.2",
                                                 ord_type="market"))
        texts.append(out.reports[0][1].text)
    assert texts[0] == texts[1]
    # 0.3 @ 99.350 + 0.3 @ 99.380 + 0.6 @ 99.900 of face 1000, half a unit per lot more
    assert texts[0].startswith("account 10 needs 1195.596000 USDC")

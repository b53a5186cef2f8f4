"""The uncross price by the principle of highest executable volume, on both books: each
rule alone, the Deutsche Börse worked example, and a property test against a brute force
over every candidate price (docs/matching-rules.md, "Call auction")."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.auction_price import pressure_width
from matching.constants import OrdType
from matching.constants import TimeInForce as T
from testkit.books import BUY, SELL, CheckedBook

MKT = OrdType.MARKET


def call_book(book, bids=(), asks=(), market_buy=0, market_sell=0):
    """``book`` in a call holding ``(price, qty)`` limits and the market quantities."""
    book.set_call(True)
    oid = 0
    for side, orders in ((BUY, bids), (SELL, asks)):
        for price, qty in orders:
            oid += 1
            book.new_order(oid, side, price, qty)
    for side, qty in ((BUY, market_buy), (SELL, market_sell)):
        if qty:
            oid += 1
            book.new_order(oid, side, 0, qty, ord_type=MKT)
    return book


# ---------------------------------------------------------------------- one rule at a time
def test_rule_1_the_price_of_the_highest_executable_volume(book):
    call_book(book, bids=[(100, 5), (101, 1)], asks=[(100, 5), (99, 1)])
    # volume: 99 -> 1, 100 -> 6, 101 -> 1: 100, though the reference is 99
    assert book.indicative(99, 0) == (100, 6, 0, 0)


def test_rule_2_the_least_surplus_among_equal_volumes(book):
    call_book(book, bids=[(101, 5)], asks=[(100, 5), (101, 1)])
    # volume 5 at 100 and 101; surplus 0 at 100, 1 (sell) at 101: the reference loses
    assert book.indicative(101, 0) == (100, 5, 0, 0)


@pytest.mark.parametrize("reference,pct,price", [
    (110, 0, 103),        # every candidate below the cap 110: the highest
    (95, 2, 100),         # every candidate above the cap 96: the lowest
    (101, 1, 102),        # candidates on both sides of the cap 102: the cap itself
])
def test_rule_3_buy_side_pressure_moves_the_price_toward_the_cap(book, reference, pct, price):
    call_book(book, bids=[(103, 10)], asks=[(100, 5)])
    assert book.indicative(reference, pct) == (price, 5, 5, BUY)


@pytest.mark.parametrize("reference,pct,price", [
    (95, 0, 100),         # every candidate above the floor 95: the lowest
    (110, 0, 103),        # every candidate below the floor 110: the highest
    (102, 1, 101),        # candidates on both sides of the floor 101: the floor itself
])
def test_rule_3_sell_side_pressure_moves_the_price_toward_the_floor(book, reference, pct,
                                                                     price):
    call_book(book, bids=[(103, 5)], asks=[(100, 10)])
    assert book.indicative(reference, pct) == (price, 5, 5, SELL)


@pytest.mark.parametrize("reference,price", [(101, 101), (105, 103), (90, 100)])
def test_rule_4_the_reference_if_within_the_candidates_else_the_nearest(book, reference,
                                                                       price):
    call_book(book, bids=[(103, 5)], asks=[(100, 5)])
    assert book.indicative(reference, 3) == (price, 5, 0, 0)


def test_only_market_orders_executing_trade_at_the_reference(book):
    call_book(book, asks=[(102, 5)], market_buy=5, market_sell=5)
    # without the rule the sell-side pressure would pick 102; market orders alone: 104
    assert book.indicative(104, 5) == (104, 5, 5, SELL)
    book.uncross(104, 5)
    assert [e[5] for e in book.last if e[0] == 3] == [104]


# ---------------------------------------------------------------------- the worked example
def test_deutsche_boerse_principle_of_highest_volume_example_executes_at_135(book):
    """Deutsche Börse glossary, "Principle of highest volume transacted": the price that
    maximises turnover is 135 ("135 bG"): every market order, every buy above and every
    sell below it executes, every sell limited at 135 executes, the buys limited at 135
    only in part. The stored copy of the page lost its order table, so this book is
    rebuilt to meet every one of those statements (prices in cents):

    | price | buy   | sell  | demand | supply | executable |
    |-------|-------|-------|--------|--------|------------|
    | MKT   | 100   | 100   |        |        |            |
    | 133   |       | 300   | 1300   | 400    | 400        |
    | 134   | 200   | 300   | 1300   | 700    | 700        |
    | 135   | 500   | 300   | 1100   | 1000   | **1000**   |
    | 136   | 300   | 500   | 600    | 1500   | 600        |
    | 137   | 200   |       | 300    | 1500   | 300        |
    """
    call_book(book, bids=[(13700, 200), (13600, 300), (13500, 500), (13400, 200)],
              asks=[(13300, 300), (13400, 300), (13500, 300), (13600, 500)],
              market_buy=100, market_sell=100)
    assert book.indicative(13400, 2) == (13500, 1000, 100, BUY)     # "bG": buyers left
    book.uncross(13400, 2)
    fills: dict[int, int] = {}
    for e in book.last:
        if e[0] == 3:
            assert e[5] == 13500
            fills[e[3]] = fills.get(e[3], 0) + e[6]
            fills[e[4]] = fills.get(e[4], 0) + e[6]
    # ids: bids 1-4 (137, 136, 135, 134), asks 5-8 (133, 134, 135, 136), market 9, 10
    assert fills == {9: 100, 1: 200, 2: 300, 3: 400, 10: 100, 5: 300, 6: 300, 7: 300}
    assert book.resting_orders()[0][:4] == (3, BUY, 13500, 100)


# ---------------------------------------------------------------------- brute force
LO, N = 100, 30


def brute_force(bids, asks, market_buy, market_sell, reference, width):
    """The rules applied the long way: every candidate's volume and surplus, then each
    tie-break as a clamp of its anchor into the range of the candidates left."""
    def at(p):
        d = market_buy + sum(q for bp, q in bids if bp >= p)
        s = market_sell + sum(q for ap, q in asks if ap <= p)
        return min(d, s), d - s

    prices = {p for p, _ in bids} | {p for p, _ in asks} | {reference}
    table = {p: at(p) for p in prices}
    best = max(v for v, _ in table.values())
    if best == 0:
        return None
    if market_buy and market_sell and best == min(market_buy, market_sell):
        price = reference
    else:
        least = min(abs(s) for v, s in table.values() if v == best)
        left = sorted(p for p, (v, s) in table.items() if v == best and abs(s) == least)
        signs = {(table[p][1] > 0) - (table[p][1] < 0) for p in left}
        anchor = (reference + width if signs == {1} else
                  reference - width if signs == {-1} else reference)
        price = min(max(anchor, left[0]), left[-1])
    v, s = at(price)
    return price, v, abs(s), BUY if s > 0 else SELL if s < 0 else 0


levels = st.lists(st.tuples(st.integers(LO, LO + N - 1), st.integers(1, 9)), max_size=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(bids=levels, asks=levels, market_buy=st.integers(0, 12), market_sell=st.integers(0, 12),
       reference=st.integers(LO, LO + N - 1), pct=st.integers(0, 12))
def test_the_uncross_price_equals_a_brute_force_over_every_candidate(
        book_cls, bids, asks, market_buy, market_sell, reference, pct):
    book = call_book(CheckedBook(book_cls(LO, N)), bids, asks, market_buy, market_sell)
    width = pressure_width(reference, pct)
    expected = brute_force(bids, asks, market_buy, market_sell, reference, width)
    assert book.indicative(reference, pct) == expected
    book.uncross(reference, pct)                     # CheckedBook: a sound book after
    trades = [e for e in book.last if e[0] == 3]
    assert sum(e[6] for e in trades) == (expected[1] if expected else 0)
    assert all(e[5] == expected[0] for e in trades)
    # What rests after is limits that do not cross, and no market order.
    assert all(o[2] is not None for o in book.resting_orders())
    assert not book.in_call


def test_a_good_for_auction_limit_counts_like_any_limit_in_the_price(book):
    book.set_call(True)
    book.new_order(1, BUY, 101, 5, tif=T.GFA)
    book.new_order(2, SELL, 100, 3)
    assert book.indicative(100, 0) == (100, 3, 2, BUY)

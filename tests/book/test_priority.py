"""Price-time priority: best price first, oldest first within a level, every trade at the
maker's price; how amends keep or lose time priority."""
import pytest

from testkit.books import (
    BUY,
    SELL,
    accepted,
    kept,
    level,
    lost,
    trade,
    user_cancelled,
)


def ids(book):
    """Resting order ids in priority order (bids best first, then asks)."""
    return [o[0] for o in book.resting_orders()]


# ---------------------------------------------------------------------- price priority
def test_buy_takes_the_lowest_ask_first(book):
    book.new_order(1, SELL, 102, 10)
    book.new_order(2, SELL, 101, 10)
    book.new_order(3, BUY, 102, 15)
    assert book.last == [
        accepted(BUY, 3, 102, 15),
        trade(BUY, 3, 2, 101, 10, 5, 0),
        trade(BUY, 3, 1, 102, 5, 0, 5),
        level(SELL, 101, 0, 0),
        level(SELL, 102, 5, 1),
    ]


def test_sell_takes_the_highest_bid_first(book):
    book.new_order(1, BUY, 99, 10)
    book.new_order(2, BUY, 100, 10)
    book.new_order(3, SELL, 99, 15)
    assert book.last == [
        accepted(SELL, 3, 99, 15),
        trade(SELL, 3, 2, 100, 10, 5, 0),
        trade(SELL, 3, 1, 99, 5, 0, 5),
        level(BUY, 100, 0, 0),
        level(BUY, 99, 5, 1),
    ]


def test_an_order_does_not_trade_beyond_its_limit(book):
    book.new_order(1, SELL, 101, 10)
    book.new_order(2, SELL, 103, 10)
    book.new_order(3, BUY, 102, 15)
    assert book.last == [
        accepted(BUY, 3, 102, 15),
        trade(BUY, 3, 1, 101, 10, 5, 0),
        level(SELL, 101, 0, 0),
        level(BUY, 102, 5, 1),
    ]
    assert (book.best_bid(), book.best_ask()) == (102, 103)


def test_orders_that_do_not_cross_rest_on_both_sides(book):
    book.new_order(1, BUY, 100, 5)
    assert book.last == [accepted(BUY, 1, 100, 5), level(BUY, 100, 5, 1)]
    book.new_order(2, SELL, 101, 5)
    assert book.last == [accepted(SELL, 2, 101, 5), level(SELL, 101, 5, 1)]
    assert (book.best_bid(), book.best_ask(), len(book)) == (100, 101, 2)


# ---------------------------------------------------------------------- time priority
def test_oldest_order_at_a_level_trades_first(book):
    for oid in (1, 2, 3):
        book.new_order(oid, SELL, 100, 5)
    book.new_order(4, BUY, 100, 12)
    assert book.last == [
        accepted(BUY, 4, 100, 12),
        trade(BUY, 4, 1, 100, 5, 7, 0),
        trade(BUY, 4, 2, 100, 5, 2, 0),
        trade(BUY, 4, 3, 100, 2, 0, 3),
        level(SELL, 100, 3, 1),
    ]
    assert book.order(3) == (SELL, 100, 3, 0)


def test_a_partly_filled_maker_keeps_its_place_at_the_head(book):
    book.new_order(1, SELL, 100, 10)
    book.new_order(2, SELL, 100, 5)
    book.new_order(3, BUY, 100, 4)
    book.new_order(4, BUY, 100, 8)
    assert book.last == [
        accepted(BUY, 4, 100, 8),
        trade(BUY, 4, 1, 100, 6, 2, 0),
        trade(BUY, 4, 2, 100, 2, 0, 3),
        level(SELL, 100, 3, 1),
    ]


def test_an_older_order_at_a_worse_price_waits_for_the_better_price(book):
    book.new_order(1, BUY, 99, 5)
    book.new_order(2, BUY, 100, 5)
    book.new_order(3, SELL, 99, 5)
    assert book.last == [accepted(SELL, 3, 99, 5), trade(SELL, 3, 2, 100, 5, 0, 0),
                         level(BUY, 100, 0, 0)]


def test_the_rest_of_a_limit_order_joins_the_back_of_its_level(book):
    book.new_order(1, BUY, 101, 5)
    book.new_order(2, SELL, 100, 3)
    book.new_order(3, BUY, 101, 10)        # no ask left: rests behind order 1
    assert book.last == [accepted(BUY, 3, 101, 10), level(BUY, 101, 12, 2)]
    book.new_order(4, SELL, 101, 3)
    assert book.last == [accepted(SELL, 4, 101, 3), trade(SELL, 4, 1, 101, 2, 1, 0),
                         trade(SELL, 4, 3, 101, 1, 0, 9), level(BUY, 101, 9, 1)]
    book.new_order(5, SELL, 100, 12)
    assert book.last == [accepted(SELL, 5, 100, 12), trade(SELL, 5, 3, 101, 9, 3, 0),
                         level(BUY, 101, 0, 0), level(SELL, 100, 3, 1)]


# ---------------------------------------------------------------------- maker price
def test_trade_is_at_the_resting_order_price_for_a_sell_taker(book):
    book.new_order(1, BUY, 105, 10)
    book.new_order(2, SELL, 90, 4)
    assert book.last == [accepted(SELL, 2, 90, 4), trade(SELL, 2, 1, 105, 4, 0, 6),
                         level(BUY, 105, 6, 1)]


def test_trade_is_at_the_resting_order_price_for_a_buy_taker(book):
    book.new_order(1, SELL, 90, 10)
    book.new_order(2, BUY, 105, 4)
    assert book.last == [accepted(BUY, 2, 105, 4), trade(BUY, 2, 1, 90, 4, 0, 6),
                         level(SELL, 90, 6, 1)]


# ---------------------------------------------------------------------- amend
def test_amend_down_keeps_priority(book):
    book.new_order(1, SELL, 100, 10)
    book.new_order(2, SELL, 100, 10)
    book.amend(1, 100, 4)
    assert book.last == [kept(SELL, 1, 100, 4, 10), level(SELL, 100, 14, 2)]
    assert ids(book) == [1, 2]
    book.new_order(3, BUY, 100, 4)
    assert book.last == [accepted(BUY, 3, 100, 4), trade(BUY, 3, 1, 100, 4, 0, 0),
                         level(SELL, 100, 10, 1)]


def test_same_quantity_amend_keeps_priority(book):
    book.new_order(1, BUY, 100, 10)
    book.new_order(2, BUY, 100, 10)
    book.amend(1, 100, 10)
    assert book.last == [kept(BUY, 1, 100, 10, 10), level(BUY, 100, 20, 2)]
    book.new_order(3, SELL, 100, 10)
    assert book.last == [accepted(SELL, 3, 100, 10), trade(SELL, 3, 1, 100, 10, 0, 0),
                         level(BUY, 100, 10, 1)]


def test_amend_up_loses_priority(book):
    book.new_order(1, SELL, 100, 10)
    book.new_order(2, SELL, 100, 10)
    book.amend(1, 100, 11)
    assert book.last == [lost(SELL, 1, 100, 11, 10), level(SELL, 100, 21, 2)]
    assert ids(book) == [2, 1]
    book.new_order(3, BUY, 100, 10)
    assert book.last == [accepted(BUY, 3, 100, 10), trade(BUY, 3, 2, 100, 10, 0, 0),
                         level(SELL, 100, 11, 1)]


def test_reprice_loses_priority_even_back_to_the_same_level(book):
    book.new_order(1, SELL, 100, 10)
    book.new_order(2, SELL, 100, 10)
    book.amend(1, 101, 10)
    assert book.last == [lost(SELL, 1, 101, 10, 10), level(SELL, 100, 10, 1),
                         level(SELL, 101, 10, 1)]
    book.amend(1, 100, 10)
    assert book.last == [lost(SELL, 1, 100, 10, 10), level(SELL, 101, 0, 0),
                         level(SELL, 100, 20, 2)]
    assert ids(book) == [2, 1]


def test_reprice_with_less_quantity_still_loses_priority(book):
    book.new_order(1, BUY, 100, 10)
    book.new_order(2, BUY, 101, 10)
    book.new_order(3, BUY, 101, 10)
    book.amend(1, 101, 5)
    assert book.last == [lost(BUY, 1, 101, 5, 10), level(BUY, 100, 0, 0),
                         level(BUY, 101, 25, 3)]
    assert ids(book) == [2, 3, 1]


def test_amend_quantity_is_the_new_open_quantity(book):
    # 10 lots, 4 filled: leaves 6. Amending to 6 changes nothing and keeps priority;
    # 7 is more than the open quantity, so the order goes to the back.
    book.new_order(1, SELL, 100, 10)
    book.new_order(2, SELL, 100, 5)
    book.new_order(3, BUY, 100, 4)
    book.amend(1, 100, 6)
    assert book.last == [kept(SELL, 1, 100, 6, 6), level(SELL, 100, 11, 2)]
    book.amend(1, 100, 7)
    assert book.last == [lost(SELL, 1, 100, 7, 6), level(SELL, 100, 12, 2)]
    assert ids(book) == [2, 1]


def test_amend_across_the_spread_trades_as_the_taker_at_the_maker_price(book):
    book.new_order(1, SELL, 101, 5)
    book.new_order(2, BUY, 99, 8)
    book.amend(2, 102, 8)
    assert book.last == [
        lost(BUY, 2, 102, 8, 8),
        trade(BUY, 2, 1, 101, 5, 3, 0),
        level(BUY, 99, 0, 0),
        level(SELL, 101, 0, 0),
        level(BUY, 102, 3, 1),
    ]
    assert book.order(2) == (BUY, 102, 3, 0)


def test_amend_that_fills_completely_leaves_no_order(book):
    book.new_order(1, BUY, 100, 5)
    book.new_order(2, SELL, 105, 3)
    book.amend(2, 99, 5)
    assert book.last == [lost(SELL, 2, 99, 5, 3), trade(SELL, 2, 1, 100, 5, 0, 0),
                         level(SELL, 105, 0, 0), level(BUY, 100, 0, 0)]
    assert book.order(2) is None and len(book) == 0


def test_amended_order_keeps_its_account(book):
    book.new_order(1, BUY, 100, 5, account=9)
    book.amend(1, 98, 7)
    assert book.order(1) == (BUY, 98, 7, 9)
    assert book.resting_orders() == [(1, BUY, 98, 7, 9, 0, False)]


# ---------------------------------------------------------------------- cancel
def test_cancel_removes_only_that_order_and_keeps_the_queue(book):
    for oid in (1, 2, 3):
        book.new_order(oid, BUY, 100, 5)
    book.cancel(2)
    assert book.last == [user_cancelled(BUY, 2, 100, 5), level(BUY, 100, 10, 2)]
    assert ids(book) == [1, 3]


def test_cancel_of_a_partly_filled_order_cancels_its_open_quantity(book):
    book.new_order(1, SELL, 100, 10)
    book.new_order(2, BUY, 100, 4)
    book.cancel(1)
    assert book.last == [user_cancelled(SELL, 1, 100, 6), level(SELL, 100, 0, 0)]
    assert book.best_ask() is None


@pytest.mark.parametrize("side", [BUY, SELL])
def test_resting_orders_lists_bids_then_asks_best_first_fifo(book, side):
    book.new_order(1, BUY, 98, 1)
    book.new_order(2, BUY, 99, 2)
    book.new_order(3, BUY, 98, 3)
    book.new_order(4, SELL, 102, 4)
    book.new_order(5, SELL, 101, 5, account=3, stp=2, post_only=True)
    book.new_order(6, SELL, 102, 6)
    assert book.resting_orders() == [
        (2, BUY, 99, 2, 0, 0, False), (1, BUY, 98, 1, 0, 0, False),
        (3, BUY, 98, 3, 0, 0, False), (5, SELL, 101, 5, 3, 2, True),
        (4, SELL, 102, 4, 0, 0, False), (6, SELL, 102, 6, 0, 0, False),
    ]
    expected = {BUY: [(99, 2, 1), (98, 4, 2)], SELL: [(101, 5, 1), (102, 10, 2)]}[side]
    assert book.depth(side, 10) == expected and book.depth(side, 1) == expected[:1]
    assert book.depth(side, 0) == [] and book.depth(side, -1) == []

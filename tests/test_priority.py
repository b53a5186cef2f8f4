"""Price-time priority: best price first, oldest first, trades at the maker's price."""
from conftest import trades

from matching.constants import AmendPriority, EventType, Side

BUY, SELL = Side.BUY, Side.SELL


def test_best_price_trades_first(book):
    book.new_order(1, SELL, 102, 10)
    book.new_order(2, SELL, 101, 10)
    book.events()
    book.new_order(3, BUY, 102, 15)
    assert trades(book) == [(3, 2, 101, 10), (3, 1, 102, 5)]


def test_oldest_order_at_a_level_trades_first(book):
    for oid in (1, 2, 3):
        book.new_order(oid, SELL, 100, 5)
    book.events()
    book.new_order(4, BUY, 100, 12)
    assert trades(book) == [(4, 1, 100, 5), (4, 2, 100, 5), (4, 3, 100, 2)]
    assert book.order(3) == (SELL, 100, 3, 0)


def test_trade_is_at_the_resting_order_price(book):
    book.new_order(1, BUY, 105, 10)
    book.events()
    book.new_order(2, SELL, 90, 4)
    assert trades(book) == [(2, 1, 105, 4)]


def test_unfilled_rest_of_a_limit_order_rests_at_its_price(book):
    book.new_order(1, SELL, 100, 3)
    book.new_order(2, BUY, 101, 10)
    assert book.best_bid() == 101 and book.order(2) == (BUY, 101, 7, 0)
    assert book.best_ask() is None


def test_amend_down_keeps_priority(book):
    book.new_order(1, SELL, 100, 10)
    book.new_order(2, SELL, 100, 10)
    book.amend(1, 100, 4)
    ev = book.events(EventType.AMENDED)
    assert ev == [(EventType.AMENDED, SELL, AmendPriority.KEPT, 1, 0, 100, 4, 4, 10)]
    book.new_order(3, BUY, 100, 4)
    assert trades(book) == [(3, 1, 100, 4)]


def test_amend_up_loses_priority(book):
    book.new_order(1, SELL, 100, 10)
    book.new_order(2, SELL, 100, 10)
    book.amend(1, 100, 11)
    assert book.events(EventType.AMENDED)[0][2] == AmendPriority.LOST
    book.new_order(3, BUY, 100, 10)
    assert trades(book) == [(3, 2, 100, 10)]


def test_reprice_loses_priority_even_back_to_the_same_level(book):
    book.new_order(1, SELL, 100, 10)
    book.new_order(2, SELL, 100, 10)
    book.amend(1, 101, 10)
    book.amend(1, 100, 10)
    book.events()
    book.new_order(3, BUY, 100, 10)
    assert trades(book) == [(3, 2, 100, 10)]


def test_same_quantity_amend_keeps_priority(book):
    book.new_order(1, BUY, 100, 10)
    book.new_order(2, BUY, 100, 10)
    book.amend(1, 100, 10)
    assert book.events(EventType.AMENDED)[0][2] == AmendPriority.KEPT
    book.new_order(3, SELL, 100, 10)
    assert trades(book) == [(3, 1, 100, 10)]


def test_amend_across_the_spread_trades_as_the_taker(book):
    book.new_order(1, SELL, 101, 5)
    book.new_order(2, BUY, 99, 8)
    book.events()
    book.amend(2, 101, 8)
    assert trades(book) == [(2, 1, 101, 5)]
    assert book.order(2) == (BUY, 101, 3, 0)


def test_cancel_removes_only_that_order(book):
    for oid in (1, 2, 3):
        book.new_order(oid, BUY, 100, 5)
    book.cancel(2)
    assert [o[0] for o in book.resting_orders()] == [1, 3]
    assert book.depth(BUY, 5) == [(100, 10, 2)]

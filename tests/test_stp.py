"""Self-trade prevention by account, in the four modes brokers expect."""
from conftest import trades

from matching.constants import CancelReason, EventType, Side, StpMode, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
CXL, DEC, TRD = EventType.CANCELLED, EventType.DECREMENTED, EventType.TRADE
STP = CancelReason.SELF_TRADE


def _resting_sells(book):
    book.new_order(1, SELL, 100, 5, account=7)     # same account as the taker below
    book.new_order(2, SELL, 100, 5, account=8)
    book.events()


def test_cancel_resting_removes_own_order_and_keeps_matching(book):
    _resting_sells(book)
    book.new_order(3, BUY, 100, 5, account=7, stp=StpMode.CANCEL_RESTING)
    assert book.events(CXL, TRD) == [(CXL, SELL, STP, 1, 0, 100, 5, 0, 0),
                                     (TRD, BUY, 0, 3, 2, 100, 5, 0, 0)]


def test_cancel_incoming_stops_at_own_order(book):
    _resting_sells(book)
    book.new_order(3, BUY, 100, 5, account=7, stp=StpMode.CANCEL_INCOMING)
    assert book.events(CXL, TRD) == [(CXL, BUY, STP, 3, 0, 100, 5, 0, 0)]
    assert book.order(1) == (SELL, 100, 5, 7)


def test_cancel_both_cancels_resting_then_incoming(book):
    _resting_sells(book)
    book.new_order(3, BUY, 100, 5, account=7, stp=StpMode.CANCEL_BOTH)
    assert book.events(CXL, TRD) == [(CXL, SELL, STP, 1, 0, 100, 5, 0, 0),
                                     (CXL, BUY, STP, 3, 0, 100, 5, 0, 0)]
    assert book.order(2) == (SELL, 100, 5, 8)


def test_decrement_and_cancel_reduces_both_by_the_smaller(book):
    _resting_sells(book)
    book.new_order(3, BUY, 100, 8, account=7, stp=StpMode.DECREMENT_AND_CANCEL)
    assert book.events(CXL, DEC, TRD) == [
        (CXL, SELL, STP, 1, 0, 100, 5, 0, 0),         # resting 5 == d: cancelled
        (DEC, BUY, STP, 3, 0, 100, 5, 3, 0),          # incoming 8 -> 3, goes on
        (TRD, BUY, 0, 3, 2, 100, 3, 0, 2),
    ]


def test_decrement_and_cancel_keeps_the_larger_resting_order_in_place(book):
    book.new_order(1, SELL, 100, 9, account=7)
    book.new_order(2, SELL, 100, 5, account=8)
    book.events()
    book.new_order(3, BUY, 100, 4, account=7, stp=StpMode.DECREMENT_AND_CANCEL)
    assert book.events(CXL, DEC, TRD) == [(DEC, SELL, STP, 1, 0, 100, 4, 5, 0),
                                          (CXL, BUY, STP, 3, 0, 100, 4, 0, 0)]
    assert [o[0] for o in book.resting_orders()] == [1, 2]


def test_account_zero_never_self_trades(book):
    book.new_order(1, SELL, 100, 5, account=0)
    book.events()
    book.new_order(2, BUY, 100, 5, account=0, stp=StpMode.CANCEL_BOTH)
    assert trades(book) == [(2, 1, 100, 5)]


def test_stp_none_lets_an_account_trade_with_itself(book):
    book.new_order(1, SELL, 100, 5, account=7)
    book.events()
    book.new_order(2, BUY, 100, 5, account=7, stp=StpMode.NONE)
    assert trades(book) == [(2, 1, 100, 5)]


def test_fok_does_not_count_own_orders_as_fillable(book):
    _resting_sells(book)
    book.new_order(3, BUY, 100, 6, account=7, stp=StpMode.CANCEL_RESTING, tif=TimeInForce.FOK)
    assert book.events(CXL, TRD) == [(CXL, BUY, CancelReason.FOK_NOT_FILLED, 3, 0, 100, 6, 0, 0)]
    assert len(book) == 2      # a failed FOK cancels nothing of the book

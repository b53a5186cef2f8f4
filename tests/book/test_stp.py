"""Self-trade prevention by account: the incoming order's mode decides, account 0 never
self-trades, and the FOK/min_qty fillable walk sees STP exactly as matching would."""
import pytest

from matching.constants import CancelReason as C
from matching.constants import OrdType
from matching.constants import StpMode as S
from matching.constants import TimeInForce as T
from testkit.books import (
    BUY,
    SELL,
    accepted,
    cancelled,
    decremented,
    level,
    lost,
    trade,
)

STP = C.SELF_TRADE
OWN, OTHER = 7, 8


def _own_then_other(book):
    """Two asks at 100: the taker's own account first, then another account."""
    book.new_order(1, SELL, 100, 5, account=OWN)
    book.new_order(2, SELL, 100, 5, account=OTHER)


# ---------------------------------------------------------------------- the four modes
def test_cancel_resting_cancels_own_order_and_keeps_matching(book):
    _own_then_other(book)
    book.new_order(3, BUY, 100, 5, account=OWN, stp=S.CANCEL_RESTING)
    assert book.last == [
        accepted(BUY, 3, 100, 5),
        cancelled(SELL, STP, 1, 100, 5),
        trade(BUY, 3, 2, 100, 5, 0, 0),
        level(SELL, 100, 0, 0),
    ]


def test_cancel_resting_clears_own_orders_over_several_levels(book):
    book.new_order(1, SELL, 100, 5, account=OWN)
    book.new_order(2, SELL, 101, 5, account=OWN)
    book.new_order(3, SELL, 101, 5, account=OTHER)
    book.new_order(4, BUY, 101, 8, account=OWN, stp=S.CANCEL_RESTING)
    assert book.last == [
        accepted(BUY, 4, 101, 8),
        cancelled(SELL, STP, 1, 100, 5),
        cancelled(SELL, STP, 2, 101, 5),
        trade(BUY, 4, 3, 101, 5, 3, 0),
        level(SELL, 100, 0, 0),
        level(SELL, 101, 0, 0),
        level(BUY, 101, 3, 1),
    ]


def test_cancel_incoming_stops_at_own_order(book):
    _own_then_other(book)
    book.new_order(3, BUY, 100, 5, account=OWN, stp=S.CANCEL_INCOMING)
    # Nothing changed on the ask level, so no LEVEL event.
    assert book.last == [accepted(BUY, 3, 100, 5), cancelled(BUY, STP, 3, 100, 5)]
    assert [o[0] for o in book.resting_orders()] == [1, 2]


def test_cancel_incoming_after_partial_fills_cancels_only_the_rest(book):
    book.new_order(1, SELL, 100, 3, account=OTHER)
    book.new_order(2, SELL, 100, 5, account=OWN)
    book.new_order(3, SELL, 100, 5, account=OTHER)
    book.new_order(4, BUY, 100, 10, account=OWN, stp=S.CANCEL_INCOMING)
    assert book.last == [
        accepted(BUY, 4, 100, 10),
        trade(BUY, 4, 1, 100, 3, 7, 0),
        cancelled(BUY, STP, 4, 100, 7),
        level(SELL, 100, 10, 2),
    ]


def test_cancel_both_cancels_resting_then_incoming(book):
    _own_then_other(book)
    book.new_order(3, BUY, 100, 5, account=OWN, stp=S.CANCEL_BOTH)
    assert book.last == [
        accepted(BUY, 3, 100, 5),
        cancelled(SELL, STP, 1, 100, 5),
        cancelled(BUY, STP, 3, 100, 5),
        level(SELL, 100, 5, 1),
    ]
    assert book.resting_orders() == [(2, SELL, 100, 5, OTHER, 0, False)]


def test_decrement_and_cancel_incoming_larger(book):
    # d = 5 = resting leaves: the resting order is cancelled; the incoming is
    # decremented 8 -> 3 and goes on matching.
    _own_then_other(book)
    book.new_order(3, BUY, 100, 8, account=OWN, stp=S.DECREMENT_AND_CANCEL)
    assert book.last == [
        accepted(BUY, 3, 100, 8),
        cancelled(SELL, STP, 1, 100, 5),
        decremented(BUY, 3, 100, 5, 3),
        trade(BUY, 3, 2, 100, 3, 0, 2),
        level(SELL, 100, 2, 1),
    ]


def test_decrement_and_cancel_resting_larger_keeps_its_place(book):
    book.new_order(1, SELL, 100, 9, account=OWN)
    book.new_order(2, SELL, 100, 5, account=OTHER)
    book.new_order(3, BUY, 100, 4, account=OWN, stp=S.DECREMENT_AND_CANCEL)
    assert book.last == [
        accepted(BUY, 3, 100, 4),
        decremented(SELL, 1, 100, 4, 5),
        cancelled(BUY, STP, 3, 100, 4),
        level(SELL, 100, 10, 2),
    ]
    assert [o[:4] for o in book.resting_orders()] == [(1, SELL, 100, 5), (2, SELL, 100, 5)]


def test_decrement_and_cancel_equal_sizes_cancels_both_resting_first(book):
    book.new_order(1, BUY, 100, 6, account=OWN)
    book.new_order(2, SELL, 100, 6, account=OWN, stp=S.DECREMENT_AND_CANCEL)
    assert book.last == [
        accepted(SELL, 2, 100, 6),
        cancelled(BUY, STP, 1, 100, 6),
        cancelled(SELL, STP, 2, 100, 6),
        level(BUY, 100, 0, 0),
    ]
    assert len(book) == 0


def test_decrement_and_cancel_then_rest(book):
    book.new_order(1, SELL, 100, 2, account=OWN)
    book.new_order(2, BUY, 100, 5, account=OWN, stp=S.DECREMENT_AND_CANCEL)
    assert book.last == [
        accepted(BUY, 2, 100, 5),
        cancelled(SELL, STP, 1, 100, 2),
        decremented(BUY, 2, 100, 2, 3),
        level(SELL, 100, 0, 0),
        level(BUY, 100, 3, 1),
    ]


def test_stp_events_of_a_market_order_carry_price_zero(book):
    book.new_order(1, BUY, 100, 9, account=OWN)
    book.new_order(2, SELL, 0, 4, ord_type=OrdType.MARKET, account=OWN,
                   stp=S.DECREMENT_AND_CANCEL)
    assert book.last == [accepted(SELL, 2, 0, 4), decremented(BUY, 1, 100, 4, 5),
                         cancelled(SELL, STP, 2, 0, 4), level(BUY, 100, 5, 1)]


# ---------------------------------------------------------------------- who is a self-trade
@pytest.mark.parametrize("mode", list(S))
def test_account_zero_never_self_trades(book, mode):
    book.new_order(1, SELL, 100, 5, account=0)
    book.new_order(2, BUY, 100, 5, account=0, stp=mode)
    assert book.last == [accepted(BUY, 2, 100, 5), trade(BUY, 2, 1, 100, 5, 0, 0),
                         level(SELL, 100, 0, 0)]


def test_a_real_account_trades_with_account_zero(book):
    book.new_order(1, SELL, 100, 5, account=0)
    book.new_order(2, BUY, 100, 5, account=OWN, stp=S.CANCEL_BOTH)
    assert book.last == [accepted(BUY, 2, 100, 5), trade(BUY, 2, 1, 100, 5, 0, 0),
                         level(SELL, 100, 0, 0)]


def test_stp_none_lets_an_account_trade_with_itself(book):
    book.new_order(1, SELL, 100, 5, account=OWN)
    book.new_order(2, BUY, 100, 5, account=OWN, stp=S.NONE)
    assert book.last == [accepted(BUY, 2, 100, 5), trade(BUY, 2, 1, 100, 5, 0, 0),
                         level(SELL, 100, 0, 0)]


def test_the_resting_orders_mode_plays_no_part(book):
    book.new_order(1, SELL, 100, 5, account=OWN, stp=S.CANCEL_BOTH)
    book.new_order(2, BUY, 100, 5, account=OWN)
    assert book.last == [accepted(BUY, 2, 100, 5), trade(BUY, 2, 1, 100, 5, 0, 0),
                         level(SELL, 100, 0, 0)]


def test_different_accounts_trade(book):
    book.new_order(1, SELL, 100, 5, account=OTHER)
    book.new_order(2, BUY, 100, 5, account=OWN, stp=S.CANCEL_BOTH)
    assert book.last == [accepted(BUY, 2, 100, 5), trade(BUY, 2, 1, 100, 5, 0, 0),
                         level(SELL, 100, 0, 0)]


def test_amend_that_crosses_uses_the_orders_own_stp(book):
    book.new_order(1, BUY, 99, 5, account=OWN, stp=S.CANCEL_INCOMING)
    book.new_order(2, SELL, 101, 5, account=OWN)
    book.amend(1, 101, 5)
    assert book.last == [lost(BUY, 1, 101, 5, 5), cancelled(BUY, STP, 1, 101, 5),
                         level(BUY, 99, 0, 0)]
    assert book.order(1) is None and book.order(2) == (SELL, 101, 5, OWN)


# ---------------------------------------------------------------------- fillable walk
def test_fok_does_not_count_own_orders_under_cancel_resting(book):
    _own_then_other(book)
    book.new_order(3, BUY, 100, 6, account=OWN, stp=S.CANCEL_RESTING, tif=T.FOK)
    assert book.last == [accepted(BUY, 3, 100, 6), cancelled(BUY, C.FOK_NOT_FILLED, 3, 100, 6)]
    assert len(book) == 2          # a failed FOK cancels nothing of the book


def test_fok_skips_own_orders_under_cancel_resting_and_fills_from_the_rest(book):
    _own_then_other(book)
    book.new_order(3, SELL, 101, 4, account=OTHER)
    book.new_order(4, BUY, 101, 9, account=OWN, stp=S.CANCEL_RESTING, tif=T.FOK)
    assert book.last == [
        accepted(BUY, 4, 101, 9),
        cancelled(SELL, STP, 1, 100, 5),
        trade(BUY, 4, 2, 100, 5, 4, 0),
        trade(BUY, 4, 3, 101, 4, 0, 0),
        level(SELL, 100, 0, 0),
        level(SELL, 101, 0, 0),
    ]


@pytest.mark.parametrize("mode", [S.CANCEL_INCOMING, S.CANCEL_BOTH])
def test_fok_walk_stops_at_own_order_under_cancel_incoming_or_both(book, mode):
    book.new_order(1, SELL, 100, 2, account=OTHER)
    book.new_order(2, SELL, 100, 5, account=OWN)
    book.new_order(3, SELL, 101, 50, account=OTHER)     # plenty, but behind own order
    book.new_order(4, BUY, 101, 3, account=OWN, stp=mode, tif=T.FOK)
    assert book.last == [accepted(BUY, 4, 101, 3), cancelled(BUY, C.FOK_NOT_FILLED, 4, 101, 3)]
    book.new_order(5, BUY, 101, 2, account=OWN, stp=mode, tif=T.FOK)
    assert book.last == [accepted(BUY, 5, 101, 2), trade(BUY, 5, 1, 100, 2, 0, 0),
                         level(SELL, 100, 5, 1)]


def test_fok_walk_under_decrement_and_cancel_does_not_count_the_decrement(book):
    _own_then_other(book)
    # Walk: own 5 reduces the open 6 -> 1, then 1 fills from order 2: fillable 1 < 6.
    book.new_order(3, BUY, 100, 6, account=OWN, stp=S.DECREMENT_AND_CANCEL, tif=T.FOK)
    assert book.last == [accepted(BUY, 3, 100, 6), cancelled(BUY, C.FOK_NOT_FILLED, 3, 100, 6)]
    assert len(book) == 2


def test_min_qty_walk_under_decrement_and_cancel(book):
    _own_then_other(book)
    # Walk of 8: own 5 reduces the open to 3, order 2 fills 3: fillable 3.
    book.new_order(3, BUY, 100, 8, account=OWN, stp=S.DECREMENT_AND_CANCEL, min_qty=4)
    assert book.last == [accepted(BUY, 3, 100, 8), cancelled(BUY, C.MIN_QTY_NOT_MET, 3, 100, 8)]
    book.new_order(4, BUY, 100, 8, account=OWN, stp=S.DECREMENT_AND_CANCEL, min_qty=3)
    assert book.last == [
        accepted(BUY, 4, 100, 8),
        cancelled(SELL, STP, 1, 100, 5),
        decremented(BUY, 4, 100, 5, 3),
        trade(BUY, 4, 2, 100, 3, 0, 2),
        level(SELL, 100, 2, 1),
    ]


def test_min_qty_walk_skips_own_orders_under_cancel_resting(book):
    _own_then_other(book)
    book.new_order(3, BUY, 100, 10, account=OWN, stp=S.CANCEL_RESTING, min_qty=6)
    assert book.last == [accepted(BUY, 3, 100, 10),
                         cancelled(BUY, C.MIN_QTY_NOT_MET, 3, 100, 10)]
    assert len(book) == 2

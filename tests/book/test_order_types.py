"""Order types and times in force: IOC, FOK, market, min quantity, post-only, DAY/GTD."""
import pytest

from matching.constants import CancelReason as C
from matching.constants import OrdType
from matching.constants import RejectReason as R
from matching.constants import TimeInForce as T
from testkit.books import (
    BUY,
    SELL,
    accepted,
    cancelled,
    expired,
    level,
    lost,
    rejected,
    trade,
)

MARKET = OrdType.MARKET


def _two_asks(book):
    book.new_order(1, SELL, 100, 4)
    book.new_order(2, SELL, 101, 4)


# ---------------------------------------------------------------------- IOC
def test_ioc_remainder_is_cancelled_never_rests(book):
    _two_asks(book)
    book.new_order(3, BUY, 100, 10, tif=T.IOC)
    assert book.last == [
        accepted(BUY, 3, 100, 10),
        trade(BUY, 3, 1, 100, 4, 6, 0),
        cancelled(BUY, C.IOC_REMAINDER, 3, 100, 6),
        level(SELL, 100, 0, 0),
    ]
    assert book.order(3) is None and book.best_bid() is None


def test_ioc_that_meets_nothing_is_cancelled_whole_and_touches_no_level(book):
    _two_asks(book)
    book.new_order(3, BUY, 99, 10, tif=T.IOC)
    assert book.last == [accepted(BUY, 3, 99, 10), cancelled(BUY, C.IOC_REMAINDER, 3, 99, 10)]


def test_ioc_filled_in_full_has_no_cancel(book):
    _two_asks(book)
    book.new_order(3, BUY, 101, 6, tif=T.IOC)
    assert book.last == [accepted(BUY, 3, 101, 6), trade(BUY, 3, 1, 100, 4, 2, 0),
                         trade(BUY, 3, 2, 101, 2, 0, 2), level(SELL, 100, 0, 0),
                         level(SELL, 101, 2, 1)]


# ---------------------------------------------------------------------- FOK
def test_fok_that_cannot_fill_completely_trades_nothing(book):
    _two_asks(book)
    before = book.resting_orders()
    book.new_order(3, BUY, 101, 9, tif=T.FOK)
    assert book.last == [accepted(BUY, 3, 101, 9), cancelled(BUY, C.FOK_NOT_FILLED, 3, 101, 9)]
    assert book.resting_orders() == before


def test_fok_counts_only_prices_within_its_limit(book):
    _two_asks(book)
    book.new_order(3, BUY, 100, 5, tif=T.FOK)
    assert book.last == [accepted(BUY, 3, 100, 5), cancelled(BUY, C.FOK_NOT_FILLED, 3, 100, 5)]


def test_fok_that_can_fill_fills_completely(book):
    _two_asks(book)
    book.new_order(3, BUY, 101, 8, tif=T.FOK)
    assert book.last == [
        accepted(BUY, 3, 101, 8),
        trade(BUY, 3, 1, 100, 4, 4, 0),
        trade(BUY, 3, 2, 101, 4, 0, 0),
        level(SELL, 100, 0, 0),
        level(SELL, 101, 0, 0),
    ]


def test_fok_sell_side(book):
    book.new_order(1, BUY, 100, 4)
    book.new_order(2, BUY, 99, 4)
    book.new_order(3, SELL, 99, 7, tif=T.FOK)
    assert book.last == [accepted(SELL, 3, 99, 7), trade(SELL, 3, 1, 100, 4, 3, 0),
                         trade(SELL, 3, 2, 99, 3, 0, 1), level(BUY, 100, 0, 0),
                         level(BUY, 99, 1, 1)]
    book.new_order(4, SELL, 99, 2, tif=T.FOK)
    assert book.last == [accepted(SELL, 4, 99, 2), cancelled(SELL, C.FOK_NOT_FILLED, 4, 99, 2)]


# ---------------------------------------------------------------------- market
@pytest.mark.parametrize("tif", [T.DAY, T.GTC, T.IOC, T.GTD])
def test_market_order_never_rests_whatever_its_tif(book, tif):
    book.new_order(1, SELL, 100, 3)
    book.new_order(2, BUY, 0, 10, ord_type=MARKET, tif=tif, expire_time=5)
    assert book.last == [
        accepted(BUY, 2, 0, 10),
        trade(BUY, 2, 1, 100, 3, 7, 0),
        cancelled(BUY, C.MARKET_REMAINDER, 2, 0, 7),
        level(SELL, 100, 0, 0),
    ]
    assert book.order(2) is None and len(book) == 0


def test_market_order_on_an_empty_side_is_cancelled_whole(book):
    book.new_order(1, BUY, 100, 3)
    book.new_order(2, BUY, 0, 10, ord_type=MARKET)
    assert book.last == [accepted(BUY, 2, 0, 10), cancelled(BUY, C.MARKET_REMAINDER, 2, 0, 10)]


def test_market_order_sweeps_every_price_and_ignores_its_price_field(book):
    book.new_order(1, BUY, 19_999, 3)
    book.new_order(2, BUY, 100, 3)
    book.new_order(3, BUY, 0, 3)
    book.new_order(4, SELL, 123_456_789, 8, ord_type=MARKET, tif=T.IOC)
    assert book.last == [
        accepted(SELL, 4, 0, 8),
        trade(SELL, 4, 1, 19_999, 3, 5, 0),
        trade(SELL, 4, 2, 100, 3, 2, 0),
        trade(SELL, 4, 3, 0, 2, 0, 1),
        level(BUY, 19_999, 0, 0),
        level(BUY, 100, 0, 0),
        level(BUY, 0, 1, 1),
    ]


def test_market_fok_keeps_fok_semantics(book):
    _two_asks(book)
    book.new_order(3, BUY, 0, 9, ord_type=MARKET, tif=T.FOK)
    assert book.last == [accepted(BUY, 3, 0, 9), cancelled(BUY, C.FOK_NOT_FILLED, 3, 0, 9)]
    book.new_order(4, BUY, 0, 8, ord_type=MARKET, tif=T.FOK)
    assert book.last == [accepted(BUY, 4, 0, 8), trade(BUY, 4, 1, 100, 4, 4, 0),
                         trade(BUY, 4, 2, 101, 4, 0, 0), level(SELL, 100, 0, 0),
                         level(SELL, 101, 0, 0)]


# ---------------------------------------------------------------------- min_qty
def test_min_qty_not_available_on_entry_cancels_the_whole_order(book):
    book.new_order(1, SELL, 100, 4)
    book.new_order(2, BUY, 100, 10, min_qty=5)
    assert book.last == [accepted(BUY, 2, 100, 10),
                         cancelled(BUY, C.MIN_QTY_NOT_MET, 2, 100, 10)]
    assert book.resting_orders() == [(1, SELL, 100, 4, 0, 0, False)]


def test_min_qty_counts_only_prices_within_the_limit(book):
    _two_asks(book)
    book.new_order(3, BUY, 100, 10, min_qty=5)
    assert book.last == [accepted(BUY, 3, 100, 10),
                         cancelled(BUY, C.MIN_QTY_NOT_MET, 3, 100, 10)]


def test_min_qty_met_on_entry_then_the_rest_rests(book):
    book.new_order(1, SELL, 100, 6)
    book.new_order(2, BUY, 100, 10, min_qty=6)
    assert book.last == [accepted(BUY, 2, 100, 10), trade(BUY, 2, 1, 100, 6, 4, 0),
                         level(SELL, 100, 0, 0), level(BUY, 100, 4, 1)]


def test_min_qty_met_then_an_ioc_rest_is_cancelled(book):
    book.new_order(1, SELL, 100, 6)
    book.new_order(2, BUY, 100, 10, tif=T.IOC, min_qty=5)
    assert book.last == [accepted(BUY, 2, 100, 10), trade(BUY, 2, 1, 100, 6, 4, 0),
                         cancelled(BUY, C.IOC_REMAINDER, 2, 100, 4), level(SELL, 100, 0, 0)]


def test_min_qty_on_a_market_order(book):
    book.new_order(1, BUY, 100, 3)
    book.new_order(2, SELL, 0, 10, ord_type=MARKET, min_qty=4)
    assert book.last == [accepted(SELL, 2, 0, 10), cancelled(SELL, C.MIN_QTY_NOT_MET, 2, 0, 10)]
    book.new_order(3, SELL, 0, 10, ord_type=MARKET, min_qty=3)
    assert book.last == [accepted(SELL, 3, 0, 10), trade(SELL, 3, 1, 100, 3, 7, 0),
                         cancelled(SELL, C.MARKET_REMAINDER, 3, 0, 7), level(BUY, 100, 0, 0)]


def test_min_qty_is_not_checked_again_by_an_amend(book):
    book.new_order(1, SELL, 100, 5)
    book.new_order(2, BUY, 100, 10, min_qty=5)            # met: 5 traded, 5 rest
    book.new_order(3, SELL, 106, 1)
    book.amend(2, 106, 5)                                 # re-enters: 1 lot < min_qty
    assert book.last == [lost(BUY, 2, 106, 5, 5), trade(BUY, 2, 3, 106, 1, 4, 0),
                         level(BUY, 100, 0, 0), level(SELL, 106, 0, 0), level(BUY, 106, 4, 1)]


def test_min_qty_met_leaves_a_resting_order_that_trades_any_size_later(book):
    book.new_order(1, SELL, 100, 5)
    book.new_order(2, BUY, 100, 10, min_qty=5)
    book.new_order(3, SELL, 100, 1)
    assert book.last == [accepted(SELL, 3, 100, 1), trade(SELL, 3, 2, 100, 1, 0, 4),
                         level(BUY, 100, 4, 1)]


# ---------------------------------------------------------------------- post-only
@pytest.mark.parametrize("price", [100, 101])
def test_post_only_buy_that_would_take_is_rejected(book, price):
    book.new_order(1, SELL, 100, 3)
    book.new_order(2, BUY, price, 3, post_only=True)
    assert book.last == [rejected(BUY, R.POST_ONLY_WOULD_TAKE, 2, price, 3)]
    assert book.resting_orders() == [(1, SELL, 100, 3, 0, 0, False)]


@pytest.mark.parametrize("price", [100, 99])
def test_post_only_sell_that_would_take_is_rejected(book, price):
    book.new_order(1, BUY, 100, 3)
    book.new_order(2, SELL, price, 3, post_only=True)
    assert book.last == [rejected(SELL, R.POST_ONLY_WOULD_TAKE, 2, price, 3)]


def test_post_only_that_does_not_cross_rests_as_a_maker(book):
    book.new_order(1, SELL, 100, 3)
    book.new_order(2, BUY, 99, 3, post_only=True)
    assert book.last == [accepted(BUY, 2, 99, 3), level(BUY, 99, 3, 1)]
    book.new_order(3, SELL, 101, 3, post_only=True, tif=T.DAY)
    assert book.last == [accepted(SELL, 3, 101, 3), level(SELL, 101, 3, 1)]
    assert book.resting_orders()[0] == (2, BUY, 99, 3, 0, 0, True)
    book.new_order(4, SELL, 99, 3)
    assert book.last == [accepted(SELL, 4, 99, 3), trade(SELL, 4, 2, 99, 3, 0, 0),
                         level(BUY, 99, 0, 0)]


def test_post_only_on_an_empty_opposite_side_rests(book):
    book.new_order(1, SELL, 0, 3, post_only=True)
    assert book.last == [accepted(SELL, 1, 0, 3), level(SELL, 0, 3, 1)]


def test_post_only_amend_that_would_take_is_rejected_and_order_kept(book):
    book.new_order(1, SELL, 100, 3)
    book.new_order(2, BUY, 99, 3, post_only=True)
    book.amend(2, 100, 3)
    assert book.last == [rejected(0, R.POST_ONLY_WOULD_TAKE, 2, 100, 3)]
    assert book.order(2) == (BUY, 99, 3, 0)


def test_post_only_amend_that_does_not_cross_moves_the_order(book):
    book.new_order(1, SELL, 100, 3)
    book.new_order(2, BUY, 97, 3, post_only=True)
    book.amend(2, 99, 4)
    assert book.last == [lost(BUY, 2, 99, 4, 3), level(BUY, 97, 0, 0), level(BUY, 99, 4, 1)]
    assert book.resting_orders()[0] == (2, BUY, 99, 4, 0, 0, True)


# ---------------------------------------------------------------------- DAY / GTD
def test_day_and_gtd_orders_rest_like_gtc_until_expired(book):
    book.new_order(1, BUY, 100, 5, tif=T.DAY)
    assert book.last == [accepted(BUY, 1, 100, 5), level(BUY, 100, 5, 1)]
    book.new_order(2, BUY, 99, 5, tif=T.GTD, expire_time=1_800_000_000)
    assert book.last == [accepted(BUY, 2, 99, 5), level(BUY, 99, 5, 1)]
    book.expire(2)
    assert book.last == [expired(BUY, 2, 99, 5), level(BUY, 99, 0, 0)]
    assert book.order(2) is None and book.order(1) == (BUY, 100, 5, 0)


def test_expire_takes_the_open_quantity_of_a_partly_filled_order(book):
    book.new_order(1, SELL, 100, 10, tif=T.DAY)
    book.new_order(2, SELL, 100, 1, tif=T.DAY)
    book.new_order(3, BUY, 100, 4)
    book.expire(1)
    assert book.last == [expired(SELL, 1, 100, 6), level(SELL, 100, 1, 1)]


def test_expired_order_is_gone(book):
    book.new_order(1, BUY, 100, 5, tif=T.DAY)
    book.expire(1)
    book.expire(1)
    assert book.last == [rejected(0, R.UNKNOWN_ORDER, 1, 0, 0)]
    book.cancel(1)
    assert book.last == [rejected(0, R.UNKNOWN_ORDER, 1, 0, 0)]


@pytest.mark.parametrize("expire_time", [0, -1])
def test_gtd_without_expiry_is_rejected(book, expire_time):
    book.new_order(1, BUY, 100, 5, tif=T.GTD, expire_time=expire_time)
    assert book.last == [rejected(BUY, R.INVALID_EXPIRE_TIME, 1, 100, 5)]
    assert len(book) == 0


def test_expire_time_is_ignored_by_other_tifs(book):
    book.new_order(1, BUY, 100, 5, tif=T.DAY, expire_time=-7)
    assert book.last == [accepted(BUY, 1, 100, 5), level(BUY, 100, 5, 1)]

"""Order types and times in force: IOC, FOK, market, post-only, min quantity, DAY/GTD."""
from conftest import trades

from matching.constants import CancelReason, EventType, OrdType, RejectReason, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
CXL = EventType.CANCELLED


def test_ioc_remainder_is_cancelled_never_rests(book):
    book.new_order(1, SELL, 100, 4)
    book.events()
    book.new_order(2, BUY, 100, 10, tif=TimeInForce.IOC)
    assert trades(book) == [(2, 1, 100, 4)]
    assert book.order(2) is None and len(book) == 0


def test_ioc_remainder_cancel_event_carries_the_unfilled_quantity(book):
    book.new_order(1, SELL, 100, 4)
    book.events()
    book.new_order(2, BUY, 100, 10, tif=TimeInForce.IOC)
    assert book.events(CXL) == [(CXL, BUY, CancelReason.IOC_REMAINDER, 2, 0, 100, 6, 0, 0)]


def test_fok_fills_completely_or_not_at_all(book):
    book.new_order(1, SELL, 100, 4)
    book.new_order(2, SELL, 101, 4)
    book.events()
    book.new_order(3, BUY, 101, 9, tif=TimeInForce.FOK)
    assert trades(book) == []
    assert book.depth(SELL, 5) == [(100, 4, 1), (101, 4, 1)]
    book.new_order(4, BUY, 101, 8, tif=TimeInForce.FOK)
    assert trades(book) == [(4, 1, 100, 4), (4, 2, 101, 4)]


def test_fok_that_cannot_fill_is_cancelled_with_its_reason(book):
    book.new_order(3, BUY, 101, 9, tif=TimeInForce.FOK)
    assert book.events(CXL) == [(CXL, BUY, CancelReason.FOK_NOT_FILLED, 3, 0, 101, 9, 0, 0)]


def test_market_order_never_rests(book):
    book.new_order(1, SELL, 100, 3)
    book.events()
    book.new_order(2, BUY, 0, 10, ord_type=OrdType.MARKET, tif=TimeInForce.GTC)
    assert trades(book) == [(2, 1, 100, 3)]
    assert book.order(2) is None and book.best_bid() is None


def test_market_order_sweeps_every_price(book):
    book.new_order(1, BUY, 100, 3)
    book.new_order(2, BUY, 5, 3)
    book.events()
    book.new_order(3, SELL, 0, 6, ord_type=OrdType.MARKET, tif=TimeInForce.IOC)
    assert trades(book) == [(3, 1, 100, 3), (3, 2, 5, 3)]


def test_post_only_that_would_take_is_rejected(book):
    book.new_order(1, SELL, 100, 3)
    book.events()
    book.new_order(2, BUY, 100, 3, post_only=True)
    assert book.events() == [(EventType.REJECTED, BUY, RejectReason.POST_ONLY_WOULD_TAKE, 2, 0,
                              100, 3, 0, 0)]
    book.new_order(3, BUY, 99, 3, post_only=True)
    assert book.order(3) == (BUY, 99, 3, 0)


def test_post_only_amend_that_would_take_is_rejected_and_order_kept(book):
    book.new_order(1, SELL, 100, 3)
    book.new_order(2, BUY, 99, 3, post_only=True)
    book.events()
    book.amend(2, 100, 3)
    assert book.events()[0][2] == RejectReason.POST_ONLY_WOULD_TAKE
    assert book.order(2) == (BUY, 99, 3, 0)


def test_min_qty_not_available_on_entry_cancels_the_order(book):
    book.new_order(1, SELL, 100, 4)
    book.events()
    book.new_order(2, BUY, 100, 10, min_qty=5)
    assert book.events(EventType.TRADE, CXL) == [
        (CXL, BUY, CancelReason.MIN_QTY_NOT_MET, 2, 0, 100, 10, 0, 0)]
    assert book.order(2) is None and book.order(1) == (SELL, 100, 4, 0)


def test_min_qty_met_on_entry_then_the_rest_rests(book):
    book.new_order(1, SELL, 100, 6)
    book.events()
    book.new_order(2, BUY, 100, 10, min_qty=5)
    assert trades(book) == [(2, 1, 100, 6)]
    assert book.order(2) == (BUY, 100, 4, 0)


def test_day_and_gtd_orders_rest_until_expired(book):
    book.new_order(1, BUY, 100, 5, tif=TimeInForce.DAY)
    book.new_order(2, BUY, 99, 5, tif=TimeInForce.GTD, expire_time=1_800_000_000)
    assert len(book) == 2
    book.events()
    book.expire(2)
    assert book.events(EventType.EXPIRED) == [(EventType.EXPIRED, BUY, CancelReason.EXPIRED, 2, 0,
                                               99, 5, 0, 0)]
    assert book.order(2) is None and book.order(1) is not None


def test_gtd_without_expiry_is_rejected(book):
    book.new_order(1, BUY, 100, 5, tif=TimeInForce.GTD)
    assert book.events()[0][:3] == (EventType.REJECTED, BUY, RejectReason.INVALID_EXPIRE_TIME)

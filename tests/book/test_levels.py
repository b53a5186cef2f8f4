"""LEVEL events: one per level the command changed, after every other event, in the order
the command first touched them, with the level's final state; and the depth a feed
rebuilds from them always equals the book (the trap liquibook fell into: IOC rests,
cancelled FOKs and market remainders must never linger in published depth)."""
from matching.constants import CancelReason as C
from matching.constants import EventType, OrdType
from matching.constants import StpMode as S
from matching.constants import TimeInForce as T
from testkit.books import (
    BUY,
    SELL,
    PublishedDepth,
    accepted,
    cancelled,
    decremented,
    expired,
    kept,
    level,
    lost,
    recount,
    trade,
    user_cancelled,
)


def test_sweep_then_rest_reports_levels_in_first_touch_order(book):
    book.new_order(1, SELL, 102, 5)
    book.new_order(2, SELL, 101, 5)
    book.new_order(3, BUY, 102, 12)
    assert book.last == [
        accepted(BUY, 3, 102, 12),
        trade(BUY, 3, 2, 101, 5, 7, 0),
        trade(BUY, 3, 1, 102, 5, 2, 0),
        level(SELL, 101, 0, 0),          # touched first (best price trades first)
        level(SELL, 102, 0, 0),
        level(BUY, 102, 2, 1),           # the rest joins its level last
    ]


def test_a_level_touched_many_times_is_reported_once_with_its_final_state(book):
    for oid in (1, 2, 3):
        book.new_order(oid, SELL, 100, 5)
    book.new_order(4, BUY, 100, 12)
    assert book.last[-1] == level(SELL, 100, 3, 1)
    assert [e[0] for e in book.last].count(EventType.LEVEL) == 1


def test_new_order_that_rests_at_a_new_and_an_existing_level(book):
    book.new_order(1, BUY, 100, 5)
    assert book.last == [accepted(BUY, 1, 100, 5), level(BUY, 100, 5, 1)]
    book.new_order(2, BUY, 100, 7)
    assert book.last == [accepted(BUY, 2, 100, 7), level(BUY, 100, 12, 2)]


def test_cancel_and_expire_report_their_level(book):
    book.new_order(1, BUY, 100, 5)
    book.new_order(2, BUY, 100, 7, tif=T.DAY)
    book.cancel(1)
    assert book.last == [user_cancelled(BUY, 1, 100, 5), level(BUY, 100, 7, 1)]
    book.expire(2)
    assert book.last == [expired(BUY, 2, 100, 7), level(BUY, 100, 0, 0)]
    assert book.depth(BUY, 5) == []


def test_amend_in_place_reports_its_level_even_when_nothing_changed(book):
    book.new_order(1, BUY, 100, 5)
    book.amend(1, 100, 5)
    assert book.last == [kept(BUY, 1, 100, 5, 5), level(BUY, 100, 5, 1)]
    book.amend(1, 100, 2)
    assert book.last == [kept(BUY, 1, 100, 2, 5), level(BUY, 100, 2, 1)]


def test_amend_that_moves_reports_old_level_then_traded_levels_then_new_level(book):
    book.new_order(1, SELL, 101, 2)
    book.new_order(2, SELL, 102, 2)
    book.new_order(3, BUY, 99, 6)
    book.new_order(4, BUY, 99, 1)
    book.amend(3, 103, 6)
    assert book.last == [
        lost(BUY, 3, 103, 6, 6),
        trade(BUY, 3, 1, 101, 2, 4, 0),
        trade(BUY, 3, 2, 102, 2, 2, 0),
        level(BUY, 99, 1, 1),
        level(SELL, 101, 0, 0),
        level(SELL, 102, 0, 0),
        level(BUY, 103, 2, 1),
    ]


def test_amend_up_at_the_same_price_reports_the_level_once(book):
    book.new_order(1, SELL, 100, 5)
    book.new_order(2, SELL, 100, 5)
    book.amend(1, 100, 9)
    assert book.last == [lost(SELL, 1, 100, 9, 5), level(SELL, 100, 14, 2)]


def test_walking_past_levels_does_not_touch_them(book):
    book.new_order(1, SELL, 100, 5, account=7)
    book.new_order(2, SELL, 101, 5)
    book.new_order(3, BUY, 101, 20, tif=T.FOK)                       # FOK check fails
    assert book.last == [accepted(BUY, 3, 101, 20), cancelled(BUY, C.FOK_NOT_FILLED, 3, 101, 20)]
    book.new_order(4, BUY, 101, 20, min_qty=11)                      # min_qty check fails
    assert book.last == [accepted(BUY, 4, 101, 20), cancelled(BUY, C.MIN_QTY_NOT_MET, 4, 101, 20)]
    book.new_order(5, BUY, 101, 20, account=7, stp=S.CANCEL_INCOMING)  # STP stop
    assert book.last == [accepted(BUY, 5, 101, 20), cancelled(BUY, C.SELF_TRADE, 5, 101, 20)]


def test_stp_changes_touch_levels_in_order(book):
    book.new_order(1, SELL, 100, 9, account=7)
    book.new_order(2, SELL, 101, 3, account=7)
    book.new_order(3, BUY, 101, 4, account=7, stp=S.DECREMENT_AND_CANCEL)
    assert book.last == [accepted(BUY, 3, 101, 4), decremented(SELL, 1, 100, 4, 5),
                         cancelled(BUY, C.SELF_TRADE, 3, 101, 4), level(SELL, 100, 5, 1)]
    book.new_order(4, BUY, 101, 1, account=7, stp=S.CANCEL_RESTING)
    assert book.last == [accepted(BUY, 4, 101, 1), cancelled(SELL, C.SELF_TRADE, 1, 100, 5),
                         cancelled(SELL, C.SELF_TRADE, 2, 101, 3), level(SELL, 100, 0, 0),
                         level(SELL, 101, 0, 0), level(BUY, 101, 1, 1)]


def test_rejected_commands_report_no_level(book):
    book.new_order(1, BUY, 100, 5)
    book.new_order(1, BUY, 100, 5)
    book.amend(1, 100, 0)
    book.cancel(9)
    types = [e.type for e in book.take_events()[2:]]
    assert types == [EventType.REJECTED] * 3


def test_depth_equals_a_recount_after_ioc_fok_market_and_stp(book):
    # The book fixture already compares the LEVEL-built depth, depth() and a recount
    # after every command; this pins the final book of a mixed sequence too.
    book.new_order(1, SELL, 100, 5, account=1)
    book.new_order(2, SELL, 101, 5, account=2)
    book.new_order(3, BUY, 98, 5, account=3)
    book.new_order(4, BUY, 101, 20, tif=T.IOC, account=4)             # sweeps, rest cancelled
    assert book.last[-3:] == [cancelled(BUY, C.IOC_REMAINDER, 4, 101, 10),
                              level(SELL, 100, 0, 0), level(SELL, 101, 0, 0)]
    assert book.depth(BUY, 5) == [(98, 5, 1)] and book.depth(SELL, 5) == []
    book.new_order(5, SELL, 90, 50, tif=T.FOK)                         # cannot fill: no change
    book.new_order(6, SELL, 0, 2, ord_type=OrdType.MARKET)             # takes 2 of order 3
    book.new_order(7, SELL, 100, 5, account=3)
    book.new_order(8, BUY, 100, 9, account=3, stp=S.DECREMENT_AND_CANCEL)
    book.new_order(9, BUY, 97, 4, account=3, stp=S.CANCEL_RESTING)
    book.new_order(10, SELL, 97, 6, account=3, stp=S.CANCEL_BOTH, tif=T.IOC)  # cancels 8
    book.new_order(11, BUY, 0, 3, ord_type=OrdType.MARKET, tif=T.FOK)  # empty asks: FOK fails
    book.new_order(12, SELL, 98, 5, min_qty=2)                         # 3 from order 3, 2 rest
    published = PublishedDepth()
    published.apply([tuple(e) for e in book.take_events()])
    for side in (BUY, SELL):
        assert published.depth(side) == recount(book, side) == book.depth(side, 100)
    assert book.depth(BUY, 100) == [(97, 4, 1)]
    assert book.depth(SELL, 100) == [(98, 2, 1)]
    assert book.resting_orders() == [(9, BUY, 97, 4, 3, S.CANCEL_RESTING, False),
                                     (12, SELL, 98, 2, 0, 0, False)]


def test_best_bid_and_ask_follow_the_levels(book):
    assert (book.best_bid(), book.best_ask()) == (None, None)
    book.new_order(1, BUY, 100, 5)
    book.new_order(2, BUY, 102, 5)
    book.new_order(3, SELL, 105, 5)
    book.new_order(4, SELL, 104, 5)
    assert (book.best_bid(), book.best_ask()) == (102, 104)
    book.cancel(2)
    book.new_order(5, BUY, 104, 5)
    assert (book.best_bid(), book.best_ask()) == (100, 105)

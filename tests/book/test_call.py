"""Call mode and the uncross, on both books: what a call accepts, refuses and rests, how
cancels and amends behave in it, and what the uncross emits (docs/matching-rules.md,
"Call auction"). The price rules themselves are pinned in tests/book/test_call_price.py."""
from __future__ import annotations

from decimal import Decimal

import pytest

from matching.constants import CancelReason as C
from matching.constants import OrdType, StpMode
from matching.constants import RejectReason as R
from matching.constants import TimeInForce as T
from testkit.books import (
    BUY,
    SELL,
    accepted,
    cancelled,
    kept,
    level,
    lost,
    rejected,
    trade,
    user_cancelled,
)

MKT = OrdType.MARKET


def auction_leftover(side, oid, price, qty):
    return cancelled(side, C.AUCTION_REMAINDER, oid, price, qty)


@pytest.fixture
def call(book):
    book.set_call(True)
    return book


# ---------------------------------------------------------------------- what a call takes
def test_crossing_limits_rest_in_a_call_without_trading(call):
    call.new_order(1, SELL, 100, 5)
    call.new_order(2, BUY, 101, 3, tif=T.DAY)
    assert call.last == [accepted(BUY, 2, 101, 3), level(BUY, 101, 3, 1)]
    assert (call.best_bid(), call.best_ask()) == (101, 100)      # crossed, as a call may be


def test_market_orders_rest_in_a_call_ahead_of_every_level_and_off_the_depth(call):
    call.new_order(1, BUY, 105, 2)
    call.new_order(2, BUY, 0, 4, ord_type=MKT, tif=T.GTD, expire_time=9)
    assert call.last == [accepted(BUY, 2, 0, 4)]                 # no level: no LEVEL event
    call.new_order(3, BUY, 0, 1, ord_type=MKT, tif=T.GFA)
    assert [o[:4] for o in call.resting_orders()] == [(2, BUY, None, 4), (3, BUY, None, 1),
                                                      (1, BUY, 105, 2)]
    assert call.order(2) == (BUY, None, 4, 0)
    assert call.depth(BUY, 5) == [(105, 2, 1)]


@pytest.mark.parametrize("tif", [T.DAY, T.GTC, T.GTD, T.GFA])
def test_limit_and_market_orders_of_every_resting_tif_enter_a_call(call, tif):
    call.new_order(1, SELL, 100, 5, tif=tif, expire_time=7)
    call.new_order(2, BUY, 0, 5, ord_type=MKT, tif=tif, expire_time=7)
    assert len(call) == 2


@pytest.mark.parametrize("tif,min_qty", [(T.IOC, 0), (T.FOK, 0), (T.GTC, 1), (T.DAY, 5)])
def test_orders_that_need_an_execution_now_are_refused_in_a_call(call, tif, min_qty):
    call.new_order(1, BUY, 100, 5, tif=tif, min_qty=min_qty)
    assert call.last == [rejected(BUY, R.IMMEDIATE_IN_CALL, 1, 100, 5)]
    call.new_order(2, SELL, 0, 5, ord_type=MKT, tif=tif, min_qty=min_qty)
    assert call.last == [rejected(SELL, R.IMMEDIATE_IN_CALL, 2, 0, 5)]
    assert len(call) == 0


def test_post_only_is_refused_in_a_call(call):
    call.new_order(1, BUY, 100, 5, post_only=True)
    assert call.last == [rejected(BUY, R.POST_ONLY_IN_CALL, 1, 100, 5)]


def test_good_for_auction_is_refused_in_continuous_trading(book):
    book.new_order(1, BUY, 100, 5, tif=T.GFA)
    assert book.last == [rejected(BUY, R.AUCTION_ONLY, 1, 100, 5)]


def test_duplicate_ids_and_a_full_book_still_refuse_in_a_call(book_cls):
    from testkit.books import CheckedBook
    b = CheckedBook(book_cls(0, 1000, 1))
    b.set_call(True)
    b.new_order(1, BUY, 0, 5, ord_type=MKT)
    b.new_order(1, SELL, 100, 5)
    assert b.last == [rejected(SELL, R.DUPLICATE_ORDER_ID, 1, 100, 5)]
    b.new_order(2, SELL, 0, 5, ord_type=MKT)                     # a market order would rest
    assert b.last == [rejected(SELL, R.BOOK_FULL, 2, 0, 5)]


# ---------------------------------------------------------------------- cancels and amends
def test_cancel_and_expire_work_in_a_call_on_market_and_limit_orders(call):
    call.new_order(1, BUY, 0, 4, ord_type=MKT)
    call.new_order(2, SELL, 99, 3)
    call.cancel(1)
    assert call.last == [user_cancelled(BUY, 1, 0, 4)]
    call.expire(2)
    assert call.last[-1] == level(SELL, 99, 0, 0)
    assert len(call) == 0


def test_an_amend_in_a_call_never_trades_and_keeps_priority_when_reduced(call):
    call.new_order(1, SELL, 100, 5)
    call.new_order(2, SELL, 100, 5)
    call.new_order(3, BUY, 90, 5)
    call.amend(3, 105, 5)                                        # now crosses: rests
    assert call.last == [lost(BUY, 3, 105, 5, 5), level(BUY, 90, 0, 0), level(BUY, 105, 5, 1)]
    call.amend(1, 100, 2)
    assert call.last == [kept(SELL, 1, 100, 2, 5), level(SELL, 100, 7, 2)]
    assert [o[0] for o in call.resting_orders()] == [3, 1, 2]


def test_a_market_order_amended_in_a_call_stays_a_market_order(call):
    call.new_order(1, BUY, 0, 5, ord_type=MKT)
    call.new_order(2, BUY, 0, 5, ord_type=MKT)
    call.amend(1, 12345, 3)                                      # the price is not read
    assert call.last == [kept(BUY, 1, 0, 3, 5)]
    call.amend(1, 0, 6)                                          # more: to the back
    assert call.last == [lost(BUY, 1, 0, 6, 3)]
    assert [o[:3] for o in call.resting_orders()] == [(2, BUY, None), (1, BUY, None)]


def test_an_amend_off_the_ladder_is_refused_in_a_call(call):
    call.new_order(1, BUY, 100, 5)
    call.amend(1, -1, 5)
    assert call.last == [rejected(0, R.PRICE_OUT_OF_RANGE, 1, -1, 5)]


# ---------------------------------------------------------------------- the uncross
def test_uncross_fills_market_orders_first_then_price_then_time(call):
    call.new_order(1, BUY, 0, 3, ord_type=MKT)
    call.new_order(2, BUY, 102, 2)
    call.new_order(3, BUY, 101, 4)
    call.new_order(4, BUY, 101, 2)
    call.new_order(5, SELL, 100, 5)
    call.new_order(6, SELL, 99, 2)
    call.new_order(7, SELL, 0, 1, ord_type=MKT)
    assert call.indicative(100, 5) == (101, 8, 3, BUY)
    n = call.uncross(100, 5)
    assert call.last == [
        trade(BUY, 1, 7, 101, 1, 2, 0),
        trade(BUY, 1, 6, 101, 2, 0, 0),
        trade(BUY, 2, 5, 101, 2, 0, 3),
        trade(BUY, 3, 5, 101, 3, 1, 0),                          # the surplus side: by time
        level(SELL, 99, 0, 0), level(BUY, 102, 0, 0), level(SELL, 100, 0, 0),
        level(BUY, 101, 3, 2),
    ] and n == 8
    assert not call.in_call
    assert [o[:4] for o in call.resting_orders()] == [(3, BUY, 101, 1), (4, BUY, 101, 2)]


def test_uncross_cancels_leftover_good_for_auction_orders_and_keeps_the_rest(call):
    call.new_order(1, BUY, 0, 3, ord_type=MKT)
    call.new_order(2, SELL, 100, 5)
    call.new_order(3, BUY, 99, 2, tif=T.GFA)
    call.new_order(4, SELL, 101, 1, tif=T.GFA)
    call.new_order(5, SELL, 0, 1, ord_type=MKT)
    call.uncross(100, 0)
    assert call.last == [
        trade(BUY, 1, 5, 100, 1, 2, 0), trade(BUY, 1, 2, 100, 2, 0, 3),
        auction_leftover(BUY, 3, 99, 2), auction_leftover(SELL, 4, 101, 1),
        level(SELL, 100, 3, 1), level(BUY, 99, 0, 0), level(SELL, 101, 0, 0)]


def test_uncross_cancels_what_is_left_of_a_market_order(call):
    call.new_order(1, BUY, 0, 5, ord_type=MKT)
    call.new_order(2, SELL, 100, 2)
    call.uncross(100, 0)
    assert call.last == [trade(BUY, 1, 2, 100, 2, 3, 0), auction_leftover(BUY, 1, 0, 3),
                         level(SELL, 100, 0, 0)]
    assert len(call) == 0


def test_uncross_with_nothing_crossing_only_ends_the_call(call):
    call.new_order(1, BUY, 99, 2)
    call.new_order(2, SELL, 101, 2)
    assert call.indicative(100, 0) is None
    assert call.uncross(100, 0) == 0 and not call.in_call
    call.new_order(3, BUY, 101, 1)                               # continuous again: trades
    assert call.last[1] == trade(BUY, 3, 2, 101, 1, 0, 1)


def test_self_trade_prevention_does_not_apply_in_the_uncross(call):
    call.new_order(1, SELL, 100, 5, account=7, stp=StpMode.CANCEL_BOTH)
    call.new_order(2, BUY, 100, 5, account=7, stp=StpMode.CANCEL_BOTH)
    call.uncross(100, 0)
    assert call.last[0] == trade(BUY, 2, 1, 100, 5, 0, 0)


def test_uncross_outside_a_call_or_off_the_ladder_is_rejected(book):
    book.uncross(100, 0)
    assert book.last == [rejected(0, R.NOT_IN_CALL, 0, 100, 0)]
    book.set_call(True)
    book.uncross(-5, 0)
    assert book.last == [rejected(0, R.PRICE_OUT_OF_RANGE, 0, -5, 0)]
    assert book.in_call


def test_leaving_a_call_without_an_uncross_is_refused_while_it_would_execute(call):
    call.new_order(1, BUY, 101, 1)
    call.new_order(2, SELL, 100, 1)
    with pytest.raises(ValueError, match="uncross"):
        call.set_call(False)
    call.cancel(2)
    call.set_call(False)                                         # nothing crosses now
    assert not call.in_call


def test_the_pressure_limit_is_exact_never_a_float(call):
    call.new_order(1, BUY, 103, 10)
    call.new_order(2, SELL, 100, 5)
    # Reference 101: 1% is a width of 1 tick (cap 102); 0.99% rounds to 0 (cap 101).
    assert call.indicative(101, Decimal("1"))[0] == 102
    assert call.indicative(101, Decimal("0.99"))[0] == 101
    with pytest.raises(TypeError):
        call.indicative(100, 0.5)
    with pytest.raises(ValueError):
        call.indicative(100, -1)
    with pytest.raises(ValueError):
        call.indicative(-1, 0)

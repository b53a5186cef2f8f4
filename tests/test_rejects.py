"""Every bad command gets a REJECTED event with its reason, and changes nothing."""
import pytest

from matching.constants import EventType, Op, OrdType, RejectReason as R, Side, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
#            op, id, side, type, tif, stp, post, acct, price, qty, min, expire
GOOD = (Op.NEW, 50, BUY, OrdType.LIMIT, TimeInForce.GTC, 0, False, 1, 100, 10, 0, 0)

CASES = {
    R.INVALID_ORDER_ID: {1: 0},
    R.INVALID_SIDE: {2: 0},
    R.INVALID_ORDER_TYPE: {3: 9},
    R.INVALID_TIME_IN_FORCE: {4: 2},
    R.INVALID_QUANTITY: {9: 0},
    R.PRICE_OUT_OF_RANGE: {8: 20_000},
    R.INVALID_EXPIRE_TIME: {4: TimeInForce.GTD},
    R.INVALID_MIN_QTY: {10: 11},
    R.INVALID_STP_MODE: {5: 5},
    R.INVALID_ACCOUNT: {7: -1},
    R.INVALID_POST_ONLY: {6: True, 4: TimeInForce.IOC},
    R.DUPLICATE_ORDER_ID: {1: 1},
    R.POST_ONLY_WOULD_TAKE: {6: True, 8: 101},
    R.UNKNOWN_COMMAND: {0: 9},
}


def _with(changes):
    cmd = list(GOOD)
    for i, v in changes.items():
        cmd[i] = v
    return tuple(cmd)


@pytest.mark.parametrize("reason", list(CASES), ids=lambda r: r.name)
def test_bad_new_order_is_rejected_with_its_reason_and_nothing_changes(book, reason):
    book.new_order(1, SELL, 101, 5)
    before = book.resting_orders()
    book.events()
    assert book.submit(*_with(CASES[reason])) == 1
    [ev] = book.events()
    assert ev[0] == EventType.REJECTED and ev[2] == reason
    assert book.resting_orders() == before


def test_validation_order_reports_the_first_broken_rule(book):
    book.submit(*_with({2: 0, 9: 0, 8: -1}))           # bad side, qty and price at once
    assert book.events()[0][2] == R.INVALID_SIDE
    book.submit(*_with({9: -1, 8: -1}))                # bad qty and price
    assert book.events()[0][2] == R.INVALID_QUANTITY


def test_quantity_above_the_ceiling_is_rejected(book):
    book.new_order(1, BUY, 100, 10**12 + 1)
    assert book.events()[0][2] == R.INVALID_QUANTITY


def test_cancel_of_unknown_or_filled_order_is_rejected_quietly(book):
    book.new_order(1, SELL, 100, 5)
    book.new_order(2, BUY, 100, 5)
    book.events()
    book.cancel(1)
    book.cancel(999)
    assert [e[:3] for e in book.events()] == [(EventType.REJECTED, 0, R.UNKNOWN_ORDER)] * 2


def test_amend_rejects_in_order_and_keeps_the_order(book):
    book.new_order(1, BUY, 100, 5)
    book.events()
    book.amend(2, 100, 5)
    book.amend(1, 100, 0)
    book.amend(1, -3, 5)
    assert [e[2] for e in book.events()] == [R.UNKNOWN_ORDER, R.INVALID_QUANTITY,
                                             R.PRICE_OUT_OF_RANGE]
    assert book.order(1) == (BUY, 100, 5, 0)


def test_fixed_capacity_book_rejects_when_full(book_engine):
    from matching.book import make_book
    b = make_book(book_engine, 0, 1000, capacity=2)
    b.new_order(1, BUY, 100, 5)
    b.new_order(2, BUY, 100, 5)
    b.new_order(3, BUY, 100, 5)
    b.new_order(4, SELL, 100, 5, tif=TimeInForce.IOC)     # cannot rest: still accepted
    ev = b.take_events()
    assert [e.reason for e in ev if e.type == EventType.REJECTED] == [R.BOOK_FULL]
    assert any(e.type == EventType.TRADE and e.order_id == 4 for e in ev)


def test_sequence_numbers_increase_by_one_across_rejects(book):
    book.new_order(1, BUY, 100, 5)
    book.cancel(42)
    book.new_order(2, SELL, 100, 5)
    seqs = [e.seq for e in book.take_events()]
    assert seqs == list(range(1, len(seqs) + 1))

"""Every bad command gets exactly one REJECTED event carrying its reason, the first
broken rule in the documented validation order wins, and nothing in the book changes.
Arguments of the wrong Python type are programming errors: TypeError, no event."""
import itertools

import numpy as np
import pytest

from matching.constants import (
    MAX_ORDER_QTY,
    Op,
    OrdType,
)
from matching.constants import (
    CancelReason as C,
)
from matching.constants import (
    RejectReason as R,
)
from matching.constants import (
    TimeInForce as T,
)
from matching.records import COMMAND_DTYPE
from testkit.books import (
    BUY,
    LO,
    SELL,
    CheckedBook,
    N,
    accepted,
    level,
    lost,
    rejected,
    trade,
    user_cancelled,
)

OP, ID, SIDE, TYPE, TIF, STP, POST, ACCT, PRICE, QTY, MINQ, EXP = range(12)
#         op      id  side type           tif    stp post   acct price qty min exp
GOOD = (Op.NEW, 50, BUY, OrdType.LIMIT, T.GTC, 0, False, 1, 100, 10, 0, 0)

# Ways to break each NEW rule, in the documented validation order. The book they run
# on (``full_book``) holds a BUY 2 @ 90 and a SELL 1 @ 101 and has capacity 2, so GOOD
# itself breaks only the last rule, BOOK_FULL.
BREAKERS = {
    R.INVALID_ORDER_ID: [{ID: 0}, {ID: -1}, {ID: -(2**63)}],
    R.INVALID_SIDE: [{SIDE: 0}, {SIDE: 3}, {SIDE: 255}, {SIDE: -1}, {SIDE: 257}],
    R.INVALID_ORDER_TYPE: [{TYPE: 0}, {TYPE: 3}, {TYPE: 258}],
    R.INVALID_TIME_IN_FORCE: [{TIF: 2}, {TIF: 5}, {TIF: 7}, {TIF: 255}, {TIF: 257}],
    R.INVALID_QUANTITY: [{QTY: 0}, {QTY: -1}, {QTY: MAX_ORDER_QTY + 1}],
    R.PRICE_OUT_OF_RANGE: [{PRICE: LO - 1}, {PRICE: LO + N}, {PRICE: 2**62}],
    R.INVALID_EXPIRE_TIME: [{TIF: T.GTD, EXP: 0}, {TIF: T.GTD, EXP: -5}],
    R.INVALID_MIN_QTY: [{MINQ: -1}, {MINQ: 11}],
    R.INVALID_STP_MODE: [{STP: 5}, {STP: 255}, {STP: -1}],
    R.INVALID_ACCOUNT: [{ACCT: -1}, {ACCT: -(2**63)}],
    R.INVALID_POST_ONLY: [{POST: True, TIF: T.IOC}, {POST: True, TIF: T.FOK},
                          {POST: True, TYPE: OrdType.MARKET}],
    R.DUPLICATE_ORDER_ID: [{ID: 1}, {ID: 2}],
    R.POST_ONLY_WOULD_TAKE: [{POST: True, PRICE: 101}, {POST: True, PRICE: 150},
                             {POST: True, SIDE: SELL, PRICE: 90}],
    R.BOOK_FULL: [{}, {TIF: T.DAY}, {TIF: T.GTD, EXP: 5}],
}
NEW_ORDER = list(BREAKERS)


def _with(*changes):
    cmd = list(GOOD)
    for change in changes:
        for i, v in change.items():
            cmd[i] = v
    return tuple(cmd)


def _byte(v):
    """An enum field as the command record carries it."""
    return v if 0 <= v <= 254 else 255


def broken_rules(cmd):
    """The NEW rules of docs/matching-rules.md that ``cmd`` breaks on ``full_book``."""
    side, typ, tif, stp = (_byte(cmd[i]) for i in (SIDE, TYPE, TIF, STP))
    limit = typ == OrdType.LIMIT
    crosses = cmd[PRICE] >= 101 if side == BUY else cmd[PRICE] <= 90
    rules = {
        R.INVALID_ORDER_ID: cmd[ID] <= 0,
        R.INVALID_SIDE: side not in (BUY, SELL),
        R.INVALID_ORDER_TYPE: typ not in (OrdType.LIMIT, OrdType.MARKET),
        R.INVALID_TIME_IN_FORCE: tif not in (T.DAY, T.GTC, T.IOC, T.FOK, T.GTD),
        R.INVALID_QUANTITY: not 0 < cmd[QTY] <= MAX_ORDER_QTY,
        R.PRICE_OUT_OF_RANGE: limit and not LO <= cmd[PRICE] < LO + N,
        R.INVALID_EXPIRE_TIME: tif == T.GTD and cmd[EXP] <= 0,
        R.INVALID_MIN_QTY: not 0 <= cmd[MINQ] <= cmd[QTY],
        R.INVALID_STP_MODE: not 0 <= stp <= 4,
        R.INVALID_ACCOUNT: cmd[ACCT] < 0,
        R.INVALID_POST_ONLY: cmd[POST] and (not limit or tif in (T.IOC, T.FOK)),
        R.DUPLICATE_ORDER_ID: cmd[ID] in (1, 2),
        R.POST_ONLY_WOULD_TAKE: cmd[POST] and crosses,
        R.BOOK_FULL: limit and tif not in (T.IOC, T.FOK),
    }
    return [reason for reason in NEW_ORDER if rules[reason]]


@pytest.fixture
def full_book(book_cls):
    b = CheckedBook(book_cls(LO, N, 2))
    b.new_order(1, SELL, 101, 5)
    b.new_order(2, BUY, 90, 5)
    return b


def snapshot(book):
    return (book.resting_orders(), len(book), book.best_bid(), book.best_ask(),
            book.depth(BUY, 50), book.depth(SELL, 50))


def assert_rejected_and_unchanged(book, cmd, reason, side=None):
    before = snapshot(book)
    assert book.submit(*cmd) == 1
    side = _byte(cmd[SIDE]) if side is None else side
    assert book.last == [rejected(side, reason, cmd[ID], cmd[PRICE], cmd[QTY])], cmd
    assert snapshot(book) == before


# ---------------------------------------------------------------------- NEW
def test_the_good_command_is_valid_on_a_book_with_room(book_cls):
    b = CheckedBook(book_cls(LO, N, 3))
    b.new_order(1, SELL, 101, 5)
    b.new_order(2, BUY, 90, 5)
    b.submit(*GOOD)
    assert b.last == [accepted(BUY, 50, 100, 10), level(BUY, 100, 10, 1)]


@pytest.mark.parametrize("reason", NEW_ORDER, ids=lambda r: r.name)
def test_each_way_to_break_a_new_rule_rejects_with_its_reason_and_changes_nothing(
        full_book, reason):
    for change in BREAKERS[reason]:
        cmd = _with(change)
        assert broken_rules(cmd)[0] == reason, cmd
        assert_rejected_and_unchanged(full_book, cmd, reason)


@pytest.mark.parametrize("first", NEW_ORDER[:-1], ids=lambda r: r.name)
def test_validation_order_the_first_broken_rule_wins(full_book, first):
    """Every pair of rules broken at once, in every combination of breakers: the one
    earlier in the documented order is the reason."""
    later_rules_met = set()
    for later in NEW_ORDER[NEW_ORDER.index(first) + 1:]:
        for a, b in itertools.product(BREAKERS[later], BREAKERS[first]):
            cmd = _with(a, b)
            broken = broken_rules(cmd)
            if first not in broken or later not in broken:
                continue                    # the two breakers undo each other
            later_rules_met.add(later)
            assert broken[0] == first
            assert_rejected_and_unchanged(full_book, cmd, first)
    # Only rule pairs that cannot both be broken by one command are missing.
    impossible = {R.INVALID_ORDER_ID: {R.DUPLICATE_ORDER_ID},          # live ids are > 0
                  R.INVALID_ORDER_TYPE: {R.PRICE_OUT_OF_RANGE, R.BOOK_FULL},  # need LIMIT
                  R.INVALID_TIME_IN_FORCE: {R.INVALID_EXPIRE_TIME},    # needs GTD
                  R.INVALID_POST_ONLY: {R.BOOK_FULL}}                  # needs a resting tif
    assert later_rules_met == set(NEW_ORDER[NEW_ORDER.index(first) + 1:]) - impossible.get(
        first, set())


def test_a_command_breaking_every_rule_gets_the_first(full_book):
    cmd = _with(*[BREAKERS[r][0] for r in reversed(NEW_ORDER)])
    assert_rejected_and_unchanged(full_book, cmd, R.INVALID_ORDER_ID)


def test_boundaries_of_quantity_and_ladder_are_accepted(book):
    book.new_order(1, BUY, LO, MAX_ORDER_QTY)
    assert book.last == [accepted(BUY, 1, LO, MAX_ORDER_QTY), level(BUY, LO, MAX_ORDER_QTY, 1)]
    book.new_order(2, SELL, LO + N - 1, 1)
    assert book.last == [accepted(SELL, 2, LO + N - 1, 1), level(SELL, LO + N - 1, 1, 1)]


def test_market_order_price_is_not_validated(book):
    book.new_order(1, BUY, -5, 3, ord_type=OrdType.MARKET)
    assert book.last == [accepted(BUY, 1, 0, 3), (4, BUY, C.MARKET_REMAINDER, 1, 0, 0, 3, 0, 0)]


def test_a_rejected_order_does_not_become_live(book):
    book.new_order(5, BUY, 100, 0)
    assert book.last == [rejected(BUY, R.INVALID_QUANTITY, 5, 100, 0)]
    book.cancel(5)
    assert book.last == [rejected(0, R.UNKNOWN_ORDER, 5, 0, 0)]


def test_duplicate_id_leaves_the_live_order_alone_and_dead_ids_are_reusable(book):
    book.new_order(1, BUY, 100, 5)
    book.new_order(1, SELL, 100, 5)
    assert book.last == [rejected(SELL, R.DUPLICATE_ORDER_ID, 1, 100, 5)]
    assert book.order(1) == (BUY, 100, 5, 0)
    book.cancel(1)
    book.new_order(1, SELL, 105, 2)
    assert book.last == [accepted(SELL, 1, 105, 2), level(SELL, 105, 2, 1)]


# ---------------------------------------------------------------------- BOOK_FULL
def test_full_book_still_takes_orders_that_cannot_rest(full_book):
    full_book.new_order(3, BUY, 101, 2, tif=T.IOC)
    assert full_book.last == [accepted(BUY, 3, 101, 2), trade(BUY, 3, 1, 101, 2, 0, 3),
                              level(SELL, 101, 3, 1)]
    full_book.new_order(4, SELL, 90, 9, tif=T.FOK)
    assert full_book.last == [accepted(SELL, 4, 90, 9),
                              (4, SELL, C.FOK_NOT_FILLED, 4, 0, 90, 9, 0, 0)]
    full_book.new_order(5, SELL, 0, 1, ord_type=OrdType.MARKET)
    assert full_book.last == [accepted(SELL, 5, 0, 1), trade(SELL, 5, 2, 90, 1, 0, 4),
                              level(BUY, 90, 4, 1)]


def test_full_book_refuses_a_resting_order_even_one_that_would_fill_at_once(full_book):
    # Room is checked before matching: the order could rest, so it is refused.
    assert_rejected_and_unchanged(full_book, _with({PRICE: 101, QTY: 1}), R.BOOK_FULL)


def test_full_book_has_room_again_after_a_cancel_and_amends_need_no_room(full_book):
    full_book.amend(2, 95, 7)
    assert full_book.last == [lost(BUY, 2, 95, 7, 5), level(BUY, 90, 0, 0),
                              level(BUY, 95, 7, 1)]
    full_book.cancel(1)
    assert full_book.last == [user_cancelled(SELL, 1, 101, 5), level(SELL, 101, 0, 0)]
    full_book.submit(*GOOD)
    assert full_book.last == [accepted(BUY, 50, 100, 10), level(BUY, 100, 10, 1)]


# ---------------------------------------------------------------------- CANCEL / EXPIRE
@pytest.mark.parametrize("op", [Op.CANCEL, Op.EXPIRE], ids=["cancel", "expire"])
def test_cancel_or_expire_of_an_order_that_is_not_live_is_rejected(book, op):
    book.new_order(1, SELL, 100, 5)
    book.new_order(2, BUY, 100, 5)                 # fills 1
    book.new_order(3, BUY, 99, 5)
    book.cancel(3)
    book.new_order(4, BUY, 98, 5)
    book.expire(4)
    for oid in (1, 2, 3, 4, 999, 0, -1):
        cmd = (op, oid, BUY, 0, 0, 0, False, 0, 77, 66, 0, 0)
        assert_rejected_and_unchanged(book, cmd, R.UNKNOWN_ORDER, side=0)
    book.cancel(1) if op == Op.CANCEL else book.expire(1)
    assert book.last == [rejected(0, R.UNKNOWN_ORDER, 1, 0, 0)]


# ---------------------------------------------------------------------- AMEND
AMEND_BREAKERS = {
    R.UNKNOWN_ORDER: [{ID: 999}, {ID: 0}, {ID: 3}, {ID: 4}],   # 3: cancelled, 4: filled
    R.INVALID_QUANTITY: [{QTY: 0}, {QTY: -4}, {QTY: MAX_ORDER_QTY + 1}],
    R.PRICE_OUT_OF_RANGE: [{PRICE: LO - 1}, {PRICE: LO + N}],
    R.POST_ONLY_WOULD_TAKE: [{PRICE: 101}, {PRICE: 102}],
}
AMEND_GOOD = (Op.AMEND, 2, 0, 0, 0, 0, False, 0, 95, 5, 0, 0)   # order 2: post-only bid


@pytest.fixture
def amend_book(book):
    book.new_order(1, SELL, 101, 5)
    book.new_order(2, BUY, 90, 5, post_only=True)
    book.new_order(3, SELL, 102, 1)
    book.cancel(3)
    book.new_order(4, BUY, 92, 1)
    book.new_order(5, SELL, 92, 1, tif=T.IOC)             # fills 4
    return book


def test_the_good_amend_is_valid(amend_book):
    amend_book.submit(*AMEND_GOOD)
    assert amend_book.last == [lost(BUY, 2, 95, 5, 5), level(BUY, 90, 0, 0),
                               level(BUY, 95, 5, 1)]


@pytest.mark.parametrize("reason", list(AMEND_BREAKERS), ids=lambda r: r.name)
def test_each_amend_rule_alone_rejects_with_its_reason_and_changes_nothing(amend_book, reason):
    for change in AMEND_BREAKERS[reason]:
        cmd = list(AMEND_GOOD)
        for i, v in change.items():
            cmd[i] = v
        assert_rejected_and_unchanged(amend_book, tuple(cmd), reason, side=0)


def test_amend_validation_order(amend_book):
    cases = [
        ({ID: 999, QTY: 0, PRICE: -1}, R.UNKNOWN_ORDER),
        ({ID: 3, QTY: 0}, R.UNKNOWN_ORDER),
        ({ID: 0, PRICE: 101}, R.UNKNOWN_ORDER),
        ({QTY: 0, PRICE: LO + N}, R.INVALID_QUANTITY),
        ({QTY: -1, PRICE: 101}, R.INVALID_QUANTITY),
        ({PRICE: LO + N + 5}, R.PRICE_OUT_OF_RANGE),      # also above the best ask
    ]
    for change, reason in cases:
        cmd = list(AMEND_GOOD)
        for i, v in change.items():
            cmd[i] = v
        assert_rejected_and_unchanged(amend_book, tuple(cmd), reason, side=0)


def test_amend_of_a_non_post_only_order_may_cross(amend_book):
    amend_book.new_order(5, BUY, 90, 2)
    amend_book.amend(5, 101, 2)
    assert amend_book.last == [lost(BUY, 5, 101, 2, 2), trade(BUY, 5, 1, 101, 2, 0, 3),
                               level(BUY, 90, 5, 1), level(SELL, 101, 3, 1)]


# ---------------------------------------------------------------------- unknown op
@pytest.mark.parametrize("op", [0, 5, 9, 254, 255, -1, 300])
def test_unknown_command_is_rejected_with_the_commands_side(book, op):
    book.new_order(1, BUY, 100, 5)
    cmd = (op, 1, SELL, OrdType.LIMIT, T.GTC, 0, False, 0, 100, 5, 0, 0)
    assert_rejected_and_unchanged(book, cmd, R.UNKNOWN_COMMAND, side=SELL)


# ---------------------------------------------------------------------- coverage
def test_every_reject_reason_is_reachable(full_book):
    seen = set()
    for reason in NEW_ORDER:
        full_book.submit(*_with(BREAKERS[reason][0]))
        seen.add(full_book.last[0][2])
    full_book.cancel(12345)
    seen.add(full_book.last[0][2])
    full_book.submit(42, 1, BUY, 0, 0, 0, False, 0, 0, 0, 0, 0)
    seen.add(full_book.last[0][2])
    # The call auction's own rules (tests/book/test_call.py pins each).
    full_book.new_order(77, BUY, 95, 1, tif=T.GFA)
    seen.add(full_book.last[0][2])
    full_book.uncross(95, 0)
    seen.add(full_book.last[0][2])
    full_book.set_call(True)
    full_book.new_order(78, BUY, 95, 1, tif=T.IOC)
    seen.add(full_book.last[0][2])
    full_book.new_order(79, BUY, 95, 1, post_only=True)
    seen.add(full_book.last[0][2])
    assert seen == set(R)


def test_sequence_numbers_run_on_across_rejects(book):
    book.new_order(1, BUY, 100, 5)
    book.cancel(42)
    book.new_order(2, SELL, 100, 0)
    book.new_order(2, SELL, 100, 5)
    assert [e.seq for e in book.take_events()] == list(range(1, 8))


# ---------------------------------------------------------------------- wrong Python types
@pytest.mark.parametrize("call", [
    lambda b: b.new_order(1.0, BUY, 100, 5),
    lambda b: b.new_order(1, BUY, 100.7, 5),          # a float price is never ticks
    lambda b: b.new_order(1, BUY, 100, 5.0),
    lambda b: b.new_order("1", BUY, 100, 5),
    lambda b: b.new_order(1, BUY, None, 5),
    lambda b: b.new_order(1, BUY, 100, 5, account=1.5),
    lambda b: b.amend(7, 100.0, 5),
    lambda b: b.amend(7, 100, "5"),
    lambda b: b.cancel(7.0),
    lambda b: b.expire(None),
    lambda b: b.submit(Op.NEW, 1, BUY, OrdType.LIMIT, T.GTC, 0, False, 0, 100, 5, 0.0, 0),
], ids=["float-id", "float-price", "float-qty", "str-id", "none-price", "float-account",
        "amend-float-price", "amend-str-qty", "cancel-float", "expire-none", "float-min-qty"])
def test_wrong_python_type_raises_type_error_and_emits_nothing(book, call):
    book.new_order(7, BUY, 99, 5)
    before = snapshot(book), book.inner.seq if hasattr(book.inner, "seq") else None
    with pytest.raises(TypeError):
        call(book)
    assert book.inner.take_events() == []
    assert (snapshot(book), book.inner.seq if hasattr(book.inner, "seq") else None) == before


def test_process_takes_only_a_command_array(book_cls):
    b = book_cls(LO, N)
    for bad in ([(1, 2, 3)], np.zeros(3), np.zeros(3, dtype=[("op", "u1")])):
        with pytest.raises(TypeError):
            b.process(bad)
    assert len(b.process(np.zeros(0, dtype=COMMAND_DTYPE))) == 0

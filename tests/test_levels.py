"""LEVEL events: one per changed level, in first-touch order, always equal to the book."""
from matching.constants import EventType, OrdType, Side, StpMode, TimeInForce

BUY, SELL = Side.BUY, Side.SELL
LVL = EventType.LEVEL


def recount(book, side):
    """Depth rebuilt from the resting orders themselves."""
    levels = {}
    for _, s, price, leaves, *_ in book.resting_orders():
        if s == side:
            qty, count = levels.get(price, (0, 0))
            levels[price] = (qty + leaves, count + 1)
    prices = sorted(levels, reverse=side == BUY)
    return [(p, *levels[p]) for p in prices]


def test_level_events_follow_the_order_levels_were_first_touched(book):
    book.new_order(1, SELL, 101, 5)
    book.new_order(2, SELL, 102, 5)
    book.events()
    book.new_order(3, BUY, 102, 12)
    assert book.events(LVL) == [(LVL, SELL, 0, 0, 0, 101, 0, 0, 0),
                                (LVL, SELL, 0, 0, 0, 102, 0, 0, 0),
                                (LVL, BUY, 0, 0, 0, 102, 2, 1, 0)]


def test_level_event_reports_the_final_state_once_per_command(book):
    for oid in (1, 2, 3):
        book.new_order(oid, SELL, 100, 5)
    book.events()
    book.new_order(4, BUY, 100, 12)
    assert book.events(LVL) == [(LVL, SELL, 0, 0, 0, 100, 3, 1, 0)]


def test_depth_equals_a_recount_after_ioc_fok_market_and_stp(book):
    # The trap of liquibook: unfilled IOC rests must never linger in published depth.
    book.new_order(1, SELL, 100, 5, account=1)
    book.new_order(2, SELL, 101, 5, account=2)
    book.new_order(3, BUY, 98, 5, account=3)
    book.new_order(4, BUY, 101, 20, tif=TimeInForce.IOC, account=4)
    book.new_order(5, SELL, 90, 50, tif=TimeInForce.FOK)
    book.new_order(6, SELL, 0, 2, ord_type=OrdType.MARKET)
    book.new_order(7, SELL, 100, 5, account=3)
    book.new_order(8, BUY, 100, 9, account=3, stp=StpMode.DECREMENT_AND_CANCEL)
    book.new_order(9, BUY, 97, 4, account=3, stp=StpMode.CANCEL_RESTING)
    # Replaying every LEVEL event onto a map must give the same depth as a recount.
    published = {BUY: {}, SELL: {}}
    for e in book.take_events():
        if e.type == LVL:
            if e.qty:
                published[e.side][e.price] = (e.qty, e.leaves)
            else:
                published[e.side].pop(e.price, None)
    for side in (BUY, SELL):
        rebuilt = sorted(((p, q, c) for p, (q, c) in published[side].items()),
                         reverse=side == BUY)
        assert rebuilt == recount(book, side) == book.depth(side, 100)


def test_same_quantity_amend_still_reports_its_level(book):
    book.new_order(1, BUY, 100, 5)
    book.events()
    book.amend(1, 100, 5)
    assert book.events(LVL) == [(LVL, BUY, 0, 0, 0, 100, 5, 1, 0)]

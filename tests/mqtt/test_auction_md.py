"""md/{symbol}/auction from the gateway's cycle (no broker): retained, sequenced, the
indicative during a call, throttled, and the uncross result when the call ends; the
viewer shows it."""
from __future__ import annotations

import json

from feeds import topics
from feeds.cycle import AUCTION_MD_INTERVAL_NS, GatewayCycle
from feeds.watch import MarketView, render
from testkit.mqtt import two_broker_engine

AUCTION = topics.md("TB3M", "auction")


class Clock:
    t = 1_796_637_600 * 10**9                    # 2026-12-07 10:00 UTC

    def __call__(self) -> int:
        return self.t


def order(broker, cl, side, qty="1", price="99.000", **kw):
    acct = {"alpha": 1, "beta": 2}[broker]
    return topics.orders(broker), json.dumps({
        "msg": "new_order", "cl_ord_id": cl, "account": acct, "symbol": "TB3M",
        "side": side, "qty": qty, "price": price, **kw}).encode()


def admin(action, symbol="TB3M", reason=""):
    return topics.ADMIN, json.dumps({"action": action, "symbol": symbol, "reason": reason,
                                     "request_id": "r"}).encode()


def auction_docs(pubs):
    assert all(p.retain for p in pubs if p.topic == AUCTION)
    return [json.loads(p.payload) for p in pubs if p.topic == AUCTION]


def test_a_call_publishes_its_indicative_price_throttled_then_the_uncross():
    cycle = GatewayCycle(two_broker_engine(clock=Clock()))
    t = 10**12
    [start] = auction_docs(cycle.process([admin("pre_open", reason="opening call")], t))
    assert (start["phase"], start.get("price"), start.get("best_bid")) == ("call", None, None)
    [first] = auction_docs(cycle.process([order("alpha", "b1", "buy", "2", "99.020")],
                                         t + AUCTION_MD_INTERVAL_NS))
    assert first["best_bid"] == "99.020" and first["seq"] == 2
    # Within the interval the update waits; a later cycle (even an idle one) sends it.
    held = cycle.process([order("beta", "s1", "sell", "1", "99.000")],
                         t + AUCTION_MD_INTERVAL_NS + 1)
    assert auction_docs(held) == []
    [late] = auction_docs(cycle.process([], t + 2 * AUCTION_MD_INTERVAL_NS + 1))
    assert (late["price"], late["volume"], late["surplus"], late["surplus_side"],
            late["seq"]) == ("99.020", "1.0000", "1.0000", "buy", 3)
    [done] = auction_docs(cycle.process([admin("open")], t + 3 * AUCTION_MD_INTERVAL_NS))
    assert (done["phase"], done["price"], done["volume"]) == ("uncrossed", "99.020", "1.0000")
    # Continuous trading publishes no auction updates.
    assert auction_docs(cycle.process([order("beta", "s2", "sell", "1", "99.020")],
                                      t + 5 * AUCTION_MD_INTERVAL_NS)) == []


def test_watch_shows_the_auction_line():
    view = MarketView()
    view.on_message(AUCTION, json.dumps({
        "symbol": "TB3M", "phase": "call", "seq": 3, "price": "99.020", "volume": "1.0000",
        "surplus": "1.0000", "surplus_side": "buy"}).encode())
    group = render(view)
    assert "call indicative 99.020 x 1.0000 surplus 1.0000 buy" in group.renderables[0].title


def test_a_volatility_interruption_publishes_the_state_with_why_and_where():
    cycle = GatewayCycle(two_broker_engine(clock=Clock()))
    t = 10**12
    cycle.process([order("beta", "s0", "sell", "1", "99.000"),
                   order("alpha", "b0", "buy", "1", "99.000"),
                   order("beta", "s1", "sell", "1", "99.100"),
                   order("beta", "s2", "sell", "1", "101.000")], t)
    # The dynamic band around 99.000 ends at 100.980: the fill at 101.000 waits.
    pubs = cycle.process([order("alpha", "big", "buy", "2", "101.200")], t + 1)
    [state] = [json.loads(p.payload) for p in pubs if p.topic == topics.md("TB3M", "state")]
    assert state["state"] == "pre_open" and "101.000" in state["reason"]
    [view] = auction_docs(pubs)
    assert view["phase"] == "call" and view["seq"] == state["seq"]

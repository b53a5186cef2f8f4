"""Timed ends of calls (matching/call_end.py): the volatility interruption's minimum
duration and its extension outside the wider band, the optional random end of the
opening and closing calls, the operator's set_reference, a halt that resumes through a
call, and replay of all of it (on both books)."""
from __future__ import annotations

import pytest
from test_auctions import REG, T0, Clock, make_ledger

from matching.call_end import VOLATILITY_CALL_NS, random_draw_ns
from matching.engine import Engine
from matching.journal import Journal, read_journal
from matching.messages import NewOrderSingle

S = 10**9
RANDOM_END_NS = 30 * S


def make_engine(book_engine="core", journal=None, random_end=False):
    eng = Engine(REG, make_ledger(), clock=Clock(), book_engine=book_engine, journal=journal)
    if random_end:
        eng.auctions.timer.random_end_ns["TB3M"] = RANDOM_END_NS
        eng.auctions.timer.random_end_ns["BD5Y"] = RANDOM_END_NS
        eng.auctions.timer.seed = "venue-seed"
    return eng


@pytest.fixture(params=["core", "reference"])
def eng(request):
    return make_engine(request.param)


@pytest.fixture(params=["core", "reference"])
def random_eng(request):
    return make_engine(request.param, random_end=True)


def bd(cl, acct, side, qty, price=None, **kw):
    return NewOrderSingle(cl, acct, "BD5Y", side, qty, price=price, **kw)


def tb(cl, acct, side, qty, price=None, **kw):
    return NewOrderSingle(cl, acct, "TB3M", side, qty, price=price, **kw)


def interrupt(eng):
    """BD5Y: last trade 100.000, asks 100.000 x1, 100.500 x1, 103.000 x5; a buy of 7 at
    104 fills 2 and its rest waits in a volatility call. Returns the order's outcome."""
    eng.submit("beta", bd("s0", 2, "sell", "1", "100.000"))
    eng.submit("alpha", bd("b0", 1, "buy", "1", "100.000"))
    for cl, price, qty in (("s1", "100.000", "1"), ("s2", "100.500", "1"),
                           ("s3", "103.000", "5")):
        eng.submit("beta", bd(cl, 2, "sell", qty, price))
    out = eng.submit("alpha", bd("big", 1, "buy", "7", "104.000"))
    assert eng.trading_status("BD5Y").state == "pre_open"
    return out


def opening_call(eng):
    """TB3M in its opening call with a cross at 99.020."""
    eng.admin("pre_open", "TB3M", "opening call")
    eng.submit("alpha", tb("b1", 1, "buy", "2", "99.020"))
    eng.submit("beta", tb("s1", 2, "sell", "1", "99.000"))


# ---------------------------------------------------------------------- volatility
def test_a_volatility_call_cannot_end_before_its_minimum_duration(eng):
    out = interrupt(eng)
    interrupted_at = eng.now
    assert eng.next_call_end() == interrupted_at + VOLATILITY_CALL_NS
    assert "at the earliest" in eng.trading_status("BD5Y").reason
    seq = eng.seq
    early = eng.admin("end_call", now=interrupted_at + VOLATILITY_CALL_NS - 1)
    assert not early.sequenced and early.refused.startswith("CALL_NOT_DUE")
    assert eng.seq == seq and eng.books["BD5Y"].in_call
    assert out.trades                                      # the 2 fills stand


def test_the_timed_end_call_ends_the_volatility_call_after_its_minimum(eng):
    interrupt(eng)
    out = eng.admin("end_call", now=eng.next_call_end())
    assert out.sequenced
    assert {(t.price, t.qty) for t in out.trades} == {("103.000", "5.0000")}
    status = eng.trading_status("BD5Y")
    assert status.state == "continuous" and status.seq == out.seq
    assert not eng.books["BD5Y"].in_call and eng.next_call_end() is None


def test_a_volatility_call_outside_the_extended_band_waits_for_the_operator(eng):
    """The static reference moved to 90.000: the extended band (10%) is 81.000..99.000,
    the indicative price 103.000 lies outside it: the call goes on until the open."""
    interrupt(eng)
    assert eng.admin("set_reference", "BD5Y", price="90.000").sequenced
    out = eng.admin("end_call", now=eng.next_call_end())
    assert out.sequenced and not out.trades
    status = eng.trading_status("BD5Y")
    assert status.state == "pre_open" and status.seq == out.seq
    assert "extended" in status.reason and "103.000" in status.reason
    assert "81.000..99.000" in status.reason
    assert eng.next_call_end() is None
    assert not eng.admin("end_call", now=eng.now + 3600 * S).sequenced
    out = eng.admin("open", "BD5Y")
    assert {t.price for t in out.trades} == {"103.000"}
    assert eng.trading_status("BD5Y").state == "continuous"


def test_the_volatility_call_draws_its_random_end_after_its_minimum(random_eng):
    eng = random_eng
    interrupt(eng)
    at = eng.next_call_end()
    out = eng.admin("end_call", now=at)
    draw = random_draw_ns("venue-seed", "BD5Y", out.seq, at, RANDOM_END_NS)
    assert not out.trades
    if draw:
        assert eng.next_call_end() == at + draw
        assert "random end" in eng.trading_status("BD5Y").reason
        out = eng.admin("end_call", now=at + draw)
    assert {t.price for t in out.trades} == {"103.000"}
    assert eng.trading_status("BD5Y").state == "continuous"


# ---------------------------------------------------------------------- random end
def test_the_random_end_is_derived_from_journaled_data_and_bounded():
    draws = {random_draw_ns("seed", "TB3M", seq, T0, RANDOM_END_NS) for seq in range(200)}
    assert all(0 <= d <= RANDOM_END_NS and d % 1_000_000 == 0 for d in draws)
    assert len(draws) > 150                           # spread, not one value
    assert random_draw_ns("seed", "TB3M", 7, T0, RANDOM_END_NS) == \
        random_draw_ns("seed", "TB3M", 7, T0, RANDOM_END_NS)
    assert random_draw_ns("seed", "TB3M", 7, T0, 0) == 0


def test_open_with_a_random_end_keeps_the_call_until_the_timed_end(random_eng):
    eng = random_eng
    opening_call(eng)
    out = eng.admin("open", "TB3M")
    draw = random_draw_ns("venue-seed", "TB3M", out.seq, eng.now, RANDOM_END_NS)
    assert draw > 0                                   # this seed and time draw one
    assert not out.trades and eng.books["TB3M"].in_call
    status = eng.trading_status("TB3M")
    assert status.state == "pre_open" and "random end" in status.reason
    assert eng.next_call_end() == eng.now + draw
    # Orders still enter the call until its end.
    assert eng.submit("beta", tb("s2", 2, "sell", "1", "99.010")).reports[0][1].exec_type \
        == "new"
    assert not eng.admin("end_call", now=eng.next_call_end() - 1).sequenced
    out = eng.admin("end_call", now=eng.next_call_end())
    assert len({t.price for t in out.trades}) == 1                    # one price
    assert sum(int(t.qty.split(".")[0]) for t in out.trades) == 2     # both bids paired
    assert eng.trading_status("TB3M").state == "continuous"


def test_the_operator_open_ends_a_random_end_call_at_once(random_eng):
    eng = random_eng
    opening_call(eng)
    eng.admin("open", "TB3M")
    out = eng.admin("open", "TB3M", "market supervision")
    assert {t.price for t in out.trades} == {"99.020"}
    assert eng.next_call_end() is None


def test_close_with_a_random_end_expires_day_orders_only_after_the_closing_uncross(
        random_eng):
    eng = random_eng
    eng.admin("pre_open", "TB3M", "closing call")
    eng.submit("alpha", tb("b1", 1, "buy", "2", "99.020"))
    eng.submit("beta", tb("s1", 2, "sell", "1", "99.000"))
    out = eng.admin("close")
    assert not out.trades and eng.trading_status("TB3M").state == "pre_open"
    assert len(eng.orders) == 2                              # DAY orders still live
    assert eng.trading_status("TB6M").state == "closed"      # no random end there
    out = eng.admin("end_call", now=eng.next_call_end())
    assert {t.price for t in out.trades} == {"99.020"}
    assert eng.trading_status("TB3M").state == "closed"
    assert eng.closing_price("TB3M") == (99_020, "auction")
    assert not eng.orders                                   # the rest of b1 expired


# ---------------------------------------------------------------------- set_reference
def test_set_reference_moves_the_static_band(eng):
    """GOLD's static band is 5% around its reference 110.00 (104.50..115.50); moved to
    120.00 it is 114.00..126.00, and a buy at 117 fills both asks, 115 and 116."""
    out = eng.admin("set_reference", "GOLD", "news", price="120.00")
    assert out.sequenced
    for cl, price in (("g1", "115.00"), ("g2", "116.00")):
        eng.submit("beta", NewOrderSingle(cl, 2, "GOLD", "sell", "1", price=price))
    out = eng.submit("alpha", NewOrderSingle("g", 1, "GOLD", "buy", "2", price="117.00"))
    assert [t.price for t in out.trades] == ["115.00", "116.00"]
    assert eng.trading_status("GOLD").state == "continuous"


@pytest.mark.parametrize("symbol, price", [("", "120.00"), ("GOLD", "abc"),
                                           ("GOLD", "120.001"), ("GOLD", "-5"),
                                           ("GOLD", "")])
def test_set_reference_refuses_a_bad_price_and_journals_nothing(eng, symbol, price):
    before, seq = eng.state_hash(), eng.seq
    out = eng.admin("set_reference", symbol, price=price)
    assert not out.sequenced and out.refused.startswith("INVALID_REFERENCE")
    assert eng.seq == seq and eng.state_hash() == before


# ---------------------------------------------------------------------- halt / resume
def test_resume_after_a_halt_in_continuous_trading_uncrosses_then_matches_again(eng):
    """The halt keeps the book as it was; resume ends it through a call of no length
    (the uncross of what rests: nothing crosses) and continuous matching goes on."""
    eng.submit("beta", tb("s1", 2, "sell", "1", "99.000"))
    eng.admin("halt", "TB3M", "news")
    assert not eng.books["TB3M"].in_call and len(eng.books["TB3M"]) == 1
    out = eng.admin("resume", "TB3M")
    assert out.sequenced and not eng.books["TB3M"].in_call
    assert eng.trading_status("TB3M").state == "continuous"
    assert eng.submit("alpha", tb("b1", 1, "buy", "1", "99.000")).trades


def test_resume_with_a_random_end_goes_through_a_timed_call(random_eng):
    eng = random_eng
    opening_call(eng)
    eng.admin("halt", "TB3M", "news")
    out = eng.admin("resume", "TB3M")
    assert not out.trades and eng.trading_status("TB3M").state == "pre_open"
    out = eng.admin("end_call", "TB3M", now=eng.next_call_end())
    assert {t.price for t in out.trades} == {"99.020"}
    assert eng.trading_status("TB3M").state == "continuous"


# ---------------------------------------------------------------------- replay
@pytest.mark.parametrize("book_engine", ["core", "reference"])
def test_replay_and_a_snapshot_reproduce_timed_calls_and_set_reference(tmp_path,
                                                                       book_engine):
    path = tmp_path / "timed.journal"
    eng = make_engine(book_engine, Journal(path, fsync="none"), random_end=True)
    opening_call(eng)
    eng.admin("open", "TB3M")
    payload, snap_seq = eng.snapshot(), eng.seq            # waiting for the random end
    eng.admin("set_reference", "GOLD", price="120.00")
    interrupt(eng)
    eng.admin("end_call", now=eng.next_call_end())
    while eng.next_call_end() is not None:
        eng.admin("end_call", now=eng.next_call_end())
    eng.commit()
    assert eng.trading_status("TB3M").state == "continuous"
    replayed = make_engine(book_engine, random_end=True)
    replayed.replay(read_journal(path))
    assert replayed.state_hash() == eng.state_hash()
    restored = Engine.from_snapshot(REG, payload, clock=Clock(), book_engine=book_engine)
    restored.auctions.timer.random_end_ns.update(eng.auctions.timer.random_end_ns)
    restored.auctions.timer.seed = eng.auctions.timer.seed
    assert restored.next_call_end() is not None
    restored.replay(read_journal(path, after_seq=snap_seq))
    assert restored.state_hash() == eng.state_hash()
    eng.close()


def test_the_admin_command_line_form_of_set_reference_carries_the_price():
    from feeds.operator import command_of
    cmd = command_of("set-reference", ["GOLD", "120.00"], reason="news")
    assert (cmd.action, cmd.symbol, cmd.price, cmd.reason) == ("set_reference", "GOLD",
                                                               "120.00", "news")
    with pytest.raises(ValueError, match="usage: tokenbook admin set-reference SYMBOL PRICE"):
        command_of("set-reference", ["GOLD"])

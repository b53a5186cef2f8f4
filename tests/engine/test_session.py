"""Trading states move only along the transition table; an illegal action is refused
whole (nothing journaled, nothing changed) with the reason."""
from datetime import UTC, datetime

import pytest

from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger
from matching.messages import NewOrderSingle
from matching.session import TRANSITIONS, TradingSession, TradingState

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
REG = Registry.load_default()


@pytest.fixture
def eng():
    led = Ledger()
    led.open_account(1, "alpha", "retail")
    led.deposit(1, CASH, 10**12)
    led.whitelist(1, "TB3M")
    return Engine(REG, led, clock=lambda: T0)


def _state(eng, symbol="TB3M"):
    return eng.trading_status(symbol).state


def test_resume_after_close_is_refused_and_the_book_stays_closed(eng):
    eng.admin("close", "TB3M", "end of day")
    seq = eng.seq
    out = eng.admin("resume", "TB3M")
    assert not out.sequenced and eng.seq == seq
    assert "resume" in out.refused and "closed" in out.refused
    assert _state(eng) == "closed"
    order = eng.submit("alpha", NewOrderSingle("b1", 1, "TB3M", "buy", "1", price="99.270"))
    assert order.reports[0][1].ord_rej_reason == "MARKET_NOT_OPEN"


def test_open_starts_the_next_session_after_a_close(eng):
    eng.admin("close", "TB3M")
    assert eng.admin("open", "TB3M").sequenced and _state(eng) == "continuous"


def test_resume_lifts_a_halt(eng):
    eng.admin("halt", "TB3M", "issuer notice")
    assert eng.admin("resume", "TB3M").sequenced and _state(eng) == "continuous"


def test_a_halted_book_must_be_resumed_not_opened(eng):
    eng.admin("halt", "TB3M")
    out = eng.admin("open", "TB3M")
    assert not out.sequenced and _state(eng) == "halted"


def test_a_closed_book_cannot_be_halted(eng):
    eng.admin("close", "TB3M")
    assert not eng.admin("halt", "TB3M").sequenced


def test_a_repeated_action_is_a_legal_no_op(eng):
    eng.admin("halt", "TB3M", "first")
    out = eng.admin("halt", "TB3M", "second")
    assert out.sequenced and eng.trading_status("TB3M").reason == "second"


def test_a_venue_wide_halt_skips_the_closed_instruments(eng):
    eng.admin("close", "TB3M")
    out = eng.admin("halt")
    assert out.sequenced
    assert _state(eng, "TB3M") == "closed" and _state(eng, "TB6M") == "halted"


def test_a_venue_wide_action_legal_for_none_is_refused(eng):
    eng.admin("close")
    out = eng.admin("resume")
    assert not out.sequenced and "every instrument" in out.refused


def test_the_table_covers_every_state_and_action():
    states = set(TradingState)
    for _action, (allowed, after) in TRANSITIONS.items():
        assert allowed <= states and after in states
    # From every state but matured some action leads to continuous trading; matured is
    # for good: no action is legal from it.
    for state in states - {TradingState.MATURED}:
        assert any(state in allowed and after is TradingState.CONTINUOUS
                   for allowed, after in TRANSITIONS.values())
    assert not any(TradingState.MATURED in allowed for allowed, _ in TRANSITIONS.values())


def test_session_snapshot_round_trip():
    session = TradingSession(["A", "B"])
    session.apply("halt", ["A"], "why", 7)
    other = TradingSession(["A", "B"])
    other.restore(session.snapshot())
    assert (other.state, other.reason, other.seq) == (session.state, session.reason,
                                                      session.seq)

"""What the engine tells its caller about each input: sequenced or not, why refused, the
cash it settled, and the trading status with the input that set it."""
from datetime import UTC, datetime

import pytest

from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import Journal
from matching.ledger import CASH, Ledger
from matching.messages import NewOrderSingle

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
REG = Registry.load_default()


def _ledger() -> Ledger:
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta")):
        led.open_account(acct, broker, "retail")
        led.deposit(acct, CASH, 10**12)
        led.deposit(acct, "TB3M", 10**6)
        led.whitelist(acct, "TB3M")
    return led


@pytest.fixture
def eng():
    return Engine(REG, _ledger(), clock=lambda: T0)


def _bid(cl="b1", qty="1"):
    return NewOrderSingle(cl, 1, "TB3M", "buy", qty, price="99.270")


def test_an_accepted_order_is_sequenced(eng):
    out = eng.submit("alpha", _bid())
    assert out.sequenced and out.seq == eng.seq == 1 and not out.refused


def test_a_rejected_order_is_still_sequenced_and_journaled(eng):
    out = eng.submit("alpha", NewOrderSingle("x", 1, "NOPE", "buy", "1", price="1"))
    assert out.sequenced and out.reports[0][1].ord_rej_reason == "UNKNOWN_SYMBOL"


def test_a_resent_clordid_is_answered_from_memory_unsequenced(eng):
    eng.submit("alpha", _bid())
    again = eng.submit("alpha", _bid())
    assert again.replayed and not again.sequenced and eng.seq == 1
    assert again.reports[0][1].poss_resend


def test_an_undecodable_message_is_refused_unsequenced(eng):
    out = eng.refuse("alpha", "MALFORMED_JSON", "not JSON")
    assert not out.sequenced and eng.seq == 0
    assert out.reports[0][1].ord_rej_reason == "MALFORMED_JSON"


def test_a_dead_journal_refuses_admin_inputs_whole_with_the_reason(eng, tmp_path):
    eng.journal = Journal(tmp_path / "j.log", fsync="none")
    eng.journal.failed = OSError(28, "No space left on device")
    out = eng.admin("halt", "TB3M", "test")
    assert not out.sequenced and "No space left" in out.refused
    assert eng.trading_status("TB3M").state == "continuous" and eng.seq == 0
    assert eng.journal_failure is not None and "No space left" in eng.journal_failure


def test_a_fill_reports_the_cash_the_buyer_paid(eng):
    eng.submit("alpha", _bid(qty="2"))
    out = eng.submit("beta", NewOrderSingle("s1", 2, "TB3M", "sell", "2", price="99.270"))
    assert out.trades and out.settled_cash == eng.ledger.balance(2, CASH) - 10**12 > 0


def test_trading_status_names_the_input_that_set_it(eng):
    assert eng.trading_status("TB3M").seq == 0
    out = eng.admin("halt", "TB3M", "issuer notice")
    status = eng.trading_status("TB3M")
    assert (status.state, status.reason, status.seq) == ("halted", "issuer notice", out.seq)
    restored = Engine.from_snapshot(REG, eng.snapshot(), clock=lambda: T0)
    assert restored.trading_status("TB3M") == status


def test_live_orders_are_known_per_broker(eng):
    assert not eng.has_live_orders("alpha")
    eng.submit("alpha", _bid())
    assert eng.has_live_orders("alpha") and not eng.has_live_orders("beta")
    assert eng.brokers_with_live_orders() == {"alpha"}

"""The operator's account inputs (matching.accounts_admin): open, close, whitelist,
deposit, withdraw. Each accepted input is sequenced and journaled; each refused one says
its code and journals nothing; replay and recovery reproduce the state hash."""
from __future__ import annotations

import pytest

from matching.engine import Engine
from matching.journal import Journal, read_journal
from matching.ledger import CASH, Ledger
from matching.messages import AccountInput, NewOrderSingle
from testkit import golden

A, B = 5001, 5002


def empty_engine(journal=None):
    """A venue founded with no accounts at all, in continuous trading."""
    clock = golden.new_engine()[1]
    engine = Engine(golden.registry(), Ledger(), clock=clock, journal=journal,
                    resend_window=golden.RESEND_WINDOW)
    clock.now = golden.load_inputs()[0]["now"]
    engine.admin("open")
    return engine, clock


def usdc(units: int) -> str:
    return f"{units // 10**6}.{units % 10**6:06d}"


def ok(engine, **fields):
    out = engine.account_input(AccountInput(**fields))
    assert out.sequenced, out.refused
    return out


def refused(engine, code: str, msg: AccountInput | None = None, **fields) -> str:
    seq, digest = engine.seq, engine.state_hash()
    out = engine.account_input(msg or AccountInput(**fields))
    assert not out.sequenced and out.refused.startswith(f"{code}: "), out.refused
    assert engine.seq == seq and engine.state_hash() == digest     # nothing journaled
    return out.refused


def funded(engine):
    ok(engine, action="open_account", account=A, broker="alpha", eligibility="retail",
       country="DE")
    ok(engine, action="open_account", account=B, broker="beta", eligibility="institutional",
       country="FRA")
    ok(engine, action="whitelist", account=A, symbol="TB3M")
    ok(engine, action="whitelist", account=B, symbol="TB3M")
    ok(engine, action="deposit", account=A, asset="USDC", amount="5000.25")
    ok(engine, action="deposit", account=B, asset="TB3M", amount="10")


def test_open_fund_whitelist_then_trade_from_an_empty_ledger():
    engine, _ = empty_engine()
    funded(engine)
    led = engine.ledger
    assert led.accounts[A].country == "DE" and led.broker_of(B) == "beta"
    assert led.balance(A, CASH) == 5_000_250_000
    buy = engine.submit("alpha", NewOrderSingle("b1", A, "TB3M", "buy", "1", price="99.5"))
    assert buy.reports[-1][1].exec_type == "new"
    sell = engine.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "1", price="99.5"))
    assert [r.exec_type for _, r in sell.reports] == ["new", "trade", "trade"]
    assert led.balance(A, "TB3M") == golden.registry()["TB3M"].qty_to_lots("1")


def test_accepted_account_input_gets_its_engine_seq():
    engine, _ = empty_engine()
    out = ok(engine, action="open_account", account=A, broker="alpha",
             eligibility="retail", country="DE")
    assert out.seq == engine.seq


@pytest.mark.parametrize("msg,code", [
    (AccountInput(action="open_account", account=A, broker="alpha", eligibility="retail",
          country="DE"), "DUPLICATE_ACCOUNT"),
    (AccountInput(action="open_account", account=0, broker="gamma", eligibility="retail",
          country="DE"), "INVALID_FIELD"),
    (AccountInput(action="open_account", account=7, broker="bad name", eligibility="retail",
          country="DE"), "INVALID_FIELD"),
    (AccountInput(action="open_account", account=7, broker="gamma", eligibility="whale",
          country="DE"), "INVALID_FIELD"),
    (AccountInput(action="open_account", account=7, broker="gamma", eligibility="retail",
          country="germany"), "INVALID_FIELD"),
    (AccountInput(action="deposit", account=999, asset="USDC", amount="1"), "UNKNOWN_ACCOUNT"),
    (AccountInput(action="deposit", account=A, asset="USDC", amount="-1"), "INVALID_AMOUNT"),
    (AccountInput(action="deposit", account=A, asset="USDC", amount="0"), "INVALID_AMOUNT"),
    (AccountInput(action="deposit", account=A, asset="USDC", amount="0.0000001"), "INVALID_AMOUNT"),
    (AccountInput(action="deposit", account=A, asset="USDC", amount="1e3"), "INVALID_AMOUNT"),
    (AccountInput(action="deposit", account=A, asset="XAU", amount="1"), "UNKNOWN_SYMBOL"),
    (AccountInput(action="withdraw", account=A, asset="USDC", amount="5000.250001"),
     "INSUFFICIENT_FUNDS"),
    (AccountInput(action="withdraw", account=B, asset="TB3M", amount="11"), "INSUFFICIENT_TOKENS"),
    (AccountInput(action="whitelist", account=A, symbol="NOPE"), "UNKNOWN_SYMBOL"),
    (AccountInput(action="close_account", account=A), "ACCOUNT_NOT_EMPTY"),
    (AccountInput(action="close_account", account=999), "UNKNOWN_ACCOUNT"),
    (AccountInput(action="mint", account=A), "INVALID_FIELD"),
])
def test_bad_account_input_is_refused_whole_with_its_code(msg, code):
    engine, _ = empty_engine()
    funded(engine)
    refused(engine, code, msg)


def test_withdraw_never_touches_reserved_cash():
    engine, _ = empty_engine()
    funded(engine)
    out = engine.submit("alpha", NewOrderSingle("b1", A, "TB3M", "buy", "2", price="99"))
    assert out.reports[0][1].exec_type == "new"
    led = engine.ledger
    free = led.available(A, CASH)
    assert 0 < free < led.balance(A, CASH)
    text = refused(engine, "INSUFFICIENT_FUNDS", action="withdraw", account=A,
                   asset="USDC", amount=usdc(led.balance(A, CASH)))
    assert "free" in text
    ok(engine, action="withdraw", account=A, asset="CASH", amount=usdc(free))
    assert led.available(A, CASH) == 0 and led.reserved(A, CASH) > 0


def test_close_account_only_when_empty_and_its_permissions_go():
    engine, _ = empty_engine()
    funded(engine)
    ok(engine, action="withdraw", account=B, asset="TB3M", amount="10")
    ok(engine, action="close_account", account=B)
    assert B not in engine.ledger.accounts
    assert not engine.ledger.may_trade(B, "TB3M")
    out = engine.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "1", price="99"))
    assert out.reports[0][1].ord_rej_reason == "UNKNOWN_ACCOUNT"


def test_unwhitelisted_account_may_not_place_new_orders():
    engine, _ = empty_engine()
    funded(engine)
    ok(engine, action="unwhitelist", account=A, symbol="TB3M")
    out = engine.submit("alpha", NewOrderSingle("b1", A, "TB3M", "buy", "1", price="99"))
    assert out.reports[0][1].ord_rej_reason == "NOT_WHITELISTED"


def test_replay_and_recovery_reproduce_the_hash_across_account_inputs(tmp_path):
    journal = Journal(tmp_path / "journal.log")
    live, clock = empty_engine(journal)
    live.write_snapshot(tmp_path / "founded")
    funded(live)
    live.submit("alpha", NewOrderSingle("b1", A, "TB3M", "buy", "2", price="99.5"))
    live.write_snapshot(tmp_path / "midway")
    live.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "1", price="99.5"))
    ok(live, action="withdraw", account=A, asset="USDC", amount="100")
    ok(live, action="open_account", account=7, broker="gamma", eligibility="retail",
       country="US")
    ok(live, action="close_account", account=7)
    live.commit()
    journal.close()
    for rec in (
        Engine.recover(golden.registry(), snapshot_dir=tmp_path / "founded",
                       journal_path=tmp_path / "journal.log", clock=clock),
        Engine.recover(golden.registry(), snapshot_dir=tmp_path / "midway",
                       journal_path=tmp_path / "journal.log", clock=clock),
    ):
        assert rec.state_hash() == live.state_hash()
        assert rec.ledger.accounts[A].country == "DE"
    assert len(list(read_journal(tmp_path / "journal.log"))) == live.seq

"""The transfer agent's controls (ERC-3643 / T-REX agent role): freeze, partial freeze,
unfreeze, forced transfer, recovery, pause. Refusals journal nothing; replay and recovery
from a snapshot reproduce the state hash."""
from __future__ import annotations

from test_operator_accounts import A, B, empty_engine, funded, ok, refused

from matching.engine import Engine
from matching.journal import Journal
from matching.ledger import CASH
from matching.messages import NewOrderSingle
from testkit import golden

C = 5003
LOT = 10**4                     # TB3M: 4 token decimals


def with_c(engine):
    funded(engine)
    ok(engine, action="open_account", account=C, broker="beta", eligibility="retail",
       country="NL")


def test_freeze_cancels_resting_orders_with_reason_frozen_and_takes_no_new_ones():
    engine, _ = empty_engine()
    funded(engine)
    engine.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "2", price="99.9"))
    out = ok(engine, action="freeze", account=B)
    [(broker, report)] = out.reports
    assert broker == "beta" and report.exec_type == "canceled" and report.text == "FROZEN"
    assert engine.ledger.reserved(B, "TB3M") == 0
    new = engine.submit("beta", NewOrderSingle("s2", B, "TB3M", "sell", "1", price="99.9"))
    assert new.reports[0][1].ord_rej_reason == "ACCOUNT_FROZEN"
    refused(engine, "ACCOUNT_FROZEN", action="withdraw", account=B, asset="TB3M", amount="1")
    ok(engine, action="unfreeze", account=B)
    again = engine.submit("beta", NewOrderSingle("s3", B, "TB3M", "sell", "1", price="99.9"))
    assert again.reports[0][1].exec_type == "new"


def test_freeze_of_one_symbol_leaves_the_others_trading():
    engine, _ = empty_engine()
    funded(engine)
    ok(engine, action="whitelist", account=A, symbol="TB6M")
    ok(engine, action="freeze", account=A, symbol="TB3M")
    frozen = engine.submit("alpha", NewOrderSingle("b1", A, "TB3M", "buy", "1", price="99"))
    assert frozen.reports[0][1].ord_rej_reason == "ACCOUNT_FROZEN"
    other = engine.submit("alpha", NewOrderSingle("b2", A, "TB6M", "buy", "1", price="98"))
    assert other.reports[0][1].exec_type == "new"
    refused(engine, "NOT_FROZEN", action="unfreeze", account=A, symbol="TB6M")


def test_partial_freeze_lets_sells_reserve_only_balance_minus_reserved_minus_frozen():
    engine, _ = empty_engine()
    funded(engine)                                    # B holds 10 TB3M
    ok(engine, action="freeze", account=B, symbol="TB3M", amount="7")
    too_many = engine.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "4",
                                                    price="99.9"))
    assert too_many.reports[0][1].ord_rej_reason == "INSUFFICIENT_TOKENS"
    fits = engine.submit("beta", NewOrderSingle("s2", B, "TB3M", "sell", "3", price="99.9"))
    assert fits.reports[0][1].exec_type == "new"
    refused(engine, "INSUFFICIENT_TOKENS", action="freeze", account=B, symbol="TB3M",
            amount="0.0001")
    refused(engine, "INSUFFICIENT_TOKENS", action="withdraw", account=B, asset="TB3M",
            amount="0.0001")
    refused(engine, "NOT_FROZEN", action="unfreeze", account=B, symbol="TB3M", amount="8")
    ok(engine, action="unfreeze", account=B, symbol="TB3M", amount="2")
    assert engine.ledger.frozen_of(B, "TB3M") == 5 * LOT


def test_forced_transfer_takes_free_tokens_first_then_the_frozen_shortfall():
    """T-REX ``forcedTransfer``: ``if (_amount > freeBalance) { tokensToUnfreeze = _amount
    - freeBalance; _frozenTokens[_from] -= tokensToUnfreeze }``: 10 held, 6 frozen, 4 free;
    a forced transfer of 5 unfreezes 1."""
    engine, _ = empty_engine()
    with_c(engine)
    ok(engine, action="freeze", account=B, symbol="TB3M", amount="6")
    refused(engine, "NOT_WHITELISTED", action="forced_transfer", account=B, to_account=C,
            symbol="TB3M", amount="5")
    ok(engine, action="whitelist", account=C, symbol="TB3M")
    ok(engine, action="forced_transfer", account=B, to_account=C, symbol="TB3M",
       amount="5", reason="court order 42")
    led = engine.ledger
    assert led.balance(B, "TB3M") == 5 * LOT and led.frozen_of(B, "TB3M") == 5 * LOT
    assert led.balance(C, "TB3M") == 5 * LOT
    assert led.total("TB3M") == 10 * LOT                        # supply conserved


def test_forced_transfer_never_takes_a_reservation():
    engine, _ = empty_engine()
    with_c(engine)
    ok(engine, action="whitelist", account=C, symbol="TB3M")
    engine.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "8", price="99.9"))
    refused(engine, "INSUFFICIENT_TOKENS", action="forced_transfer", account=B,
            to_account=C, symbol="TB3M", amount="3")


def test_recover_moves_everything_to_the_new_account_and_closes_the_lost_one():
    engine, _ = empty_engine()
    with_c(engine)
    engine.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "2", price="99.9"))
    ok(engine, action="freeze", account=B, symbol="TB3M", amount="3")
    ok(engine, action="deposit", account=B, asset="USDC", amount="12.5")
    out = ok(engine, action="recover", account=B, to_account=C)
    assert [r.text for _, r in out.reports] == ["RECOVERED"]
    led = engine.ledger
    assert B not in led.accounts
    assert led.balance(C, "TB3M") == 10 * LOT and led.frozen_of(C, "TB3M") == 3 * LOT
    assert led.balance(C, CASH) == 12_500_000 and led.may_trade(C, "TB3M")
    refused(engine, "UNKNOWN_ACCOUNT", action="recover", account=B, to_account=C)


def test_pause_is_a_halt_of_the_instrument_and_unpause_resumes_it():
    engine, _ = empty_engine()
    funded(engine)
    ok(engine, action="pause", symbol="TB3M", reason="issuer notice")
    status = engine.trading_status("TB3M")
    assert status.state == "halted" and status.reason == "issuer notice"
    out = engine.submit("alpha", NewOrderSingle("b1", A, "TB3M", "buy", "1", price="99"))
    assert out.reports[0][1].ord_rej_reason == "MARKET_NOT_OPEN"
    ok(engine, action="unpause", symbol="TB3M")
    assert engine.trading_status("TB3M").state == "continuous"
    engine.admin("close", "TB6M")
    refused(engine, "ILLEGAL_TRANSITION", action="pause", symbol="TB6M")
    refused(engine, "UNKNOWN_SYMBOL", action="pause", symbol="NOPE")


def test_replay_and_recovery_reproduce_the_hash_across_agent_controls(tmp_path):
    journal = Journal(tmp_path / "journal.log")
    live, clock = empty_engine(journal)
    with_c(live)
    ok(live, action="whitelist", account=C, symbol="TB3M")
    live.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "1", price="99.9"))
    ok(live, action="freeze", account=B, symbol="TB3M", amount="2")
    live.write_snapshot(tmp_path / "midway")
    ok(live, action="freeze", account=A)
    ok(live, action="forced_transfer", account=B, to_account=C, symbol="TB3M", amount="8")
    ok(live, action="pause", symbol="TB6M")
    ok(live, action="recover", account=B, to_account=C)
    live.commit()
    journal.close()
    rec = Engine.recover(golden.registry(), snapshot_dir=tmp_path / "midway",
                         journal_path=tmp_path / "journal.log", clock=clock)
    assert rec.state_hash() == live.state_hash()
    assert rec.ledger.blocked == {(A, "")} and rec.ledger.frozen == live.ledger.frozen

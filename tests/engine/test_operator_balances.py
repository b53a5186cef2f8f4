"""The broker balances query: its own accounts only, every asset's balance, reservation
and frozen amount in the asset's units, as of the engine seq the answer names; a query is
not an input (nothing journaled, the state hash unchanged)."""
from __future__ import annotations

from test_operator_accounts import A, B, empty_engine, funded, ok

from matching.messages import NewOrderSingle


def only(out):
    [(broker, answer)] = out.reports
    return broker, answer


def test_balances_show_balance_reserved_frozen_and_available_at_the_seq_named():
    engine, _ = empty_engine()
    funded(engine)                            # A: 5000.25 USDC; B: 10 TB3M
    engine.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "3", price="99.9"))
    ok(engine, action="freeze", account=B, symbol="TB3M", amount="2")
    seq, digest = engine.seq, engine.state_hash()
    broker, answer = only(engine.balances("beta", "q1"))
    assert broker == "beta" and answer.request_id == "q1" and answer.seq == seq
    [acct] = answer.accounts
    [tb3m] = acct.assets
    assert (acct.account, tb3m.asset, tb3m.balance, tb3m.reserved, tb3m.frozen,
            tb3m.available) == (B, "TB3M", "10.0000", "3.0000", "2.0000", "5.0000")
    assert engine.seq == seq and engine.state_hash() == digest      # nothing journaled
    _, cash = only(engine.balances("alpha", "q2", A))
    assert [(x.asset, x.balance, x.available) for x in cash.accounts[0].assets] == [
        ("USDC", "5000.250000", "5000.250000")]


def test_a_broker_gets_only_its_own_accounts():
    engine, _ = empty_engine()
    funded(engine)
    _, mine = only(engine.balances("alpha"))
    assert [a.account for a in mine.accounts] == [A]
    _, theirs = only(engine.balances("alpha", "q3", B))
    assert theirs.accounts == [] and theirs.text.startswith("UNKNOWN_ACCOUNT: ")
    _, nobody = only(engine.balances("gamma"))
    assert nobody.accounts == [] and nobody.text is None


def test_balances_name_the_freezes_of_an_account():
    engine, _ = empty_engine()
    funded(engine)
    ok(engine, action="freeze", account=A)
    ok(engine, action="freeze", account=A, symbol="TB3M")
    _, answer = only(engine.balances("alpha"))
    assert answer.accounts[0].frozen == ["*", "TB3M"]

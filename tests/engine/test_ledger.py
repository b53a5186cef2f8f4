"""Custody ledger: reservations, delivery versus payment, conservation, persistence."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.ledger import (
    CASH,
    InsufficientCash,
    InsufficientTokens,
    Ledger,
    LedgerError,
    UnknownAccount,
    UnknownReservation,
)


@pytest.fixture
def led():
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta"), (9, "venue")):
        led.open_account(acct, broker)
        led.deposit(acct, CASH, 1_000)
        led.deposit(acct, "BILL", 50)
    return led


# ---------------------------------------------------------------------- reservations
def test_no_sale_of_tokens_an_account_does_not_hold(led):
    before = led.state_digest()
    with pytest.raises(InsufficientTokens, match="needs 51 lots of BILL, has 50") as err:
        led.reserve_tokens(1, "BILL", 51, ref=10)
    assert (err.value.account, err.value.symbol, err.value.needed, err.value.available) == \
        (1, "BILL", 51, 50)
    with pytest.raises(InsufficientTokens):
        led.reserve_tokens(1, "GOLD", 1, ref=11)           # holds none at all
    assert led.reserved(1, "BILL") == 0 and led.reservation(10) == 0
    assert led.state_digest() == before


def test_tokens_already_reserved_cannot_be_sold_twice(led):
    led.reserve_tokens(1, "BILL", 30, ref=10)
    with pytest.raises(InsufficientTokens) as err:
        led.reserve_tokens(1, "BILL", 21, ref=11)
    assert err.value.available == 20
    led.reserve_tokens(1, "BILL", 20, ref=11)
    assert led.available(1, "BILL") == 0 and led.balance(1, "BILL") == 50


def test_no_purchase_beyond_cash(led):
    led.reserve_cash(1, 600, ref=10)
    before = led.state_digest()
    with pytest.raises(InsufficientCash) as err:
        led.reserve_cash(1, 401, ref=11)
    assert (err.value.account, err.value.needed, err.value.available) == (1, 401, 400)
    with pytest.raises(InsufficientCash):
        led.reserve_cash(1, 401, ref=10)                   # topping up the same ref too
    assert led.state_digest() == before and led.available(1, CASH) == 400


def test_a_ref_holds_one_account_and_asset(led):
    led.reserve_cash(1, 10, ref=10)
    with pytest.raises(LedgerError, match="already holds"):
        led.reserve_tokens(1, "BILL", 1, ref=10)
    with pytest.raises(LedgerError, match="already holds"):
        led.reserve_cash(2, 1, ref=10)
    led.reserve_cash(1, 5, ref=10)                         # same account and asset: adds up
    assert led.reservation(10) == 15 and led.reserved(1, CASH) == 15


def test_release_returns_exactly_what_was_reserved(led):
    led.reserve_cash(1, 300, ref=10)
    led.reserve_cash(1, 50, ref=11)
    assert led.release(10, 100) == 100
    assert led.reserved(1, CASH) == 250 and led.reservation(10) == 200
    assert led.release(10) == 200
    assert led.reservation(10) == 0 and led.reserved(1, CASH) == 50
    assert led.release(11) == 50
    assert led.available(1, CASH) == 1_000 and led.reserved(1, CASH) == 0
    assert led.release(10) == 0                            # nothing left: a no-op


def test_release_of_more_than_is_held_is_refused_and_changes_nothing(led):
    led.reserve_tokens(2, "BILL", 7, ref=20)
    before = led.state_digest()
    with pytest.raises(LedgerError, match="cannot release 8"):
        led.release(20, 8)
    with pytest.raises(LedgerError, match="cannot release -1"):
        led.release(20, -1)
    with pytest.raises(LedgerError, match="holding 0"):
        led.release(99, 1)                                 # unknown ref
    assert led.state_digest() == before and led.reservation(20) == 7


def test_reserving_for_an_unknown_account_is_refused(led):
    with pytest.raises(UnknownAccount):
        led.reserve_cash(5, 1, ref=1)
    with pytest.raises(UnknownAccount):
        led.deposit(5, CASH, 1)


@pytest.mark.parametrize("call", [
    lambda led: led.deposit(1, CASH, 1.5),
    lambda led: led.deposit(1, CASH, 1.0),
    lambda led: led.reserve_cash(1, 10.0, ref=1),
    lambda led: led.reserve_cash(1.0, 10, ref=1),
    lambda led: led.reserve_cash(1, 10, ref=1.0),
    lambda led: led.reserve_tokens(1, "BILL", 2.0, ref=1),
    lambda led: led.reserve_tokens(1, "BILL", True, ref=1),
    lambda led: led.release(1, 0.0),
    lambda led: led.settle_trade(1, 2, "BILL", 1.0, 10, 10, 20),
    lambda led: led.settle_trade(1, 2, "BILL", 1, 10.0, 10, 20),
    lambda led: led.settle_trade(1, 2, "BILL", 1, 10, 10, 20, fee_buyer=0.5, fee_account=9),
    lambda led: led.open_account(3.0, "gamma"),
])
def test_floats_are_refused_with_type_error(led, call):
    led.reserve_cash(1, 100, ref=10)
    led.reserve_tokens(2, "BILL", 5, ref=20)
    before = led.state_digest()
    with pytest.raises(TypeError):
        call(led)
    assert led.state_digest() == before


# ---------------------------------------------------------------------- settlement
def test_settlement_moves_both_legs_at_once(led):
    led.reserve_cash(1, 500, ref=10)
    led.reserve_tokens(2, "BILL", 20, ref=20)
    led.settle_trade(1, 2, "BILL", 20, 450, 10, 20, fee_buyer=5, fee_seller=3, fee_account=9)
    assert (led.balance(1, CASH), led.balance(1, "BILL")) == (545, 70)
    assert (led.balance(2, CASH), led.balance(2, "BILL")) == (1_447, 30)
    assert led.balance(9, CASH) == 1_008
    assert led.reservation(10) == 45 and led.reservation(20) == 0
    assert led.totals() == {"BILL": 150, CASH: 3_000}


def test_partial_fill_keeps_the_rest_reserved_until_released(led):
    led.reserve_cash(1, 900, ref=10)                       # worst case of a 9-lot buy at 100
    led.reserve_tokens(2, "BILL", 4, ref=20)
    led.settle_trade(1, 2, "BILL", 4, 380, 10, 20)         # filled 4 lots at 95
    assert led.reservation(10) == 520 and led.reserved(1, CASH) == 520
    assert led.available(1, CASH) == 1_000 - 380 - 520
    assert led.release(10) == 520
    assert led.available(1, CASH) == led.balance(1, CASH) == 620


@pytest.mark.parametrize("args, kwargs, error", [
    ((1, 2, "BILL", 20, 450, 10, 20), {}, InsufficientCash),       # buyer reserved 100
    ((1, 2, "BILL", 21, 50, 10, 20), {}, InsufficientTokens),      # seller reserved 20
    ((1, 2, "BILL", 5, 95, 10, 20), {"fee_buyer": 6, "fee_account": 9}, InsufficientCash),
    ((1, 2, "BILL", 5, 50, 11, 20), {}, UnknownReservation),       # no such buyer ref
    ((1, 2, "BILL", 5, 50, 10, 21), {}, UnknownReservation),       # no such seller ref
    ((2, 2, "BILL", 5, 50, 10, 20), {}, UnknownReservation),       # ref 10 is account 1's
    ((1, 2, "GOLD", 5, 50, 10, 20), {}, UnknownReservation),       # ref 20 holds BILL
    ((1, 2, "BILL", 5, 50, 10, 20), {"fee_buyer": 1}, UnknownAccount),   # fee, no account
    ((1, 2, "BILL", 5, 50, 10, 20), {"fee_seller": 51, "fee_account": 9}, LedgerError),
    ((1, 2, "BILL", 0, 50, 10, 20), {}, LedgerError),              # no zero-lot trade
    ((1, 2, "BILL", 5, -1, 10, 20), {}, LedgerError),
    ((1, 2, "BILL", 5, 50, 10, 10), {}, LedgerError),              # one ref for both sides
    ((1, 2, CASH, 5, 50, 10, 20), {}, LedgerError),                # token leg is the cash
])
def test_failed_settlement_changes_nothing(led, args, kwargs, error):
    led.reserve_cash(1, 100, ref=10)
    led.reserve_tokens(2, "BILL", 20, ref=20)
    before, digest = led.snapshot(), led.state_digest()
    with pytest.raises(error):
        led.settle_trade(*args, **kwargs)
    assert led.snapshot() == before and led.state_digest() == digest


def test_settlement_with_itself_nets_to_nothing_but_consumes_reservations(led):
    led.reserve_cash(1, 100, ref=10)
    led.reserve_tokens(1, "BILL", 5, ref=11)
    led.settle_trade(1, 1, "BILL", 5, 100, 10, 11)
    assert (led.balance(1, CASH), led.balance(1, "BILL")) == (1_000, 50)
    assert led.reserved(1, CASH) == led.reserved(1, "BILL") == 0


# ---------------------------------------------------------------------- permissions, queries
def test_whitelist_is_per_account_and_symbol(led):
    assert not led.may_trade(1, "BILL")
    led.whitelist(1, "BILL")
    assert led.may_trade(1, "BILL") and not led.may_trade(2, "BILL")
    assert not led.may_trade(1, "GOLD")
    led.unwhitelist(1, "BILL")
    assert not led.may_trade(1, "BILL")
    with pytest.raises(UnknownAccount):
        led.whitelist(42, "BILL")


def test_holders_and_totals(led):
    led.deposit(2, "GOLD", 3)
    assert led.holders("GOLD") == {2: 3}
    assert led.holders("BILL") == {1: 50, 2: 50, 9: 50}
    assert led.total(CASH) == 3_000 and led.totals() == {"BILL": 150, CASH: 3_000, "GOLD": 3}


def test_account_checks(led):
    with pytest.raises(LedgerError, match="already exists"):
        led.open_account(1, "alpha")
    with pytest.raises(LedgerError, match="eligibility"):
        led.open_account(3, "alpha", "whale")
    with pytest.raises(LedgerError, match="positive"):
        led.open_account(0, "alpha")
    led.open_account(3, "gamma", "institutional")
    assert (led.broker_of(3), led.eligibility_of(3)) == ("gamma", "institutional")
    assert led.broker_of(4) is None


# ---------------------------------------------------------------------- persistence
ACCOUNTS = '''
[[account]]
id = 7
broker = "alpha"
eligibility = "institutional"
cash = 99
whitelist = ["BILL"]
tokens = { BILL = 5, GOLD = 2 }

[[account]]
id = 8
broker = "beta"
'''


def test_load_from_toml(tmp_path):
    f = tmp_path / "accounts.toml"
    f.write_text(ACCOUNTS)
    led = Ledger()
    led.load(f)
    assert led.balance(7, "BILL") == 5 and led.balance(7, "GOLD") == 2
    assert led.balance(7, CASH) == 99 and led.may_trade(7, "BILL")
    assert led.eligibility_of(7) == "institutional" and led.broker_of(7) == "alpha"
    assert led.eligibility_of(8) == "retail" and led.balance(8, CASH) == 0


@pytest.mark.parametrize("bad, match", [
    ('[[account]]\nid = 9\nbroker = "a"\neligibility = "whale"\n', "account entry 2"),
    ('[[account]]\nid = 9\nbroker = "a"\ncash = 1.5\n', "account entry 2"),
    ('[[account]]\nid = 9\nbroker = "a"\ntokenz = { BILL = 1 }\n', "tokenz"),
    ('[[account]]\nid = 7\nbroker = "a"\n', "already exists"),
    ('[[account]]\nid = 9\nbroker = "a"\nwhitelist = "BILL"\n', "whitelist"),
    ('[[acount]]\nid = 9\n', "acount"),
])
def test_a_bad_account_file_names_the_problem_and_loads_nothing(tmp_path, bad, match):
    f = tmp_path / "accounts.toml"
    f.write_text(ACCOUNTS + bad)
    led = Ledger()
    with pytest.raises(LedgerError, match=match):
        led.load(f)
    assert led.accounts == {} and led.balances == {}


def test_snapshot_restore_round_trip_keeps_state_and_behaviour(led):
    led.whitelist(1, "BILL")
    led.reserve_cash(1, 300, ref=10)
    led.reserve_tokens(2, "BILL", 20, ref=20)
    led.settle_trade(1, 2, "BILL", 5, 100, 10, 20)
    back = Ledger.restore(led.snapshot())
    assert back.snapshot() == led.snapshot() and back.state_digest() == led.state_digest()
    assert back.available(1, CASH) == led.available(1, CASH) == 700
    assert back.reservation(20) == 15 and back.may_trade(1, "BILL")
    assert back.release(10) == 200


def test_digest_is_canonical_and_follows_the_state():
    a, b = Ledger(), Ledger()
    a.open_account(1, "x")
    a.open_account(2, "y")
    b.open_account(2, "y")
    b.open_account(1, "x")
    b.deposit(1, "BILL", 0)                                # an empty balance is no state
    a.deposit(1, CASH, 5)
    b.deposit(1, CASH, 5)
    assert a.state_digest() == b.state_digest()
    b.deposit(1, CASH, 1)
    assert a.state_digest() != b.state_digest()


@pytest.mark.parametrize("edit", [
    lambda s: s["reservations"].append([99, 1, CASH, 10**9]),      # more than the balance
    lambda s: s["balances"].append([1, "BILL", -1]),
    lambda s: s["balances"].append([77, "BILL", 1]),              # unknown account
    lambda s: s["balances"].append([1, "BILL", 2.5]),
    lambda s: s["reservations"].append(s["reservations"][0]),     # a ref twice
    lambda s: s.pop("whitelist"),
])
def test_restore_refuses_an_impossible_snapshot(led, edit):
    led.reserve_cash(1, 100, ref=10)
    snap = led.snapshot()
    edit(snap)
    with pytest.raises(LedgerError):
        Ledger.restore(snap)


# ---------------------------------------------------------------------- property
ACCTS, SYMS, FEE = (1, 2, 3), ("BILL", "GOLD"), 9
op = st.one_of(
    st.tuples(st.just("buy"), st.sampled_from(ACCTS), st.integers(0, 700), st.integers(1, 6)),
    st.tuples(st.just("sell"), st.sampled_from(ACCTS), st.sampled_from(SYMS),
              st.integers(0, 30), st.integers(1, 6)),
    # settle picks live reservations by index (so most settlements can succeed); a
    # non-zero ``twist`` names the wrong buyer, which must be refused
    st.tuples(st.just("settle"), st.integers(0, 5), st.integers(0, 5), st.integers(1, 20),
              st.integers(0, 300), st.integers(0, 20), st.integers(0, 20),
              st.sampled_from([0, 0, 0, 1])),
    st.tuples(st.just("release"), st.sampled_from([*range(1, 7), *range(101, 107)]),
              st.none() | st.integers(0, 700)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=80))
def test_random_trading_conserves_every_asset_and_never_goes_negative(script):
    led = Ledger()
    for a in (*ACCTS, FEE):
        led.open_account(a, "b")
    for a in ACCTS:
        led.deposit(a, CASH, 1_000)
        for s in SYMS:
            led.deposit(a, s, 40)
    totals = led.totals()
    model: dict[int, int] = {}              # what each ref should still hold
    for step in script:
        before = led.snapshot()
        try:
            if step[0] == "buy":
                _, a, cash, ref = step
                led.reserve_cash(a, cash, ref)
                model[ref] = model.get(ref, 0) + cash
            elif step[0] == "sell":
                _, a, sym, lots, ref = step
                led.reserve_tokens(a, sym, lots, 100 + ref)
                model[100 + ref] = model.get(100 + ref, 0) + lots
            elif step[0] == "settle":
                _, i, j, lots, cash, fb, fs, twist = step
                cash_refs = sorted(r for r, v in led.reservations.items() if v[1] == CASH) or [1]
                token_refs = sorted(r for r, v in led.reservations.items() if v[1] != CASH) or [101]
                bref, sref = cash_refs[i % len(cash_refs)], token_refs[j % len(token_refs)]
                b, _, _ = led.reservations.get(bref, (1, CASH, 0))
                s, sym, _ = led.reservations.get(sref, (2, "BILL", 0))
                led.settle_trade(b % 3 + 1 if twist else b, s, sym, lots, cash, bref, sref,
                                 fee_buyer=fb, fee_seller=fs, fee_account=FEE)
                assert not twist, "a settlement for the wrong buyer went through"
                model[bref] -= cash + fb
                model[sref] -= lots
            else:
                _, ref, amount = step
                got = led.release(ref, amount)
                assert got == (model.get(ref, 0) if amount is None else amount)
                model[ref] = model.get(ref, 0) - got
        except LedgerError:
            assert led.snapshot() == before         # a refusal changes nothing
        assert led.totals() == totals
        for ref in set(model) | set(led.reservations):
            assert led.reservation(ref) == model.get(ref, 0)
        for acct in (*ACCTS, FEE):
            for asset in (CASH, *SYMS):
                assert led.balance(acct, asset) >= 0
                assert led.available(acct, asset) >= 0
                assert led.reserved(acct, asset) == sum(
                    amt for (ac, a_, amt) in led.reservations.values() if (ac, a_) == (acct, asset))

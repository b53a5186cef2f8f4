"""Custody ledger: reservations, delivery versus payment, conservation."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.ledger import CASH, InsufficientCash, InsufficientTokens, Ledger, LedgerError


@pytest.fixture
def led():
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta"), (9, "venue")):
        led.open_account(acct, broker)
        led.deposit(acct, CASH, 1_000)
        led.deposit(acct, "BILL", 50)
    return led


def test_no_sale_of_tokens_an_account_does_not_hold(led):
    with pytest.raises(InsufficientTokens, match="needs 51 lots of BILL, has 50"):
        led.reserve_tokens(1, "BILL", 51, ref=10)
    assert led.reserved(1, "BILL") == 0


def test_no_purchase_beyond_cash(led):
    led.reserve_cash(1, 600, ref=10)
    with pytest.raises(InsufficientCash):
        led.reserve_cash(1, 401, ref=11)
    assert led.available(1, CASH) == 400


def test_release_returns_exactly_what_was_reserved(led):
    led.reserve_cash(1, 300, ref=10)
    assert led.release(10, 100) == 100
    assert led.reserved(1, CASH) == 200
    assert led.release(10) == 200
    assert led.available(1, CASH) == 1_000 and led.reservation(10) == 0


def test_settlement_moves_both_legs_at_once(led):
    led.reserve_cash(1, 500, ref=10)
    led.reserve_tokens(2, "BILL", 20, ref=20)
    led.settle_trade(1, 2, "BILL", 20, 450, 10, 20, fee_buyer=5, fee_seller=3, fee_account=9)
    assert (led.balance(1, CASH), led.balance(1, "BILL")) == (545, 70)
    assert (led.balance(2, CASH), led.balance(2, "BILL")) == (1_447, 30)
    assert led.balance(9, CASH) == 1_008
    assert led.reservation(10) == 45 and led.reservation(20) == 0


def test_failed_settlement_changes_nothing(led):
    led.reserve_cash(1, 100, ref=10)
    led.reserve_tokens(2, "BILL", 20, ref=20)
    before = led.snapshot()
    with pytest.raises(InsufficientCash):
        led.settle_trade(1, 2, "BILL", 20, 450, 10, 20)
    with pytest.raises(InsufficientTokens):
        led.settle_trade(1, 2, "BILL", 21, 50, 10, 20)
    assert led.snapshot() == before


def test_floats_are_refused(led):
    with pytest.raises(TypeError):
        led.deposit(1, CASH, 1.5)


def test_load_from_toml_and_snapshot_round_trip(tmp_path):
    f = tmp_path / "accounts.toml"
    f.write_text('[[account]]\nid = 7\nbroker = "alpha"\neligibility = "institutional"\n'
                 'cash = 99\nwhitelist = ["BILL"]\ntokens = { BILL = 5 }\n')
    led = Ledger()
    led.load(f)
    assert led.balance(7, "BILL") == 5 and led.may_trade(7, "BILL")
    assert led.eligibility_of(7) == "institutional" and led.broker_of(7) == "alpha"
    assert Ledger.restore(led.snapshot()).state_digest() == led.state_digest()


def test_bad_account_file_names_the_entry(tmp_path):
    f = tmp_path / "accounts.toml"
    f.write_text('[[account]]\nid = 7\nbroker = "a"\neligibility = "whale"\n')
    with pytest.raises(LedgerError, match="account entry 0"):
        Ledger().load(f)


ops = st.lists(st.tuples(st.sampled_from(["buy", "sell", "settle", "release"]),
                         st.integers(1, 3), st.integers(1, 3), st.integers(0, 400),
                         st.integers(0, 30), st.integers(1, 6)), max_size=60)


@settings(max_examples=200, deadline=None)
@given(ops)
def test_random_trading_conserves_every_asset_and_never_goes_negative(script):
    led = Ledger()
    for a in (1, 2, 3):
        led.open_account(a, "b")
        led.deposit(a, CASH, 1_000)
        led.deposit(a, "BILL", 40)
    totals = (led.total(CASH), led.total("BILL"))
    for op, a, b, cash, lots, ref in script:
        try:
            if op == "buy":
                led.reserve_cash(a, cash, ref)
            elif op == "sell":
                led.reserve_tokens(a, "BILL", lots, 100 + ref)
            elif op == "settle":
                led.settle_trade(a, b, "BILL", lots, cash, ref, 100 + ref)
            else:
                led.release(ref if lots % 2 else 100 + ref)
        except LedgerError:
            pass
        assert (led.total(CASH), led.total("BILL")) == totals
        for acct in (1, 2, 3):
            for asset in (CASH, "BILL"):
                assert led.balance(acct, asset) >= 0
                assert led.available(acct, asset) >= 0

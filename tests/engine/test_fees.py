"""Fees: maker/taker basis points with a minimum per fill and a retail tier, rounded up
(in the venue's favour), paid into the venue's fee account, conserved in the ledger."""
import dataclasses
from datetime import UTC, datetime

import msgspec
import pytest

from matching.engine import Engine
from matching.fees import FeeRates, FeeSchedule, parse_fees
from matching.instruments import InstrumentError, Registry
from matching.journal import Journal
from matching.ledger import CASH, Ledger
from matching.messages import NewOrderSingle

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
USD = 10**6
FEE_ACCOUNT, BUYER, SELLER = 9000, 10, 20
SCHEDULE = FeeSchedule(FEE_ACCOUNT, FeeRates(maker=10 * 100, taker=25 * 100, minimum=USD // 2),
                       FeeRates(maker=20 * 100, taker=30 * 100, minimum=USD // 2))
PLAIN = Registry.load_default()
FEED = Registry([dataclasses.replace(i, fees=SCHEDULE) if i.symbol == "TB3M" else i
                 for i in PLAIN])


def _ledger() -> Ledger:
    led = Ledger()
    led.open_account(BUYER, "alpha", "retail")
    led.open_account(SELLER, "beta", "institutional")
    led.deposit(BUYER, CASH, 10_000 * USD)
    led.deposit(SELLER, "TB3M", 10 * 10**4)
    for acct in (BUYER, SELLER):
        led.whitelist(acct, "TB3M")
    return led


def _trade(eng: Engine):
    eng.submit("beta", NewOrderSingle("s1", SELLER, "TB3M", "sell", "1", price="99.350"))
    return eng.submit("alpha", NewOrderSingle("b1", BUYER, "TB3M", "buy", "1",
                                              price="99.350"))


def test_a_fill_pays_the_taker_rate_of_the_retail_tier_and_the_maker_rate_rounded_up():
    # 993.50 USDC: the retail taker pays 30 bp = 2.9805, the institutional maker 10 bp
    assert SCHEDULE.fee(993_500_000, 10_000, 100, maker=False, retail=True) == 2_980_500
    assert SCHEDULE.fee(993_500_000, 10_000, 100, maker=True, retail=False) == 993_500
    # 1 bp of 0.000101 USDC is a hundredth of a minor unit: rounded up to one
    one_bp = FeeSchedule(1, FeeRates(taker=100), FeeRates(taker=100))
    assert one_bp.fee(101, 1, 1, maker=False, retail=False) == 1


def test_the_minimum_applies_per_fill_and_pro_rata_below_the_minimum_order_size():
    assert SCHEDULE.fee(10_000_000, 100, 100, maker=True, retail=False) == 500_000
    assert SCHEDULE.fee(1_000_000, 10, 100, maker=True, retail=False) == 50_000


def test_fees_go_to_the_fee_account_and_the_ledger_is_conserved():
    eng = Engine(FEED, _ledger(), clock=lambda: T0)
    led = eng.ledger
    before = led.total(CASH)
    out = _trade(eng)
    assert led.balance(FEE_ACCOUNT, CASH) == 2_980_500 + 993_500
    assert led.balance(BUYER, CASH) == 10_000 * USD - 993_500_000 - 2_980_500
    assert led.balance(SELLER, CASH) == 993_500_000 - 993_500
    assert led.total(CASH) == before
    assert led.reserved(BUYER, CASH) == 0 and led.broker_of(FEE_ACCOUNT) == "venue"
    fills = {b: r for b, r in out.reports if r.exec_type == "trade"}
    assert (fills["alpha"].commission, fills["alpha"].comm_type) == ("2.980500", "3")
    assert (fills["beta"].commission, fills["beta"].comm_type) == ("0.993500", "3")


def test_a_buy_reserves_its_fees_in_the_worst_case():
    led = _ledger()
    led.withdraw(BUYER, CASH, 10_000 * USD - 995 * USD)     # 995 USDC: the cash, not the fee
    eng = Engine(FEED, led, clock=lambda: T0)
    out = _trade(eng)
    [(_, r)] = [x for x in out.reports if x[0] == "alpha"]
    assert r.ord_rej_reason == "INSUFFICIENT_FUNDS"
    plain = Engine(PLAIN, _ledger(), clock=lambda: T0)
    plain.ledger.withdraw(BUYER, CASH, 10_000 * USD - 995 * USD)
    assert [r.exec_type for b, r in _trade(plain).reports if b == "alpha"] == ["new", "trade"]


def test_without_a_schedule_reports_carry_no_commission_and_no_fee_account_opens():
    eng = Engine(PLAIN, _ledger(), clock=lambda: T0)
    out = _trade(eng)
    for _, r in out.reports:
        assert b"commission" not in msgspec.json.encode(r)
    assert FEE_ACCOUNT not in eng.ledger.accounts


def test_replay_and_recovery_with_fees_give_the_same_state(tmp_path):
    eng = Engine(FEED, _ledger(), clock=lambda: T0,
                 journal=Journal(tmp_path / "journal.log", fsync="group"))
    eng.write_snapshot(tmp_path / "snaps")
    _trade(eng)
    eng.submit("beta", NewOrderSingle("s2", SELLER, "TB3M", "sell", "0.5", price="99.360"))
    eng.submit("alpha", NewOrderSingle("b2", BUYER, "TB3M", "buy", "0.2", ord_type="market"))
    eng.commit()
    rec = Engine.recover(FEED, snapshot_dir=tmp_path / "snaps",
                         journal_path=tmp_path / "journal.log", clock=lambda: T0)
    assert rec.state_hash() == eng.state_hash()
    assert rec.ledger.balance(FEE_ACCOUNT, CASH) == eng.ledger.balance(FEE_ACCOUNT, CASH) > 0


def test_fees_are_configured_in_the_instruments_toml():
    schedule = parse_fees({"account": 9000, "maker_bps": "1.5", "taker_bps": "3",
                           "minimum": "0.25", "retail_taker_bps": "5"}, 6)
    assert schedule == FeeSchedule(9000, FeeRates(150, 300, 250_000),
                                   FeeRates(150, 500, 250_000))
    assert parse_fees({"maker_bps": "0"}, 6) is None


@pytest.mark.parametrize("fees, why", [
    ({"account": 9000, "taker_bps": 3}, "decimal string"),
    ({"account": 9000, "taker_bps": "0.001"}, "at most 2 decimals"),
    ({"account": 9000, "taker_bps": "2000"}, "cap"),
    ({"taker_bps": "3"}, "account"),
    ({"account": 9000, "rebate": "1"}, "unknown key"),
])
def test_a_malformed_fee_schedule_is_refused_with_the_field(fees, why):
    reg = Registry()
    row = {"symbol": "TBX", "isin": "XS000TB3M269", "kind": "tbill", "face_value": "1000",
           "token_decimals": 4, "tick_size": "0.001", "issue_date": PLAIN["TB3M"].issue_date,
           "maturity": PLAIN["TB3M"].maturity, "reference_price": "99.270", "band_pct": "2",
           "eligibility": ["retail"], "fees": fees}
    with pytest.raises(InstrumentError, match=why):
        reg.add_toml({"instrument": [row]}, "t.toml")

"""Compliance rules per instrument (maximum balance, maximum holders, country lists,
lock-up), checked at entry and on a replace before anything is reserved; a refused order
names the rule and the figures."""
from __future__ import annotations

from datetime import date

import pytest

from feeds.venue import definition
from matching.compliance_rules import ComplianceRules, parse_compliance
from matching.engine import Engine
from matching.instruments import InstrumentError, Registry
from matching.ledger import CASH, Ledger
from matching.messages import AccountInput, OrderCancelRequest
from testkit.compliance import (
    BUYER,
    DAY,
    LOT,
    NOWHERE,
    OTHER,
    PLAIN,
    SELLER,
    T0,
    USD,
    buy,
    engine,
    ledger,
    registry,
    replace,
    report,
    sell,
)


@pytest.fixture(params=["core", "reference"])
def book_engine(request) -> str:
    return request.param


# ---------------------------------------------------------------------- the terms
def test_rules_are_parsed_exactly_from_the_instruments_toml():
    reg = Registry()
    reg.add_toml({"instrument": [_toml_row()]}, "test")
    rules = reg["TBX"].compliance
    assert rules == ComplianceRules(max_balance=1000 * LOT, max_holders=3,
                                    countries_allow=("DE", "FR"),
                                    lockup_until=date(2026, 12, 1),
                                    retail_max_order_notional=5000 * USD,
                                    retail_max_position=50 * LOT,
                                    retail_daily_buy_limit=20_000 * USD)


@pytest.mark.parametrize("bad, why", [
    ({"max_balance": 1000.0}, "decimal string"),
    ({"max_balance": "0.00001"}, "finer"),
    ({"max_holders": 0}, "positive integer"),
    ({"countries_allow": ["de"]}, "ISO 3166-1"),
    ({"countries_allow": ["DE"], "countries_deny": ["DE"]}, "both allowed and denied"),
    ({"max_balanse": "1"}, "unknown key"),
])
def test_a_malformed_rule_is_refused_with_the_field(bad, why):
    row = _toml_row()
    row["compliance"] = bad
    with pytest.raises(InstrumentError, match=why) as exc:
        Registry().add_toml({"instrument": [row]}, "test")
    assert "field compliance" in str(exc.value)


def test_changed_rules_are_a_changed_instrument_definition():
    plain, ruled = PLAIN["TB3M"], registry(max_balance=10 * LOT)[0]
    assert definition(plain)["compliance"] == ""
    assert definition(ruled)["compliance"] != "" and definition(ruled) != definition(plain)
    assert definition(ruled) == definition(registry(max_balance=10 * LOT)[0])


def test_no_rules_cost_nothing_and_build_no_checker():
    assert Engine(PLAIN, ledger(), clock=lambda: T0).risk.compliance is None


# ---------------------------------------------------------------------- maximum balance
def test_buy_within_the_maximum_balance_is_accepted(book_engine):
    eng = engine(book_engine, max_balance=10 * LOT)
    assert report(buy(eng, "b1", BUYER, "10")).exec_type == "new"


def test_buy_above_the_maximum_balance_is_refused_with_the_figures(book_engine):
    eng = engine(book_engine, max_balance=10 * LOT)
    r = report(buy(eng, "b1", BUYER, "12"))
    assert r.ord_rej_reason == "MAX_BALANCE"
    assert r.text.startswith("12.0000 would exceed 10.0000 for TB3M")
    assert eng.ledger.reserved(BUYER, CASH) == 0


def test_open_buy_leaves_count_towards_the_maximum_balance(book_engine):
    eng = engine(book_engine, max_balance=10 * LOT)
    assert report(buy(eng, "b1", BUYER, "6")).exec_type == "new"
    r = report(buy(eng, "b2", BUYER, "5"))
    assert r.ord_rej_reason == "MAX_BALANCE" and "open buys 6.0000" in r.text


def test_tokens_held_count_towards_the_maximum_balance(book_engine):
    eng = engine(book_engine, max_balance=10 * LOT)
    sell(eng, "s1", "8")
    assert report(buy(eng, "b1", BUYER, "8")).exec_type == "trade"
    r = report(buy(eng, "b2", BUYER, "3"))
    assert r.ord_rej_reason == "MAX_BALANCE" and "held 8.0000" in r.text


def test_a_sell_is_never_held_to_the_maximum_balance(book_engine):
    eng = engine(book_engine, max_balance=10 * LOT)        # the seller holds 100
    assert report(sell(eng, "s1", "50"), "beta").exec_type == "new"


# ---------------------------------------------------------------------- maximum holders
def test_a_buy_from_a_new_holder_past_the_cap_is_refused(book_engine):
    eng = engine(book_engine, max_holders=2)               # the seller holds already
    assert report(buy(eng, "b1", BUYER, "1")).exec_type == "new"
    r = report(buy(eng, "b2", OTHER, "1"))
    assert r.ord_rej_reason == "MAX_HOLDERS"
    assert r.text.startswith("3 holders would exceed 2 for TB3M")


def test_holders_and_their_open_buys_may_buy_more_at_the_cap(book_engine):
    eng = engine(book_engine, max_holders=2)
    assert report(buy(eng, "b1", BUYER, "1")).exec_type == "new"
    assert report(buy(eng, "b2", BUYER, "1")).exec_type == "new"
    assert report(buy(eng, "b3", SELLER, "1", broker="beta"), "beta").exec_type == "new"


def test_a_cancelled_open_buy_frees_its_holder_place(book_engine):
    eng = engine(book_engine, max_holders=2)
    buy(eng, "b1", BUYER, "1")
    eng.submit("alpha", OrderCancelRequest("c1", "b1", "TB3M"), now=T0)
    assert report(buy(eng, "b2", OTHER, "1")).exec_type == "new"


def test_a_holder_who_sold_everything_is_no_longer_counted(book_engine):
    eng = engine(book_engine, max_holders=2)
    sell(eng, "s1", "100")
    assert report(buy(eng, "b1", BUYER, "100")).exec_type == "trade"
    assert eng.ledger.holders("TB3M") == {BUYER: 100 * LOT}
    assert report(buy(eng, "b2", OTHER, "1")).exec_type == "new"


# ---------------------------------------------------------------------- countries
def test_an_allowed_country_may_buy(book_engine):
    eng = engine(book_engine, countries_allow=("DE", "FR"))
    assert report(buy(eng, "b1", BUYER, "1")).exec_type == "new"


def test_a_country_not_allowed_is_refused(book_engine):
    eng = engine(book_engine, countries_allow=("DE", "FR"))
    r = report(buy(eng, "b1", OTHER, "1"))
    assert r.ord_rej_reason == "COUNTRY_NOT_ALLOWED"
    assert r.text == "US is not among the countries allowed to buy TB3M (DE, FR)"


def test_a_denied_country_is_refused_and_others_may_buy(book_engine):
    eng = engine(book_engine, countries_deny=("US",))
    assert report(buy(eng, "b1", OTHER, "1")).ord_rej_reason == "COUNTRY_NOT_ALLOWED"
    assert report(buy(eng, "b2", BUYER, "1")).exec_type == "new"


def test_an_account_without_a_country_is_refused_by_a_country_list(book_engine):
    eng = engine(book_engine, countries_deny=("US",))
    r = report(buy(eng, "b1", NOWHERE, "1"))
    assert r.ord_rej_reason == "COUNTRY_NOT_ALLOWED" and "no country on file" in r.text


def test_a_holder_in_a_denied_country_may_still_sell(book_engine):
    eng = engine(book_engine, countries_deny=("FR",))       # the seller is French
    assert report(sell(eng, "s1", "1"), "beta").exec_type == "new"


def test_the_accounts_file_gives_the_country(tmp_path):
    path = tmp_path / "accounts.toml"
    path.write_text('[[account]]\nid = 5\nbroker = "alpha"\ncountry = "DEU"\n')
    led = Ledger()
    led.load(path)
    assert led.accounts[5].country == "DEU"
    path.write_text('[[account]]\nid = 6\nbroker = "alpha"\ncountry = "deu"\n')
    with pytest.raises(Exception, match="ISO 3166-1"):
        Ledger().load(path)


# ---------------------------------------------------------------------- lock-up
def test_a_sell_in_the_lock_up_is_refused_with_the_date(book_engine):
    eng = engine(book_engine, lockup_until=date(2026, 11, 27))
    r = report(sell(eng, "s1", "1"), "beta")
    assert r.ord_rej_reason == "LOCKED_UP"
    assert r.text == "TB3M is locked up until 2026-11-27: no sell on 2026-11-25"
    assert eng.ledger.reserved(SELLER, "TB3M") == 0


def test_a_sell_on_the_lock_up_date_is_accepted(book_engine):
    eng = engine(book_engine, lockup_until=date(2026, 11, 27))
    assert report(sell(eng, "s1", "1", now=T0 + 2 * DAY), "beta").exec_type == "new"


def test_buys_are_open_during_the_lock_up(book_engine):
    eng = engine(book_engine, lockup_until=date(2026, 11, 27))
    assert report(buy(eng, "b1", BUYER, "1")).exec_type == "new"


# ---------------------------------------------------------------------- replace
def test_amend_up_past_the_maximum_balance_is_refused_and_the_order_stays(book_engine):
    eng = engine(book_engine, max_balance=10 * LOT)
    buy(eng, "b1", BUYER, "8")
    reserved = eng.ledger.reserved(BUYER, CASH)
    out = replace(eng, "r1", "b1", "12", "99.270")
    r = report(out)
    assert r.cxl_rej_reason == "OTHER"
    assert r.text.startswith("MAX_BALANCE: 12.0000 would exceed 10.0000 for TB3M")
    [o] = eng.orders.values()
    assert (o.qty, o.leaves) == (8 * LOT, 8 * LOT)
    assert eng.ledger.reserved(BUYER, CASH) == reserved


def deposit_tokens(eng, account, qty):
    """The custodian mints tokens to ``account`` (an operator input no rule refuses)."""
    out = eng.account_input(AccountInput("deposit", account=account, asset="TB3M",
                                         amount=qty), now=T0)
    assert out.sequenced, out.refused


def test_amend_down_is_allowed_even_over_a_limit(book_engine):
    eng = engine(book_engine, max_balance=10 * LOT)
    buy(eng, "b1", BUYER, "8")
    deposit_tokens(eng, BUYER, "5")                      # 5 held + 8 open: over 10
    out = replace(eng, "r1", "b1", "6", "99.270")
    assert report(out).exec_type == "replaced"
    [o] = eng.orders.values()
    assert o.leaves == 6 * LOT


def test_amend_of_the_price_up_is_checked_as_more_notional(book_engine):
    eng = engine(book_engine, max_balance=10 * LOT)
    buy(eng, "b1", BUYER, "8")
    deposit_tokens(eng, BUYER, "5")
    out = replace(eng, "r1", "b1", "8", "99.300")
    assert report(out).text.startswith("MAX_BALANCE: 13.0000 would exceed 10.0000")


def _toml_row() -> dict:
    return {"symbol": "TBX", "isin": "XS000TB3M269", "kind": "tbill", "face_value": "1000",
            "token_decimals": 4, "tick_size": "0.001", "issue_date": date(2026, 11, 2),
            "maturity": date(2027, 2, 1), "min_order_qty": "0.01", "band_pct": "2",
            "reference_price": "99.270", "eligibility": ["retail", "institutional"],
            "compliance": {"max_balance": "1000", "max_holders": 3,
                           "countries_allow": ["FR", "DE"], "lockup_until": date(2026, 12, 1),
                           "retail_max_order_notional": "5000",
                           "retail_max_position": "50",
                           "retail_daily_buy_limit": "20000"}}


def test_parse_compliance_keeps_countries_sorted_and_unique():
    rules = parse_compliance({"countries_deny": ["US", "CA", "US"]}, 4, 6)
    assert rules.countries_deny == ("CA", "US")


def test_a_restart_with_other_rules_is_refused_like_a_changed_definition(tmp_path):
    from feeds.venue import VenueMismatch, check, record
    founded = Registry(registry(max_balance=10 * LOT))
    record(tmp_path, founded, ledger(), accounts_source="test", instruments_file=None,
           previous=None)
    assert check(tmp_path, founded, None).moved == []
    with pytest.raises(VenueMismatch, match="TB3M compliance"):
        check(tmp_path, Registry(registry(max_balance=20 * LOT)), None)
    with pytest.raises(VenueMismatch, match="TB3M compliance"):
        check(tmp_path, PLAIN, None)


def test_resting_buys_entered_before_the_rules_count_once_the_operator_sets_them():
    eng = Engine(PLAIN, ledger(), clock=lambda: T0)
    buy(eng, "b1", BUYER, "8")
    out = eng.account_input(AccountInput("set_compliance", symbol="TB3M",
                                         compliance={"max_balance": "10"}), now=T0)
    assert out.sequenced
    r = report(buy(eng, "b2", BUYER, "3"))
    assert r.ord_rej_reason == "MAX_BALANCE" and "open buys 8.0000" in r.text


def test_resting_buys_restored_from_a_snapshot_count(book_engine):
    eng = engine(book_engine, max_balance=10 * LOT)
    buy(eng, "b1", BUYER, "8")
    again = Engine.from_snapshot(registry(max_balance=10 * LOT), eng.snapshot(),
                                 clock=lambda: T0, book_engine=book_engine)
    r = report(buy(again, "b2", BUYER, "3"))
    assert r.ord_rej_reason == "MAX_BALANCE" and "open buys 8.0000" in r.text


def test_an_order_id_a_refused_buy_would_have_had_counts_only_for_its_new_owner(book_engine):
    eng = engine(book_engine, max_balance=1000 * LOT)
    # Passes the rules, then is refused for its cash: its order id goes to the next order.
    assert report(buy(eng, "b1", BUYER, "200")).ord_rej_reason == "INSUFFICIENT_FUNDS"
    assert report(buy(eng, "b2", OTHER, "5")).exec_type == "new"
    r = report(buy(eng, "b3", BUYER, "1001"))
    assert r.ord_rej_reason == "MAX_BALANCE" and "open buys 0.0000" in r.text

"""``set_compliance``: the operator replaces an instrument's rules while the venue runs;
a bad table is refused whole and journals nothing; the change is replayed from the
journal and restored from a snapshot to the same rules and hash."""
from __future__ import annotations

import pytest

from feeds import topics
from feeds.operator import command_of, topic_of
from matching.compliance_rules import ComplianceRules
from matching.engine import Engine
from matching.journal import Journal
from matching.messages import AccountInput
from testkit.compliance import BUYER, DAY, LOT, PLAIN, T0, USD, buy, ledger, report, sell


def set_rules(eng, symbol="TB3M", **table):
    return eng.account_input(AccountInput("set_compliance", symbol=symbol, compliance=table),
                             now=T0)


def plain(journal=None) -> Engine:
    return Engine(PLAIN, ledger(), clock=lambda: T0, journal=journal)


def test_the_operator_sets_a_maximum_balance_on_an_instrument_without_rules():
    eng = plain()
    out = set_rules(eng, max_balance="10")
    assert out.sequenced and out.seq == eng.seq
    assert eng.risk.compliance.rules["TB3M"] == ComplianceRules(max_balance=10 * LOT)
    assert report(buy(eng, "b1", BUYER, "11")).ord_rej_reason == "MAX_BALANCE"
    assert report(buy(eng, "b2", BUYER, "10")).exec_type == "new"


def test_an_empty_table_turns_every_rule_off():
    eng = plain()
    set_rules(eng, max_balance="10")
    assert set_rules(eng).sequenced
    assert report(buy(eng, "b1", BUYER, "11")).exec_type == "new"


def test_a_malformed_table_is_refused_whole_and_journals_nothing():
    eng = plain()
    seq = eng.seq
    for table, why in (({"max_balance": "-1"}, "positive"),
                       ({"max_holders": "3"}, "positive integer"),
                       ({"lockup_until": "soon"}, "ISO date"),
                       ({"max_balanse": "1"}, "unknown key")):
        out = set_rules(eng, **table)
        assert not out.sequenced and out.refused.startswith("INVALID_FIELD: compliance: ")
        assert why in out.refused
    out = set_rules(eng, symbol="NOPE", max_balance="1")
    assert out.refused.startswith("UNKNOWN_SYMBOL")
    assert eng.seq == seq and eng.risk.compliance is None


def test_a_daily_limit_set_while_running_counts_the_fills_after_it():
    eng = plain()
    set_rules(eng, retail_daily_buy_limit="1500")
    sell(eng, "s1", "2", price="99.000")
    buy(eng, "b1", BUYER, "1")
    assert eng.risk.compliance.bought_today(BUYER, "TB3M", T0) == 990 * USD
    assert report(buy(eng, "b2", BUYER, "1")).ord_rej_reason == "DAILY_BUY_LIMIT"


def test_rules_set_by_the_operator_replay_and_restore_to_the_same_hash(tmp_path):
    journal = Journal(tmp_path / "journal.log")
    live = plain(journal)
    live.write_snapshot(tmp_path / "founded")
    set_rules(live, max_balance="10", retail_daily_buy_limit="5000",
              lockup_until="2026-11-26")
    sell(live, "s1", "3", price="99.000", now=T0 + DAY)
    buy(live, "b1", BUYER, "2", now=T0 + DAY)
    live.write_snapshot(tmp_path / "midway")
    assert report(buy(live, "b2", BUYER, "9", now=T0 + DAY)).ord_rej_reason == "MAX_BALANCE"
    set_rules(live, symbol="TB6M", max_holders=1)
    live.commit()
    journal.close()
    for start in ("founded", "midway"):
        again = Engine.recover(PLAIN, snapshot_dir=tmp_path / start,
                               journal_path=tmp_path / "journal.log", clock=lambda: T0)
        assert again.risk.compliance.rules == live.risk.compliance.rules
        assert again.risk.compliance.bought == live.risk.compliance.bought
        assert again.executions.compliance is again.risk.compliance
        assert again.state_hash() == live.state_hash()
        again.close()


def test_tokenbook_admin_set_compliance_takes_the_rules_as_a_json_object():
    cmd = command_of("set-compliance", ["TB3M", '{"max_balance": "1000", "max_holders": 3}'])
    assert (cmd.action, cmd.symbol, cmd.compliance) == (
        "set_compliance", "TB3M", {"max_balance": "1000", "max_holders": 3})
    assert command_of("set-compliance", ["TB3M"]).compliance == {}
    assert topic_of("set_compliance") == topics.ADMIN        # the operator's, not the agent's
    with pytest.raises(ValueError, match="RULES must be a JSON object"):
        command_of("set-compliance", ["TB3M", "max_balance=1000"])

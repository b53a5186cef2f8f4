"""Operator commands on a sharded venue (sans-I/O, two shards' gateway cycles hearing the
same venue-wide topics): a symbol's command is taken by its shard alone, a venue-wide
session command by every shard, an account input only on one shard's own admin topic, and
cash moves between shards by transfer legs on each shard's topic, idempotent by id."""
from __future__ import annotations

import json
import time

import pytest

from feeds import topics
from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle
from feeds.shard import ShardDirectory
from feeds.shard_admin import Scope, auction_scope, venue_command_scope
from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger

REG = Registry.load_default()
MAP = {"s1": ("TB3M",), "s2": ("TB6M",)}
DIRECTORY = ShardDirectory.from_mapping(MAP)


def shard_cycles(directory=DIRECTORY) -> dict[str, GatewayCycle]:
    """Each shard's cycle: its instrument, account 1 of alpha funded with 1000 USDC."""
    cycles = {}
    for sid, symbols in MAP.items():
        led = Ledger()
        led.open_account(1, "alpha")
        led.deposit(1, CASH, 1000 * 10**6)
        cycles[sid] = GatewayCycle(
            Engine([REG[s] for s in symbols], led, clock=time.time_ns),
            GatewayConfig(shard=sid, shard_symbols=symbols, shard_directory=directory))
    return cycles


def command(action: str, request_id: str = "r", **fields) -> bytes:
    return json.dumps({"action": action, "request_id": request_id, **fields}).encode()


def heard(cycles, topic: str, payload: bytes, now: int = 1) -> dict[str, dict]:
    """Every shard's reply to one message on ``topic``, by shard (none: it ignored it)."""
    out = {}
    for sid, cycle in cycles.items():
        for p in cycle.process([(topic, payload)], now):
            if p.topic == topics.ADMIN_REPLIES:
                out[sid] = json.loads(p.payload)
    return out


def cash(cycle: GatewayCycle) -> int:
    return cycle.engine.ledger.balance(1, CASH)


@pytest.mark.parametrize("shard, symbol, action, scope", [
    ("s1", "TB3M", "halt", Scope.TAKE),
    ("s2", "TB3M", "halt", Scope.IGNORE),
    ("s1", "NOPE", "halt", Scope.TAKE),        # the answering shard refuses what none serves
    ("s2", "NOPE", "halt", Scope.IGNORE),
    ("s1", "", "halt", Scope.TAKE),
    ("s2", "", "halt", Scope.TAKE),
    ("s1", "", "deposit", Scope.REFUSE),
    ("s2", "", "deposit", Scope.IGNORE),       # one refusal for the venue, the answering one
    ("s2", "", "transfer_out", Scope.IGNORE),
    ("s1", "", "freeze", Scope.TAKE),          # an agent control of a whole account
    ("s2", "", "freeze", Scope.TAKE),
    ("s2", "TB6M", "whitelist", Scope.TAKE),
])
def test_which_shard_takes_a_command_heard_venue_wide(shard, symbol, action, scope):
    assert venue_command_scope(shard, DIRECTORY, symbol, action, MAP[shard]) is scope


def test_without_a_map_every_shard_refuses_an_account_input_sent_venue_wide():
    assert venue_command_scope("s2", None, "", "deposit", MAP["s2"]) is Scope.REFUSE
    assert venue_command_scope("s2", None, "NOPE", "halt", MAP["s2"]) is Scope.IGNORE


def test_an_auction_no_shard_holds_is_the_answering_shards_to_refuse():
    assert auction_scope("s1", DIRECTORY, "", MAP["s1"]) is Scope.TAKE
    assert auction_scope("s2", DIRECTORY, "", MAP["s2"]) is Scope.IGNORE
    assert auction_scope("s2", DIRECTORY, "TB6M", MAP["s2"]) is Scope.TAKE


def test_a_halt_of_one_bill_is_answered_by_its_shard_alone():
    cycles = shard_cycles()
    replies = heard(cycles, topics.ADMIN, command("halt", symbol="TB6M"))
    assert list(replies) == ["s2"] and replies["s2"]["accepted"]
    assert replies["s2"]["shard"] == "s2"
    assert cycles["s1"].engine.seq == 0 and cycles["s2"].engine.seq == 1


def test_a_venue_wide_halt_is_taken_by_every_shard_each_naming_itself():
    replies = heard(shard_cycles(), topics.ADMIN, command("halt", reason="drill"))
    assert {s: (r["accepted"], r["shard"]) for s, r in replies.items()} == {
        "s1": (True, "s1"), "s2": (True, "s2")}


def test_a_deposit_sent_venue_wide_is_refused_once_and_booked_nowhere():
    cycles = shard_cycles()
    replies = heard(cycles, topics.ADMIN, command("deposit", account=1, asset="USDC",
                                                   amount="5"))
    assert list(replies) == ["s1"] and not replies["s1"]["accepted"]
    assert "tokenbook/v1/shard/ID/admin" in replies["s1"]["text"]
    assert [cash(c) for c in cycles.values()] == [1000 * 10**6] * 2
    assert all(c.engine.seq == 0 for c in cycles.values())


def test_a_deposit_on_a_shards_own_topic_is_booked_on_that_shard_only():
    cycles = shard_cycles()
    replies = heard(cycles, topics.shard_admin("s2"),
                    command("deposit", account=1, asset="USDC", amount="5"))
    assert list(replies) == ["s2"] and replies["s2"]["accepted"]
    assert (cash(cycles["s1"]), cash(cycles["s2"])) == (1000 * 10**6, 1005 * 10**6)


def test_cash_moves_between_shards_by_two_legs_and_a_resent_leg_moves_nothing():
    cycles = shard_cycles()
    out = command("transfer_out", account=1, amount="250", transfer_id="t1", shard="s2")
    inn = command("transfer_in", account=1, amount="250", transfer_id="t1", shard="s1")
    assert heard(cycles, topics.shard_admin("s1"), out)["s1"]["accepted"]
    assert heard(cycles, topics.shard_admin("s2"), inn)["s2"]["accepted"]
    assert (cash(cycles["s1"]), cash(cycles["s2"])) == (750 * 10**6, 1250 * 10**6)
    again = heard(cycles, topics.shard_admin("s2"), inn, 2)["s2"]
    assert not again["accepted"] and "DUPLICATE_TRANSFER" in again["text"]
    assert (cash(cycles["s1"]), cash(cycles["s2"])) == (750 * 10**6, 1250 * 10**6)

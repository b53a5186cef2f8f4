"""Operator and transfer-agent commands on a sharded venue: which shard takes which.

Every shard hears the venue-wide topics (``tokenbook/v1/admin`` and the agent's), so a
command there must be taken by the shards it concerns and by no other, or a deposit
would be booked once per shard and a halt of one bill answered "unknown instrument" by
the shards that do not list it:

* a command naming a symbol: taken by the shard serving it, ignored by the others (the
  answering shard of a ``--shards`` map also takes a symbol no shard serves, to refuse
  it: otherwise no one would answer);
* a session command for every instrument (``halt`` with no symbol) and an agent control
  of a whole account (``freeze``, ``recover``): taken by every shard, each replying with
  its shard named;
* an account input or a cash transfer leg (``deposit``, ``open_account``,
  ``transfer_out`` ...): it must apply on one shard only, so it is refused on the
  venue-wide topic (by the answering shard alone when there is a map) and taken only on
  the shard's own ``tokenbook/v1/shard/{id}/admin``.
"""
from __future__ import annotations

import enum
from collections.abc import Container

from feeds import topics
from matching.messages import ACCOUNT_ACTIONS
from matching.transfers import TRANSFER_ACTIONS

__all__ = ["Scope", "ONE_SHARD_ACTIONS", "venue_command_scope", "auction_scope",
           "one_shard_refusal"]

#: Operator inputs that must apply on exactly one shard: sent on its own admin topic.
ONE_SHARD_ACTIONS = frozenset(ACCOUNT_ACTIONS) | frozenset(TRANSFER_ACTIONS)


class Scope(enum.Enum):
    """What one shard does with a command heard on a venue-wide topic."""
    TAKE = "take"           # handle it as a one-shard venue would (reply included)
    IGNORE = "ignore"       # another shard's: no input, no reply
    REFUSE = "refuse"       # reply ``one_shard_refusal``: it belongs on a shard's topic


def venue_command_scope(shard: str, directory, symbol: str, action: str,
                        served: Container[str]) -> Scope:
    """The scope of ``action`` on ``symbol`` for shard ``shard`` (serving ``served``),
    heard on a venue-wide topic; ``directory``: the venue's ShardDirectory, or None."""
    answering = directory is not None and directory.answering == shard
    if symbol:
        if symbol in served:
            return Scope.TAKE
        unserved = directory is not None and directory.shard_of(symbol) is None
        return Scope.TAKE if answering and unserved else Scope.IGNORE
    if action in ONE_SHARD_ACTIONS:
        return Scope.REFUSE if directory is None or answering else Scope.IGNORE
    return Scope.TAKE


def auction_scope(shard: str, directory, symbol: str, served: Container[str]) -> Scope:
    """An issuance auction input's scope: by its instrument (``symbol``: named, or that of
    the auction this shard holds); an auction no shard here knows is the answering
    shard's to refuse (every shard's without a map)."""
    if symbol:
        return venue_command_scope(shard, directory, symbol, "auction", served)
    return Scope.TAKE if directory is None or directory.answering == shard else Scope.IGNORE


def one_shard_refusal(action: str) -> str:
    """The reply text of an account input or transfer leg sent venue-wide."""
    return (f"refused: on a sharded venue {action} applies on one shard: send it on "
            f"{topics.shard_admin('ID')} (tokenbook admin --shard ID ...)")

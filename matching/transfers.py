"""A broker's cash moved between shards: journaled ``transfer_out`` / ``transfer_in`` legs
under one idempotent transfer id (docs/replication.md, "Shards").

Each shard's engine holds its own pre-funded allocation of an account's cash. Moving part of
it to another shard is two inputs, one per shard's journal, carrying the same transfer id:

* ``transfer_out`` on the paying shard: checked against the account's *free* cash (never a
  reservation, never a frozen account) and then journaled and applied at once: the cash
  leaves that shard's ledger, so it can never be spent twice (never overspent).
* ``transfer_in`` on the receiving shard, only after the out leg is durable: credits the
  same account. It is idempotent by transfer id: a second ``in`` with the same id and the
  same content is refused DUPLICATE_TRANSFER (nothing journaled, nothing credited), so a
  coordinator that crashed between the halves simply sends it again on restart
  (``ShardTransferCoordinator.complete_pending``: never lost).

The state (outgoing and incoming transfers by id) is part of the engine's state hash and
snapshot, so replay and recovery reproduce it. Invariant, per transfer id: at most one out
leg on one shard and at most one in leg on one shard, with equal account and amount.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from matching.errors import EngineReject, Rejection
from matching.ledger import CASH
from matching.messages import AccountInput

if TYPE_CHECKING:                       # the engine imports this module (accounts_admin)
    from matching.engine import Engine

__all__ = ["TRANSFER_ACTIONS", "TransferLeg", "ShardTransfers", "ShardTransferCoordinator",
           "TransferFailed", "transfer_out", "transfer_in"]

#: The two legs of a cash transfer between shards.
TRANSFER_ACTIONS = ("transfer_out", "transfer_in")
#: A transfer id: one topic-safe token (a UUID, or ``{broker}-{n}``), unique per venue.
_TRANSFER_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_SHARD = re.compile(r"[A-Za-z0-9_.-]{1,64}")      # == feeds.topics.NAME_PATTERN


@dataclass(frozen=True, slots=True)
class TransferLeg:
    """One journaled leg: the account, the cash units moved and the other shard."""
    account: int
    units: int
    peer_shard: str

    def row(self) -> list:
        return [self.account, self.units, self.peer_shard]


def _no(code: EngineReject, text: str) -> Rejection:
    return Rejection(code.value, text)


def transfer_out(transfer_id: str, account: int, amount: str, to_shard: str) -> AccountInput:
    """The paying shard's leg (``amount``: a decimal string of the cash token)."""
    return AccountInput("transfer_out", account=account, asset=CASH, amount=amount,
                        transfer_id=transfer_id, shard=to_shard)


def transfer_in(transfer_id: str, account: int, amount: str, from_shard: str) -> AccountInput:
    """The receiving shard's leg: the same id, account and amount as its out leg."""
    return AccountInput("transfer_in", account=account, asset=CASH, amount=amount,
                        transfer_id=transfer_id, shard=from_shard)


class ShardTransfers:
    """The transfer legs one shard's engine has applied, by transfer id."""

    def __init__(self) -> None:
        self.outgoing: dict[str, TransferLeg] = {}
        self.incoming: dict[str, TransferLeg] = {}

    # ------------------------------------------------------------------ checks
    def check(self, m: AccountInput, units: int, free_cash: int) -> None:
        """Every rule of a transfer leg not already checked by the account rules (the
        account is open, the amount exact and positive); ``Rejection`` says which broke."""
        if not _TRANSFER_ID.fullmatch(m.transfer_id):
            raise _no(EngineReject.INVALID_TRANSFER, "a transfer needs a transfer_id of 1-64 "
                      "of A-Z a-z 0-9 _ . : -")
        if not _SHARD.fullmatch(m.shard):
            raise _no(EngineReject.INVALID_TRANSFER, "a transfer names the other shard "
                      "(shard: 1-64 of A-Z a-z 0-9 _ . -)")
        leg = TransferLeg(m.account, units, m.shard)
        table = self.outgoing if m.action == "transfer_out" else self.incoming
        seen = table.get(m.transfer_id)
        if seen is not None:
            if seen == leg:
                raise _no(EngineReject.DUPLICATE_TRANSFER, f"transfer {m.transfer_id} "
                          f"({m.action}) is applied already: nothing to do")
            raise _no(EngineReject.TRANSFER_CONFLICT, f"transfer {m.transfer_id} was "
                      f"applied with other contents (account {seen.account}, "
                      f"{seen.units} units, shard {seen.peer_shard})")
        if m.action == "transfer_out" and units > free_cash:
            raise _no(EngineReject.INSUFFICIENT_FUNDS, f"account {m.account} has "
                      f"{free_cash} cash units free on this shard, not {units}")

    # ------------------------------------------------------------------ apply
    def apply(self, m: AccountInput, units: int, ledger) -> None:
        """A checked leg: the cash leaves (out) or arrives (in), and the id is kept."""
        leg = TransferLeg(m.account, units, m.shard)
        if m.action == "transfer_out":
            ledger.withdraw(m.account, CASH, units)
            self.outgoing[m.transfer_id] = leg
        else:
            ledger.deposit(m.account, CASH, units)
            self.incoming[m.transfer_id] = leg

    # ------------------------------------------------------------------ state
    def state_doc(self) -> list:
        """Canonical state for the state hash (empty: no transfer yet, so a venue that
        never moves cash hashes as before)."""
        if not (self.outgoing or self.incoming):
            return []
        return [sorted([t, *leg.row()] for t, leg in self.outgoing.items()),
                sorted([t, *leg.row()] for t, leg in self.incoming.items())]

    def snapshot(self) -> dict:
        out, into = self.state_doc() or ([], [])
        return {"out": out, "in": into}

    def restore(self, snap: Mapping | None) -> None:
        if not snap:                       # older snapshots have none
            return
        self.outgoing = {t: TransferLeg(a, u, s) for t, a, u, s in snap["out"]}
        self.incoming = {t: TransferLeg(a, u, s) for t, a, u, s in snap["in"]}


class TransferFailed(Exception):
    """A leg was refused for a reason other than 'already applied' (the text says it)."""


_DUPLICATE = EngineReject.DUPLICATE_TRANSFER.value


def _refused_code(refused: str) -> str:
    return refused.split(":", 1)[0]


class ShardTransferCoordinator:
    """Drives both legs over the shards' engines: out, made durable, then in.

    ``engines`` maps shard id to its engine (in one process for tests and the bench; across
    processes the same two inputs travel on each shard's admin topic). ``after_out`` is a
    test hook run between the halves (a kill there must be completed by
    ``complete_pending``).
    """

    def __init__(self, engines: Mapping[str, Engine],
                 after_out: Callable[[str], None] | None = None) -> None:
        self.engines = engines
        self.after_out = after_out

    def move_cash(self, transfer_id: str, account: int, amount: str,
                  from_shard: str, to_shard: str) -> None:
        """Move ``amount`` of ``account``'s cash from one shard's allocation to another's.
        Re-running it with the same id after a crash finishes it exactly once."""
        if from_shard == to_shard or from_shard not in self.engines \
                or to_shard not in self.engines:
            raise TransferFailed(f"{EngineReject.INVALID_TRANSFER.value}: shards "
                                 f"{from_shard!r} -> {to_shard!r} are not two of "
                                 f"{sorted(self.engines)}")
        self._leg(from_shard, transfer_out(transfer_id, account, amount, to_shard))
        if self.after_out is not None:
            self.after_out(transfer_id)
        self._leg(to_shard, transfer_in(transfer_id, account, amount, from_shard))

    def complete_pending(self) -> list[str]:
        """Every out leg whose in leg its shard lacks, applied now (after a restart);
        returns their transfer ids."""
        done = []
        for shard, engine in sorted(self.engines.items()):
            admin = engine.accounts_admin
            for tid, leg in sorted(admin.transfers.outgoing.items()):
                peer = self.engines.get(leg.peer_shard)
                if peer is None or tid in peer.accounts_admin.transfers.incoming:
                    continue
                amount = admin.cash_amount(leg.units)
                self._leg(leg.peer_shard, transfer_in(tid, leg.account, amount, shard))
                done.append(tid)
        return done

    def _leg(self, shard: str, msg: AccountInput) -> None:
        engine = self.engines[shard]
        out = engine.account_input(msg)
        if out.sequenced:
            engine.commit()                 # durable before the other half goes
            return
        if _refused_code(out.refused) != _DUPLICATE:
            raise TransferFailed(out.refused)

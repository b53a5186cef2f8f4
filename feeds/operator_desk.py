"""The gateway cycle's operator desk (sans-I/O): an operator command, a transfer agent's
control, an issuer's auction input, a timetable's session boundary or lifecycle step
becomes one engine input, and its reply waits here until the cycle's commit decides
whether it may say "accepted" (``GatewayCycle._stage_admin``)."""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from feeds.codec import AdminReply, decode_admin_command
from feeds.config import GatewayConfig
from feeds.issuance_wire import auction_command, decode_auction_input
from feeds.operator_inputs import ACCOUNT_COMMANDS, account_command
from feeds.shard_admin import Scope, auction_scope, one_shard_refusal, venue_command_scope
from matching.engine import Engine
from matching.messages import LIFECYCLE_ACTIONS
from matching.outputs import Outcome
from matching.transfers import TRANSFER_ACTIONS

__all__ = ["OperatorDesk"]

log = logging.getLogger("tokenbook.gateway")


class OperatorDesk:
    """Operator-side inputs of one gateway; ``replies`` are this cycle's, in order."""

    def __init__(self, engine: Engine, config: GatewayConfig, stats: Callable[[], Any]):
        self.engine, self.config = engine, config
        self.stats = stats          # () -> the cycle's GatewayStats (a transport swaps it)
        self.replies: list[AdminReply] = []

    def take_replies(self) -> list[AdminReply]:
        replies, self.replies = self.replies, []
        return replies

    def command(self, payload: bytes, agent: bool = False,
                venue_wide: bool = False) -> Outcome | None:
        """One operator command (or, ``agent``, a transfer agent's control): checked, then
        journaled and applied like an order. ``venue_wide``: a shard heard it on a topic
        every shard hears, and takes it only if it is its own (feeds.shard_admin)."""
        engine, config = self.engine, self.config
        auction = None if agent else decode_auction_input(payload, issuer=True)
        if auction is not None:               # the issuer's announce, close or issue
            if venue_wide and auction_scope(
                    config.shard, config.shard_directory, self._auction_symbol(auction),
                    engine.instruments) is not Scope.TAKE:
                return None
            issued, said = auction_command(engine, auction)
            self.replies.append(said)
            return issued
        cmd = decode_admin_command(payload)
        if isinstance(cmd, AdminReply):
            log.warning("operator command refused: %s", cmd.text)
            self.replies.append(cmd)
            return None
        if cmd.action in TRANSFER_ACTIONS and not config.shard:
            self._refuse(cmd.request_id, cmd.action, f"{cmd.action} moves cash between "
                         "shards; this venue has one")
            return None
        if venue_wide:
            scope = venue_command_scope(config.shard, config.shard_directory, cmd.symbol,
                                        cmd.action, engine.instruments)
            if scope is Scope.REFUSE:
                self.replies.append(AdminReply(
                    cmd.request_id, False, one_shard_refusal(cmd.action), cmd.action))
            if scope is not Scope.TAKE:
                return None
        if agent or cmd.action in ACCOUNT_COMMANDS:
            out, reply = account_command(engine, cmd, agent=agent)
            self.replies.append(reply)
            return out
        if cmd.symbol and cmd.symbol not in engine.instruments:
            self._refuse(cmd.request_id, cmd.action, f"unknown instrument {cmd.symbol!r}",
                         cmd.symbol)
            return None
        if cmd.action in LIFECYCLE_ACTIONS:
            if not cmd.symbol:
                self._refuse(cmd.request_id, cmd.action, f"{cmd.action} needs an instrument")
                return None
            return self.lifecycle_input(cmd.action, cmd.symbol, cmd.coupon_date,
                                        cmd.reason, cmd.request_id)
        return self.session_input(cmd.action, cmd.symbol, cmd.reason, cmd.request_id,
                                  cmd.price)

    def session_input(self, action: str, symbol: str, reason: str,
                      request_id: str, price: str = "") -> Outcome:
        """Journal and apply one session action (an operator's, or the schedule's); its
        reply goes to the admin replies topic after the commit."""
        reply = AdminReply(request_id, False, "", action, symbol)
        out = self.engine.admin(action, symbol, reason, price=price)
        if not out.sequenced:                 # refused whole: journal down, or illegal
            reply.text = f"refused: {out.refused or 'not sequenced'}"
        else:
            reply.accepted, reply.seq = True, out.seq
            reply.text = (f"{action} {symbol or 'every instrument'}"
                          f"{f' ({reason})' if reason else ''}")
            log.warning("%s: %s at sequence %d", request_id if request_id == "schedule"
                        else "operator", reply.text, reply.seq)
        self.replies.append(reply)
        return out

    def lifecycle_input(self, action: str, symbol: str, coupon_date: str, reason: str,
                        request_id: str) -> Outcome:
        """Journal and apply one lifecycle step (the timetable's or an operator's); its
        reply goes to the admin replies topic after the commit."""
        reply = AdminReply(request_id, False, "", action, symbol)
        out = self.engine.lifecycle(action, symbol, coupon_date, reason)
        if not out.sequenced:
            reply.text = f"refused: {out.refused or 'not sequenced'}"
            log.error("%s %s %s refused: %s", action, symbol, coupon_date, reply.text)
        else:
            reply.accepted, reply.seq = True, out.seq
            reply.text = f"{action} {symbol}{f' {coupon_date}' if coupon_date else ''}"
            self.stats().lifecycle.append(f"{reply.text} at sequence {out.seq}")
            log.warning("%s: %s at sequence %d", request_id, reply.text, reply.seq)
        self.replies.append(reply)
        return out

    def _refuse(self, request_id: str, action: str, why: str, symbol: str = "") -> None:
        self.replies.append(AdminReply(request_id, False, f"refused: {why}", action, symbol))

    def _auction_symbol(self, auction) -> str:
        """The instrument of an auction input: named, or its announced auction's."""
        held = self.engine.issuance.auctions.get(auction.auction_id)
        return auction.symbol or (held.symbol if held is not None else "")

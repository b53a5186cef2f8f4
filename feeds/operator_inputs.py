"""The engine's side of the operator's account commands and the transfer agent's controls
(``tokenbook/v1/admin`` and ``tokenbook/v1/orders/tokenbook-agent``): who may send which,
the ``AdminCommand`` as the engine's ``AccountInput``, and the reply.

Separation of duties as ERC-3643 / T-REX splits its roles: the venue operator opens and
closes accounts, grants KYC permissions and books deposits and withdrawals; only the
transfer agent (T-REX ``onlyAgent``) freezes, force-transfers, recovers and pauses. The
ACL lets only ``tokenbook-operator`` write the admin topic and only ``tokenbook-agent``
its own order-entry topic, so the topic a command came on says who sent it.
"""
from __future__ import annotations

from feeds.codec import AdminCommand, AdminReply
from matching.compliance_admin import COMPLIANCE_ACTION, describe_rules
from matching.messages import ACCOUNT_ACTIONS, AGENT_ACTIONS, AccountInput
from matching.outputs import Outcome
from matching.transfers import TRANSFER_ACTIONS

__all__ = ["ACCOUNT_COMMANDS", "STATELESS_COMMANDS", "account_command"]

#: Commands that become an ``AccountInput`` (the rest are session or lifecycle commands).
ACCOUNT_COMMANDS = frozenset(ACCOUNT_ACTIONS) | frozenset(AGENT_ACTIONS) \
    | frozenset(TRANSFER_ACTIONS)
#: Accepted commands that change no instrument's trading state (no state republished).
STATELESS_COMMANDS = ACCOUNT_COMMANDS - {"pause", "unpause"}


def account_command(engine, cmd: AdminCommand, *, agent: bool) -> tuple[Outcome | None,
                                                                         AdminReply]:
    """Check who sent ``cmd``, hand it to the engine; its Outcome (None: refused before
    the engine) and the reply for the admin replies topic (sent after the commit)."""
    reply = AdminReply(cmd.request_id, False, "", cmd.action, cmd.symbol)
    if agent and cmd.action not in AGENT_ACTIONS:
        reply.text = (f"refused: {cmd.action} is not a transfer-agent control (the agent "
                      f"may send {', '.join(AGENT_ACTIONS)})")
        return None, reply
    if not agent and cmd.action in AGENT_ACTIONS:
        reply.text = (f"refused: {cmd.action} is the transfer agent's: send it as "
                      "tokenbook-agent")
        return None, reply
    eligibility = cmd.eligibility or ("retail" if cmd.action == "open_account" else "")
    msg = AccountInput(cmd.action, cmd.account, cmd.broker, eligibility,
                       cmd.country, cmd.symbol, cmd.asset, cmd.amount, cmd.to_account,
                       cmd.reason, cmd.transfer_id, cmd.shard, compliance=cmd.compliance)
    out = engine.account_input(msg)
    if not out.sequenced:
        reply.text = f"refused: {out.refused or 'not sequenced'}"
        return out, reply
    reply.accepted, reply.seq = True, out.seq
    reply.text = describe(msg)
    return out, reply


def describe(m: AccountInput) -> str:
    """One line saying what an accepted input did."""
    a = m.action
    if a == "open_account":
        return (f"open_account {m.account} of {m.broker} ({m.eligibility}, {m.country})")
    if a in ("deposit", "withdraw"):
        return f"{a} {m.amount} {m.asset} {'to' if a == 'deposit' else 'from'} {m.account}"
    if a == "forced_transfer":
        return (f"forced_transfer {m.amount} {m.symbol} from {m.account} to {m.to_account}"
                f"{f' ({m.reason})' if m.reason else ''}")
    if a == "recover":
        return f"recover {m.account} into {m.to_account}"
    if a in ("pause", "unpause"):
        return f"{a} {m.symbol}{f' ({m.reason})' if m.reason else ''}"
    if a == COMPLIANCE_ACTION:
        return f"{a} {m.symbol}: {describe_rules(m.compliance)}"
    what = f" {m.amount}" if m.amount else ""
    return f"{a} {m.account}{what}{f' {m.symbol}' if m.symbol else ''}"

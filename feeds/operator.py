"""The exchange operator's and the transfer agent's side: build one command, send it,
await its reply.

``tokenbook admin halt TB3M --reason "issuer notice"`` publishes an ``AdminCommand`` on
``tokenbook/v1/admin`` and waits on ``tokenbook/v1/admin/replies`` for the reply that
carries its request id (the engine journals the command before replying). The transfer
agent's controls (``freeze``, ``forced-transfer`` ...) go on the agent's own topic
(``topics.AGENT``) as ``tokenbook-agent``. ``command_of`` turns the command line's
operands into the command, one form per action (``FORMS``).
"""
from __future__ import annotations

import asyncio
import json
import uuid

import msgspec

from feeds import mqtt, topics
from feeds.codec import AdminCommand, AdminReply, encode
from matching.messages import ACCOUNT_ACTIONS, AGENT_ACTIONS

__all__ = ["send_command", "send", "command_of", "FORMS", "topic_of", "transfer_cash",
           "already_applied", "TRANSFER_CASH_USAGE"]

_reply_decoder = msgspec.json.Decoder(AdminReply)

#: The operands of each account action and agent control, in order ("[x]": optional).
FORMS: dict[str, tuple[str, ...]] = {
    "open_account": ("account", "broker"),
    "close_account": ("account",),
    "whitelist": ("account", "symbol"),
    "unwhitelist": ("account", "symbol"),
    "deposit": ("account", "asset", "amount"),
    "withdraw": ("account", "asset", "amount"),
    "freeze": ("account", "[symbol]"),
    "unfreeze": ("account", "[symbol]"),
    "forced_transfer": ("account", "to_account", "symbol", "amount"),
    "recover": ("account", "to_account"),
    "pause": ("symbol",),
    "unpause": ("symbol",),
    # The static band's reference (matching/auction.py): a session input, not an account's.
    "set_reference": ("symbol", "price"),
    # An instrument's compliance rules as a JSON object (matching.compliance_admin);
    # none: every rule off.
    "set_compliance": ("symbol", "[rules]"),
}


def usage(action: str) -> str:
    """``tokenbook admin`` usage line of an account action or agent control."""
    return f"{action.replace('_', '-')} {' '.join(f.upper() for f in FORMS[action])}"


def command_of(action: str, operands: list[str], *, reason: str = "", eligibility: str = "",
               country: str = "", qty: str = "") -> AdminCommand:
    """The command of ``tokenbook admin ACTION OPERANDS...`` (ValueError: they do not fit
    the action's form, with its usage line)."""
    action = action.replace("-", "_")
    form = FORMS[action]
    need = [f for f in form if not f.startswith("[")]
    if not len(need) <= len(operands) <= len(form):
        raise ValueError(f"usage: tokenbook admin {usage(action)}")
    fields: dict = {}
    for name, value in zip(form, operands, strict=False):
        name = name.strip("[]")
        if name in ("account", "to_account"):
            if not value.isdigit():
                raise ValueError(f"{name.replace('_', ' ')} must be a positive number, "
                                 f"got {value!r}")
            fields[name] = int(value)
        elif name == "rules":
            fields["compliance"] = _rules(value)
        else:
            fields[name] = value
    if action == "open_account":
        fields.update(eligibility=eligibility or "retail", country=country)
    if qty:
        if action not in ("freeze", "unfreeze"):
            raise ValueError("--qty is for freeze and unfreeze (a partial freeze)")
        fields["amount"] = qty
    return AdminCommand(action, reason=reason, **fields)  # type: ignore[arg-type]


def _rules(text: str) -> dict:
    """``set-compliance``'s RULES operand: a JSON object of the instruments TOML's keys."""
    try:
        rules = json.loads(text)
    except ValueError:
        rules = None
    if not isinstance(rules, dict):
        raise ValueError(f"RULES must be a JSON object like '{{\"max_balance\": \"1000\"}}', "
                         f"got {text!r}")
    return rules


def topic_of(action: str) -> str:
    """Where ``action`` is sent: the agent's topic for its controls, else the admin one."""
    return topics.AGENT if action in AGENT_ACTIONS else topics.ADMIN


def is_account_action(action: str) -> bool:
    action = action.replace("-", "_")
    return action in ACCOUNT_ACTIONS or action in AGENT_ACTIONS


async def send(host: str, port: int, cmd: AdminCommand, *, timeout: float = 10.0,
               mqtt_options: dict | None = None, shard: str = "") -> AdminReply:
    """Publish ``cmd`` (its request id set here) where its action goes (``shard``: that
    shard's own admin topic); return the engine's reply. TimeoutError if none came in
    time (the engine is down, or the broker's ACL refused the command: see
    deploy/mosquitto/acl)."""
    cmd = msgspec.structs.replace(cmd, request_id=f"op-{uuid.uuid4().hex[:16]}")
    topic = topics.shard_admin(shard) if shard else topic_of(cmd.action)
    async with asyncio.timeout(timeout):
        async with mqtt.client(host, port, **(mqtt_options or {})) as client:
            await client.subscribe(topics.ADMIN_REPLIES, qos=1)
            await client.publish(topic, encode(cmd), qos=1)
            async for message in client.messages:
                try:
                    reply = _reply_decoder.decode(message.payload)
                except msgspec.DecodeError:
                    continue                         # not ours to read: keep waiting
                if reply.request_id == cmd.request_id:
                    return reply
    raise TimeoutError("the reply stream ended")  # pragma: no cover - messages never ends


async def send_command(host: str, port: int, action: str, symbol: str = "", reason: str = "",
                       *, timeout: float = 10.0, mqtt_options: dict | None = None,
                       coupon_date: str = "") -> AdminReply:
    """Send ``action`` (pre_open, open, halt, resume, close; or a lifecycle step: record,
    pay_coupon, mature, redeem, with ``coupon_date`` for a coupon) for ``symbol`` (empty:
    every instrument); returns the engine's reply (``send``)."""
    cmd = AdminCommand(action, symbol, reason, "", coupon_date)  # type: ignore[arg-type]
    return await send(host, port, cmd, timeout=timeout, mqtt_options=mqtt_options)


TRANSFER_CASH_USAGE = "transfer-cash TRANSFER_ID ACCOUNT AMOUNT FROM_SHARD TO_SHARD"


async def transfer_cash(host: str, port: int, operands: list[str], *, timeout: float = 10.0,
                        mqtt_options: dict | None = None) -> tuple[AdminReply, AdminReply | None]:
    """Move cash between two shards' allocations of one account (matching.transfers):
    ``transfer_out`` on the paying shard, then, once that is durable (its reply says
    so), ``transfer_in`` on the receiving one. Idempotent by transfer id: run again after
    a failure, a leg already applied answers DUPLICATE_TRANSFER and the other is sent."""
    if len(operands) != 5 or not operands[1].isdigit():
        raise ValueError(f"usage: tokenbook admin {TRANSFER_CASH_USAGE}")
    transfer_id, account, amount, payer, payee = operands
    if payer == payee:
        raise ValueError("transfer-cash needs two different shards")
    legs = [AdminCommand(action, account=int(account), amount=amount,  # type: ignore[arg-type]
                         transfer_id=transfer_id, shard=peer)
            for action, peer in (("transfer_out", payee), ("transfer_in", payer))]
    out = await send(host, port, legs[0], timeout=timeout, mqtt_options=mqtt_options,
                     shard=payer)
    if not (out.accepted or already_applied(out)):
        return out, None
    return out, await send(host, port, legs[1], timeout=timeout, mqtt_options=mqtt_options,
                           shard=payee)


def already_applied(reply: AdminReply) -> bool:
    """A transfer leg refused because that leg is applied already (idempotent re-run)."""
    return not reply.accepted and "DUPLICATE_TRANSFER" in reply.text

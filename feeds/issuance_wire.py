"""Issuance auctions on MQTT: who may send which auction input, on which topic, and the
replies (``matching.issuance`` does the rules).

The issuer/operator announces, closes and issues on ``tokenbook/v1/admin`` (the ACL lets
only ``tokenbook-operator`` write it); a broker bids and cancels its bids on its own
``orders/{broker}`` topic (only that user may write it, so the topic names the bidder).
Bids are sealed: each bidder's acknowledgement and award go to its own ``exec/{broker}``
only; the results are published after the close on the retained
``md/{symbol}/auction_result``.
"""
from __future__ import annotations

import msgspec

from feeds.codec import MAX_MESSAGE_BYTES, AdminReply
from matching.messages import AuctionInput
from matching.outputs import Outcome

__all__ = ["ISSUER_ACTIONS", "BIDDER_ACTIONS", "decode_auction_input", "auction_command"]

#: What the issuer/operator sends (admin topic) and what a broker sends (its orders topic).
ISSUER_ACTIONS = frozenset({"announce", "close", "issue"})
BIDDER_ACTIONS = frozenset({"bid", "cancel_bid"})
_MAX_TEXT = 64

_decoder = msgspec.json.Decoder(AuctionInput)


def decode_auction_input(payload: object, *, issuer: bool) -> AuctionInput | None:
    """The auction input in ``payload`` if it is one the sender may send (``issuer``: the
    admin topic's actions, else a bidder's), or None; never raises. The payload's
    ``broker`` is ignored: the engine takes the bidder from the topic."""
    if not isinstance(payload, (bytes, bytearray)) or len(payload) > MAX_MESSAGE_BYTES:
        return None
    if b'"auction"' not in payload:       # not ours: order entry pays one scan for it
        return None
    try:
        msg = _decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    allowed = ISSUER_ACTIONS if issuer else BIDDER_ACTIONS
    if msg.action not in allowed:
        return None
    if max(len(msg.auction_id), len(msg.bid_id), len(msg.amount), len(msg.rate),
           len(msg.net_long), len(msg.symbol)) > _MAX_TEXT or len(msg.reason) > 200:
        return None
    return msg


def auction_command(engine, msg: AuctionInput) -> tuple[Outcome, AdminReply]:
    """An issuer's auction input to the engine: its Outcome and the admin reply (its
    request id is the auction id)."""
    out = engine.auction_input(msg)
    reply = AdminReply(msg.auction_id, False, "", f"auction_{msg.action}", msg.symbol)
    if not out.sequenced:
        reply.text = f"refused: {out.refused or 'not sequenced'}"
        return out, reply
    reply.accepted, reply.seq = True, out.seq
    a = engine.issuance.auctions[msg.auction_id]
    reply.symbol = a.symbol
    reply.text = f"auction {msg.auction_id} of {a.symbol}: {a.status}" + (
        f" (offering {msg.amount}, closes {msg.close_time})" if msg.action == "announce"
        else "")
    return out, reply


# ---------------------------------------------------------------------- the issuer's CLI
#: ``tokenbook admin auction`` operands after the action and auction id: KEY=VALUE.
_ANNOUNCE_KEYS = {"method": str, "basis": str, "nc_max": str, "max_award_pct": str,
                  "limit": str, "nc_overflow": str, "nc_price": str,
                  "issuer_account": int, "competitive": str}
AUCTION_USAGE = ("auction announce ID SYMBOL AMOUNT CLOSE_TIME ISSUE_DATE [KEY=VALUE ...] | "
                 "auction close ID [reject_all] | auction issue ID")


def auction_input_of(operands: list[str]) -> AuctionInput:
    """``tokenbook admin auction ...`` operands as the issuer's AuctionInput; ValueError
    (its usage) if they do not fit. CLOSE_TIME: a UTCTimestamp (2026-12-07T17:00:00Z);
    keys: method, basis, nc_max, max_award_pct, limit, nc_overflow, nc_price,
    issuer_account, competitive (comma-separated accounts)."""
    from matching.messages import parse_utc_timestamp
    if len(operands) < 2 or operands[0] not in ISSUER_ACTIONS:
        raise ValueError(f"usage: tokenbook admin {AUCTION_USAGE}")
    action, auction_id, rest = operands[0], operands[1], operands[2:]
    if action == "close":
        if rest not in ([], ["reject_all"]):
            raise ValueError("usage: tokenbook admin auction close ID [reject_all]")
        return AuctionInput("close", auction_id, reject_all=bool(rest))
    if action == "issue":
        if rest:
            raise ValueError("usage: tokenbook admin auction issue ID")
        return AuctionInput("issue", auction_id)
    if len(rest) < 4:
        raise ValueError(f"usage: tokenbook admin {AUCTION_USAGE.split(' | ')[0]}")
    symbol, amount, close, issue = rest[:4]
    fields: dict = {}
    for kv in rest[4:]:
        key, sep, value = kv.partition("=")
        if not sep or key not in _ANNOUNCE_KEYS:
            raise ValueError(f"{kv!r}: expected KEY=VALUE, KEY one of "
                             f"{', '.join(_ANNOUNCE_KEYS)}")
        if key == "competitive":
            fields["competitive_accounts"] = [int(a) for a in value.split(",") if a]
        else:
            fields[key] = _ANNOUNCE_KEYS[key](value)
    return AuctionInput("announce", auction_id, symbol=symbol, amount=amount,
                        close_time=parse_utc_timestamp(close), issue_date=issue, **fields)


async def send_auction(host: str, port: int, msg: AuctionInput, *, timeout: float = 10.0,
                       mqtt_options: dict | None = None) -> AdminReply:
    """Publish the issuer's ``msg`` on the admin topic; return the engine's reply (its
    request id is the auction id). TimeoutError if none came in time."""
    import asyncio

    from feeds import mqtt, topics
    from feeds.codec import encode
    replies = msgspec.json.Decoder(AdminReply)
    async with asyncio.timeout(timeout):
        async with mqtt.client(host, port, **(mqtt_options or {})) as client:
            await client.subscribe(topics.ADMIN_REPLIES, qos=1)
            await client.publish(topics.ADMIN, encode(msg), qos=1)
            async for message in client.messages:
                try:
                    reply = replies.decode(message.payload)
                except msgspec.DecodeError:
                    continue
                if reply.request_id == msg.auction_id and reply.action == \
                        f"auction_{msg.action}":
                    return reply
    raise TimeoutError("the reply stream ended")  # pragma: no cover


async def auction_admin(args) -> int:
    """``tokenbook admin auction ...``: send the issuer's input, print the engine's reply
    in one line; 0 if accepted (the exit codes of ``tokenbook admin``)."""
    from feeds.exits import arguments_checked, broker_url, engine_answers, print_reply
    from feeds.security import OPERATOR_USER, options_from_args
    host, port = broker_url(args.broker)
    with arguments_checked():
        msg = auction_input_of(args.operands)
        options = options_from_args(args, OPERATOR_USER)
    with engine_answers(args.broker, args.timeout, options):
        reply = await send_auction(host, port, msg, timeout=args.timeout,
                                   mqtt_options=options)
    return print_reply(reply)

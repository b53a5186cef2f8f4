"""The exchange operator's side of session control: send one command, await its reply.

``tokenbook admin halt TB3M --reason "issuer notice"`` publishes an ``AdminCommand`` on
``tokenbook/v1/admin`` and waits on ``tokenbook/v1/admin/replies`` for the reply that
carries its request id (the engine journals the command before replying).
"""
from __future__ import annotations

import asyncio
import uuid

import msgspec

from feeds import mqtt, topics
from feeds.codec import AdminCommand, AdminReply, encode

__all__ = ["send_command"]

_reply_decoder = msgspec.json.Decoder(AdminReply)


async def send_command(host: str, port: int, action: str, symbol: str = "", reason: str = "",
                       *, timeout: float = 10.0, mqtt_options: dict | None = None,
                       coupon_date: str = "") -> AdminReply:
    """Send ``action`` (pre_open, open, halt, resume, close; or a lifecycle step: record,
    pay_coupon, mature, redeem, with ``coupon_date`` for a coupon) for ``symbol`` (empty:
    every instrument); returns the engine's reply. TimeoutError if no reply came in time (the
    engine is down, or the broker's ACL refused the command: see deploy/mosquitto/acl)."""
    request_id = f"op-{uuid.uuid4().hex[:16]}"
    cmd = AdminCommand(action, symbol, reason, request_id, coupon_date)  # type: ignore[arg-type]
    async with asyncio.timeout(timeout):
        async with mqtt.client(host, port, **(mqtt_options or {})) as client:
            await client.subscribe(topics.ADMIN_REPLIES, qos=1)
            await client.publish(topics.ADMIN, encode(cmd), qos=1)
            async for message in client.messages:
                try:
                    reply = _reply_decoder.decode(message.payload)
                except msgspec.DecodeError:
                    continue                         # not ours to read: keep waiting
                if reply.request_id == request_id:
                    return reply
    raise TimeoutError("the reply stream ended")  # pragma: no cover - messages never ends

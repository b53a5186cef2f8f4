"""The link gateway's connection: one asyncio Protocol per TCP (or TLS) connection.

``_Link`` hands every socket read to its gateway (``LinkGateway._received``), writes what
the session queued in one ``transport.write`` (``flush``), ticks the gateway every
``TICK`` s and keeps the connection's phase (connect, retained, subscribe, online,
closing) and what was received but not cycled yet. ``LinkStats``: the counters only this
transport has.
"""
from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any

import mqtt5

from feeds.cycle import GatewayStats
from feeds.link import LinkError

if TYPE_CHECKING:
    from feeds.link_gateway import LinkGateway

__all__ = ["LinkStats", "TICK"]

#: Seconds between idle cycles (holds, timetable, GTD expiry) and keepalive checks.
TICK = 0.05


@dataclasses.dataclass
class LinkStats(GatewayStats):
    """The cycle's counters plus what only this transport sees."""
    publish_refused: int = 0                 # PUBACK >= 0x80 (or too large): not retried
    refused_reasons: dict[str, int] = dataclasses.field(default_factory=dict)
    inbound_refused: int = 0                 # QoS 2 PUBLISH answered PUBREC 0x83
    connects: int = 0


async def _first(*futures: asyncio.Future[Any], timeout: float | None = None) -> None:
    """Until the first of ``futures`` is done (or ``timeout`` s)."""
    waits: set[asyncio.Future[Any]] = set(futures)
    await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)


class _Link(asyncio.Protocol):
    """One connection: the socket's events go to the gateway; ``closed`` gets its end."""

    def __init__(self, gw: LinkGateway, loop: asyncio.AbstractEventLoop):
        self.gw, self.loop = gw, loop
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[BaseException | None] = loop.create_future()
        self.online, self.unsubscribed, self.drained = (asyncio.Event(), asyncio.Event(),
                                                        asyncio.Event())
        self.phase = "connect"            # connect, retained, subscribe, online, closing
        self.pending: list[mqtt5.PublishPacket] = []      # received, not yet cycled
        self.retained_left: set[int] = set()
        self.sub_id = 0
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.gw._received(self, data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.end(LinkError(f"connection lost: {exc}" if exc else "connection closed"))

    def end(self, exc: BaseException) -> None:
        """The connection is over (``exc`` says why): stop ticking, close the socket."""
        self.gw.connected = False
        if self._timer is not None:
            self._timer.cancel()
        if not self.closed.done():
            self.closed.set_result(exc)
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def flush(self, now: float) -> None:
        data = self.gw.session.data_to_send(now)
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def tick(self) -> None:
        self._timer = self.loop.call_later(TICK, self.tick)
        self.gw._tick(self)

    def raise_if_closed(self) -> None:
        if self.closed.done():
            exc = self.closed.result()
            raise exc if exc is not None else LinkError("connection closed")


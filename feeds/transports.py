"""Which MQTT transport carries the gateway: ``make_gateway(..., transport="link")``.

Two transports with one API (constructor, ``run(stop)``, ``ready``, ``connected``,
``stats``, ``cycle``, ``config``, ``engine``):

- ``link`` (``feeds.link_gateway.LinkGateway``): an asyncio Protocol and the ``mqtt5``
  codec; one socket read = one cycle = one group commit = one write. ~10x the orders/s.
- ``aiomqtt`` (``feeds.gateway.Gateway``): aiomqtt/paho, one task per publish.

``tokenbook serve --transport link|aiomqtt`` (and ``tokenbook demo``) picks one; the
default is the link. Both heartbeat the retained engine status and step down when another
engine's appears (``feeds.guard``).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle, GatewayStats
from matching.engine import Engine
from matching.outputs import Outcome

__all__ = ["TRANSPORTS", "DEFAULT_TRANSPORT", "GatewayLike", "gateway_class", "make_gateway"]

TRANSPORTS = ("link", "aiomqtt")
DEFAULT_TRANSPORT = "link"


class GatewayLike(Protocol):
    """What callers of either transport use."""
    cycle: GatewayCycle
    connected: bool

    @property
    def config(self) -> GatewayConfig: ...
    @property
    def stats(self) -> GatewayStats: ...
    @property
    def engine(self) -> Engine: ...
    async def run(self, stop) -> None: ...


def gateway_class(transport: str = DEFAULT_TRANSPORT) -> type:
    """The gateway class of ``transport`` ("link" or "aiomqtt")."""
    if transport == "link":
        from feeds.link_gateway import LinkGateway
        return LinkGateway
    if transport == "aiomqtt":
        from feeds.gateway import Gateway
        return Gateway
    raise ValueError(f"unknown MQTT transport {transport!r}: one of {', '.join(TRANSPORTS)}")


def make_gateway(engine: Engine, host: str, port: int, config: GatewayConfig | None = None,
                 *, recovered: Iterable[Outcome] = (), transport: str = DEFAULT_TRANSPORT,
                 guard=None):
    """A gateway for ``engine`` at ``host:port`` on the transport named."""
    return gateway_class(transport)(engine, host, port, config, recovered=recovered,
                                    guard=guard)

"""How tokenbook opens MQTT connections: MQTT 5 and TCP_NODELAY.

Without TCP_NODELAY a lone QoS 1 message waits on Nagle's algorithm and the peer's
delayed ACK: ~44 ms per hop measured here, against well under 1 ms with it.
"""
from __future__ import annotations

import socket

import aiomqtt

NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def client(host: str, port: int, **kwargs) -> aiomqtt.Client:
    """An aiomqtt client speaking MQTT 5 with Nagle off; kwargs go to aiomqtt.Client."""
    kwargs.setdefault("protocol", aiomqtt.ProtocolVersion.V5)
    kwargs.setdefault("socket_options", NODELAY)
    c = aiomqtt.Client(host, port, **kwargs)
    # The gateway pipelines a whole cycle of QoS 1 publishes on purpose; aiomqtt would log a
    # congestion warning past 10 pending. Backpressure is the publish window, not a log line.
    c.pending_calls_threshold = 100_000
    return c

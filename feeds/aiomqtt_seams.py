"""The two places the venue reaches inside aiomqtt, kept here and nowhere else.

aiomqtt 2.5 (checked against 2.5.1's source and docs) has no public way to:

- send DISCONNECT with properties: ``Client.__aexit__`` calls paho's ``disconnect()``
  without any, so a client cannot end its persistent session on a clean goodbye
  (MQTT 5 section 3.14.2.2.2, Session Expiry Interval 0 in DISCONNECT);
- read the CONNACK properties (the broker's Receive Maximum, Maximum Packet Size...):
  ``Client._on_connect`` drops them (upstream issue empicano/aiomqtt#362, open).

Both go through the wrapped paho client, ``aiomqtt.Client._client``; ``paho_client``
fails loudly (TypeError) if an aiomqtt release renames it, and a test holds it.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiomqtt
from paho.mqtt import client as paho
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

__all__ = ["paho_client", "disconnect_ending_session", "keep_connack_properties"]


def paho_client(client: aiomqtt.Client) -> paho.Client:
    """The paho client inside an aiomqtt one (private in aiomqtt 2.x: see the module doc)."""
    inner = getattr(client, "_client", None)
    if not isinstance(inner, paho.Client):
        raise TypeError(f"aiomqtt {type(client).__module__} no longer wraps a paho client "
                        "as _client: feeds.aiomqtt_seams needs updating")
    return inner


def disconnect_ending_session(client: aiomqtt.Client) -> None:
    """DISCONNECT with Session Expiry Interval 0: the broker drops this client's session
    (nothing queues for a client that left). aiomqtt's own exit then finds it closed."""
    props = Properties(PacketTypes.DISCONNECT)
    props.SessionExpiryInterval = 0
    paho_client(client).disconnect(properties=props)


def keep_connack_properties(client: aiomqtt.Client,
                            sink: Callable[[dict[str, Any]], None]) -> None:
    """Before connecting: ``sink`` gets each CONNACK's properties as a dict (``{}`` when
    there are none); aiomqtt's own handling of the CONNACK runs as before."""
    inner = paho_client(client)
    on_connect: Any = inner.on_connect

    def keep(c, userdata, flags, reason_code, properties=None):
        sink(properties.json() if properties is not None else {})
        on_connect(c, userdata, flags, reason_code, properties)
    inner.on_connect = keep

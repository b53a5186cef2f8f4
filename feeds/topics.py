"""The versioned MQTT topic layout of tokenbook (documented in README.md).

    tokenbook/v1/orders/{broker}          order entry from a broker           QoS 1
    tokenbook/v1/exec/{broker}            execution reports for that broker   QoS 1
    tokenbook/v1/md/{symbol}/trades       public trade tape                    QoS 1
    tokenbook/v1/md/{symbol}/depth        L2 increments, per-symbol seq        QoS 1
    tokenbook/v1/md/{symbol}/snapshot     full L2 with the seq it is valid at  retained
    tokenbook/v1/md/{symbol}/bbo          best bid and offer                   retained
    tokenbook/v1/status                   engine status, offline by last will  retained
    tokenbook/v1/presence/{broker}        online/offline (a broker's last will)  retained
"""
from __future__ import annotations

import re

ROOT = "tokenbook/v1"
ORDERS_WILDCARD = f"{ROOT}/orders/+"
STATUS = f"{ROOT}/status"
PRESENCE_WILDCARD = f"{ROOT}/presence/+"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def valid_name(name: str) -> bool:
    """Broker ids and symbols: 1-64 of letters, digits, ``_ . -`` (no MQTT wildcards)."""
    return bool(_NAME.match(name))


def orders(broker: str) -> str:
    return f"{ROOT}/orders/{broker}"


def exec_reports(broker: str) -> str:
    return f"{ROOT}/exec/{broker}"


def presence(broker: str) -> str:
    return f"{ROOT}/presence/{broker}"


def md(symbol: str, channel: str) -> str:
    """``channel`` is one of trades, depth, snapshot, bbo."""
    return f"{ROOT}/md/{symbol}/{channel}"


def broker_from_orders_topic(topic: str) -> str | None:
    """The broker a message on an orders topic came from, or None if the topic is not one."""
    parts = topic.split("/")
    if len(parts) != 4 or "/".join(parts[:3]) != f"{ROOT}/orders" or not valid_name(parts[3]):
        return None
    return parts[3]

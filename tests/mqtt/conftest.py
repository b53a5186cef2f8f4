"""Fixtures of the MQTT tests: a private mosquitto per test module (``mqtt_broker``,
``mosquitto_url``, from ``testkit/mqtt.py``, which also has the bounded waits, the
clients and the network tests' engine, ``two_broker_engine``)."""
from testkit.mqtt import (  # noqa: F401  (fixtures, found by name)
    mosquitto_url,
    mqtt_broker,
    transport,
)

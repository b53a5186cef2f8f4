"""Fixtures of the MQTT tests: a private mosquitto per test module (``mqtt_broker``,
``mosquitto_url``, from ``testkit/mqtt.py``, which also has the bounded waits, the
clients and the network tests' engine, ``two_broker_engine``); for the access tests,
generated credentials of brokers alpha and beta (and the reserved users) and a private
mosquitto with them and the shipped ACL (``acl_secrets``, ``acl_broker``)."""
import pytest
from test_access import make_credentials

from feeds.broker import EmbeddedBroker
from testkit.mqtt import (  # noqa: F401  (fixtures, found by name)
    mosquitto_url,
    mqtt_broker,
    transport,
)


@pytest.fixture(scope="module")
def acl_secrets(tmp_path_factory):
    """(secrets folder, {user: password}) for alpha, beta and the reserved users."""
    out = tmp_path_factory.mktemp("mqtt") / "secrets"
    return out, make_credentials(out, "alpha", "beta")


@pytest.fixture(scope="module")
def acl_broker(acl_secrets):
    out, _ = acl_secrets
    with EmbeddedBroker(password_file=out / "passwd", acl_file=out / "acl") as b:
        yield b

"""Fixtures of the replication tests: a private 3-node JetStream cluster per test module
on free loopback ports (``nats_cluster``), a connected link to it (``nats_link``), from
``testkit/nats.py``; the end-to-end test also starts a private mosquitto."""
from testkit.nats import (  # noqa: F401  (fixtures, found by name)
    nats_cluster,
    nats_link,
)

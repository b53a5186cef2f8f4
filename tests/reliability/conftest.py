"""The reliability tests: small, time-bounded runs of the fault harness
(``reliability/faults.py``) and the fuzz tests, which share the fuzz campaign's
generators (``testkit/fuzzgen.py``, ``testkit/fuzzdata.py``). The fault tests run on both
MQTT transports of the gateway (``transport``, from ``testkit/mqtt.py``); no other fixture
is shared by these modules: each keeps its own."""
from testkit.mqtt import transport  # noqa: F401  (a fixture, found by name)

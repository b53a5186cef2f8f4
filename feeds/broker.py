"""The embedded default broker: a private mosquitto on a free loopback port.

Used when no ``--broker mqtt://host:port`` is given, and by the tests. Without a mosquitto
binary it stops with a message saying how to install one (``scripts/ensure-mosquitto``
does it on Debian); no in-process Python broker is bundled.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
import time
from urllib.parse import urlsplit

log = logging.getLogger("tokenbook.broker")

__all__ = ["EmbeddedBroker", "parse_broker_url", "BrokerUnavailable"]


class BrokerUnavailable(RuntimeError):
    """No MQTT broker could be started here."""


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtt://host:port`` -> (host, port); port defaults to 1883."""
    parts = urlsplit(url)
    if parts.scheme != "mqtt" or not parts.hostname:
        raise ValueError(f"broker URL must look like mqtt://host:port, got {url!r}")
    port = parts.port or 1883
    return parts.hostname, port


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/bin/mosquitto") if os.path.exists(p)), None)


class EmbeddedBroker:
    """``with EmbeddedBroker() as b: ... b.url`` — started on enter, killed on exit."""

    def __init__(self, startup_timeout: float = 10.0):
        self.startup_timeout = startup_timeout
        self.port = 0
        self.kind = ""
        self._proc: subprocess.Popen | None = None
        self._dir: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> "EmbeddedBroker":
        binary = _mosquitto()
        if binary is None:
            raise BrokerUnavailable(
                "no mosquitto binary found: install it (apt-get install mosquitto) or pass "
                "--broker mqtt://host:port to use a running broker")
        self._dir = tempfile.TemporaryDirectory(prefix="tokenbook-mqtt-")
        self.port = _free_port()
        conf = os.path.join(self._dir.name, "mosquitto.conf")
        with open(conf, "w") as f:
            f.write(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                    "persistence false\nlog_dest none\nmax_queued_messages 100000\n"
                    # Small QoS 1 messages otherwise wait on Nagle + delayed ACK (~40 ms).
                    "set_tcp_nodelay true\n")
        self._proc = subprocess.Popen([binary, "-c", conf], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self.stop()
                raise BrokerUnavailable(f"mosquitto exited at start: {err.strip()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                self.kind = "mosquitto"
                log.info("embedded broker: private mosquitto on %s (pid %d)", self.url,
                         self._proc.pid)
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise BrokerUnavailable(f"mosquitto did not listen on port {self.port} in time")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        if self._proc is not None and self._proc.stderr:
            self._proc.stderr.close()
        self._proc = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

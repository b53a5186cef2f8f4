"""The embedded default broker: a private MQTT broker on a free loopback port.

Used when no ``--broker mqtt://host:port`` is given, and by the tests::

    async with EmbeddedBroker() as b:        # or: with EmbeddedBroker() as b: (sync, CLI)
        host, port = parse_broker_url(b.url)

It runs the ``mosquitto`` binary with a generated config in a temporary folder (listener on
127.0.0.1 only, anonymous, no persistence, no log file), waits (bounded) until it accepts
connections and kills it on exit, on exceptions too. A watchdog (``sh`` blocked on a pipe
only this process holds) kills it if this process dies without cleaning up (SIGKILL,
``os._exit``), so no broker is left behind. Without a mosquitto binary it falls back to an
in-process amqtt broker if ``amqtt`` is importable (not a dependency; MQTT 3.1.1 only, so
``b.mqtt5`` is False), else raises ``BrokerUnavailable`` saying how to install mosquitto.

Access control and TLS (optional; mosquitto only, never the open fallback)::

    EmbeddedBroker(password_file="mqtt-secrets/passwd", acl_file=security.ACL_FILE,
                   tls=security.ServerTLS("server.crt", "server.key"))

refuses anonymous clients, applies the ACL and makes the one listener speak TLS. The files
are copied into the private folder (mosquitto opens them after dropping root to its own
user, which could not read them where they are).
"""
from __future__ import annotations

import asyncio
import importlib
import ipaddress
import logging
import os
import shutil
import tempfile
import time
import weakref
from urllib.parse import urlsplit

try:
    import pwd
except ImportError:                    # not POSIX
    pwd = None  # type: ignore[assignment]

from feeds import security
from feeds.amqtt_fallback import InProcessBroker
from feeds.localproc import Child as _Child
from feeds.localproc import accepts as _accepts
from feeds.localproc import free_port as _free_port
from feeds.localproc import owns_listener as _owns_listener

log = logging.getLogger("tokenbook.broker")

__all__ = ["EmbeddedBroker", "parse_broker_url", "find_mosquitto", "BrokerUnavailable",
           "DEFAULT_PORT"]

DEFAULT_PORT = 1883
INSTALL_HINT = ("install mosquitto (Debian/Ubuntu: sudo apt-get install mosquitto; macOS: "
                "brew install mosquitto) or pass --broker mqtt://host:port to use a running "
                "broker")
_PORT_ATTEMPTS = 5


class BrokerUnavailable(RuntimeError):
    """No MQTT broker could be started here."""


def parse_broker_url(url: str) -> tuple[str, int]:
    """``mqtt://host[:port]`` -> ``(host, port)``; the port defaults to 1883.

    Refuses other schemes, credentials, paths, queries, fragments, whitespace and ports
    outside 1-65535, so a typo fails here rather than as a connection timeout later.
    """
    if not isinstance(url, str) or not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError(f"broker URL must look like mqtt://host:port, got {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad broker URL {url!r}: {exc}") from None
    if parts.scheme != "mqtt":
        raise ValueError(f"broker URL must start with mqtt://, got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"broker URL must not carry credentials: {url!r}")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"broker URL must be mqtt://host:port with nothing after, got {url!r}")
    host = parts.hostname
    if not host:
        raise ValueError(f"broker URL has no host: {url!r}")
    netloc_host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if ":" in host and not netloc_host.startswith("["):
        raise ValueError(f"an IPv6 host must be in brackets: {url!r}")
    if ":" in host:
        ipaddress.IPv6Address(host.split("%", 1)[0])          # ValueError if not an address
    if port is None:
        if parts.netloc.endswith(":"):
            raise ValueError(f"broker URL has an empty port: {url!r}")
        port = DEFAULT_PORT
    if not 1 <= port <= 65535:
        raise ValueError(f"broker port must be 1-65535, got {port}")
    return host, port


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary (PATH, then the usual sbin folders), or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto",
              "/usr/bin/mosquitto"):
        if os.access(p, os.X_OK):
            return p
    return None


class _PortTaken(Exception):
    """Internal: mosquitto lost the race for its port; try another one."""


class EmbeddedBroker:
    """A private broker: ``async with`` / ``with``, or ``start()`` and ``stop()``.

    After start: ``kind`` ("mosquitto" or "amqtt"), ``host``, ``port``, ``url``, ``pid``
    (mosquitto) and ``mqtt5`` (whether MQTT 5 clients are accepted).
    """

    def __init__(self, startup_timeout: float = 10.0, *, binary: str | None = None,
                 fallback: bool = True, password_file: str | os.PathLike | None = None,
                 acl_file: str | os.PathLike | None = None,
                 tls: security.ServerTLS | None = None):
        self.startup_timeout = startup_timeout
        self.binary = binary
        self.fallback = fallback
        # Access control and TLS: see the module docstring. None of them: an open broker.
        self.password_file = password_file
        self.acl_file = acl_file
        self.tls = tls
        self.host = "127.0.0.1"
        self.port = 0
        self.kind = ""
        self.mqtt5 = False
        self.workdir: str | None = None
        self._child: _Child | None = None
        self._dir: tempfile.TemporaryDirectory | None = None
        self._finalizer: weakref.finalize | None = None
        self._inproc: InProcessBroker | None = None

    @property
    def secured(self) -> bool:
        """Whether a password file, an ACL or TLS was asked for."""
        return bool(self.password_file or self.acl_file or self.tls)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The mosquitto process id (None before start, after stop, or for amqtt)."""
        return self._child.proc.pid if self._child else None

    @property
    def running(self) -> bool:
        if self._child is not None:
            return self._child.proc.poll() is None
        return self._inproc is not None

    # ------------------------------------------------------------------ sync API
    def start(self) -> EmbeddedBroker:
        """Start the broker and return once it accepts connections (bounded)."""
        if self.running:
            raise RuntimeError("broker already started")
        binary = self.binary or find_mosquitto()
        if binary is None:
            return self._start_fallback()
        deadline = time.monotonic() + self.startup_timeout
        for _ in range(_PORT_ATTEMPTS):
            self._spawn(binary)
            try:
                while True:
                    if self._check_started(deadline):
                        return self
                    time.sleep(0.01)
            except _PortTaken:
                continue                        # the port was taken meanwhile: next one
            except BaseException:
                self.stop()
                raise
        self.stop()
        raise BrokerUnavailable(f"mosquitto found no free port in {_PORT_ATTEMPTS} attempts")

    def stop(self) -> None:
        """Stop the broker and remove its folder; safe to call twice or after a failed start."""
        pid = self.pid
        self._end_child()
        if pid is not None:
            log.info("embedded broker on port %d stopped (pid %d)", self.port, pid)
        inproc, self._inproc = self._inproc, None
        if inproc is not None:
            inproc.stop()
            log.info("embedded amqtt broker on port %d stopped", self.port)
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
            self.workdir = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ async API
    async def astart(self) -> EmbeddedBroker:
        """``start()`` without blocking the event loop while the broker comes up."""
        if self.running:
            raise RuntimeError("broker already started")
        binary = self.binary or find_mosquitto()
        if binary is None:
            return await asyncio.to_thread(self._start_fallback)
        deadline = time.monotonic() + self.startup_timeout
        for _ in range(_PORT_ATTEMPTS):
            self._spawn(binary)
            try:
                while True:
                    if await asyncio.to_thread(self._check_started, deadline):
                        return self
                    await asyncio.sleep(0.01)
            except _PortTaken:
                continue
            except BaseException:
                self.stop()
                raise
        self.stop()
        raise BrokerUnavailable(f"mosquitto found no free port in {_PORT_ATTEMPTS} attempts")

    async def astop(self) -> None:
        # Terminating mosquitto takes milliseconds; a thread keeps even a slow exit off the loop.
        await asyncio.shield(asyncio.to_thread(self.stop))

    async def __aenter__(self) -> EmbeddedBroker:
        return await self.astart()

    async def __aexit__(self, *exc) -> None:
        await self.astop()

    # ------------------------------------------------------------------ mosquitto
    def _spawn(self, binary: str) -> None:
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="tokenbook-mqtt-")
            self.workdir = self._dir.name
        self.port = _free_port()
        conf = os.path.join(self._dir.name, "mosquitto.conf")
        files = self._private_copies(self._dir.name) if self.secured else {}
        security.write_mosquitto_config(
            conf, port=self.port, host=self.host,
            password_file=files.get("passwd"), acl_file=files.get("acl"),
            tls=security.ServerTLS(files["cert"], files["key"], files.get("ca"),
                                   self.tls.require_certificate, self.tls.min_version)
            if self.tls else None,
            header="# generated by tokenbook: a private broker for one process")
        self._errlog = os.path.join(self._dir.name, "stderr.log")
        self._child = _Child([binary, "-c", conf], self._dir.name, self._errlog)
        c = self._child
        # Interpreter exit or a forgotten stop(): still end the broker.
        self._finalizer = weakref.finalize(self, _Child.end, c.proc, c.watchdog, c.fd)

    def _private_copies(self, workdir: str) -> dict[str, str]:
        """Copy the password file, ACL and TLS files into the private folder ``workdir``
        (once).

        mosquitto started as root opens them after switching to the ``mosquitto`` user, so
        the copies (and the folder) are given to that user; nobody else can read them.
        """
        folder = os.path.join(workdir, "etc")
        given = {"passwd": self.password_file, "acl": self.acl_file}
        if self.tls is not None:
            given.update(cert=self.tls.certfile, key=self.tls.keyfile, ca=self.tls.cafile)
        sources = {name: src for name, src in given.items() if src}
        out = {name: os.path.join(folder, name) for name in sources}
        if os.path.isdir(folder):
            return out
        os.mkdir(folder, 0o700)
        owner = None
        if pwd is not None and os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("mosquitto")
                owner = (entry.pw_uid, entry.pw_gid)
            except KeyError:
                pass
        for name, dest in out.items():
            shutil.copyfile(sources[name], dest)
            os.chmod(dest, 0o600)
            if owner:
                os.chown(dest, *owner)
        if owner:
            os.chown(folder, *owner)
            os.chmod(workdir, 0o711)            # the broker's user may pass, not list
        return out

    def _end_child(self) -> None:
        if self._finalizer is not None:
            self._finalizer()                   # runs _Child.end once, then detaches
            self._finalizer = None
        self._child = None

    def _check_started(self, deadline: float) -> bool:
        """True once the broker accepts connections; raises on failure or after the deadline."""
        child = self._child
        if child is None:                       # stopped meanwhile (a cancelled astart)
            raise BrokerUnavailable("broker stopped while starting")
        proc = child.proc
        if proc.poll() is not None:
            err = self._stderr()
            self._end_child()
            if "address already in use" in err.lower():
                log.info("port %d was taken before mosquitto bound it; retrying", self.port)
                raise _PortTaken()
            raise BrokerUnavailable(f"mosquitto exited at start (code {proc.returncode}): "
                                    f"{err.strip() or 'no message'}")
        owns = _owns_listener(proc.pid, self.port)
        if owns is not False and _accepts(self.port) and proc.poll() is None:
            self.kind, self.mqtt5 = "mosquitto", True
            log.info("embedded broker: private mosquitto at %s (pid %d)", self.url, proc.pid)
            return True
        if time.monotonic() > deadline:
            raise BrokerUnavailable(
                f"mosquitto did not accept connections on port {self.port} within "
                f"{self.startup_timeout:g} s")
        return False

    def _stderr(self) -> str:
        try:
            with open(self._errlog, "rb") as f:
                return f.read(4000).decode(errors="replace")
        except OSError:
            return ""

    # ------------------------------------------------------------------ fallback
    def _start_fallback(self) -> EmbeddedBroker:
        if self.secured:                   # never fall back to an open broker
            raise BrokerUnavailable("a password file, ACL or TLS needs the mosquitto "
                                    f"binary: {INSTALL_HINT}")
        if self.fallback:
            try:
                amqtt_broker = importlib.import_module("amqtt.broker")
            except Exception:  # noqa: BLE001 - not installed, or broken: same answer
                amqtt_broker = None
            if amqtt_broker is not None:
                self.port = _free_port()
                self._inproc = InProcessBroker(amqtt_broker, self.host, self.port,
                                                self.startup_timeout)
                self._inproc.start()
                self.kind, self.mqtt5 = "amqtt", False
                log.warning("no mosquitto binary: started an in-process amqtt broker at %s. "
                            "It speaks MQTT 3.1.1 only, so MQTT 5 clients (the gateway) are "
                            "refused; %s", self.url, INSTALL_HINT)
                return self
        raise BrokerUnavailable(f"no mosquitto binary found: {INSTALL_HINT}")

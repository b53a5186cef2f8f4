"""One engine per venue: who wrote the retained status, the check before connecting, and
when a running engine steps down.

Two engines behind one broker and topic prefix would each acknowledge orders the other
never sees and overwrite each other's retained market data; with the same MQTT client id
they would also knock each other off the broker without end. So (README, "One engine per
venue"):

* **Identity.** Every engine start has one: a random instance id, host, pid and start
  time, carried by its retained status (``tokenbook/v1/status``, ``EngineStatus``) with
  its heartbeat interval and MQTT keepalive. While connected the gateway republishes the
  status every ``heartbeat`` s (its ``time`` is then the last heartbeat); its last will
  sets it ``offline``, still naming the instance.
* **Check before connecting.** Before every connect with the engine's client id (the
  first and every reconnect) ``VenueGuard.check`` opens a separate connection (a
  throwaway client id, or the standby user on a broker that makes the user name the
  client id) and reads the retained status:

  - none, ``offline`` (a shutdown or a dead engine's will), or our own: go ahead;
  - ``online`` / ``not_accepting`` of another instance: watch it for its liveness window
    (1.5 x its keepalive, when the broker itself gives up on a silent client, plus one
    heartbeat). A live status from it (a heartbeat) means it serves: ``AnotherEngine``,
    and this engine does not connect. Its will arriving means it died: go ahead. Nothing
    at all means a stale status (no connection behind it, e.g. a broker restarted with
    persistence): go ahead, with a warning. Clocks are never compared: only what is heard.

* **Step down.** While serving, the gateway also reads the status topic (MQTT 5 no-local:
  not its own). A live status of another instance means two engines got connected at
  once (they passed their checks together, with different client ids): the one that
  started later steps down (``AnotherEngine`` out of ``Gateway.run``), the other
  republishes its status. With the same client id the later connection takes the
  session and the earlier engine's next check, before it reconnects, finds the other's
  heartbeat and steps down instead of taking the session back.

A later failover can build on this: a standby watches the heartbeat with the standby
user and takes over only with a fencing epoch the old engine obeys (``--take-over`` is
refused for now: the journals are not shared, so a new engine cannot know what the old
one acknowledged).
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import msgspec

from feeds import mqtt, topics
from feeds.codec import EngineStatus
from matching.messages import parse_utc_timestamp

log = logging.getLogger("tokenbook.guard")

__all__ = ["AnotherEngine", "CheckRefused", "Verdict", "VenueGuard", "describe", "decode_status",
           "liveness_window", "LIVE"]

#: Statuses of an engine that is connected and serving.
LIVE = ("online", "not_accepting")
_decoder = msgspec.json.Decoder(EngineStatus)


def decode_status(payload: Any) -> EngineStatus | None:
    """The EngineStatus in ``payload``, or None if it is not one."""
    try:
        return _decoder.decode(bytes(payload) if payload is not None else b"")
    except (msgspec.DecodeError, TypeError):
        return None


def started_ns(st: EngineStatus) -> int:
    """When the engine of ``st`` started (ns); 0 if its status does not say (an engine of
    unknown start counts as the earliest, so a newer one steps down before it)."""
    try:
        return parse_utc_timestamp(st.started) if st.started else 0
    except ValueError:
        return 0


def describe(st: EngineStatus) -> str:
    """``instance 3f.. on host pid 123, started 2026-12-02 10:00:00 UTC``."""
    ns = started_ns(st)
    started = (datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
               if ns else "at an unknown time")
    who = f"instance {st.instance}" if st.instance else "an engine without an instance id"
    return f"{who} on {st.host or 'an unknown host'} pid {st.pid or '?'}, started {started}"


def liveness_window(st: EngineStatus, keepalive: float, heartbeat: float) -> float:
    """How long a silent engine may still be alive: 1.5 x its keepalive (when the broker
    gives up on it and sends its will) plus one heartbeat. Its own values if it gave them,
    else ``keepalive`` and ``heartbeat``."""
    return 1.5 * (st.keepalive or keepalive) + (st.heartbeat or heartbeat)


class CheckRefused(aiomqtt.MqttError):
    """The broker let the check connect but not read the status (its ACL)."""


class AnotherEngine(RuntimeError):
    """Another engine serves this venue: this one refuses to start, or steps down."""

    def __init__(self, other: EngineStatus, message: str):
        super().__init__(message)
        self.other = other


@dataclass(frozen=True)
class Verdict:
    """The check found no other live engine; ``why`` says what it found instead."""
    why: str
    other: EngineStatus | None = None


class VenueGuard:
    """The check before connecting and the step-down rule of one engine start.

    ``instance`` and ``started`` are this engine's identity (as in its status); ``options``
    the aiomqtt arguments of the check's connection (credentials, TLS); ``window_cap``
    bounds the wait for a silent engine's heartbeat (None: its liveness window).
    """

    def __init__(self, host: str, port: int, *, instance: str, started: int,
                 options: Mapping[str, Any] | None = None, keepalive: int = 10,
                 heartbeat: float = 2.0, connect_timeout: float = 10.0,
                 window_cap: float | None = None, status_topic: str = topics.STATUS):
        self.host, self.port = host, port
        # The retained status it guards: the venue's, or one shard's (feeds.shard).
        self.status_topic = status_topic
        self.instance, self.started = instance, started
        self.options = dict(options or {})
        self.keepalive, self.heartbeat = keepalive, heartbeat
        self.connect_timeout = connect_timeout
        self.window_cap = window_cap
        # Instances found stale once: a later check (the gateway's first connect after the
        # CLI's check) does not wait for them again.
        self.dead: set[str] = set()

    @classmethod
    def for_config(cls, host: str, port: int, config) -> VenueGuard:
        """The guard of a ``GatewayConfig``: its identity, keepalive, heartbeat and
        ``probe_options`` (else its ``mqtt_options``)."""
        options = config.probe_options if config.probe_options is not None \
            else config.mqtt_options
        return cls(host, port, instance=config.instance, started=config.started,
                   options=options, keepalive=config.keepalive, heartbeat=config.heartbeat,
                   status_topic=config.status_topic)

    # ------------------------------------------------------------------ before connecting
    async def check(self) -> Verdict:
        """Read the retained status on a separate connection; raise ``AnotherEngine`` if
        another engine serves this venue, ``aiomqtt.MqttError`` if the broker cannot be
        reached (or refuses the check's credentials)."""
        client = mqtt.client(self.host, self.port, identifier=f"tokenbook-probe-"
                             f"{uuid.uuid4().hex[:12]}", keepalive=self.keepalive,
                             **self.options)
        try:
            async with asyncio.timeout(self.connect_timeout):
                await client.__aenter__()
        except TimeoutError:
            raise aiomqtt.MqttError(f"no answer from mqtt://{self.host}:{self.port} within "
                                    f"{self.connect_timeout:g} s") from None
        try:
            return await self._check(client)
        finally:
            try:
                await asyncio.wait_for(client.__aexit__(None, None, None), 5)
            except (aiomqtt.MqttError, TimeoutError):
                pass

    async def _check(self, client: aiomqtt.Client) -> Verdict:
        codes = await client.subscribe(self.status_topic, qos=1)
        if any(getattr(c, "is_failure", False) for c in codes):
            # A check that cannot read the status would see no engine at all.
            raise CheckRefused(f"the broker refused the venue check's subscription to "
                                    f"{self.status_topic} ({codes[0]}): its ACL must let the "
                                    f"check's user read it")
        # The broker sends the retained status right after the first SUBACK: once the
        # second SUBACK is in, the first's retained message has been queued.
        await client.subscribe(self.status_topic, qos=1)
        last = None
        while len(client.messages):
            m = await client.messages.__anext__()
            if m.retain:
                last = decode_status(m.payload) or last
        if last is None:
            return Verdict("no engine status on the broker")
        if last.status not in LIVE:
            return Verdict(f"the last engine ({describe(last)}) is {last.status}", last)
        if last.instance == self.instance:
            return Verdict("the status is this engine's own (a reconnect)", last)
        if last.instance and last.instance in self.dead:
            return Verdict(f"stale status of {describe(last)} (checked before)", last)
        window = liveness_window(last, self.keepalive, self.heartbeat)
        if self.window_cap is not None:
            window = min(window, self.window_cap)
        log.debug("the broker's status says %s is %s: waiting up to %.1f s for its heartbeat",
                 describe(last), last.status, window)
        t0 = time.monotonic()
        try:
            async with asyncio.timeout(window):
                async for m in client.messages:
                    st = decode_status(m.payload)
                    if m.retain or st is None or st.instance == self.instance:
                        continue
                    if st.status in LIVE:
                        raise AnotherEngine(st, f"another engine serves this venue: "
                                                f"{describe(st)} (its heartbeat came "
                                                f"{time.monotonic() - t0:.1f} s after "
                                                "asking)")
                    if st.instance == last.instance:
                        return Verdict(f"the last engine ({describe(last)}) just went "
                                       f"{st.status}", last)
        except TimeoutError:
            pass
        if last.instance:
            self.dead.add(last.instance)
        log.warning("the retained status says %s is %s, but no heartbeat came within %.1f s: "
                    "taking it as gone", describe(last), last.status, window)
        return Verdict(f"stale status of {describe(last)}: no heartbeat within {window:.1f} s",
                       last)

    # ------------------------------------------------------------------ while serving
    def on_status(self, st: EngineStatus | None, *, resent: bool = False) -> bool:
        """A status message read while serving (not this engine's own): True if this
        engine should republish its own status now. Raises ``AnotherEngine`` if another
        live engine started before this one (this one steps down).

        ``resent``: the broker resends it (MQTT DUP) because an earlier connection of this
        session, e.g. an engine killed before its PUBACK, never acknowledged it. It was
        published before this connection's check read the retained status, so it says
        nothing the check did not weigh: ignored (a killed engine's own last heartbeat
        must not make its successor step down)."""
        if st is None or st.instance == self.instance or resent:
            return False
        if st.status in LIVE:
            if (started_ns(st), st.instance) < (self.started, self.instance):
                raise AnotherEngine(st, f"stepping down: another engine serves this venue "
                                        f"({describe(st)}) and started before this one")
            log.warning("another engine connected to this venue (%s); it started later, so "
                        "it steps down", describe(st))
        return True              # a foreign status (or a dead engine's will) replaced ours

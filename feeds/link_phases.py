"""What the link gateway does with its session's news, apart from orders.

The connect phases (the retained state republished and acknowledged, then SUBSCRIBE,
then online at SUBACK), the publishes acknowledged or refused (a PUBACK >= 0x80 is
counted and logged, never retried), the closing drain, and other engines' statuses
(``feeds.guard``). A part of ``LinkGateway`` (``feeds.link_gateway``), which holds the
state these methods use.
"""
from __future__ import annotations

import logging
import time

import mqtt5

from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle
from feeds.durable import DurableGate
from feeds.guard import AnotherEngine, VenueGuard, decode_status
from feeds.link import InboundRefused, LinkError, Session
from feeds.link_connection import LinkStats, _Link
from feeds.outbox import Publish

log = logging.getLogger("tokenbook.gateway")

__all__ = ["LinkPhases"]


class LinkPhases:
    """The session-event half of ``LinkGateway``: it owns the attributes below."""
    session: Session
    cycle: GatewayCycle
    gate: DurableGate
    guard: VenueGuard | None
    connected: bool
    _online: bool
    _lost_at: float
    _last_status: float

    @property
    def config(self) -> GatewayConfig:
        return self.cycle.config

    @property
    def stats(self) -> LinkStats:
        return self.cycle.stats  # type: ignore[return-value]

    @property
    def _inputs(self) -> tuple[str, ...]:
        raise NotImplementedError

    # ------------------------------------------------------------------ one engine per venue
    def _statuses(self, link: _Link, messages: list[mqtt5.PublishPacket]
                  ) -> list[mqtt5.PublishPacket]:
        """Other engines' statuses out of ``messages`` (to the guard: ``AnotherEngine``
        if this engine must step down); the rest is the cycle's."""
        status = self.config.status_topic
        if all(m.topic != status for m in messages):
            return messages
        rest = []
        assert self.guard is not None, "statuses are subscribed with a guard only"
        for m in messages:
            if m.topic != status:
                rest.append(m)
            elif self.guard.on_status(decode_status(m.payload), resent=m.duplicate):
                self._publish_status(time.monotonic())
        return rest

    def _publish_status(self, now: float) -> None:
        """Republish the retained status (the heartbeat; or after another's replaced it)."""
        self._last_status = now
        cycle = self.cycle
        self.session.publish([cycle.status("online" if cycle.accepting else "not_accepting",
                                           cycle.status_text, self.config.clock())])

    def _step_down(self, link: _Link, exc: AnotherEngine, now: float) -> None:
        """Another engine serves this venue: a normal DISCONNECT (no will: the retained
        status stays the other's), the connection ends with ``exc``."""
        log.error("%s", exc)
        # What was received and not cycled is journaled offline and never PUBACKed: the
        # broker keeps it for this session, and the engine answers a resend from memory.
        self.session.disconnect()
        link.flush(now)
        link.end(exc)


    # ------------------------------------------------------------------ session events
    def _acked(self, link: _Link, now: float) -> None:
        s = self.session
        acked, s.acked = s.acked, []
        self.cycle.outbox.delivered(acked, now)
        self.stats.published += len(acked)
        if link.phase != "online":
            self._done(link, acked)

    def _refused(self, link: _Link) -> None:
        s, stats = self.session, self.stats
        refused, s.refused = s.refused, []
        for r in refused:
            stats.publish_refused += 1
            stats.refused_reasons[r.text] = stats.refused_reasons.get(r.text, 0) + 1
            log.error("broker refused the publish on %s: %s; not retried", r.publish.topic,
                      r.text)
        if link.phase != "online":
            self._done(link, [r.publish for r in refused])

    def _done(self, link: _Link, publishes: list[Publish]) -> None:
        """Connect phase: once the retained state is acknowledged, subscribe; closing:
        note when everything is."""
        if link.phase == "retained":
            for p in publishes:
                link.retained_left.discard(id(p))
            if not link.retained_left:
                self._subscribe(link)
        elif link.phase == "closing":
            self._check_drained(link)

    def _check_drained(self, link: _Link) -> None:
        if (not self.session.inflight and not self.session.queue and not link.pending
                and not len(self.gate)):
            link.drained.set()

    def _subscribe(self, link: _Link) -> None:
        """The engine's inputs; with a guard also the status topic, No Local (other
        engines' statuses, never its own: ``feeds.guard``)."""
        link.phase = "subscribe"
        link.sub_id = self.session.subscribe(
            self._inputs + ((self.config.status_topic,) if self.guard is not None else ()),
            no_local=(self.config.status_topic,))

    def _events(self, link: _Link, now: float) -> None:
        s, stats = self.session, self.stats
        events, s.events = s.events, []
        for e in events:
            if isinstance(e, mqtt5.ConnAckPacket):
                stats.connects += 1
                self.cycle.connected(now, self._lost_at)
                outbox = self.cycle.outbox
                s.forget([*outbox.pending, *(p for q in outbox.held.values() for p in q)])
                self.gate.settle()            # the retained books are of durable inputs
                retained = self.cycle.retained(self.config.clock())
                link.phase, link.retained_left = "retained", {id(p) for p in retained}
                s.publish(retained)
                self._last_status = now
                if not retained:
                    self._subscribe(link)
            elif isinstance(e, mqtt5.SubAckPacket) and e.packet_id == link.sub_id:
                codes = e.reason_codes
                bad = [(f, c) for f, c in zip(self._inputs, codes, strict=False)
                       if int(c) >= 0x80]
                if bad or len(codes) != len(self._inputs) + (self.guard is not None):
                    raise LinkError(f"subscription refused: {bad or codes}",
                                    int(bad[0][1]) if bad else 0x82)
                if self.guard is not None and int(codes[-1]) >= 0x80:
                    log.warning("the broker refused the subscription to %s (%s): another "
                                "engine connecting now would not be noticed",
                                self.config.status_topic,
                                codes[-1])
                link.phase = "online"
                self.connected = self._online = True
                self.gate.send(self.cycle.outbox.take(), [])
                link.online.set()
            elif isinstance(e, mqtt5.UnsubAckPacket):
                link.unsubscribed.set()
            elif isinstance(e, InboundRefused):
                stats.inbound_refused += 1
                log.error("refused a QoS %d message on %s: the gateway takes QoS 0 and 1 "
                          "(PUBREC 0x%02X)", e.qos, e.topic, e.code)

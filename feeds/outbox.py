"""The gateway's outbox: every PUBLISH it owes, kept until the broker acknowledged it.

Sans-I/O: the transport asks ``take`` for what may go now and reports back ``delivered``
(PUBACK received) or ``restore`` (the connection died first). Times are the caller's
monotonic seconds. Three rules live here:

- order: publishes leave in the order they were put (engine order, per topic too);
- holds: after a (re)connect, reports for a broker whose client may not have resubscribed
  yet wait per broker until ``release`` (its presence said ``online``, or it sent an order)
  or the hold's deadline, so they are not published into the void;
- resend window: exec reports acknowledged in the last ``resend_window`` seconds before a
  connection loss go out again after reconnecting, since a broker that crashed may have
  PUBACKed them without delivering them (clients drop the copies by ExecID).
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterable

import msgspec

__all__ = ["Outbox", "Publish", "KEPT_ACROSS_RECONNECT"]

#: Kinds that survive a reconnect; retained state (status, md) is republished fresh.
KEPT_ACROSS_RECONNECT = frozenset({"exec", "dropcopy", "trade", "admin", "reply"})
#: Kinds sent again after a reconnect: a broker's reports and their drop copies.
_RESENT_KINDS = frozenset({"exec", "dropcopy"})


class Publish(msgspec.Struct, frozen=True, gc=False):
    """One MQTT PUBLISH (QoS 1) the gateway owes. ``kind``: exec, dropcopy, trade, md,
    status, admin or reply (a query's answer, ``feeds.requests``); ``broker``: whose exec
    topic, drop copy or reply (holds apply to these); ``correlation``: the MQTT 5
    Correlation Data a reply echoes. ``gc=False``: thousands of them sit in the outbox
    and the resend window, and the collector need not walk them."""
    topic: str
    payload: bytes
    retain: bool
    kind: str
    broker: str | None = None
    correlation: bytes | None = None


class _Sent(msgspec.Struct, frozen=True, gc=False):
    """An acknowledged exec report and when (monotonic s): the resend window's entry."""
    at: float
    publish: Publish


class Outbox:
    """Pending publishes, per-broker holds and the resend window (see the module doc)."""

    def __init__(self, resend_window: float = 10.0, resend_max: int = 50_000):
        self.pending: deque[Publish] = deque()
        self.held: dict[str, deque[Publish]] = {}
        self.hold_deadline = 0.0
        self.resend_window, self.resend_max = resend_window, resend_max
        # By delivery number, oldest first: a dict of untracked structs stays out of the
        # collector's walk (a deque of tuples was walked by every full collection).
        self._recent: dict[int, _Sent] = {}
        self._first = self._next = 0

    def __len__(self) -> int:
        """Publishes owed: pending and held."""
        return len(self.pending) + sum(len(q) for q in self.held.values())

    def put(self, publish: Publish) -> None:
        self.pending.append(publish)

    # ------------------------------------------------------------------ holds
    def hold(self, brokers: Iterable[str], until: float) -> None:
        """Hold exec reports for ``brokers`` until released or ``until`` passed."""
        for broker in brokers:
            self.held.setdefault(broker, deque())
        self.hold_deadline = until

    def brokers_waiting(self) -> set[str]:
        """Brokers that have publishes pending."""
        return {p.broker for p in self.pending if p.broker}

    def release(self, broker: str) -> None:
        """The broker's client is back: what was held for it goes out, in order."""
        held = self.held.pop(broker, None)
        if held:
            # Everything for this broker since the hold is in here, so order is kept.
            self.pending.extend(held)

    def release_all(self) -> None:
        for broker in list(self.held):
            self.release(broker)

    def release_due(self, now: float) -> None:
        """Release every hold once its deadline passed."""
        if self.held and now >= self.hold_deadline:
            self.release_all()

    # ------------------------------------------------------------------ sending
    def take(self) -> list[Publish]:
        """Everything that may be published now, oldest first; held brokers' reports stay."""
        pending, held, out = self.pending, self.held, []
        if not held:                          # no holds (the usual case): everything goes
            out = list(pending)
            pending.clear()
            return out
        while pending:
            p = pending.popleft()
            if p.broker is not None and p.broker in held:
                held[p.broker].append(p)
            else:
                out.append(p)
        return out

    def restore(self, publishes: list[Publish]) -> None:
        """Put back publishes the broker did not acknowledge, in front, in their order."""
        self.pending.extendleft(reversed(publishes))

    def delivered(self, publishes: list[Publish], now: float) -> None:
        """The broker acknowledged ``publishes``: keep the exec reports for resends."""
        if self.resend_window <= 0:
            return
        recent, n = self._recent, self._next
        for p in publishes:
            if p.kind in _RESENT_KINDS:
                recent[n] = _Sent(now, p)
                n += 1
        self._next = n
        first = self._first
        while recent and (now - recent[first].at > self.resend_window
                          or len(recent) > self.resend_max):
            del recent[first]
            first += 1
        self._first = first

    def reconnected(self, lost_at: float) -> int:
        """A new connection: drop stale retained copies (the caller republishes them
        fresh), and put the exec reports acknowledged since ``lost_at - resend_window``
        back in front. Returns how many are sent again."""
        self.pending = deque(p for p in self.pending if p.kind in KEPT_ACROSS_RECONNECT)
        if not self._recent:
            return 0
        since = lost_at - self.resend_window
        again = [s.publish for s in self._recent.values() if s.at >= since]
        self._recent.clear()
        self._first = self._next
        self.pending.extendleft(reversed(again))
        return len(again)

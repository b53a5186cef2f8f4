"""What a cycle made, held until its journal group is durable; the fdatasync off the loop.

With ``LinkGateway.sync_off_loop`` (off by default: the sync then runs in the cycle) the
link gateway's journal writes each group without syncing (``Journal.defer_sync``), and
what the cycle made (publishes, and the packet ids of the inputs to PUBACK) goes through
``DurableGate.send``: out at once when nothing written waits for its sync, else held in
order while one ``Journal.sync`` runs on a thread of its own. The event loop meanwhile
parses the next read and runs the next cycle (its group is written, and its output held
behind). When a sync ends, everything up to the seq it made durable is released, in
order, and the next sync starts for whatever was written meanwhile: one fdatasync in
flight at a time, each covering every group written before it began.

The rule stays: nothing is published and no input is PUBACKed before its journal group is
durable. A failed sync fails the journal for good (``Journal.failed``); what was held is
dropped, never published (its inputs, not PUBACKed, come again from the broker and are
refused as JOURNAL_UNAVAILABLE), and ``on_failure`` tells the gateway.
"""
from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable

from feeds.outbox import Publish
from matching.journal import JournalError

__all__ = ["DurableGate"]

log = logging.getLogger("tokenbook.gateway")

Release = Callable[[list[Publish], list[int]], None]


class DurableGate:
    """Holds ``(publishes, packet ids to PUBACK)`` until the journal made them durable.

    ``release(publishes, acks)`` sends them (on the loop); ``woken()`` runs after a sync's
    release (the transport writes); ``on_failure(exc)`` after a failed sync. Without a
    journal, or one that is not on the group policy, everything goes out at once.
    """

    def __init__(self, journal, release: Release, woken: Callable[[], None],
                 on_failure: Callable[[JournalError], None]):
        self.journal = journal if journal is not None and journal.policy == "group" else None
        self.release, self.woken, self.on_failure = release, woken, on_failure
        self._held: deque[tuple[int, list[Publish], list[int]]] = deque()
        self._busy = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # The sync thread takes the seq to sync up to (None: stop) and answers on the loop;
        # a thread and a SimpleQueue, not an executor: no futures per group commit.
        self._asks: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.syncs = 0                        # fdatasyncs run off the loop

    def __len__(self) -> int:
        return len(self._held)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """From now on the journal's commits only write; this gate syncs them."""
        if self.journal is None or self._thread is not None:
            return
        self._loop = loop
        self._thread = threading.Thread(target=self._syncer, name="journal-sync", daemon=True)
        self._thread.start()
        self.journal.defer_sync = True

    def stop(self) -> None:
        """Sync and release what is held; the journal's commits sync again by themselves."""
        if self.journal is None or self._thread is None:
            return
        self.settle()
        self.journal.defer_sync = False
        self._asks.put(None)
        self._thread.join()
        self._thread = None

    # ------------------------------------------------------------------ the cycle's output
    def send(self, publishes: list[Publish], acks: list[int]) -> None:
        """Release now if nothing written waits for a sync, else hold behind it."""
        j = self.journal
        if (j is None or self._thread is None or j.failed is not None
                or (not self._held and j.written_seq <= j.durable_seq)):
            if publishes or acks:
                self.release(publishes, acks)
            return
        self._held.append((j.written_seq, publishes, acks))
        if not self._busy:
            self._sync()

    def settle(self) -> None:
        """Sync now, on the loop (a shutdown, a connect), and release everything held: after
        it everything written is durable (what went to the outbox meanwhile too)."""
        j = self.journal
        if j is None or j.failed is not None or (not self._held
                                                 and j.written_seq <= j.durable_seq):
            return
        try:
            j.sync(j.written_seq)
        except JournalError as exc:
            self._fail(exc)
            return
        self._release_upto(j.durable_seq)

    def drain(self) -> list[Publish]:
        """The connection is gone: what was held, made durable (for the outbox); the
        PUBACKs it owed cannot be sent (the broker sends those inputs again)."""
        j = self.journal
        if j is None or not self._held:
            return []
        if j.failed is None:
            try:
                j.sync(j.written_seq)
            except JournalError as exc:
                self._fail(exc)
                return []
        held, self._held = self._held, deque()
        return [p for _, publishes, _ in held for p in publishes] if j.failed is None else []

    # ------------------------------------------------------------------ the sync thread
    def _sync(self) -> None:
        j = self.journal
        assert j is not None and self._thread is not None, "started with a journal"
        self._busy = True
        self.syncs += 1
        self._asks.put(j.written_seq)

    def _syncer(self) -> None:
        """The sync thread: each asked seq made durable, the outcome sent to the loop."""
        j, loop = self.journal, self._loop
        assert j is not None and loop is not None, "started with a journal"
        while (seq := self._asks.get()) is not None:
            error: BaseException | None = None
            try:
                j.sync(seq)
            except BaseException as exc:  # noqa: BLE001 - reported on the loop
                error = exc
            try:
                loop.call_soon_threadsafe(self._synced, error)
            except RuntimeError:              # the loop is closed: nobody to tell
                return

    def _synced(self, exc: BaseException | None) -> None:
        self._busy = False
        if self.journal is None:
            return
        if exc is not None:
            self._fail(exc if isinstance(exc, JournalError) else JournalError(str(exc)))
        else:
            self._release_upto(self.journal.durable_seq)
            if self._held and self._thread is not None:
                self._sync()
        self.woken()

    def _release_upto(self, durable: int) -> None:
        held, release = self._held, self.release
        while held and held[0][0] <= durable:
            _, publishes, acks = held.popleft()
            release(publishes, acks)

    def _fail(self, exc: JournalError) -> None:
        dropped = sum(len(p) for _, p, _ in self._held)
        self._held.clear()
        log.error("journal sync failed: %s; %d publishes of inputs not made durable are "
                  "dropped (their inputs are not acknowledged)", exc, dropped)
        self.on_failure(exc)

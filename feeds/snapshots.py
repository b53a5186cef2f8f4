"""Periodic snapshots written by a forked child, so the event loop never serialises a book.

``engine.snapshot()`` of 100,000 resting orders takes over a second; run inline it stops
the gateway's loop that long. ``ForkedSnapshots`` is the cycle's snapshot writer
(``GatewayCycle.write_snapshot``) instead: it writes the pending journal group, notes the
engine's seq, and ``os.fork``s. The child's memory is a copy-on-write image of the engine
at exactly that seq however the parent goes on, so its snapshot is consistent with one
seq: it makes the journal durable up to that seq (``fdatasync`` on the inherited fd: a
snapshot is never ahead of the journal), writes ``snapshot-<seq>.bin`` atomically
(``matching.journal.write_snapshot``) and exits. One child at a time: a snapshot due while
the last one is still being written is skipped (the next is due ``snapshot_every`` inputs
later). The parent reaps the child (``poll``, ``wait``) and logs how it ended.
"""
from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path

from matching import recovery

__all__ = ["ForkedSnapshots"]

log = logging.getLogger("tokenbook.gateway")


class ForkedSnapshots:
    """``snapshots(directory)`` starts one snapshot of ``engine`` in a child process."""

    def __init__(self, engine):
        self.engine = engine
        self.child: tuple[int, int, float] | None = None     # pid, seq, started (monotonic)
        self.written = self.failed = self.skipped = 0

    def __call__(self, directory: str | os.PathLike) -> None:
        self.poll()
        if self.child is not None:
            self.skipped += 1
            log.warning("snapshot skipped: the one at sequence %d is still being written",
                        self.child[1])
            return
        engine = self.engine
        engine.commit()                       # the pending group is in the file (not synced)
        seq = engine.seq
        journal = engine.journal
        fd = journal.fd if journal is not None and journal.policy != "none" else -1
        pid = os.fork()
        if pid == 0:                          # the child: never returns
            code = 1
            try:
                if fd >= 0:
                    os.fdatasync(fd)
                recovery.write_snapshot(Path(directory), seq, engine.snapshot())
                code = 0
            except BaseException:  # noqa: BLE001 - the child reports and exits, always
                traceback.print_exc(file=sys.stderr)
            finally:
                os._exit(code)
        self.child = (pid, seq, time.monotonic())

    def poll(self) -> bool:
        """Reap the child if it ended; True while one is still writing."""
        return self._reap(os.WNOHANG)

    def wait(self) -> None:
        """Until the child (if any) has ended."""
        self._reap(0)

    def _reap(self, flags: int) -> bool:
        if self.child is None:
            return False
        pid, seq, t0 = self.child
        try:
            done, status = os.waitpid(pid, flags)
        except ChildProcessError:
            done, status = pid, 1 << 8
        if done == 0:
            return True
        self.child = None
        if os.waitstatus_to_exitcode(status) == 0:
            self.written += 1
            log.info("snapshot at sequence %d written in %.2f s (forked child)", seq,
                     time.monotonic() - t0)
        else:
            self.failed += 1
            log.error("snapshot at sequence %d failed (child exit %d); recovery replays a "
                      "longer journal", seq, os.waitstatus_to_exitcode(status))
        return False

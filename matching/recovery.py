"""Snapshots, replay and recovery: an engine rebuilt exactly from what it journaled.

A snapshot is every piece of engine state as of one sequence number (msgpack); recovery
is the latest snapshot plus the journal after it, replayed through the same code path as
live inputs (so the state hash equals the live engine's). ``open_engine`` is what
``tokenbook serve`` starts from: lock a data directory and start a new epoch in it
(``matching.datadir``), then recover it, or found a new venue in it.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable

import msgspec

from matching.compliance import install, wire_fills
from matching.compliance_admin import parse_table
from matching.datadir import DataDir
from matching.journal import Journal, latest_snapshot, read_journal, write_snapshot
from matching.ledger import Ledger
from matching.messages import JournalEntry
from matching.orders import LiveOrder

__all__ = ["snapshot_of", "restore_into", "replay", "recover", "open_engine",
           "write_snapshot", "RESEND_TAIL"]

log = logging.getLogger("tokenbook.recovery")

#: Inputs at the end of a recovered journal whose reports go out again (PossResend): the
#: gateway publishes each cycle (<= 500 inputs) before taking the next, so a crash can
#: leave at most the last cycle or two unpublished; this covers four.
RESEND_TAIL = 2000


def snapshot_of(engine) -> bytes:
    """Everything needed to rebuild ``engine`` exactly, as of ``engine.seq``."""
    return msgspec.msgpack.encode({
        "seq": engine.seq, "now": engine.now,
        "counters": [engine.next_order_id, engine.reports.next_exec_id,
                     engine.executions.next_trade_id],
        **engine.session.snapshot(),
        "books": {s: b.resting_orders() for s, b in engine.books.items()},
        "calls": sorted(s for s, b in engine.books.items() if b.in_call),
        "auctions": engine.auctions.snapshot(),
        "orders": [o.row() for o in engine.orders.values()],
        **engine.clordids.snapshot(),
        "ledger": engine.ledger.snapshot(),
        "corporate": engine.corporate.snapshot(),
        "issuance": engine.issuance.snapshot(),
        # Cash moved between shards; a venue that never moved any snapshots as before.
        **({"transfers": engine.accounts_admin.transfers.snapshot()}
           if engine.accounts_admin.transfers.state_doc() else {}),
        "day_stats": engine.day_stats.snapshot(),
        # Retail buys counted towards today's limits, rules the operator set
        # (matching.compliance), if any.
        **({"compliance": engine.risk.compliance.snapshot()}
           if engine.risk.compliance is not None and engine.risk.compliance.snapshot()
           else {}),
    })


def restore_into(engine, payload: bytes) -> None:
    """Put a fresh engine (no input applied yet) into the state ``payload`` describes."""
    snap = msgspec.msgpack.decode(payload)
    engine.seq, engine.now = snap["seq"], snap["now"]
    (engine.next_order_id, engine.reports.next_exec_id,
     engine.executions.next_trade_id) = snap["counters"]
    engine.session.restore(snap)
    engine.orders.update({row[0]: LiveOrder(*row) for row in snap["orders"]})
    calls = set(snap.get("calls", ()))
    for symbol, resting in snap["books"].items():
        book = engine.books[symbol]
        # Re-entered best first and in FIFO order: the same queues, nothing crosses (in a
        # call nothing matches: market orders, price None, and GFA orders rest again).
        if symbol in calls:
            book.set_call(True)
            for oid, side, price, leaves, account, stp, post_only in resting:
                book.restore_resting(oid, side, price, leaves, account, stp, post_only,
                                     engine.orders[oid].tif)
            continue
        for oid, side, price, leaves, account, stp, post_only in resting:
            book.new_order(oid, side, price, leaves, account=account, stp=stp,
                           post_only=post_only)
        book.take_events()
    if "auctions" in snap:
        engine.auctions.restore(snap["auctions"])
    engine.expiry.rebuild(engine.orders)
    engine.clordids.restore(snap)
    engine.use_ledger(Ledger.restore(snap["ledger"]))
    engine.corporate.restore(snap.get("corporate"))     # older snapshots have none
    engine.issuance.restore(snap.get("issuance"))
    engine.accounts_admin.transfers.restore(snap.get("transfers"))
    engine.day_stats.restore(snap.get("day_stats"))
    if snap.get("compliance"):
        install(engine).restore(snap["compliance"],
                                lambda symbol, table: parse_table(engine, symbol, table))
        wire_fills(engine)
    elif engine.risk.compliance is not None:
        engine.risk.compliance.reindex()        # the restored orders' buys


def replay(engine, records, on_outcome: Callable | None = None) -> int:
    """Apply journaled inputs ``(seq, payload)`` again, in order; returns how many.
    ``on_outcome`` sees each replayed input's outcome (reports to resend after a crash)."""
    n = 0
    engine._replaying = True
    try:
        for _seq, payload in records:
            entry = msgspec.msgpack.decode(payload, type=JournalEntry)
            if entry.seq != engine.seq + 1:
                raise ValueError(f"journal gap: record {entry.seq} after {engine.seq}")
            out = engine._sequenced(entry.broker, entry.msg, entry.time)
            if on_outcome is not None:
                on_outcome(out)
            n += 1
    finally:
        engine._replaying = False
    return n


def recover(engine_cls, instruments, *, snapshot_dir, journal_path, clock,
            book_engine: str = "core", journal=None, on_outcome: Callable | None = None,
            resend_window: int | None = None):
    """Latest snapshot + the journal after it: the state the engine had acknowledged."""
    found = latest_snapshot(snapshot_dir)
    if found is None:
        raise ValueError(f"no snapshot in {snapshot_dir}: nothing to recover from")
    seq, payload = found
    window = engine_cls.RESEND_WINDOW if resend_window is None else resend_window
    engine = engine_cls.from_snapshot(instruments, payload, clock=clock,
                                      book_engine=book_engine, resend_window=window)
    replay(engine, read_journal(journal_path, after_seq=seq), on_outcome)
    engine.journal = journal
    return engine


def open_engine(engine_cls, data, registry, *, new_ledger: Callable[[], Ledger],
                fsync: str = "group", clock: Callable[[], int] = time.time_ns,
                resend_tail: int = RESEND_TAIL):
    """Lock the data directory ``data`` and start a new epoch in it (``DataDirLocked`` if
    another engine holds it: nothing touched), then recover from it if it holds a
    snapshot, else found a new venue there with ``new_ledger()`` and snapshot it at once.
    Returns the engine (holding the directory until ``engine.close()`` or the process
    ends; ``engine.epoch`` this start's) and the outcomes of the last ``resend_tail``
    replayed inputs (the gateway resends them)."""
    data_dir = DataDir.open(data)
    try:
        snaps, journal_path = data_dir.snapshots, data_dir.journal_path
        journal = Journal(journal_path, fsync=fsync)
        try:
            if latest_snapshot(snaps) is not None:
                tail: deque = deque(maxlen=resend_tail)
                engine = recover(engine_cls, registry, snapshot_dir=snaps,
                                 journal_path=journal_path, clock=clock, journal=journal,
                                 on_outcome=tail.append)
                recovered = list(tail)
                log.info("recovered to sequence %d (state %s), epoch %d; resending the "
                         "reports of the last %d inputs", engine.seq,
                         engine.state_hash()[:16], data_dir.epoch, len(recovered))
            else:
                engine = engine_cls(registry, new_ledger(), clock=clock, journal=journal)
                engine.write_snapshot(snaps)
                recovered = []
        except BaseException:
            journal.close()
            raise
    except BaseException:
        data_dir.close()
        raise
    engine.epoch = data_dir.epoch
    engine.data_dir = data_dir
    return engine, recovered

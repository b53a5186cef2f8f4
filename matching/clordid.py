"""ClOrdID memory: which ClOrdIDs a broker used today, and what each input told its sender.

FIX makes a ClOrdID unique per broker and trading day, whatever became of the message
that used it. ``orders`` maps every used ``(broker, ClOrdID)`` to the order it named (an
order keeps all its ClOrdIDs: the first, each cancel's and each replace's; 0 for a message
that named none, e.g. a rejected order or a refused cancel), so any later message with it
is a duplicate. ``outcomes`` keeps, for the last ``window`` inputs, the reports their
sender got followed by a digest of the input's content (``digest_of``; ``told`` gives the
reports alone): an exact resend (the same content, or flagged PossDup) is answered with
those reports again, never entered twice.
``finished`` keeps today's done orders' last OrdStatus, for the OrderCancelReject of a
cancel that came too late. Keys and reports are untracked tuples (``matching._gc``), so
the collector never walks them however many are kept.
"""
from __future__ import annotations

import msgspec

from matching._gc import untracked
from matching.messages import EngineReport, utc_timestamp

__all__ = ["ClOrdIdMemory", "digest_of"]

_ENCODER = msgspec.msgpack.Encoder()
_ASTUPLE = msgspec.structs.astuple


def digest_of(msg) -> bytes:
    """The digest a resend is told by: an order-entry message's content in canonical
    form, the msgpack array of its field values with PossDup cleared (the three message
    types differ in their number of fields). Equal exactly for the same content; about
    50 bytes for a new order, 20 for a cancel.

    Exact rather than hashed: hashing it as well cost ~2k (CRC-32 + Adler-32) to ~6.6k
    (blake2b) more instructions per input (callgrind, bench_engine's flow) to save ~45
    bytes per kept outcome (~4.5 MB at the default window of 100k)."""
    if msg.poss_dup:
        msg = msgspec.structs.replace(msg, poss_dup=False)
    try:
        return _ENCODER.encode(_ASTUPLE(msg))
    except (OverflowError, UnicodeEncodeError):
        # Content no wire message can have (an API caller's huge int, lone surrogate).
        return repr(_ASTUPLE(msg)).encode("utf-8", "surrogatepass")


class ClOrdIdMemory:
    """The ClOrdIDs of one trading day and the resend outcomes of the last ``window`` inputs."""

    def __init__(self, window: int):
        self.window = window
        self.orders: dict[tuple[str, str], int] = {}
        # (broker, ClOrdID) -> (report, ..., content digest): one tuple, no second dict.
        self.outcomes: dict[tuple[str, str], tuple] = {}
        self.finished: dict[int, str] = {}
        # Remembered keys by input number, oldest first: a dict of untracked tuples is
        # out of the collector's walk (a deque would be walked whole by every full one).
        self._order: dict[int, tuple[str, str]] = {}
        self._first = 0
        self._next = 0

    def told(self, broker: str, cl_ord_id: str):
        """What the input ``(broker, cl_ord_id)`` told its sender (a tuple of reports), or
        None if not kept."""
        kept = self.outcomes.get((broker, cl_ord_id))
        return None if kept is None else kept[:len(kept) - 1]

    def resend(self, broker: str, msg):
        """What ``msg`` told its sender if it is a resend of a remembered input (flagged
        PossDup, or the same content as the input that used its ClOrdID), else None."""
        kept = self.outcomes.get((broker, msg.cl_ord_id))
        if kept is None:
            return None
        # No negative indices: the compiled build does not wrap them around.
        last = len(kept) - 1
        if msg.poss_dup or kept[last] == digest_of(msg):
            return kept[:last]
        return None

    def used(self, broker: str, cl_ord_id: str) -> bool:
        """Whether ``broker`` already used ``cl_ord_id`` today (for anything)."""
        return (broker, cl_ord_id) in self.orders

    def order_of(self, broker: str, cl_ord_id: str):
        """The order id ``(broker, cl_ord_id)`` named (0: none), or None if unused today."""
        return self.orders.get((broker, cl_ord_id))

    def status_of(self, order_id: int):
        """The last OrdStatus of today's done order ``order_id``, or None."""
        return self.finished.get(order_id)

    def bind(self, broker: str, cl_ord_id: str, order_id: int) -> None:
        """``cl_ord_id`` now names ``order_id`` (a new order, or its cancel or replace)."""
        self.orders[untracked((broker, cl_ord_id))] = order_id

    def finish(self, order_id: int, status: str) -> None:
        """Order ``order_id`` is done with OrdStatus ``status``."""
        self.finished[order_id] = status

    def remember(self, broker: str, msg, reports: list) -> None:
        """Keep what input ``msg`` told ``broker`` (its reports among ``reports``, the
        input's ``(broker, report)`` pairs) and its content digest for resends, forgetting
        the oldest past the window (by input count, so a replay forgets exactly what the
        live run forgot); its ClOrdID is used from now on even if it named no order."""
        key = untracked((broker, msg.cl_ord_id))
        self.orders.setdefault(key, 0)
        if len(reports) == 1 and reports[0][0] == broker:
            kept = (reports[0][1], digest_of(msg))     # the usual case: one report, its own
        else:
            kept = (*[r for b, r in reports if b == broker], digest_of(msg))
        self.outcomes[key] = untracked(kept)
        order = self._order
        order[self._next] = key
        self._next += 1
        while len(order) > self.window:
            del self.outcomes[order.pop(self._first)]
            self._first += 1

    def end_of_day(self, live) -> None:
        """The trading day ended: forget the ClOrdIDs of orders not in ``live`` (a broker
        may use them again tomorrow) with their outcomes; a live GTC/GTD order keeps its
        ClOrdIDs (tomorrow's cancel or replace names them) and their outcomes."""
        self.orders = {k: oid for k, oid in self.orders.items() if oid in live}
        kept = self.orders
        self.outcomes = {k: v for k, v in self.outcomes.items() if k in kept}
        self.finished = {}
        self._reorder()

    def _reorder(self) -> None:
        """The remembered keys' order from ``outcomes`` (its insertion order is theirs)."""
        self._order = dict(enumerate(self.outcomes))
        self._first, self._next = 0, len(self._order)

    def snapshot(self) -> dict:
        """The memory as snapshot rows (``restore`` takes them back), oldest outcome first."""
        return {
            "by_clordid": [[b, c, oid] for (b, c), oid in self.orders.items()],
            "outcomes": [[b, c, kept[:len(kept) - 1], kept[len(kept) - 1]]
                         for (b, c), kept in self.outcomes.items()],
            "finished": [[oid, status] for oid, status in self.finished.items()],
        }

    def restore(self, snap: dict) -> None:
        """From ``snapshot()``'s rows (in a snapshot dict; a snapshot from before digests
        were kept answers only PossDup resends of its outcomes)."""
        self.orders = {untracked((b, c)): oid for b, c, oid in snap["by_clordid"]}
        outcomes = {}
        for row in snap["outcomes"]:
            b, c, rs = row[0], row[1], row[2]
            for r in rs:
                if type(r.get("transact_time")) is int:      # stored before UTCTimestamps
                    r["transact_time"] = utc_timestamp(r["transact_time"])
            digest = row[3] if len(row) > 3 else b""            # b"" matches no digest
            outcomes[untracked((b, c))] = untracked(
                (*msgspec.convert(rs, list[EngineReport]), digest))
        self.outcomes = outcomes
        self.finished = dict(snap.get("finished", ()))
        self._reorder()

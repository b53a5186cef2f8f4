"""ClOrdID memory: which ClOrdIDs a broker used today, and what each input told its sender.

FIX makes a ClOrdID unique per broker and trading day, whatever became of the message
that used it. ``orders`` maps every used ``(broker, ClOrdID)`` to the order it named (an
order keeps all its ClOrdIDs: the first, each cancel's and each replace's; 0 for a message
that named none, e.g. a rejected order or a refused cancel), so any later message with it
is a duplicate; it is a ``ClOrdIdIndex`` (flat arrays, ~77 bytes a key) so a day of
orders costs bounded memory per order, not a dict entry, a tuple and a str each.
``outcomes`` keeps, for the last ``window`` inputs, the reports their
sender got followed by a digest of the input's content (``digest_of``; ``told`` gives the
reports alone): an exact resend (the same content, or flagged PossDup) is answered with
those reports again, never entered twice.
``finished`` keeps today's done orders' last OrdStatus (``DoneStatuses``: a byte an order
id), for the OrderCancelReject of a cancel that came too late. Outcome keys and reports
are untracked tuples (``matching._gc``), so the collector never walks them.
"""
from __future__ import annotations

from array import array

import msgspec

from matching._gc import untracked
from matching.messages import EngineReport, utc_timestamp

__all__ = ["ClOrdIdIndex", "ClOrdIdMemory", "DoneStatuses", "digest_of"]

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


_HEADER = 8                    # an arena record: broker bytes length, ClOrdID bytes length (4+4)
_MASK64 = (1 << 64) - 1
_STATUS_SPREAD = 1 << 20       # a done order id further than this past the row: kept in a dict


def _record(broker: str, cl_ord_id: str) -> bytes:
    """A key's exact bytes: both lengths, then both strings (UTF-8, lone surrogates kept),
    so two records are equal exactly when both strings are."""
    b = broker.encode("utf-8", "surrogatepass")
    c = cl_ord_id.encode("utf-8", "surrogatepass")
    return len(b).to_bytes(4, "little") + len(c).to_bytes(4, "little") + b + c


class ClOrdIdIndex:
    """Every ``(broker, ClOrdID)`` used today -> the order it named (0: none), in flat arrays.

    A slot holds a 64-bit digest of the key, the offset of the key's exact bytes in an
    append-only arena, and the order id: ~70 bytes a key against ~250 for a dict of tuples
    of str (the soak's RSS growth). A digest match is confirmed on the exact bytes, so two
    keys with one digest stay two keys (no false duplicate) and a used key is always found
    (no missed one). Open addressing, linear probing, at most 2/3 full; keys are never
    removed (the day's end builds a new index). Iteration is in insertion order, as a dict's.
    The collector walks it as a few flat buffers, whatever the number of keys."""

    def __init__(self):
        self._arena = bytearray()
        self._count = 0
        self._alloc(16)

    def _alloc(self, capacity: int) -> None:
        self._mask = capacity - 1
        self._digests = array("Q", [0]) * capacity      # 0: an empty slot
        self._refs = array("q", [0]) * capacity         # record offset in the arena
        self._oids = array("q", [0]) * capacity

    def _slot(self, broker: str, cl_ord_id: str, digest: int) -> int:
        """The slot holding the key, or ``~slot`` of the empty one it would go in."""
        digests = self._digests
        mask = self._mask
        i = digest & mask
        rec = None
        while True:
            d = digests[i]
            if d == 0:
                return ~i
            if d == digest:
                if rec is None:
                    rec = _record(broker, cl_ord_id)
                off = self._refs[i]
                if self._arena[off:off + len(rec)] == rec:
                    return i
            i = (i + 1) & mask

    def lookup(self, broker: str, cl_ord_id: str):
        """The order id ``(broker, cl_ord_id)`` named (0: none), or None if unused."""
        i = self._slot(broker, cl_ord_id, _digest(broker, cl_ord_id))
        return None if i < 0 else self._oids[i]

    def store(self, broker: str, cl_ord_id: str, order_id: int, replace: bool) -> None:
        """Bind the key to ``order_id`` (an existing binding only if ``replace``)."""
        digest = _digest(broker, cl_ord_id)
        i = self._slot(broker, cl_ord_id, digest)
        if i >= 0:
            if replace:
                self._oids[i] = order_id
            return
        i = ~i
        self._digests[i] = digest
        self._refs[i] = len(self._arena)
        self._oids[i] = order_id
        self._arena += _record(broker, cl_ord_id)
        self._count += 1
        if self._count * 3 > (self._mask + 1) * 2:
            self._grow()

    def _grow(self) -> None:
        """Twice the slots; each key re-placed by its kept digest (no key re-read). A C
        loop when compiled: 2M slots take a few ms, where a Python loop held the engine
        for ~0.3 s at the day's 1.4 millionth ClOrdID."""
        digests, refs, oids = self._digests, self._refs, self._oids
        n = self._mask + 1
        self._alloc(2 * n)
        mask = self._mask
        new_digests, new_refs, new_oids = self._digests, self._refs, self._oids
        for j in range(n):
            d = digests[j]
            if d != 0:
                i = d & mask
                while new_digests[i] != 0:
                    i = (i + 1) & mask
                new_digests[i] = d
                new_refs[i] = refs[j]
                new_oids[i] = oids[j]

    def keys(self) -> list:
        """Every key, oldest first (from the arena: records are appended in order)."""
        arena = self._arena
        out = []
        off = 0
        end = len(arena)
        while off < end:
            bl = int.from_bytes(arena[off:off + 4], "little")
            cl = int.from_bytes(arena[off + 4:off + 8], "little")
            start = off + _HEADER
            out.append((arena[start:start + bl].decode("utf-8", "surrogatepass"),
                        arena[start + bl:start + bl + cl].decode("utf-8", "surrogatepass")))
            off = start + bl + cl
        return out

    def items(self) -> list:
        """``((broker, ClOrdID), order id)`` pairs, oldest key first."""
        return [(k, self.lookup(k[0], k[1])) for k in self.keys()]

    def __len__(self) -> int:
        return self._count

    def __contains__(self, key) -> bool:
        return self._slot(key[0], key[1], _digest(key[0], key[1])) >= 0

    def __getitem__(self, key):
        oid = self.lookup(key[0], key[1])
        if oid is None:
            raise KeyError(key)
        return oid

    def get(self, key, default=None):
        oid = self.lookup(key[0], key[1])
        return default if oid is None else oid

    def __iter__(self):
        return iter(self.keys())

    def memory_bytes(self) -> int:
        """The bytes the index holds (its arrays and arena), for the soak's report."""
        return (self._mask + 1) * 24 + len(self._arena)


def _digest(broker: str, cl_ord_id: str) -> int:
    """A nonzero 64-bit digest of the key from both strings' hashes (cached on each str;
    seeded per process, which is fine: the index is never stored, only its keys)."""
    d = ((hash(broker) * 1000003) ^ hash(cl_ord_id)) & _MASK64
    return d if d != 0 else 1


class DoneStatuses:
    """Today's done orders' last OrdStatus (one character), a byte an order id.

    Order ids are handed out in sequence, so the day's done orders fill a row of bytes
    from the first id done today (0: not done); an id before it (a GTC order of an earlier
    day) or far past the row, or a status of more than one character, goes in a dict."""

    def __init__(self):
        self._base = -1
        self._row = bytearray()
        self._other: dict = {}

    def set(self, order_id: int, status: str) -> None:
        if self._base < 0:
            self._base = order_id
        i = order_id - self._base
        if 0 <= i < len(self._row) + _STATUS_SPREAD and len(status) == 1 and 0 < ord(status) < 256:
            row = self._row
            if i >= len(row):
                row.extend(bytes(max(i + 1 - len(row), len(row) // 2 + 64)))
            row[i] = ord(status)
            self._other.pop(order_id, None)
        else:
            if 0 <= i < len(self._row):
                self._row[i] = 0
            self._other[order_id] = status

    def get(self, order_id: int, default=None):
        i = order_id - self._base
        if self._base >= 0 and 0 <= i < len(self._row):
            b = self._row[i]
            if b:
                return chr(b)
        return self._other.get(order_id, default)

    def items(self) -> list:
        """``(order id, status)`` pairs in order id order."""
        out = [(self._base + i, chr(b)) for i, b in enumerate(self._row) if b]
        out.extend(self._other.items())
        out.sort()
        return out

    def __len__(self) -> int:
        return sum(1 for b in self._row if b) + len(self._other)


class ClOrdIdMemory:
    """The ClOrdIDs of one trading day and the resend outcomes of the last ``window`` inputs."""

    def __init__(self, window: int):
        self.window = window
        self.orders = ClOrdIdIndex()
        # (broker, ClOrdID) -> (report, ..., content digest): one tuple, no second dict.
        self.outcomes: dict[tuple[str, str], tuple] = {}
        self.finished = DoneStatuses()
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
        return self.orders.lookup(broker, cl_ord_id) is not None

    def order_of(self, broker: str, cl_ord_id: str):
        """The order id ``(broker, cl_ord_id)`` named (0: none), or None if unused today."""
        return self.orders.lookup(broker, cl_ord_id)

    def status_of(self, order_id: int):
        """The last OrdStatus of today's done order ``order_id``, or None."""
        return self.finished.get(order_id)

    def bind(self, broker: str, cl_ord_id: str, order_id: int) -> None:
        """``cl_ord_id`` now names ``order_id`` (a new order, or its cancel or replace)."""
        self.orders.store(broker, cl_ord_id, order_id, True)

    def finish(self, order_id: int, status: str) -> None:
        """Order ``order_id`` is done with OrdStatus ``status``."""
        self.finished.set(order_id, status)

    def remember(self, broker: str, msg, reports: list) -> None:
        """Keep what input ``msg`` told ``broker`` (its reports among ``reports``, the
        input's ``(broker, report)`` pairs) and its content digest for resends, forgetting
        the oldest past the window (by input count, so a replay forgets exactly what the
        live run forgot); its ClOrdID is used from now on even if it named no order."""
        key = untracked((broker, msg.cl_ord_id))
        self.orders.store(broker, msg.cl_ord_id, 0, False)
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
        kept = ClOrdIdIndex()
        for (b, c), oid in self.orders.items():
            if oid in live:
                kept.store(b, c, oid, True)
        self.orders = kept
        self.outcomes = {k: v for k, v in self.outcomes.items() if k in kept}
        self.finished = DoneStatuses()
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
        self.orders = ClOrdIdIndex()
        for b, c, oid in snap["by_clordid"]:
            self.orders.store(b, c, oid, True)
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
        self.finished = DoneStatuses()
        for oid, status in snap.get("finished", ()):
            self.finished.set(oid, status)
        self._reorder()

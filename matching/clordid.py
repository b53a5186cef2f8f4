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

import mmap
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
# Old slots moved per store while a resize is in progress: a move of n old slots ends
# after n/64 stores, long before the new table (2n slots, n*2/3 keys) is 2/3 full (the
# bound is 2 slots a store), and one store moves at most 64 keys (microseconds).
_MOVE_STEP = 64
# A slot array of this many bytes or more is mapped memory (the kernel zeroes each page on
# its first touch): zeroing 100 MB up front held a store for ~40 ms. Smaller ones: an array.
_MAPPED_BYTES = 1 << 18
# A resize gives the moved part of the old mapped arrays back to the kernel in pieces of
# this many bytes as it goes (~0.1 ms at most a piece of the three): unmapping 50 MB once
# touched held a store for ~3 ms.
_RELEASE_BYTES = 1 << 16
_PRIVATE = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
# The arena is a list of chunks of at most this many bytes (or one record), so appending a
# record never copies more than a chunk (a bytearray's realloc copied up to ~30 MB).
_ARENA_CHUNK = 1 << 20
_CHUNK_SHIFT = 32              # a record's ref: chunk number << 32 | offset in the chunk


def _record(broker: str, cl_ord_id: str) -> bytes:
    """A key's exact bytes: both lengths, then both strings (UTF-8, lone surrogates kept),
    so two records are equal exactly when both strings are."""
    b = broker.encode("utf-8", "surrogatepass")
    c = cl_ord_id.encode("utf-8", "surrogatepass")
    return len(b).to_bytes(4, "little") + len(c).to_bytes(4, "little") + b + c


class ClOrdIdIndex:
    """Every ``(broker, ClOrdID)`` used today -> the order it named (0: none), in flat arrays.

    A slot holds a 64-bit digest of the key, the place of the key's exact bytes in an
    append-only arena, and the order id: ~70 bytes a key against ~250 for a dict of tuples
    of str (the soak's RSS growth). A digest match is confirmed on the exact bytes, so two
    keys with one digest stay two keys (no false duplicate) and a used key is always found
    (no missed one). Open addressing, linear probing, at most 2/3 full; keys are never
    removed (the day's end builds a new index). Iteration is in insertion order, as a dict's.
    The collector walks it as a few flat buffers, whatever the number of keys.

    Resizing is incremental (as Redis' dict rehashes): past 2/3 full, a table of twice the
    slots (mapped memory, zeroed by the kernel page by page) becomes the current one and
    each later new key moves the next ``_MOVE_STEP`` slots of the old one into it, so no
    store pays for moving every key (a doubling at 1.4M keys held one store for ~60 ms).
    Lookups consult both tables while a move is in progress. Lookup and store are O(1)
    expected, and O(1) worst case apart from the probe itself; ``keys`` is O(n).

    >>> index = ClOrdIdIndex()
    >>> index.store("alpha", "C1", 7, False)
    >>> index.lookup("alpha", "C1"), index.lookup("alpha", "C2")
    (7, None)
    """

    def __init__(self, capacity: int = 16):
        """An empty index of at least ``capacity`` slots (rounded up to a power of two)."""
        self._arena = bytearray()
        self._chunks = [self._arena]
        self._arena_bytes = 0
        self._count = 0
        n = 16
        while n < capacity:
            n *= 2
        self._alloc(n)
        self._drop_old()

    def _alloc(self, capacity: int) -> None:
        """The current table: ``capacity`` empty slots (a power of two); large arrays are
        anonymous maps (``_maps``), allocated in O(1) and freed with their last view."""
        self._mask = capacity - 1
        maps: tuple = ()
        views: list = []
        if capacity * 8 < _MAPPED_BYTES:
            # 0: an empty slot; refs: the record's chunk and offset; order ids
            views = [array(t, [0]) * capacity for t in ("Q", "q", "q")]
        else:
            # Private: a shared map's pages given back would stay in memory (shmem).
            maps = tuple(mmap.mmap(-1, capacity * 8, flags=_PRIVATE) for _ in range(3))
            views = [memoryview(maps[0]).cast("Q"), memoryview(maps[1]).cast("q"),
                     memoryview(maps[2]).cast("q")]
        self._maps = maps
        self._digests, self._refs, self._oids = views[0], views[1], views[2]

    def _drop_old(self) -> None:
        """No move in progress: an empty old table (its views, and so its maps, freed)."""
        self._old_digests = self._digests[:0]
        self._old_refs = self._refs[:0]
        self._old_oids = self._oids[:0]
        self._old_maps = ()
        self._old_mask = 0
        self._old_size = 0
        self._moved = 0
        self._released = 0

    def _is_key(self, ref: int, rec: bytes) -> bool:
        """Whether the arena record at ``ref`` is ``rec``, byte for byte."""
        off = ref & 0xFFFFFFFF
        return self._chunks[ref >> _CHUNK_SHIFT][off:off + len(rec)] == rec

    def _find(self, broker: str, cl_ord_id: str, digest: int) -> int:
        """The current table's slot holding the key, or ``~slot`` of the empty one it
        would go in (there is one: the table is at most 2/3 full)."""
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
                if self._is_key(self._refs[i], rec):
                    return i
            i = (i + 1) & mask

    def _find_old(self, broker: str, cl_ord_id: str, digest: int) -> int:
        """The old table's slot holding the key (not moved yet), or -1.

        Slots before ``_moved`` are moved (their pages may be given back, reading 0), so a
        probe skips them as occupied: linear probing keeps every slot from a key's home to
        its own occupied, and a key not moved is at a slot from ``_moved`` on."""
        digests = self._old_digests
        mask = self._old_mask
        moved = self._moved
        i = digest & mask
        if i < moved:
            i = moved
        left = self._old_size - moved       # a probe visits each slot not moved once at most
        rec = None
        while left > 0:
            d = digests[i]
            if d == 0:
                return -1
            if d == digest:
                if rec is None:
                    rec = _record(broker, cl_ord_id)
                if self._is_key(self._old_refs[i], rec):
                    return i
            i = (i + 1) & mask
            if i == 0:
                i = moved
            left -= 1
        return -1

    def _slot(self, broker: str, cl_ord_id: str, digest: int) -> int:
        """The current table's slot holding the key, ``~slot`` of the empty one it would go
        in if the key is in neither table, or ``_mask + 1 + slot`` if it is in the old one.
        A key is in exactly one table: the current one once stored or moved there."""
        i = self._find(broker, cl_ord_id, digest)
        if i >= 0 or self._moved >= self._old_size:
            return i
        j = self._find_old(broker, cl_ord_id, digest)
        return i if j < 0 else self._mask + 1 + j

    def lookup(self, broker: str, cl_ord_id: str):
        """The order id ``(broker, cl_ord_id)`` named (0: none), or None if unused."""
        i = self._slot(broker, cl_ord_id, _digest(broker, cl_ord_id))
        if i < 0:
            return None
        n = self._mask + 1
        return self._oids[i] if i < n else self._old_oids[i - n]

    def store(self, broker: str, cl_ord_id: str, order_id: int, replace: bool) -> None:
        """Bind the key to ``order_id`` (an existing binding only if ``replace``); a new key
        moves up to ``_MOVE_STEP`` slots of a resize in progress, or starts one."""
        digest = _digest(broker, cl_ord_id)
        i = self._slot(broker, cl_ord_id, digest)
        if i >= 0:
            if replace:
                n = self._mask + 1
                if i < n:
                    self._oids[i] = order_id
                else:
                    self._old_oids[i - n] = order_id      # moved with its new binding
            return
        i = ~i
        rec = _record(broker, cl_ord_id)
        arena = self._arena
        if len(arena) + len(rec) > _ARENA_CHUNK and len(arena) > 0:
            arena = bytearray()
            self._chunks.append(arena)
            self._arena = arena
        self._digests[i] = digest
        self._refs[i] = ((len(self._chunks) - 1) << _CHUNK_SHIFT) | len(arena)
        self._oids[i] = order_id
        arena += rec
        self._arena_bytes += len(rec)
        self._count += 1
        if self._moved < self._old_size:
            self._move(_MOVE_STEP)
        elif self._count * 3 > (self._mask + 1) * 2:
            self._grow()

    def _grow(self) -> None:
        """Start a resize: a current table of twice the slots, the full one kept as the old
        table to move from (``_move``), its first step taken at once."""
        if self._moved < self._old_size:
            self._move(self._old_size)      # unreachable with _MOVE_STEP >= 2; kept whole
        n = self._mask + 1
        self._old_digests, self._old_refs, self._old_oids = self._digests, self._refs, self._oids
        self._old_maps = self._maps
        self._old_mask = self._mask
        self._old_size = n
        self._moved = 0
        self._released = 0
        self._alloc(2 * n)
        self._move(_MOVE_STEP)

    def _move(self, step: int) -> None:
        """Move the old table's next ``step`` slots into the current one, each key re-placed
        by its kept digest (no key re-read: it is in no slot of the current table), giving
        the moved pages back; the old table is dropped once its last slot is moved."""
        digests, refs, oids = self._old_digests, self._old_refs, self._old_oids
        new_digests, new_refs, new_oids = self._digests, self._refs, self._oids
        mask = self._mask
        j = self._moved
        end = min(j + step, self._old_size)
        while j < end:
            d = digests[j]
            if d != 0:
                i = d & mask
                while new_digests[i] != 0:
                    i = (i + 1) & mask
                new_digests[i] = d
                new_refs[i] = refs[j]
                new_oids[i] = oids[j]
            j += 1
        self._moved = j
        if self._old_maps:
            # Bytes of each old array wholly before the cursor: whole pieces, or the rest.
            upto = j * 8 if j == self._old_size else j * 8 // _RELEASE_BYTES * _RELEASE_BYTES
            if upto > self._released:
                for m in self._old_maps:
                    m.madvise(mmap.MADV_DONTNEED, self._released, upto - self._released)
                self._released = upto
        if j == self._old_size:
            self._drop_old()        # unmapping what is given back: ~0.02 ms for 32 MB

    def keys(self) -> list:
        """Every key, oldest first (from the arena: records are appended in order)."""
        out = []
        for arena in self._chunks:
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
        return self.lookup(key[0], key[1]) is not None

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
        """The bytes the index holds (its arrays, the old table's while a resize is in
        progress, and the arena), for the soak's report."""
        return (self._mask + 1 + self._old_size) * 24 - 3 * self._released + self._arena_bytes


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

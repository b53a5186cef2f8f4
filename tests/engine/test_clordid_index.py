"""The compact ClOrdID index keeps exact FIX semantics: every used ClOrdID is found,
and two ClOrdIDs are never taken for one, even when their digests are equal."""
from hypothesis import given, settings
from hypothesis import strategies as st

from matching.clordid import ClOrdIdIndex, ClOrdIdMemory, DoneStatuses


class SameHash(str):
    """A ClOrdID whose hash is forced equal to every other's: digests collide."""

    def __hash__(self):
        return 42


def test_a_clordid_whose_digest_collides_is_not_a_duplicate():
    index = ClOrdIdIndex()
    index.store("alpha", SameHash("A1"), 7, True)
    assert index.lookup("alpha", SameHash("A2")) is None
    index.store("alpha", SameHash("A2"), 8, True)
    assert index.lookup("alpha", SameHash("A1")) == 7
    assert index.lookup("alpha", SameHash("A2")) == 8
    assert len(index) == 2


def test_every_clordid_used_today_is_caught_after_the_index_grows():
    index = ClOrdIdIndex()
    for n in range(5000):
        index.store("alpha" if n % 2 else "beta", f"C{n}", n + 1, True)
    assert all(index.lookup("alpha" if n % 2 else "beta", f"C{n}") == n + 1
               for n in range(5000))
    assert index.lookup("alpha", "C0") is None             # beta's ClOrdID, not alpha's
    assert ("beta", "C0") in index and len(index) == 5000


def test_the_same_clordid_of_two_brokers_are_two_keys():
    index = ClOrdIdIndex()
    index.store("ab", "c", 1, True)
    index.store("a", "bc", 2, True)          # the same bytes joined: lengths tell them apart
    assert index.items() == [(("ab", "c"), 1), (("a", "bc"), 2)]


def test_a_first_binding_is_kept_unless_replaced():
    index = ClOrdIdIndex()
    index.store("alpha", "X", 5, False)
    index.store("alpha", "X", 0, False)
    assert index.get(("alpha", "X")) == 5
    index.store("alpha", "X", 9, True)
    assert index[("alpha", "X")] == 9


def test_keys_come_back_oldest_first_with_any_text():
    index = ClOrdIdIndex()
    keys = [("b", "z"), ("b", "é\u20ac"), ("b", "\ud800lone"), ("b", "a")]
    for n, (b, c) in enumerate(keys):
        index.store(b, c, n, True)
    assert list(index) == keys


def test_done_status_of_an_earlier_days_order_and_of_todays():
    done = DoneStatuses()
    done.set(100, "2")
    done.set(3, "4")                                 # a GTC order of an earlier day
    done.set(250, "C")
    assert (done.get(100), done.get(3), done.get(250), done.get(101)) == ("2", "4", "C", None)
    assert done.items() == [(3, "4"), (100, "2"), (250, "C")]


def test_memory_snapshot_restores_the_same_clordids_and_statuses():
    mem = ClOrdIdMemory(10)
    for n in range(50):
        mem.bind("alpha", f"O{n}", n + 1)
        mem.finish(n + 1, "2")
    rec = ClOrdIdMemory(10)
    rec.restore(mem.snapshot())
    assert rec.snapshot() == mem.snapshot()
    assert rec.order_of("alpha", "O49") == 50 and rec.status_of(50) == "2"


def _resizing(index, arena_bytes):
    """Whether a resize is in progress: the index holds two tables' slots (16 * 3 * 2**k,
    not a power of two) beside its arena (small tables: nothing given back yet)."""
    slots, rest = divmod(index.memory_bytes() - arena_bytes, 24)
    assert rest == 0
    return slots & (slots - 1) != 0


def test_keys_stored_while_a_resize_is_moving_are_all_found_once_in_order():
    index = ClOrdIdIndex(16)
    keys, arena, checked = [], 0, 0
    for n in range(3000):
        key = ("alpha" if n % 3 else "beta", f"C{n}")
        index.store(*key, n + 1, False)
        keys.append(key)
        arena += 8 + len(key[0]) + len(key[1])
        if _resizing(index, arena):
            checked += 1
            assert all(index.lookup(*k) == i + 1 for i, k in enumerate(keys))
            old = keys[n // 2]                      # a key in one table or the other
            index.store(*old, 0, False)             # no second binding, no second key
            assert index.lookup(*old) == n // 2 + 1 and len(index) == n + 1
            index.store(*old, -(n // 2 + 1), True)  # rebound where it is, moved so
            index.store(*old, n // 2 + 1, True)
    assert checked > 100                            # moves did span stores
    assert not _resizing(index, arena)
    assert index.items() == [(k, i + 1) for i, k in enumerate(keys)] and len(index) == 3000


def test_a_rebinding_during_a_resize_survives_the_move():
    index = ClOrdIdIndex(16)
    arena = 0
    n = 0
    while not _resizing(index, arena) or len(index) < 200:
        index.store("b", f"K{n}", n, True)
        arena += 8 + 1 + len(f"K{n}")
        n += 1
    for m in range(n):                              # both tables' keys, mid-move
        index.store("b", f"K{m}", 10_000 + m, True)
    while _resizing(index, arena):
        index.store("b", f"K{n}", n, True)
        arena += 8 + 1 + len(f"K{n}")
        n += 1
    assert [index.lookup("b", f"K{m}") for m in range(5)] == [10_000 + m for m in range(5)]
    assert all(index.lookup("b", f"K{m}") == 10_000 + m for m in range(200))


def test_a_day_past_mapped_tables_and_arena_chunks_keeps_every_key_in_order():
    index = ClOrdIdIndex()
    keys = [("soak", f"S{n:026d}") for n in range(60_000)]     # ~2 MB of records
    keys.insert(30_000, ("soak", "X" * (3 << 20)))             # a record past a chunk
    for n, (b, c) in enumerate(keys):
        index.store(b, c, n, True)
        if n % 64 == 0:                 # keys of both tables, moved pages given back
            assert all(index.lookup(*keys[m]) == m for m in range(0, n + 1, n // 128 + 1))
    assert all(index.lookup(b, c) == n for n, (b, c) in enumerate(keys))
    assert index.lookup("soak", "X" * (3 << 20 - 1)) is None
    assert list(index) == keys and len(index) == len(keys)


_POOL = [("a", "1"), ("ab", "c"), ("a", "bc"), ("b", "é"), ("b", "\ud800")]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("bulk"), st.integers(1, 400)),
    st.tuples(st.just("pool"), st.integers(0, len(_POOL) - 1), st.integers(0, 99),
              st.booleans()),
    st.tuples(st.just("collide"), st.integers(0, 40), st.integers(0, 99), st.booleans()),
    st.tuples(st.just("again"), st.integers(0, 10**6), st.booleans()),
), max_size=40))
def test_the_index_is_a_dict_of_first_or_replaced_bindings_in_insertion_order(ops):
    index = ClOrdIdIndex(16)
    model: dict = {}
    fresh = 0

    def store(key, oid, replace):
        index.store(key[0], key[1], oid, replace)
        if replace or key not in model:
            model[key] = oid

    for op in ops:
        if op[0] == "bulk":                          # fresh keys: resizes start and move
            for _ in range(op[1]):
                store(("bulk", f"F{fresh}"), fresh, False)
                fresh += 1
        elif op[0] == "pool":
            store(_POOL[op[1]], op[2], op[3])
        elif op[0] == "collide":                     # one digest for all of them
            store(("c", SameHash(f"H{op[1]}")), op[2], op[3])
        elif model:                                  # a key already bound, in either table
            key = list(model)[op[1] % len(model)]
            store(key, op[1], op[2])
        assert len(index) == len(model)
        for key in _POOL:
            assert index.lookup(*key) == model.get(key)
        assert index.lookup("c", SameHash("H41")) is None
    assert list(index) == list(model)                # (items() looks up by plain str)
    assert all(index.get(k) == v for k, v in model.items())

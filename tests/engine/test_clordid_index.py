"""The compact ClOrdID index keeps exact FIX semantics: every used ClOrdID is found,
and two ClOrdIDs are never taken for one, even when their digests are equal."""
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

"""The GTD timer: next_expiry() is the earliest expiry among live GTD orders, kept in a
heap (O(log n)) that equals a scan of every live order whatever orders come and go."""
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from matching.engine import Engine
from matching.expiry import ExpiryIndex
from matching.instruments import Registry
from matching.ledger import CASH, Ledger
from matching.messages import NewOrderSingle, OrderCancelRequest

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
REG = Registry.load_default()
GTD = 6
MS = 1_000_000


def _engine() -> Engine:
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta")):
        led.open_account(acct, broker, "retail")
        led.deposit(acct, CASH, 10**13)
        for sym in ("TB3M", "TB6M"):
            led.deposit(acct, sym, 10**8)
            led.whitelist(acct, sym)
    return Engine(REG, led, clock=lambda: T0)


def _scan(eng: Engine):
    times = [o.expire_time for o in eng.orders.values() if o.tif == GTD]
    return min(times) if times else None


def _gtd(cl, acct, sym, side, price, expire_ms, tif="gtd"):
    return NewOrderSingle(cl, acct, sym, side, "1", price=price, time_in_force=tif,
                          expire_time=T0 + expire_ms * MS if tif == "gtd" else None)


step = st.one_of(
    st.tuples(st.just("new"), st.sampled_from(("TB3M", "TB6M")), st.sampled_from(
        ("buy", "sell")), st.integers(-3, 3), st.integers(1, 50),
        st.sampled_from(("gtd", "gtd", "day", "gtc"))),
    st.tuples(st.just("cancel"), st.integers(0, 60)),
    st.tuples(st.just("expire"), st.integers(1, 50)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(step, max_size=60))
def test_next_expiry_equals_a_scan_of_the_live_orders(steps):
    eng = _engine()
    sent: list[tuple[str, str, str]] = []
    ref = {"TB3M": 99270, "TB6M": 98285}
    for n, s in enumerate(steps):
        if s[0] == "new":
            _, sym, side, off, expire_ms, tif = s
            ticks = ref[sym] + off
            price = f"{ticks // 1000}.{ticks % 1000:03d}"
            broker, acct = ("alpha", 1) if side == "buy" else ("beta", 2)
            cl = f"o{n}"
            eng.submit(broker, _gtd(cl, acct, sym, side, price, expire_ms, tif), now=T0)
            sent.append((broker, cl, sym))
        elif s[0] == "cancel" and sent:
            broker, cl, sym = sent[s[1] % len(sent)]
            eng.submit(broker, OrderCancelRequest(f"c{n}", cl, sym), now=T0)
        elif s[0] == "expire":
            now = T0 + s[1] * MS
            eng.admin("expire", now=now)
            assert all(o.expire_time > now for o in eng.orders.values() if o.tif == GTD)
        assert eng.next_expiry() == _scan(eng)
        assert len(eng.expiry) <= 2 * eng.expiry.live_count + 1024


def test_a_snapshot_restores_the_timer():
    eng = _engine()
    eng.submit("alpha", _gtd("g1", 1, "TB3M", "buy", "99.000", 30), now=T0)
    eng.submit("alpha", _gtd("g2", 1, "TB6M", "buy", "98.000", 20), now=T0)
    restored = Engine.from_snapshot(REG, eng.snapshot(), clock=lambda: T0)
    assert restored.next_expiry() == eng.next_expiry() == T0 + 20 * MS


def test_expiring_one_instrument_keeps_the_others_timers():
    eng = _engine()
    eng.submit("alpha", _gtd("g1", 1, "TB3M", "buy", "99.000", 10), now=T0)
    eng.submit("alpha", _gtd("g2", 1, "TB6M", "buy", "98.000", 10), now=T0)
    out = eng.admin("expire", "TB3M", now=T0 + 20 * MS)
    assert [r.exec_type for _, r in out.reports] == ["expired"]
    assert eng.next_expiry() == T0 + 10 * MS          # TB6M's order still waits
    eng.admin("expire", now=T0 + 20 * MS)
    assert eng.next_expiry() is None and not eng.orders


def test_dead_entries_are_compacted_under_churn():
    index = ExpiryIndex()
    live: dict = {}
    for oid in range(1, 20_001):
        index.add(T0 + oid, oid)
        live[oid] = object()
        del live[oid]
        index.ended(live)
    assert len(index) <= 1024 + 1 and index.live_count == 0

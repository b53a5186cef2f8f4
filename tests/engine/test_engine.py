"""The exchange engine: FIX reports, risk, idempotency, states, DvP, journal and recovery."""
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import Journal, JournalError, read_journal
from matching.ledger import CASH, Ledger
from matching.messages import (
    NewOrderSingle,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
)

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
REG = Registry.load_default()
USD = 10**6                                   # cash minor units per dollar


def make_ledger():
    led = Ledger()
    for acct, broker, elig in ((1, "alpha", "retail"), (2, "beta", "retail"),
                               (3, "beta", "institutional")):
        led.open_account(acct, broker, elig)
        led.deposit(acct, CASH, 100_000 * USD)
        for inst in REG:
            led.deposit(acct, inst.symbol, 50 * 10**4)          # 50 tokens
            led.whitelist(acct, inst.symbol)
    return led


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


@pytest.fixture
def eng():
    return Engine(REG, make_ledger(), clock=Clock())


def new(cl, acct, sym, side, qty, price=None, **kw):
    return NewOrderSingle(cl, acct, sym, side, qty, price=price, **kw)


def reports(out):
    return [(b, r.exec_type, r.ord_status, r.cl_ord_id) for b, r in out.reports]


def test_accepted_order_gets_a_new_report_with_fix_fields(eng):
    out = eng.submit("alpha", new("a1", 1, "TB3M", "buy", "2.5", "99.000"))
    [(broker, r)] = out.reports
    assert broker == "alpha"
    assert (r.exec_type, r.ord_status, r.cum_qty, r.leaves_qty, r.order_qty, r.price) == (
        "new", "new", "0.0000", "2.5000", "2.5000", "99.000")
    assert out.levels[0].price == "99.000" and out.levels[0].qty == "2.5000"


def test_fill_reports_both_sides_and_settles_delivery_versus_payment(eng):
    led = eng.ledger
    eng.submit("alpha", new("s1", 1, "BD3Y", "sell", "2", "100.250"))
    out = eng.submit("beta", new("b1", 2, "BD3Y", "buy", "1.5", "100.300"))
    assert reports(out) == [("beta", "new", "new", "b1"),
                            ("alpha", "trade", "partially_filled", "s1"),
                            ("beta", "trade", "filled", "b1")]
    maker, taker = out.reports[1][1], out.reports[2][1]
    assert (maker.last_px, maker.last_qty, maker.cum_qty, maker.leaves_qty, maker.avg_px) == (
        "100.250", "1.5000", "1.5000", "0.5000", "100.250")
    assert (maker.liquidity, taker.liquidity) == ("maker", "taker")
    # 1.5 tokens x 1000 face x (100.25 + AI) / 100, AI = 2 x 163/183 per 100 on 25 Nov 2026.
    assert taker.settl_amount == "1530.471311" and taker.accrued_interest == "26.721311"
    paid = 1_530_471_311
    assert led.balance(2, CASH) == 100_000 * USD - paid
    assert led.balance(1, CASH) == 100_000 * USD + paid
    assert led.balance(2, "BD3Y") == 50 * 10**4 + 15_000
    assert led.reserved(1, "BD3Y") == 5_000 and led.reserved(2, CASH) == 0
    assert out.trades[0].yield_pct == "3.8955" and out.trades[0].aggressor == "buy"


def test_resent_clordid_returns_the_original_outcome_not_a_second_order(eng):
    first = eng.submit("alpha", new("a1", 1, "TB3M", "buy", "1", "99.000"))
    again = eng.submit("alpha", new("a1", 1, "TB3M", "buy", "1", "99.000"))
    assert again.replayed and [r.exec_id for _, r in again.reports] == [
        r.exec_id for _, r in first.reports]
    assert all(r.poss_resend for _, r in again.reports)
    assert len(eng.books["TB3M"]) == 1 and eng.seq == 1


@pytest.mark.parametrize("msg, reason", [
    (new("x", 1, "NOPE", "buy", "1", "99"), "UNKNOWN_SYMBOL"),
    (new("x", 2, "TB3M", "buy", "1", "99"), "UNKNOWN_ACCOUNT"),          # beta's account
    (new("x", 1, "BD10Y", "buy", "1", "101"), "NOT_ELIGIBLE"),          # institutional only
    (new("x", 1, "TB3M", "buy", "1", "90.000"), "OUTSIDE_PRICE_BAND"),
    (new("x", 1, "TB3M", "buy", "1", "99.0001"), "INVALID_PRICE"),      # off the tick
    (new("x", 1, "TB3M", "buy", "1.00001", "99"), "INVALID_QUANTITY"),  # off the lot
    (new("x", 1, "TB3M", "buy", "0.001", "99"), "BELOW_MIN_QTY"),
    (new("x", 1, "TB3M", "buy", "2000", "99"), "INSUFFICIENT_FUNDS"),
    (new("x", 1, "TB3M", "sell", "51", "99"), "INSUFFICIENT_TOKENS"),
    (new("x", 1, "TB3M", "buy", "1"), "MISSING_PRICE"),
    (new("x", 1, "TB3M", "buy", "1", "99", time_in_force="gtd"), "INVALID_EXPIRE_TIME"),
])
def test_risk_rejects_carry_a_reason_and_change_nothing(eng, msg, reason):
    before = eng.state_hash()
    out = eng.submit("alpha", msg)
    [(broker, r)] = out.reports
    assert (broker, r.exec_type, r.ord_rej_reason) == ("alpha", "rejected", reason)
    assert r.text
    assert eng.ledger.reserved(1, CASH) == 0 and len(eng.books.get("TB3M", [])) == 0
    assert eng.state_hash() != before            # only the sequence number moved
    eng.seq -= 1
    eng.reports.next_exec_id -= 1
    assert eng.state_hash() == before


def test_not_whitelisted_account_cannot_trade(eng):
    eng.ledger.whitelisted.discard((1, "GOLD"))
    out = eng.submit("alpha", new("g", 1, "GOLD", "buy", "1", "110.00"))
    assert out.reports[0][1].ord_rej_reason == "NOT_WHITELISTED"


def test_halt_rejects_new_orders_allows_cancels_and_resume_continues(eng):
    eng.submit("alpha", new("a1", 1, "TB3M", "buy", "1", "99.000"))
    eng.admin("halt", "TB3M")
    out = eng.submit("alpha", new("a2", 1, "TB3M", "buy", "1", "99.000"))
    assert out.reports[0][1].ord_rej_reason == "MARKET_NOT_OPEN"
    out = eng.submit("alpha", OrderCancelRequest("a3", "a1", "TB3M"))
    assert reports(out) == [("alpha", "canceled", "canceled", "a3")]
    eng.admin("resume", "TB3M")
    out = eng.submit("alpha", new("a4", 1, "TB3M", "buy", "1", "99.000"))
    assert out.reports[0][1].exec_type == "new"


def test_close_expires_day_orders_and_keeps_gtc(eng):
    eng.submit("alpha", new("d", 1, "TB6M", "buy", "1", "98.000", time_in_force="day"))
    eng.submit("alpha", new("g", 1, "TB6M", "buy", "1", "98.000", time_in_force="gtc"))
    out = eng.admin("close", "TB6M")
    assert reports(out) == [("alpha", "expired", "expired", "d")]
    assert len(eng.books["TB6M"]) == 1 and eng.ledger.reserved(1, CASH) > 0


def test_a_venue_close_ends_the_day_forgetting_finished_clordids_but_not_live_ones(eng):
    eng.submit("alpha", new("gone", 1, "TB3M", "buy", "1", "99.000", time_in_force="day"))
    eng.submit("alpha", new("gtc", 1, "TB3M", "buy", "1", "98.900", time_in_force="gtc"))
    eng.submit("alpha", new("bad", 1, "TB3M", "buy", "1", "1.000"))        # rejected
    eng.submit("alpha", OrderCancelReplaceRequest("gtc2", "gtc", "TB3M", "98.950", "2"))
    assert eng.admin("close", "TB6M").reports == []            # one book: same day
    assert ("alpha", "gone") in eng.clordids.orders
    out = eng.admin("close")                                    # the venue: end of day
    assert reports(out) == [("alpha", "expired", "expired", "gone")]
    assert sorted(eng.clordids.orders) == [("alpha", "gtc"), ("alpha", "gtc2")]
    assert sorted(eng.clordids.outcomes) == [("alpha", "gtc"), ("alpha", "gtc2")]
    assert list(eng.clordids._order.values()) == [("alpha", "gtc"), ("alpha", "gtc2")]
    eng.admin("open")
    # Next day: yesterday's finished ClOrdID names a new order; the GTC is still cancelable
    # by its latest ClOrdID, and a resend of its replace still gets the original answer.
    out = eng.submit("alpha", new("gone", 1, "TB3M", "buy", "1", "99.000"))
    assert reports(out) == [("alpha", "new", "new", "gone")]
    again = eng.submit("alpha", OrderCancelReplaceRequest("gtc2", "gtc", "TB3M", "98.950", "2"))
    assert again.replayed and again.reports[0][1].exec_type == "replaced"
    out = eng.submit("alpha", OrderCancelRequest("x", "gtc2", "TB3M"))
    assert reports(out) == [("alpha", "canceled", "canceled", "x")]


def test_gtd_expires_at_its_time(eng):
    eng.submit("alpha", new("g", 1, "TB6M", "sell", "1", "98.500", time_in_force="gtd",
                            expire_time=T0 + 60 * 10**9))
    assert eng.next_expiry() == T0 + 60 * 10**9
    assert eng.admin("expire", now=T0 + 59 * 10**9).reports == []
    out = eng.admin("expire", now=T0 + 60 * 10**9)
    assert reports(out) == [("alpha", "expired", "expired", "g")]
    assert eng.ledger.reserved(1, "TB6M") == 0


def test_replace_down_keeps_priority_and_releases_the_reservation(eng):
    eng.submit("alpha", new("a1", 1, "TB3M", "buy", "4", "99.000"))
    eng.submit("beta", new("b1", 2, "TB3M", "buy", "4", "99.000"))
    held = eng.ledger.reserved(1, CASH)
    out = eng.submit("alpha", OrderCancelReplaceRequest("a2", "a1", "TB3M", "99.000", "1"))
    assert reports(out) == [("alpha", "replaced", "new", "a2")]
    assert eng.ledger.reserved(1, CASH) < held
    out = eng.submit("beta", new("s", 3, "TB3M", "sell", "1", "99.000"))
    assert ("alpha", "trade", "filled", "a2") in reports(out)


def test_replace_below_the_filled_quantity_is_rejected(eng):
    eng.submit("alpha", new("s1", 1, "TB3M", "sell", "2", "99.100"))
    eng.submit("beta", new("b1", 2, "TB3M", "buy", "1", "99.100"))
    out = eng.submit("alpha", OrderCancelReplaceRequest("s2", "s1", "TB3M", "99.100", "1"))
    [(_, r)] = out.reports
    assert isinstance(r, OrderCancelReject)         # 35=9: the order stays as it was
    assert (r.cxl_rej_reason, r.ord_status) == ("OTHER", "partially_filled")
    assert r.text.startswith("INVALID_QUANTITY: ")


def test_market_order_trades_within_the_band_and_never_rests(eng):
    eng.submit("alpha", new("s1", 1, "GOLD", "sell", "1", "110.00"))
    out = eng.submit("beta", new("m", 2, "GOLD", "buy", "3", ord_type="market"))
    assert [r.exec_type for _, r in out.reports if r.cl_ord_id == "m"] == [
        "new", "trade", "canceled"]
    assert len(eng.books["GOLD"]) == 0 and eng.ledger.reserved(2, CASH) == 0


def test_self_trade_is_prevented_by_account(eng):
    eng.submit("beta", new("s", 2, "GOLD", "sell", "1", "110.00"))
    out = eng.submit("beta", new("b", 2, "GOLD", "buy", "1", "110.00"))
    assert [r.exec_type for _, r in out.reports] == ["new", "canceled"]
    assert out.reports[1][1].text == "SELF_TRADE" and out.trades == []


def _snapshot_engine(tmp_path, fsync="group"):
    journal = Journal(tmp_path / "journal.log", fsync=fsync)
    eng = Engine(REG, make_ledger(), clock=Clock(), journal=journal)
    eng.write_snapshot(tmp_path / "snaps")
    return eng


def _flow(eng, n=40):
    sides = ("buy", "sell")
    for i in range(n):
        px = f"{99.0 + (i % 7) * 0.002:.3f}"
        acct, broker = (1, "alpha") if i % 3 else (2, "beta")
        eng.submit(broker, new(f"o{i}", acct, "TB3M", sides[i % 2], str(1 + i % 4), px))
        if i % 5 == 4:
            eng.submit(broker, OrderCancelRequest(f"c{i}", f"o{i - 1}", "TB3M"))
        if i == n // 2:
            eng.write_snapshot(eng.journal.path.parent / "snaps")


def test_recovery_from_snapshot_and_journal_equals_the_live_state(tmp_path):
    eng = _snapshot_engine(tmp_path)
    _flow(eng)
    eng.commit()
    rec = Engine.recover(REG, snapshot_dir=tmp_path / "snaps",
                         journal_path=tmp_path / "journal.log", clock=Clock())
    assert rec.seq == eng.seq and rec.state_hash() == eng.state_hash()


def test_recovery_hands_back_the_replayed_reports_exactly_as_first_sent(tmp_path):
    """After a crash between commit and publish, the gateway resends these: they must be
    the very reports (exec ids, quantities, fills) the live engine produced."""
    eng = _snapshot_engine(tmp_path)
    live = []
    sides = ("buy", "sell")
    for i in range(30):
        px = f"{99.0 + (i % 5) * 0.002:.3f}"
        live.append(eng.submit("alpha" if i % 2 else "beta",
                               new(f"o{i}", 1 if i % 2 else 2, "TB3M", sides[i % 2], "1", px)))
    eng.commit()
    replayed = []
    Engine.recover(REG, snapshot_dir=tmp_path / "snaps", journal_path=tmp_path / "journal.log",
                   clock=Clock(), on_outcome=replayed.append)
    assert [o.reports for o in replayed] == [o.reports for o in live]
    assert any(r.exec_type == "trade" for o in replayed for _, r in o.reports)


def test_torn_last_journal_record_recovers_the_state_before_it(tmp_path):
    eng = _snapshot_engine(tmp_path)
    _flow(eng, 10)
    eng.commit()
    before_last = eng.state_hash()
    eng.submit("alpha", new("last", 1, "TB3M", "buy", "1", "99.000"))
    eng.commit()
    eng.journal.close()                                    # the file ends at its data
    path = tmp_path / "journal.log"
    path.write_bytes(path.read_bytes()[:-3])               # crash mid-write of the last one
    rec = Engine.recover(REG, snapshot_dir=tmp_path / "snaps", journal_path=path, clock=Clock())
    assert rec.state_hash() == before_last


def test_resent_clordid_is_still_idempotent_after_recovery(tmp_path):
    eng = _snapshot_engine(tmp_path)
    first = eng.submit("alpha", new("a1", 1, "TB3M", "buy", "1", "99.000"))
    eng.write_snapshot(tmp_path / "snaps")
    rec = Engine.recover(REG, snapshot_dir=tmp_path / "snaps",
                         journal_path=tmp_path / "journal.log", clock=Clock())
    again = rec.submit("alpha", new("a1", 1, "TB3M", "buy", "1", "99.000"))
    assert again.replayed and again.reports[0][1].exec_id == first.reports[0][1].exec_id


def test_every_accepted_input_is_journaled_before_it_is_acknowledged(tmp_path):
    eng = _snapshot_engine(tmp_path)
    out = eng.submit("alpha", new("a1", 1, "TB3M", "buy", "1", "99.000"))
    assert eng.journal.durable_seq < out.seq           # not yet publishable
    assert eng.commit() >= out.seq
    assert [s for s, _ in read_journal(tmp_path / "journal.log")] == [out.seq]


def test_journal_failure_stops_acknowledgements_with_a_reason(tmp_path):
    import os
    eng = _snapshot_engine(tmp_path)
    os.close(eng.journal.fd)
    eng.journal.fd = os.open(os.devnull, os.O_RDONLY)
    eng.submit("alpha", new("a1", 1, "TB3M", "buy", "1", "99.000"))
    with pytest.raises(JournalError):
        eng.commit()
    out = eng.submit("alpha", new("a2", 1, "TB3M", "buy", "1", "99.000"))
    assert out.reports[0][1].ord_rej_reason == "JOURNAL_UNAVAILABLE"


orders = st.lists(st.tuples(
    st.sampled_from([(1, "alpha"), (2, "beta"), (3, "beta")]),
    st.sampled_from(["TB3M", "BD5Y", "GOLD"]), st.sampled_from(["buy", "sell"]),
    st.integers(-3, 3), st.integers(1, 40_000), st.sampled_from(["limit", "limit", "market"]),
    st.sampled_from(["gtc", "ioc", "fok", "day"]), st.integers(0, 6)), min_size=5, max_size=40)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders)
def test_trading_conserves_tokens_and_cash_and_reservations_match_live_orders(script):
    eng = Engine(REG, make_ledger(), clock=Clock())
    led = eng.ledger
    assets = [CASH] + [i.symbol for i in REG]
    totals = {a: led.total(a) for a in assets}
    for i, ((acct, broker), sym, side, off, lots, typ, tif, action) in enumerate(script):
        inst = REG[sym]
        px = str(inst.ticks_to_price(inst.reference_ticks() + off))
        qty = str(inst.lots_to_qty(lots + inst.min_order_lots))
        if action == 0 and i:
            eng.submit(broker, OrderCancelRequest(f"c{i}", f"o{i - 1}", sym))
        eng.submit(broker, new(f"o{i}", acct, sym, side, qty,
                               px if typ == "limit" else None, ord_type=typ,
                               time_in_force=tif if typ == "limit" else "ioc"))
        assert {a: led.total(a) for a in assets} == totals
        held = {}
        for o in eng.orders.values():
            key = (o.account, CASH if o.side == 1 else o.symbol)
            held[key] = held.get(key, 0) + o.reserved
        assert {k: v for k, v in led.held.items() if v} == held
        for acct_ in (1, 2, 3):
            for a in assets:
                assert led.available(acct_, a) >= 0


def test_resends_past_the_window_never_make_a_second_order(tmp_path):
    """Outcomes are kept for the last ``resend_window`` inputs; an older accepted ClOrdID
    sent again is refused as a duplicate, never entered twice, also after recovery."""
    journal = Journal(tmp_path / "journal.log")
    eng = Engine(REG, make_ledger(), clock=Clock(), journal=journal, resend_window=4)
    eng.write_snapshot(tmp_path / "snaps")
    firsts = [eng.submit("alpha", new(f"w{i}", 1, "TB3M", "buy", "1", "99.000"))
              for i in range(10)]
    assert len(eng.clordids.outcomes) == 4 and ("alpha", "w9") in eng.clordids.outcomes
    eng.commit()
    rec = Engine.recover(REG, snapshot_dir=tmp_path / "snaps",
                         journal_path=tmp_path / "journal.log", clock=Clock(), resend_window=4)
    assert list(rec.clordids.outcomes) == list(eng.clordids.outcomes)
    for e in (eng, rec):
        live = len(e.orders)
        recent = e.submit("alpha", new("w9", 1, "TB3M", "buy", "1", "99.000"))
        assert recent.replayed and recent.reports[0][1].exec_id == firsts[9].reports[0][1].exec_id
        old = e.submit("alpha", new("w0", 1, "TB3M", "buy", "1", "99.000"))
        [(_, r)] = old.reports
        assert r.exec_type == "rejected" and r.ord_rej_reason == "DUPLICATE_ORDER"
        assert len(e.orders) == live
        assert len(e.clordids.outcomes) == 4


def test_the_clordid_and_resend_indexes_stay_out_of_the_collectors_walk(tmp_path):
    """Every input adds to the ClOrdID index and the resend memory; were they tracked by
    the garbage collector, each full collection would walk them whole (pauses growing
    with the window). Their keys and values are atoms, so the dicts stay untracked, also
    after the window evicts and after recovery."""
    import gc

    journal = Journal(tmp_path / "journal.log")
    eng = Engine(REG, make_ledger(), clock=Clock(), journal=journal, resend_window=6)
    eng.write_snapshot(tmp_path / "snaps")
    for i in range(10):
        eng.submit("alpha", new(f"u{i}", 1, "TB3M", "buy", "1", "99.000"))
        eng.submit("beta", new(f"v{i}", 2, "TB3M", "sell", "1", "99.000"))
        eng.submit("alpha", OrderCancelRequest(f"c{i}", f"u{i}", "TB3M"))
    eng.commit()
    rec = Engine.recover(REG, snapshot_dir=tmp_path / "snaps",
                         journal_path=tmp_path / "journal.log", clock=Clock(), resend_window=6)
    for e in (eng, rec):
        assert len(e.clordids.outcomes) == len(e.clordids._order) == 6
        assert list(e.clordids.outcomes) == list(e.clordids._order.values())      # oldest first
        for index in (e.clordids.outcomes, e.clordids._order):
            assert not gc.is_tracked(index)
        # The ClOrdID index is flat buffers: a few referents, none a per-key object
        # (uncompiled, its instance also refers to its class and its int attributes):
        # slot arrays (or views of maps) and the arena's chunks, one a MiB of keys.
        referents = gc.get_referents(e.clordids.orders)
        flat = ("array", "bytearray", "memoryview", "mmap")
        buffers = [r for r in referents if type(r).__name__ in flat]
        groups = [r for r in referents if type(r) in (list, tuple)]
        assert all(type(x).__name__ in flat for g in groups for x in g)
        assert len(buffers) <= 10 and sum(len(g) for g in groups) <= 4
        assert all(r in buffers or r in groups or type(r) in (int, type) for r in referents)
    assert list(rec.clordids.outcomes) == list(eng.clordids.outcomes)


def test_a_tuple_holding_a_container_stays_tracked():
    import gc

    from matching._gc import untracked
    assert not gc.is_tracked(untracked(("alpha", str(7), 7)))
    held = untracked(("alpha", []))             # could be part of a cycle: left tracked
    assert gc.is_tracked(held)

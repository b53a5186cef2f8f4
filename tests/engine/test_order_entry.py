"""FIX order-entry rules: ClOrdID reuse and resends, OrderCancelReject (35=9), the fields of
a Rejected report, UTCTimestamps, cancel-on-disconnect's reason, shortfalls in units."""
import re
from datetime import UTC, datetime

import msgspec
import pytest

from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger
from matching.messages import (
    ExecutionReport,
    NewOrderSingle,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    parse_utc_timestamp,
    utc_timestamp,
)

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
REG = Registry.load_default()
USD = 10**6


def make_ledger():
    led = Ledger()
    for acct, broker in ((1, "alpha"), (2, "beta")):
        led.open_account(acct, broker, "retail")
        led.deposit(acct, CASH, 100_000 * USD)
        for inst in REG:
            led.deposit(acct, inst.symbol, 50 * 10**4)          # 50 tokens
            led.whitelist(acct, inst.symbol)
    return led


class Clock:
    def __init__(self):
        self.now = T0 + 123_456_789

    def __call__(self):
        return self.now


@pytest.fixture
def eng():
    return Engine(REG, make_ledger(), clock=Clock())


def buy(cl, qty="1", price="99.000", symbol="TB3M", acct=1, **kw):
    return NewOrderSingle(cl, acct, symbol, "buy", qty, price=price, time_in_force="gtc", **kw)


def only(out):
    [(_, r)] = out.reports
    return r


def book_state(eng):
    return (sorted((s, b.resting_orders()) for s, b in eng.books.items()),
            [eng.orders[o].row() for o in sorted(eng.orders)], eng.ledger.state_digest())


# ------------------------------------------------------------------ 1. ClOrdID reuse
def test_a_new_order_reusing_a_clordid_with_other_content_is_refused_as_a_duplicate(eng):
    first = only(eng.submit("alpha", buy("a1")))
    before, seq = book_state(eng), eng.seq
    out = eng.submit("alpha", NewOrderSingle("a1", 1, "GOLD", "sell", "2", price="110.00"))
    r = only(out)
    # Refused, sequenced, touching nothing: not the stale original marked poss_resend.
    assert not out.replayed and out.seq == seq + 1 and not r.poss_resend
    assert (r.exec_type, r.ord_status, r.ord_rej_reason) == ("rejected", "rejected",
                                                             "DUPLICATE_ORDER")
    assert (r.symbol, r.order_id, r.leaves_qty) == ("GOLD", "", "0.0000")
    assert book_state(eng) == before
    # The ClOrdID keeps its first outcome: an exact resend still gets it.
    again = eng.submit("alpha", buy("a1"))
    assert again.replayed and only(again) == msgspec.structs.replace(first, poss_resend=True)


def test_an_exact_resend_or_a_poss_dup_gets_the_original_outcome_unsequenced(eng):
    first = only(eng.submit("alpha", buy("a1")))
    seq = eng.seq
    same = eng.submit("alpha", buy("a1"))
    flagged = eng.submit("alpha", buy("a1", poss_dup=True))
    # PossDup (FIX 43): the sender may have sent it before; a known ClOrdID's outcome
    # answers it whatever the rest says.
    flagged_other = eng.submit("alpha", buy("a1", qty="3", poss_dup=True))
    for out in (same, flagged, flagged_other):
        assert out.replayed and out.seq == seq
        assert only(out) == msgspec.structs.replace(first, poss_resend=True)
    assert eng.seq == seq and len(eng.orders) == 1


def test_a_poss_dup_of_an_unknown_clordid_is_a_new_order(eng):
    r = only(eng.submit("alpha", buy("a1", poss_dup=True)))
    assert r.exec_type == "new" and not r.poss_resend
    # Its outcome is kept by content (the flag aside): a resend without it matches.
    assert eng.submit("alpha", buy("a1")).replayed


def test_a_cancel_with_an_earlier_orders_clordid_is_refused_and_cancels_nothing(eng):
    eng.submit("alpha", buy("a1"))
    a2 = only(eng.submit("alpha", buy("a2", price="98.990")))
    before = book_state(eng)
    out = eng.submit("alpha", OrderCancelRequest("a1", "a2", "TB3M"))
    r = only(out)
    assert isinstance(r, OrderCancelReject) and not out.replayed
    assert (r.cxl_rej_reason, r.cxl_rej_response_to, r.ord_status, r.order_id,
            r.orig_cl_ord_id) == ("DUPLICATE_CL_ORD_ID", "cancel", "new", a2.order_id, "a2")
    assert book_state(eng) == before
    # A replace reusing it likewise.
    out = eng.submit("alpha", OrderCancelReplaceRequest("a1", "a2", "TB3M", "98.980", "1"))
    assert only(out).cxl_rej_reason == "DUPLICATE_CL_ORD_ID" and book_state(eng) == before


def test_a_rejected_clordid_is_not_reused_for_a_corrected_order(eng):
    """FIX: a ClOrdID is unique per broker and trading day, whatever became of its message
    (README: a rejected ClOrdID may not be used again that day)."""
    bad = only(eng.submit("alpha", buy("a1", price="90.000")))          # outside the band
    assert bad.ord_rej_reason == "OUTSIDE_PRICE_BAND"
    out = eng.submit("alpha", buy("a1", price="99.000"))                # corrected
    r = only(out)
    assert not out.replayed and r.exec_id != bad.exec_id
    assert r.ord_rej_reason == "DUPLICATE_ORDER" and not eng.orders


def test_a_rejected_clordid_stays_used_past_the_resend_window_and_after_recovery(tmp_path):
    from matching.journal import Journal
    journal = Journal(tmp_path / "journal.log")
    eng = Engine(REG, make_ledger(), clock=Clock(), journal=journal, resend_window=2)
    eng.write_snapshot(tmp_path / "snaps")
    eng.submit("alpha", buy("bad", price="90.000"))
    eng.submit("alpha", OrderCancelRequest("cx", "nope", "TB3M"))        # refused cancel
    for i in range(3):
        eng.submit("alpha", buy(f"w{i}"))
    assert len(eng.clordids.outcomes) == len(eng.clordids._order) == 2      # bounded
    eng.commit()
    rec = Engine.recover(REG, snapshot_dir=tmp_path / "snaps",
                         journal_path=tmp_path / "journal.log", clock=Clock(), resend_window=2)
    for e in (eng, rec):
        assert only(e.submit("alpha", buy("bad"))).ord_rej_reason == "DUPLICATE_ORDER"
        assert only(e.submit("alpha", buy("cx"))).ord_rej_reason == "DUPLICATE_ORDER"
    assert len(rec.orders) == len(eng.orders) == 3


def test_resend_digests_survive_a_snapshot(eng):
    first = only(eng.submit("alpha", buy("a1")))
    restored = Engine.from_snapshot(REG, eng.snapshot(), clock=Clock())
    again = restored.submit("alpha", buy("a1"))
    assert again.replayed and only(again) == msgspec.structs.replace(first, poss_resend=True)
    other = restored.submit("alpha", buy("a1", qty="2"))
    assert not other.replayed and only(other).ord_rej_reason == "DUPLICATE_ORDER"


# ------------------------------------------------------------------ 2. OrderCancelReject
def test_a_cancel_of_an_unknown_order_is_a_cancel_reject_not_an_execution_report(eng):
    exec_id = eng.reports.next_exec_id
    r = only(eng.submit("alpha", OrderCancelRequest("c1", "nope", "TB3M")))
    assert isinstance(r, OrderCancelReject)
    assert (r.cl_ord_id, r.orig_cl_ord_id, r.order_id, r.ord_status, r.cxl_rej_response_to,
            r.cxl_rej_reason) == ("c1", "nope", None, "rejected", "cancel", "UNKNOWN_ORDER")
    assert r.text and r.seq == eng.seq
    assert eng.reports.next_exec_id == exec_id          # 35=9 has no ExecID
    doc = msgspec.json.decode(msgspec.json.encode(r))
    assert doc["msg"] == "cancel_reject" and "order_id" not in doc


def test_a_cancel_of_a_filled_or_cancelled_order_is_too_late_with_its_status(eng):
    s = only(eng.submit("alpha", NewOrderSingle("s1", 1, "TB3M", "sell", "1", price="99.000")))
    eng.submit("beta", NewOrderSingle("b1", 2, "TB3M", "buy", "1", price="99.000"))
    r = only(eng.submit("alpha", OrderCancelRequest("c1", "s1", "TB3M")))
    assert (r.cxl_rej_reason, r.ord_status, r.order_id) == ("TOO_LATE_TO_CANCEL", "filled",
                                                           s.order_id)
    eng.submit("alpha", buy("a1"))
    eng.submit("alpha", OrderCancelRequest("c2", "a1", "TB3M"))
    # Either of its ClOrdIDs names the canceled order.
    for orig in ("a1", "c2"):
        r = only(eng.submit("alpha", OrderCancelReplaceRequest(f"r-{orig}", orig, "TB3M",
                                                               "99.000", "2")))
        assert (r.cxl_rej_reason, r.ord_status, r.cxl_rej_response_to) == (
            "TOO_LATE_TO_CANCEL", "canceled", "replace")


def test_an_off_tick_replace_of_a_live_order_leaves_it_new(eng):
    a1 = only(eng.submit("alpha", buy("a1")))
    before = book_state(eng)
    r = only(eng.submit("alpha", OrderCancelReplaceRequest("a2", "a1", "TB3M", "99.0005", "1")))
    assert isinstance(r, OrderCancelReject)
    assert (r.cxl_rej_reason, r.ord_status, r.order_id, r.account, r.cxl_rej_response_to) == (
        "OTHER", "new", a1.order_id, 1, "replace")
    assert r.text.startswith("INVALID_PRICE: ")
    assert book_state(eng) == before
    r = only(eng.submit("alpha", OrderCancelReplaceRequest("a3", "a1", "TB3M", "90.000", "1")))
    assert r.text.startswith("OUTSIDE_PRICE_BAND: price 90.000 is outside the band ")
    # The refused ClOrdIDs are used; the order keeps its own and stays cancelable by it.
    assert only(eng.submit("alpha", OrderCancelRequest("a4", "a1", "TB3M"))).exec_type == \
        "canceled"


def test_a_replace_the_book_refuses_is_a_cancel_reject_and_the_order_stays(eng):
    eng.submit("alpha", NewOrderSingle("s1", 1, "GOLD", "sell", "1", price="111.00",
                                       time_in_force="gtc", post_only=True))
    eng.submit("beta", NewOrderSingle("b1", 2, "GOLD", "buy", "1", price="109.00",
                                      time_in_force="gtc"))
    before = book_state(eng)
    r = only(eng.submit("alpha", OrderCancelReplaceRequest("s2", "s1", "GOLD", "109.00", "1")))
    assert (r.cxl_rej_reason, r.ord_status) == ("OTHER", "new")
    assert r.text.startswith("POST_ONLY_WOULD_TAKE")
    assert book_state(eng) == before


def test_a_cancel_while_the_journal_is_down_is_a_cancel_reject(tmp_path):
    import os

    from matching.journal import Journal, JournalError
    journal = Journal(tmp_path / "journal.log")
    eng = Engine(REG, make_ledger(), clock=Clock(), journal=journal)
    eng.submit("alpha", buy("a1"))
    eng.commit()
    os.close(journal.fd)
    journal.fd = os.open(os.devnull, os.O_RDONLY)
    eng.submit("alpha", buy("a2"))
    with pytest.raises(JournalError):
        eng.commit()
    out = eng.submit("alpha", OrderCancelRequest("c1", "a1", "TB3M"))
    r = only(out)
    assert out.refused and isinstance(r, OrderCancelReject)
    assert (r.cxl_rej_reason, r.ord_status) == ("OTHER", "new")
    assert r.text.startswith("JOURNAL_UNAVAILABLE: ")


# ------------------------------------------------------------------ 3. Rejected reports
def test_a_rejected_report_carries_cum_leaves_and_avg_px_zero_in_the_instruments_decimals(eng):
    r = only(eng.submit("alpha", buy("a1", price="90.000")))
    assert (r.cum_qty, r.leaves_qty, r.avg_px) == ("0.0000", "0.0000", "0.000")
    doc = msgspec.json.decode(msgspec.json.encode(r))
    assert (doc["cum_qty"], doc["leaves_qty"], doc["avg_px"]) == ("0.0000", "0.0000", "0.000")
    r = only(eng.submit("alpha", buy("a2", symbol="NOPE")))
    doc = msgspec.json.decode(msgspec.json.encode(r))
    assert (doc["cum_qty"], doc["leaves_qty"], doc["avg_px"]) == ("0", "0", "0")


def test_an_order_the_book_rejects_shows_nothing_left(eng):
    eng.submit("beta", NewOrderSingle("s1", 2, "GOLD", "sell", "1", price="110.00",
                                      time_in_force="gtc"))
    out = eng.submit("alpha", NewOrderSingle("p1", 1, "GOLD", "buy", "2", price="110.00",
                                             time_in_force="gtc", post_only=True))
    r = only(out)
    assert (r.exec_type, r.ord_rej_reason, r.order_qty) == ("rejected", "POST_ONLY_WOULD_TAKE",
                                                            "2.0000")
    assert (r.cum_qty, r.leaves_qty, r.avg_px) == ("0.0000", "0.0000", "0.00")


def test_avg_px_has_the_price_decimals(eng):
    r = only(eng.submit("alpha", NewOrderSingle("s1", 1, "BD3Y", "sell", "3", price="100.250",
                                                time_in_force="gtc")))
    assert r.avg_px == "0.000"                          # before the first fill
    fill = eng.submit("beta", NewOrderSingle("b1", 2, "BD3Y", "buy", "1", price="100.250"))
    assert [x.avg_px for _, x in fill.reports if x.exec_type == "trade"] == ["100.250"] * 2
    eng.submit("alpha", OrderCancelReplaceRequest("s2", "s1", "BD3Y", "100.251", "3"))
    fill = eng.submit("beta", NewOrderSingle("b2", 2, "BD3Y", "buy", "1", price="100.251"))
    [maker] = [x for _, x in fill.reports if x.cl_ord_id == "s2"]
    assert maker.avg_px == "100.2505"                   # between ticks: more decimals
    gold = eng.submit("beta", NewOrderSingle("g1", 2, "GOLD", "sell", "1", price="110.00"))
    assert only(gold).avg_px == "0.00"


# ------------------------------------------------------------------ 4. timestamps
def test_times_are_utc_timestamps_with_nanoseconds_one_string_per_input(eng):
    eng.submit("alpha", NewOrderSingle("s1", 1, "TB3M", "sell", "1", price="99.000"))
    out = eng.submit("beta", NewOrderSingle("b1", 2, "TB3M", "buy", "1", price="99.000"))
    stamps = [r.transact_time for _, r in out.reports] + [t.time for t in out.trades]
    assert stamps[0] == "2026-11-25T10:00:00.123456789Z"
    assert parse_utc_timestamp(stamps[0]) == T0 + 123_456_789
    assert all(s is stamps[0] for s in stamps)           # formatted once for the input
    assert only(eng.refuse("alpha", "MALFORMED_JSON", "bad")).transact_time == stamps[0]


def test_utc_timestamp_formats_and_parses():
    assert utc_timestamp(0) == "1970-01-01T00:00:00.000000000Z"
    assert utc_timestamp(1_796_234_400_123_456_789) == "2026-12-02T18:00:00.123456789Z"
    assert utc_timestamp(1_796_234_401_000_000_001) == "2026-12-02T18:00:01.000000001Z"
    assert parse_utc_timestamp("2026-12-02T18:00:00Z") == 1_796_234_400 * 10**9
    assert parse_utc_timestamp("2026-12-02T18:00:00.5Z") == 1_796_234_400_500_000_000
    for bad in ("2026-12-02 18:00:00Z", "2026-12-02T18:00:00", 1_796_234_400):
        with pytest.raises(ValueError):
            parse_utc_timestamp(bad)


def test_the_journal_keeps_integer_times(tmp_path):
    from matching.journal import Journal, read_journal
    from matching.messages import JournalEntry
    eng = Engine(REG, make_ledger(), clock=Clock(), journal=Journal(tmp_path / "j.log"))
    eng.submit("alpha", buy("a1"))
    eng.commit()
    [(_, payload)] = list(read_journal(tmp_path / "j.log"))
    assert msgspec.msgpack.decode(payload, type=JournalEntry).time == T0 + 123_456_789


# ------------------------------------------------------------------ 5. cancel-on-disconnect
def test_cancel_on_disconnect_says_so(eng):
    eng.submit("alpha", buy("a1"))
    eng.submit("alpha", NewOrderSingle("a2", 1, "GOLD", "sell", "1", price="111.00",
                                       time_in_force="gtc"))
    out = eng.admin("cancel_broker", broker="alpha", reason="disconnected")
    assert [(r.cl_ord_id, r.exec_type, r.text) for _, r in out.reports] == [
        ("a1", "canceled", "CANCEL_ON_DISCONNECT"), ("a2", "canceled", "CANCEL_ON_DISCONNECT")]
    eng.submit("alpha", buy("a3"))
    r = only(eng.submit("alpha", OrderCancelRequest("c3", "a3", "TB3M")))
    assert (r.exec_type, r.text) == ("canceled", "USER")    # the owner's own cancel


# ------------------------------------------------------------------ 6. shortfalls in units
def test_insufficient_funds_and_tokens_say_the_amounts_in_units(eng):
    r = only(eng.submit("alpha", buy("a1", qty="2000")))
    assert r.ord_rej_reason == "INSUFFICIENT_FUNDS"
    assert re.fullmatch(r"account 1 needs \d+\.\d{6} USDC, has 100000\.000000 USDC available",
                        r.text), r.text
    r = only(eng.submit("alpha", NewOrderSingle("a2", 1, "TB3M", "sell", "51", price="99.000")))
    assert r.text == "account 1 needs 51.0000 TB3M, has 50.0000 TB3M available"
    assert only(eng.submit("alpha", buy("a3", qty="50"))).exec_type == "new"
    r = only(eng.submit("alpha", OrderCancelReplaceRequest("a4", "a3", "TB3M", "99.000",
                                                           "150")))
    assert r.cxl_rej_reason == "OTHER"
    assert re.fullmatch(r"INSUFFICIENT_FUNDS: account 1 needs \d+\.\d{6} USDC more for the "
                        r"replace, has \d+\.\d{6} USDC available", r.text), r.text


def test_every_report_type_is_a_wire_struct():
    assert ExecutionReport.__struct_config__.tag == "exec_report"
    assert OrderCancelReject.__struct_config__.tag == "cancel_reject"

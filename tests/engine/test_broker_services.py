"""Broker services in the engine: Order Status Request (FIX 35=H) answered with an
ExecType=I report of the order as it stands, a query that journals nothing; Order Mass
Cancel (FIX 35=q) by broker, account and symbol, answered with a 35=r report, journaled,
each cancelled order its own canceled report, refused whole when a rule breaks, and
reproduced by replay and recovery."""
from __future__ import annotations

from test_operator_accounts import A, B, empty_engine, funded, ok

from matching.engine import Engine
from matching.journal import Journal, read_journal
from matching.ledger import Ledger
from matching.messages import (
    MassCancelRequest,
    NewOrderSingle,
    OrderCancelRequest,
    OrderStatusRequest,
)
from testkit import golden

A2 = 5003          # a second account of alpha's


def venue(journal=None):
    """alpha (accounts A and A2, cash) and beta (B, TB3M tokens), both whitelisted."""
    engine, clock = empty_engine(journal)
    funded(engine)
    ok(engine, action="open_account", account=A2, broker="alpha", eligibility="retail",
       country="DE")
    for symbol in ("TB3M", "TB6M"):
        ok(engine, action="whitelist", account=A2, symbol=symbol)
        ok(engine, action="whitelist", account=A, symbol=symbol)
    ok(engine, action="deposit", account=A2, asset="USDC", amount="5000")
    return engine, clock


def buy(engine, cl, account=A, symbol="TB3M", qty="1", price="99.5"):
    out = engine.submit("alpha", NewOrderSingle(cl, account, symbol, "buy", qty, price=price))
    assert out.reports[-1][1].exec_type == "new", out.reports
    return out


def status(engine, broker="alpha", **fields):
    seq, digest = engine.seq, engine.state_hash()
    out = engine.order_status(broker, OrderStatusRequest(**fields))
    assert not out.sequenced and engine.seq == seq and engine.state_hash() == digest
    [(to, report)] = out.reports
    assert to == broker and report.exec_type == "order_status" and report.seq == seq
    return report


# ------------------------------------------------------------------ order status (35=H)
def test_order_status_of_a_partly_filled_order_gives_cum_leaves_and_avg_px():
    engine, _ = venue()
    new = buy(engine, "b1", qty="3")
    engine.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "1", price="99.5"))
    report = status(engine, cl_ord_id="b1", ord_status_req_id="q1")
    assert (report.ord_status, report.cum_qty, report.leaves_qty, report.avg_px) == (
        "partially_filled", "1.0000", "2.0000", "99.500")
    assert report.order_id == new.reports[-1][1].order_id
    assert report.ord_status_req_id == "q1" and report.exec_id.startswith("S")


def test_order_status_by_order_id_finds_the_same_order():
    engine, _ = venue()
    order_id = buy(engine, "b1").reports[-1][1].order_id
    report = status(engine, order_id=order_id)
    assert (report.cl_ord_id, report.ord_status, report.leaves_qty) == ("b1", "new", "1.0000")


def test_order_status_of_another_brokers_order_is_rejected_as_not_found():
    engine, _ = venue()
    order_id = buy(engine, "b1").reports[-1][1].order_id
    for fields in ({"cl_ord_id": "b1"}, {"order_id": order_id}):
        report = status(engine, "beta", **fields)
        assert report.ord_status == "rejected" and report.ord_rej_reason == "ORDER_NOT_FOUND"
        assert report.account is None and report.leaves_qty == "0"


def test_order_status_of_an_unknown_order_says_why():
    engine, _ = venue()
    report = status(engine, cl_ord_id="never")
    assert report.ord_status == "rejected" and report.ord_rej_reason == "ORDER_NOT_FOUND"
    assert "'never'" in report.text
    empty = status(engine)
    assert empty.ord_rej_reason == "INVALID_FIELD"


def test_order_status_of_a_cancelled_order_is_its_final_status_with_nothing_left():
    engine, _ = venue()
    buy(engine, "b1")
    engine.submit("alpha", OrderCancelRequest("c1", "b1", "TB3M"))
    report = status(engine, cl_ord_id="b1")
    assert (report.ord_status, report.leaves_qty) == ("canceled", "0")
    assert status(engine, "beta", cl_ord_id="b1").ord_status == "rejected"


def test_order_status_answers_get_distinct_exec_ids_and_spare_next_exec_id():
    engine, _ = venue()
    buy(engine, "b1")
    before = engine.reports.next_exec_id
    ids = {status(engine, cl_ord_id="b1").exec_id for _ in range(3)}
    assert len(ids) == 3 and engine.reports.next_exec_id == before


# ------------------------------------------------------------------ mass cancel (35=q)
def resting(engine):
    """alpha: A on TB3M and TB6M, A2 on TB3M; beta: B sells TB3M."""
    buy(engine, "a1")
    buy(engine, "a2", symbol="TB6M", price="99")
    buy(engine, "a3", account=A2)
    engine.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "1", price="99.9"))


def cancelled(out):
    return sorted(r.cl_ord_id for _, r in out.reports if getattr(r, "exec_type", "")
                  == "canceled")


def test_mass_cancel_of_a_broker_cancels_all_its_orders_and_spares_other_brokers():
    engine, _ = venue()
    resting(engine)
    out = engine.mass_cancel("alpha", MassCancelRequest("m1"))
    assert out.sequenced and out.seq == engine.seq
    report = out.reports[0][1]
    assert (report.msg if hasattr(report, "msg") else type(report).__name__) \
        == "MassCancelReport"
    assert (report.mass_cancel_response, report.total_affected_orders) == ("all_orders", 3)
    assert cancelled(out) == ["a1", "a2", "a3"]
    assert all(r.text == "MASS_CANCEL" for _, r in out.reports[1:])
    assert [o.broker for o in engine.orders.values()] == ["beta"]


def test_mass_cancel_by_account_spares_other_accounts():
    engine, _ = venue()
    resting(engine)
    out = engine.mass_cancel("alpha", MassCancelRequest("m1", account=A2))
    assert out.reports[0][1].mass_cancel_response == "by_account"
    assert cancelled(out) == ["a3"]


def test_mass_cancel_by_symbol_and_by_account_and_symbol():
    engine, _ = venue()
    resting(engine)
    out = engine.mass_cancel("alpha", MassCancelRequest("m1", symbol="TB6M"))
    assert out.reports[0][1].mass_cancel_response == "by_symbol" and cancelled(out) == ["a2"]
    out = engine.mass_cancel("alpha", MassCancelRequest("m2", account=A, symbol="TB3M"))
    assert out.reports[0][1].mass_cancel_response == "by_account_symbol"
    assert cancelled(out) == ["a1"]
    assert sorted(o.cl_ord_id for o in engine.orders.values()) == ["a3", "s1"]


def test_mass_cancel_with_nothing_to_cancel_reports_zero_affected():
    engine, _ = venue()
    out = engine.mass_cancel("alpha", MassCancelRequest("m1"))
    assert out.sequenced and out.reports[0][1].total_affected_orders == 0


def refused_mass_cancel(engine, broker, msg, code):
    seq, digest = engine.seq, engine.state_hash()
    out = engine.mass_cancel(broker, msg)
    assert not out.sequenced and engine.seq == seq and engine.state_hash() == digest
    [(to, report)] = out.reports
    assert to == broker and report.mass_cancel_response == "rejected"
    assert report.mass_cancel_reject_reason == code and report.total_affected_orders == 0
    return report


def test_mass_cancel_of_another_brokers_account_is_refused_whole():
    engine, _ = venue()
    resting(engine)
    refused_mass_cancel(engine, "alpha", MassCancelRequest("m1", account=B), "UNKNOWN_ACCOUNT")
    assert len(engine.orders) == 4


def test_mass_cancel_of_an_unlisted_symbol_or_a_used_cl_ord_id_is_refused():
    engine, _ = venue()
    resting(engine)
    refused_mass_cancel(engine, "alpha", MassCancelRequest("m1", symbol="NOPE"),
                        "UNKNOWN_SYMBOL")
    refused_mass_cancel(engine, "alpha", MassCancelRequest("a1"), "DUPLICATE_REQUEST")
    refused_mass_cancel(engine, "alpha", MassCancelRequest(""), "INVALID_FIELD")


def test_an_exact_resend_of_a_mass_cancel_gets_its_outcome_again_unsequenced():
    engine, _ = venue()
    resting(engine)
    first = engine.mass_cancel("alpha", MassCancelRequest("m1"))
    seq = engine.seq
    again = engine.mass_cancel("alpha", MassCancelRequest("m1"))
    assert again.replayed and not again.sequenced and engine.seq == seq
    assert [r.poss_resend for _, r in again.reports] == [True] * len(first.reports)
    other = MassCancelRequest("m1", symbol="TB3M")         # same ClOrdID, other content
    refused_mass_cancel(engine, "alpha", other, "DUPLICATE_REQUEST")


def test_replay_and_recovery_reproduce_the_hash_across_mass_cancels(tmp_path):
    journal = Journal(tmp_path / "journal.log")
    live, clock = venue(journal)
    resting(live)
    live.mass_cancel("alpha", MassCancelRequest("m1", symbol="TB6M"))
    live.write_snapshot(tmp_path / "midway")
    buy(live, "a4", account=A2)
    live.mass_cancel("alpha", MassCancelRequest("m2", account=A2))
    live.mass_cancel("beta", MassCancelRequest("m3"))
    live.commit()
    journal.close()
    rec = Engine.recover(golden.registry(), snapshot_dir=tmp_path / "midway",
                         journal_path=tmp_path / "journal.log", clock=clock)
    assert rec.state_hash() == live.state_hash()
    assert sorted(o.cl_ord_id for o in rec.orders.values()) == ["a1"]
    # The recovered ClOrdID memory still refuses a mass cancel's ClOrdID reused.
    refused_mass_cancel(rec, "alpha", MassCancelRequest("m2"), "DUPLICATE_REQUEST")


# ------------------------------------------------------------------ day statistics
def stats(engine, symbol="TB3M"):
    return engine.day_stats.view(symbol, engine.conv[symbol], engine.economics[symbol],
                                 engine.seq, 0)


def test_day_statistics_give_open_high_low_last_volume_and_vwap_of_the_session():
    engine, _ = venue()
    for cl, price in (("s1", "99.5"), ("s2", "99.7"), ("s3", "99.4")):
        engine.submit("beta", NewOrderSingle(cl, B, "TB3M", "sell", "1", price=price))
    out = engine.submit("alpha", NewOrderSingle("b1", A, "TB3M", "buy", "3", price="99.7"))
    assert [r.exec_type for _, r in out.reports].count("trade") == 6
    s = stats(engine)
    # Fills best price first: 99.4, 99.5, 99.7; VWAP (99.4 + 99.5 + 99.7) / 3 = 99.5333...
    assert (s.open, s.high, s.low, s.last, s.volume, s.trade_count) == (
        "99.400", "99.700", "99.400", "99.700", "3.0000", 3)
    assert s.vwap.startswith("99.5333")
    assert stats(engine, "TB6M").trade_count == 0 and stats(engine, "TB6M").open is None


def test_a_new_session_starts_its_statistics_from_nothing():
    engine, _ = venue()
    engine.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "1", price="99.5"))
    engine.submit("alpha", NewOrderSingle("b1", A, "TB3M", "buy", "1", price="99.5"))
    assert stats(engine).trade_count == 1
    engine.admin("close", "TB3M")
    assert stats(engine).trade_count == 1            # the closed session's figures stay
    engine.admin("open", "TB3M")
    assert stats(engine).trade_count == 0


def test_replay_and_recovery_reproduce_the_day_statistics(tmp_path):
    journal = Journal(tmp_path / "journal.log")
    live, clock = venue(journal)
    engine = live
    engine.submit("beta", NewOrderSingle("s1", B, "TB3M", "sell", "2", price="99.5"))
    engine.submit("alpha", NewOrderSingle("b1", A, "TB3M", "buy", "1", price="99.5"))
    live.write_snapshot(tmp_path / "midway")
    engine.submit("beta", NewOrderSingle("s2", B, "TB3M", "sell", "1", price="99.6"))
    engine.submit("alpha", NewOrderSingle("b2", A, "TB3M", "buy", "2", price="99.6"))
    live.commit()
    journal.close()
    rec = Engine.recover(golden.registry(), snapshot_dir=tmp_path / "midway",
                         journal_path=tmp_path / "journal.log", clock=clock)
    replayed = Engine(golden.registry(), Ledger(), clock=clock,
                      resend_window=golden.RESEND_WINDOW)
    replayed.replay(read_journal(tmp_path / "journal.log"))
    for other in (rec, replayed):
        assert other.state_hash() == live.state_hash()
        assert stats(other) == stats(live) and stats(other).trade_count == 3

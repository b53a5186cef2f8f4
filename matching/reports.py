"""FIX execution reports (35=8) of the engine's orders, numbered for the venue's life.

Every report an input causes gets the next ExecID ``E<n>`` (engine state: snapshots and
the journal keep the counter, so E ids never repeat across restarts); rejects of messages
that never became an input (they did not decode) are numbered ``R<epoch>.<n>`` by a
counter of their own, outside the engine state, from 1 in each epoch (start) of the venue
(``matching.datadir``), so they never repeat either. The builders take named arguments;
each makes its ExecutionReport positionally in the struct's field order, since msgspec
builds a 26-field struct from keywords ~8x slower (0.99 vs 0.12 us, measured), and one is
made per event.
"""
from __future__ import annotations

from typing import Literal

import cython

from matching.economics import Economics, FillEconomics
from matching.messages import ExecTypeName, ExecutionReport, OrdStatusName
from matching.orders import Conversions, LiveOrder, id_str, price_str, qty_str_of

__all__ = ["ReportBuilder"]

_BUY = 1
Liquidity = Literal["maker", "taker"]


@cython.cclass
class ReportBuilder:
    """Builds each ExecutionReport from an order as it stands; ``next_exec_id`` is state
    (snapshots keep it), ``unparsed_rejects`` is not: it counts from 0 in each ``epoch``
    (the venue's start, 0 for an engine without a data directory)."""

    def __init__(self, economics: dict, next_exec_id: int = 1, epoch: int = 0):
        self.economics = economics
        self.next_exec_id = next_exec_id
        self.unparsed_rejects = 0
        self.epoch = epoch

    def avg_px(self, o: LiveOrder, conv: Conversions):
        """FIX AvgPx (6): the quantity-weighted fill price, None before the first fill."""
        cum_qty = o.cum_qty
        if not cum_qty:
            return None
        cum_value = o.cum_value
        if cum_value % cum_qty:
            economics: Economics = self.economics[o.symbol]
            return economics.avg_px(cum_value, cum_qty)
        return conv.avg(cum_value // cum_qty)

    def order(self, o: LiveOrder, exec_type: ExecTypeName, ord_status: OrdStatusName, text,
              reason, conv: Conversions, seq: int, now: int) -> ExecutionReport:
        """A report of ``o`` as it stands, with no fill in it (new, canceled, expired,
        replaced, restated, rejected by the book); ``conv`` is its instrument's."""
        eid = self.next_exec_id
        self.next_exec_id = eid + 1
        return ExecutionReport(
            f"E{eid}",                                  # exec_id (17)
            exec_type,                                  # exec_type (150)
            ord_status,                                 # ord_status (39)
            o.cl_ord_id,                                # cl_ord_id (11)
            o.symbol,                                   # symbol (55)
            seq,                                        # seq: the input that caused it
            now,                                        # transact_time (60)
            id_str(o),                                  # order_id (37)
            o.orig_cl_ord_id,                           # orig_cl_ord_id (41)
            o.account,                                  # account (1)
            "buy" if o.side == _BUY else "sell",        # side (54)
            price_str(o, conv),                         # price (44)
            qty_str_of(o, conv),                        # order_qty (38)
            None,                                       # last_px (31)
            None,                                       # last_qty (32)
            conv.qty(o.cum_qty),                        # cum_qty (14)
            conv.qty(o.leaves),                         # leaves_qty (151)
            self.avg_px(o, conv),                       # avg_px (6)
            None,                                       # accrued_interest (159)
            None,                                       # settl_amount (119)
            None,                                       # yield_pct (236)
            None,                                       # trade_id (1003)
            None,                                       # liquidity (851)
            reason,                                     # ord_rej_reason (103)
            text)                                       # text (58)

    def fill(self, o: LiveOrder, fill: FillEconomics, trade_id: str, liquidity: Liquidity,
             conv: Conversions, seq: int, now: int) -> ExecutionReport:
        """The report of one fill of ``o`` (ExecType trade), after ``o`` took it."""
        eid = self.next_exec_id
        self.next_exec_id = eid + 1
        leaves = o.leaves
        return ExecutionReport(
            f"E{eid}",                                  # exec_id (17)
            "trade",                                    # exec_type (150)
            ("filled" if o.cum_qty == o.qty else "canceled") if leaves == 0
            else "partially_filled",                    # ord_status (39)
            o.cl_ord_id,                                # cl_ord_id (11)
            o.symbol,                                   # symbol (55)
            seq,                                        # seq
            now,                                        # transact_time (60)
            id_str(o),                                  # order_id (37)
            o.orig_cl_ord_id,                           # orig_cl_ord_id (41)
            o.account,                                  # account (1)
            "buy" if o.side == _BUY else "sell",        # side (54)
            price_str(o, conv),                         # price (44)
            qty_str_of(o, conv),                        # order_qty (38)
            fill.price,                                 # last_px (31)
            fill.qty,                                   # last_qty (32)
            conv.qty(o.cum_qty),                        # cum_qty (14)
            conv.qty(leaves),                           # leaves_qty (151)
            self.avg_px(o, conv),                       # avg_px (6)
            fill.accrued_cash,                          # accrued_interest (159)
            fill.settlement_cash,                       # settl_amount (119)
            fill.yield_pct,                             # yield_pct (236)
            trade_id,                                   # trade_id (1003)
            liquidity,                                  # liquidity (851)
            None,                                       # ord_rej_reason (103)
            None)                                       # text (58)

    def reject(self, m, reason: str, text: str, seq: int, now: int) -> ExecutionReport:
        """The Rejected report of an input the engine refused (``m``: the message)."""
        eid = self.next_exec_id
        self.next_exec_id = eid + 1
        return ExecutionReport(
            exec_id=f"E{eid}", exec_type="rejected", ord_status="rejected",
            cl_ord_id=m.cl_ord_id, symbol=m.symbol, seq=seq, transact_time=now,
            orig_cl_ord_id=getattr(m, "orig_cl_ord_id", None),
            account=getattr(m, "account", None), side=getattr(m, "side", None),
            ord_rej_reason=reason, text=text)

    def unparsed(self, reason: str, text: str, cl_ord_id, symbol, seq: int,
                 now: int) -> ExecutionReport:
        """The Rejected report of a message that never became an input: ExecID
        ``R<epoch>.<n>``, unique across restarts."""
        self.unparsed_rejects += 1
        return ExecutionReport(
            exec_id=f"R{self.epoch}.{self.unparsed_rejects}", exec_type="rejected",
            ord_status="rejected", cl_ord_id=cl_ord_id or "", symbol=symbol or "",
            seq=seq, transact_time=now, ord_rej_reason=reason, text=text)

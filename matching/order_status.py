"""The answer to an Order Status Request (FIX 35=H): one ExecType=I report (FIX 150=I).

A query, not an input: nothing is journaled and no engine state changes (the state hash
and ``next_exec_id`` stay as they were), so its ExecID is ``S<epoch>.<n>``, counted per
start of the venue like the ``R<epoch>.<n>`` of unparsed rejects: unique, never a number
a later execution could reuse. The report is of the order as it stands after input
``seq``, the engine sequence it names.

An order is named by any ClOrdID of its chain today (the new order's, a cancel's or a
replace's) or by its OrderID, and only the sender's own orders are found: another
broker's order is as unknown as one that never existed (ORDER_NOT_FOUND, OrdStatus
rejected). A live order gets its OrdStatus, CumQty, LeavesQty and AvgPx; an order done
today gets its final OrdStatus with LeavesQty 0 (the engine keeps no more of it once it
is done: CumQty and AvgPx are then those of a filled order only, see ``_done``).
"""
from __future__ import annotations

from matching.constants import Side
from matching.errors import EngineReject
from matching.messages import ExecutionReport, OrderStatusRequest, utc_timestamp
from matching.orders import id_str, price_str, qty_str_of

__all__ = ["OrderStatusDesk"]

_BUY = int(Side.BUY)
_NOT_FOUND = EngineReject.ORDER_NOT_FOUND.value
_INVALID_FIELD = EngineReject.INVALID_FIELD.value


class OrderStatusDesk:
    """Answers OrderStatusRequests from one engine's orders and ClOrdID memory."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.answered = 0          # this start's count: the n of ExecID S<epoch>.<n>

    def answer(self, broker: str, req: OrderStatusRequest) -> ExecutionReport:
        """The ExecType=I report of ``broker``'s order that ``req`` names (O(1) by
        ClOrdID or a live OrderID; a done order by OrderID scans today's ClOrdIDs)."""
        engine = self.engine
        if not req.cl_ord_id and not req.order_id:
            return self._unknown(broker, req, _INVALID_FIELD,
                                 "an order status request names a cl_ord_id or an order_id")
        oid = self._order_id(broker, req)
        o = engine.orders.get(oid) if oid else None
        if o is not None and o.broker == broker and req.symbol in ("", o.symbol):
            conv = engine.conv[o.symbol]
            # A live order is working: New until its first fill (FIX 39).
            status = "partially_filled" if o.cum_qty else "new"
            return self._report(
                exec_id=self._next_id(), exec_type="order_status", ord_status=status,
                cl_ord_id=o.cl_ord_id, symbol=o.symbol, order_id=id_str(o),
                orig_cl_ord_id=o.orig_cl_ord_id, account=o.account,
                side="buy" if o.side == _BUY else "sell", price=price_str(o, conv),
                order_qty=qty_str_of(o, conv), cum_qty=conv.qty(o.cum_qty),
                leaves_qty=conv.qty(o.leaves), avg_px=engine.reports.avg_px(o, conv),
                req=req)
        if oid and o is None:
            done = self._done(broker, req, oid)
            if done is not None:
                return done
        return self._unknown(broker, req, _NOT_FOUND,
                             f"no order of {broker}'s with "
                             + (f"ClOrdID {req.cl_ord_id!r}" if req.cl_ord_id
                                else f"OrderID {req.order_id!r}")
                             + (f" on {req.symbol}" if req.symbol else "") + " today")

    def _order_id(self, broker: str, req: OrderStatusRequest) -> int:
        """The order id the request names (0: none of the sender's)."""
        if req.cl_ord_id:
            return self.engine.clordids.order_of(broker, req.cl_ord_id) or 0
        text = req.order_id
        return int(text) if text.isdigit() and len(text) < 19 else 0

    def _done(self, broker: str, req: OrderStatusRequest, oid: int):
        """An order of ``broker``'s done today: its final OrdStatus, LeavesQty 0. The
        ClOrdID memory keeps the status and the chain, not the quantities, so CumQty and
        AvgPx stay 0 and ``text`` says so, rather than a wrong figure."""
        clordids = self.engine.clordids
        status = clordids.status_of(oid)
        if status is None:
            return None
        chain = [c for (b, c), o in clordids.orders.items() if o == oid and b == broker]
        if not chain:
            return None              # another broker's order: unknown to this one
        cl_ord_id = req.cl_ord_id or chain[-1]
        return self._report(
            exec_id=self._next_id(), exec_type="order_status", ord_status=status,
            cl_ord_id=cl_ord_id, symbol=req.symbol, order_id=str(oid), req=req,
            text="done today: the venue keeps its final OrdStatus, not its quantities")

    def _unknown(self, broker: str, req: OrderStatusRequest, reason: str, text: str
                 ) -> ExecutionReport:
        return self._report(exec_id=self._next_id(), exec_type="order_status",
                            ord_status="rejected", cl_ord_id=req.cl_ord_id,
                            symbol=req.symbol, order_id=req.order_id,
                            ord_rej_reason=reason, text=text, req=req)

    def _next_id(self) -> str:
        self.answered += 1
        return f"S{self.engine.epoch}.{self.answered}"

    def _report(self, *, req: OrderStatusRequest, **fields) -> ExecutionReport:
        engine = self.engine
        return ExecutionReport(seq=engine.seq, transact_time=utc_timestamp(engine.clock()),
                               ord_status_req_id=req.ord_status_req_id or None, **fields)

"""Order Mass Cancel (FIX 35=q) and its report (35=r), as the engine checks and applies it.

A broker cancels every live order of its own, narrowed to one account and/or one symbol
(FIX MassCancelRequestType 7 all orders, 1 by security; by account is tokenbook's, an
Account (1) on the request). ``check`` runs every rule before anything is journaled: an
account not the broker's, an unlisted symbol or a ClOrdID already used today is refused
with a ``MassCancelReport`` of response ``rejected`` (FIX 531=0) and its reason (532), and
nothing is journaled. ``apply`` then cannot fail: it tells the report first, with
TotalAffectedOrders (533), then cancels the orders by OrderID, each with its own canceled
report whose text is MASS_CANCEL. Replay cancels the same orders in the same order.
"""
from __future__ import annotations

from matching.errors import EngineCancel, EngineReject, Rejection
from matching.messages import (
    MassCancelReport,
    MassCancelRequest,
    MassCancelResponse,
    utc_timestamp,
)

__all__ = ["MassCancels", "scope_of"]

_MASS_CANCEL = EngineCancel.MASS_CANCEL.value


def scope_of(m: MassCancelRequest) -> MassCancelResponse:
    """FIX 531 of an accepted request: the scope it names."""
    if m.account and m.symbol:
        return "by_account_symbol"
    if m.account:
        return "by_account"
    return "by_symbol" if m.symbol else "all_orders"


class MassCancels:
    """Checks and applies the MassCancelRequests of one engine."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def check(self, broker: str, m: MassCancelRequest) -> None:
        """Every rule of ``m`` against the state now; a ``Rejection`` says which broke."""
        engine = self.engine
        if not m.cl_ord_id or len(m.cl_ord_id) > 64:
            raise Rejection(EngineReject.INVALID_FIELD.value,
                            "a mass cancel needs a ClOrdID of 1-64 characters")
        if engine.clordids.used(broker, m.cl_ord_id):
            raise Rejection(EngineReject.DUPLICATE_REQUEST.value,
                            f"ClOrdID {m.cl_ord_id!r} already used today")
        if m.symbol and m.symbol not in engine.instruments:
            raise Rejection(EngineReject.UNKNOWN_SYMBOL.value,
                            f"unknown instrument {m.symbol!r}")
        if m.account and engine.ledger.broker_of(m.account) != broker:
            raise Rejection(EngineReject.UNKNOWN_ACCOUNT.value,
                            f"account {m.account} does not belong to {broker}")

    def affected(self, broker: str, m: MassCancelRequest) -> list[int]:
        """The live orders ``m`` names, by OrderID (the order they are cancelled in)."""
        return sorted(o.order_id for o in self.engine.orders.values()
                      if o.broker == broker and (not m.account or o.account == m.account)
                      and (not m.symbol or o.symbol == m.symbol))

    def refused(self, broker: str, m: MassCancelRequest, r: Rejection) -> MassCancelReport:
        """The report of a request refused whole (531 rejected, 532 its code)."""
        engine = self.engine
        return MassCancelReport(m.cl_ord_id, "rejected", 0, engine.seq,
                                utc_timestamp(engine.clock()), m.account or None,
                                m.symbol or None, r.reason, r.text)

    def apply(self, broker: str, m: MassCancelRequest) -> None:
        """Do a checked request (the engine's ``_apply``): the 35=r, then each cancel."""
        engine = self.engine
        executions = engine.executions
        order_ids = self.affected(broker, m)
        executions.tell(broker, MassCancelReport(
            m.cl_ord_id, scope_of(m), len(order_ids), engine.seq, executions.stamp,
            m.account or None, m.symbol or None))
        for oid in order_ids:
            o = engine.orders[oid]
            book = engine.books[o.symbol]
            book.cancel(oid)
            executions.handle(o.symbol, book.take_event_rows(), _MASS_CANCEL)

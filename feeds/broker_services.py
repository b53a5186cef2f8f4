"""The broker services on an order-entry topic that are not orders: Order Status Request
(FIX 35=H, a query) and Order Mass Cancel Request (FIX 35=q, an input), and the drop copy.

``decode_service_request`` is tried only on what did not decode as an order (as the
balances query is), so order entry pays nothing for it. ``dropcopy_of`` is the copy of
one report the gateway also publishes on ``tokenbook/v1/dropcopy/{broker}``, which the ACL
gives only to the broker's risk/clearing user ``{broker}-risk``
(``feeds.security.risk_user``). Query answers (balances, ExecType=I order status) are
the asker's own and not copied; everything that reports a state change is.
"""
from __future__ import annotations

import msgspec

from feeds import topics
from feeds.outbox import Publish
from matching.messages import Balances, ExecutionReport, MassCancelRequest, OrderStatusRequest

__all__ = ["decode_service_request", "is_query_answer", "dropcopy_of", "MAX_REQUEST_BYTES"]

#: A service request is a few fields: anything longer is not one.
MAX_REQUEST_BYTES = 4096
_MAX_ID = 64
_INT63 = 2**63
_decoder = msgspec.json.Decoder(OrderStatusRequest | MassCancelRequest)


def decode_service_request(payload: object) -> OrderStatusRequest | MassCancelRequest | None:
    """The order status or mass cancel request in ``payload``, or None if it is not a
    well-formed one (ids of 1-64 characters, a positive 63-bit account); never raises."""
    if not isinstance(payload, (bytes, bytearray)) or len(payload) > MAX_REQUEST_BYTES:
        return None
    try:
        req = _decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if isinstance(req, OrderStatusRequest):
        ids = (req.cl_ord_id, req.order_id, req.ord_status_req_id, req.symbol)
        return req if all(len(i) <= _MAX_ID for i in ids) else None
    ok = (0 < len(req.cl_ord_id) <= _MAX_ID and len(req.symbol) <= _MAX_ID
          and 0 <= req.account < _INT63)
    return req if ok else None


def is_query_answer(report: object) -> bool:
    """A balances answer or an ExecType=I order status: the asker's, never copied."""
    return type(report) is Balances or (type(report) is ExecutionReport
                                        and report.exec_type == "order_status")


def dropcopy_of(broker: str, payload: bytes) -> Publish:
    """The drop copy of one of ``broker``'s reports (already encoded): same bytes, held
    and resent with the broker's exec reports (kind ``dropcopy``: ``feeds.outbox`` keeps
    it across a reconnect like them) so the copy keeps their order."""
    return Publish(topics.dropcopy(broker), payload, False, "dropcopy", broker)

"""Broker queries over MQTT 5 request/response, sans-I/O: ``tokenbook/v1/requests/{broker}``.

A broker PUBLISHes a query (``{"msg":"balances"}``, or an Order Status Request, FIX 35=H)
with a Response Topic (MQTT 5 3.3.2.3.5) and, optionally, Correlation Data (3.3.2.3.6);
the engine answers on that Response Topic, QoS 1, not retained, with the Correlation Data
echoed, as the MQTT 5 request/response pattern (4.10) has it. A query changes nothing:
nothing is journaled and the answer names the engine seq it is consistent with.

The Response Topic must be the sender's own, under ``tokenbook/v1/replies/{broker}/``
(``feeds.topics.response_topic_of``): the ACL lets a broker read only that subtree, so
no one can have the engine write into another broker's replies. A request without one,
or with another's, is refused on the sender's exec topic (NO_RESPONSE_TOPIC,
RESPONSE_TOPIC_NOT_OWN); a payload that is not a query is refused on the Response Topic
(NOT_A_QUERY, or the decoder's MALFORMED_JSON / INVALID_FIELD / MESSAGE_TOO_LARGE).
"""
from __future__ import annotations

from collections.abc import Callable

from feeds import topics
from feeds.broker_services import decode_service_request
from feeds.codec import DecodeError, decode_balances_request, decode_order_message, encode
from feeds.issuance_wire import decode_auction_input
from feeds.outbox import Publish
from matching.engine import Engine
from matching.errors import DecodeReject
from matching.messages import MassCancelRequest
from matching.outputs import Outcome

__all__ = ["RequestDesk"]


class RequestDesk:
    """Answers the queries of one cycle; ``take`` hands their publishes to the outbox
    after the cycle's commit, so an answer never names a seq the journal may lose first
    (the engine's other answers wait for the commit the same way)."""

    def __init__(self, engine: Engine, on_wire: Callable[[object], object]):
        self.engine = engine
        self._on_wire = on_wire                  # a shard's ids on its reports
        self._answers: list[Publish] = []
        self.answered = 0                       # queries answered on a Response Topic
        self.refused = 0                        # of which refused (not a query)

    def handle(self, broker: str, payload: bytes, response_topic: str | None,
               correlation: bytes | None) -> Outcome | None:
        """One message on ``requests/{broker}``: None once its answer is staged, or the
        refusal to send on the broker's exec topic (no usable Response Topic)."""
        engine = self.engine
        if not response_topic:
            return engine.refuse(broker, DecodeReject.NO_RESPONSE_TOPIC,
                                 DecodeReject.NO_RESPONSE_TOPIC.text)
        topic = topics.response_topic_of(broker, response_topic)
        if topic is None:
            return engine.refuse(broker, DecodeReject.RESPONSE_TOPIC_NOT_OWN,
                                 f"Response Topic {response_topic[:80]!r} is not under "
                                 f"{topics.ROOT}/replies/{broker}/")
        out = self._answer(broker, payload)
        for _, report in out.reports:
            self._answers.append(Publish(topic, encode(self._on_wire(report)), False,
                                         "reply", broker, correlation or None))
        self.answered += 1
        return None

    def _answer(self, broker: str, payload: bytes) -> Outcome:
        engine = self.engine
        balances = decode_balances_request(payload)
        if balances is not None:
            return engine.balances(broker, balances.request_id, balances.account)
        service = decode_service_request(payload)
        if service is not None and not isinstance(service, MassCancelRequest):
            return engine.order_status(broker, service)
        self.refused += 1
        msg = decode_order_message(payload)
        if isinstance(msg, DecodeError):
            if service is None and decode_auction_input(payload, issuer=False) is None:
                return engine.refuse(broker, msg.reason, msg.text, msg.cl_ord_id, msg.symbol)
            cl_ord_id, symbol = getattr(service, "cl_ord_id", None), None
        else:
            cl_ord_id, symbol = msg.cl_ord_id, getattr(msg, "symbol", None)
        return engine.refuse(broker, DecodeReject.NOT_A_QUERY, DecodeReject.NOT_A_QUERY.text,
                             cl_ord_id, symbol)

    def take(self) -> list[Publish]:
        """The answers staged since the last call, in arrival order."""
        out, self._answers = self._answers, []
        return out

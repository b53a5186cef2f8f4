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

On a sharded venue every shard takes the requests: each answers a balances query with its
own ledger (each shard holds its own allocation of an account's cash, ``feeds.shard``),
naming itself in ``shard``; an order status only the shard serving its symbol answers.
The answering shard alone refuses what no shard would answer (no symbol, an unserved
symbol: WRONG_SHARD, or not a query), so every request gets an answer and only one
refusal.
"""
from __future__ import annotations

from collections.abc import Callable

import msgspec

from feeds import topics
from feeds.broker_services import decode_service_request
from feeds.codec import DecodeError, decode_balances_request, decode_order_message, encode
from feeds.config import GatewayConfig
from feeds.issuance_wire import decode_auction_input
from feeds.outbox import Publish
from matching.engine import Engine
from matching.errors import DecodeReject, EngineReject
from matching.messages import MassCancelRequest
from matching.outputs import Outcome

__all__ = ["RequestDesk"]


class RequestDesk:
    """Answers the queries of one cycle; ``take`` hands their publishes to the outbox
    after the cycle's commit, so an answer never names a seq the journal may lose first
    (the engine's other answers wait for the commit the same way)."""

    def __init__(self, engine: Engine, on_wire: Callable[[object], object],
                 config: Callable[[], GatewayConfig]):
        self.engine = engine
        self._on_wire = on_wire                  # a shard's ids on its reports
        self._config = config                    # the gateway's, as it stands
        self._answers: list[Publish] = []

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
        if out is None:
            return None                          # another shard answers it
        for _, report in out.reports:
            self._answers.append(Publish(topic, encode(self._on_wire(report)), False,
                                         "reply", broker, correlation or None))
        return None

    def _answer(self, broker: str, payload: bytes) -> Outcome | None:
        engine, cfg = self.engine, self._config()
        balances = decode_balances_request(payload)
        if balances is not None:
            out = engine.balances(broker, balances.request_id, balances.account)
            if cfg.shard:                        # this shard's own allocations
                out.reports[:] = [(b, msgspec.structs.replace(r, shard=cfg.shard))
                                  for b, r in out.reports]
            return out
        service = decode_service_request(payload)
        if service is not None and not isinstance(service, MassCancelRequest):
            if not cfg.shard or service.symbol in engine.instruments:
                return engine.order_status(broker, service)
            if not cfg.answers_unserved:
                return None
            directory = cfg.shard_directory
            assert directory is not None, "an answering shard has its directory"
            if not service.symbol:
                return engine.refuse(broker, DecodeReject.INVALID_FIELD,
                                     "an order status request on a sharded venue names "
                                     "its symbol", service.cl_ord_id or None)
            if directory.shard_of(service.symbol) is not None:
                return None                      # its shard answers
            return engine.refuse(broker, EngineReject.WRONG_SHARD,
                                 directory.unserved_text(service.symbol),
                                 service.cl_ord_id or None, service.symbol)
        if cfg.shard and not cfg.answers_unserved:
            return None
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

"""An async broker client: submit, cancel and replace orders; await their reports by ClOrdID.

    async with BrokerClient("alpha", "127.0.0.1", 1883) as c:
        ack = await c.submit(NewOrderSingle("c1", 1001, "TB3M", "buy", "1", price="99.015"))
        print(ack.exec_type, ack.leaves_qty)
        try:
            await c.cancel("c2", "c1", "TB3M")
        except CancelRejected as exc:         # FIX 35=9: the order is as it was
            print(exc.reject.cxl_rej_reason, exc.reject.ord_status, exc.reject.text)
        async for report in c.reports():      # fills, cancels, expiries as they come
            ...

A request not answered in ``timeout`` seconds is sent again, the same message flagged
PossDup (FIX 43), after reconnecting if needed: the engine answers a resend with the
original outcome. Every request needs a ClOrdID new for the trading day; one already used
is refused as a duplicate. The session is persistent (stable client id), so reports are
queued by the broker while the client is briefly disconnected.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass

import aiomqtt
import msgspec
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from feeds import mqtt, topics
from feeds.aiomqtt_seams import disconnect_ending_session
from feeds.codec import BalancesRequest, encode
from matching.messages import (
    AuctionAward,
    AuctionBidStatus,
    AuctionInput,
    Balances,
    CorporateAction,
    EngineReport,
    ExecutionReport,
    NewOrderSingle,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrderMessage,
    OrderStatusRequest,
)

log = logging.getLogger("tokenbook.client")

__all__ = ["BrokerClient", "RequestTimeout", "CancelRejected", "QueryRefused"]


class RequestTimeout(Exception):
    """No report for a ClOrdID after every retry."""


class QueryRefused(Exception):
    """The venue refused a query (``report``: its Rejected ExecutionReport, with
    ``ord_rej_reason`` and ``text``)."""

    def __init__(self, report: ExecutionReport):
        super().__init__(f"query refused: {report.ord_rej_reason}: {report.text}")
        self.report = report


class CancelRejected(Exception):
    """The venue refused a cancel or replace: ``reject`` is its OrderCancelReject (FIX
    35=9, with ``cxl_rej_reason``, the order's current ``ord_status`` and ``text``)."""

    def __init__(self, reject: OrderCancelReject):
        super().__init__(f"{reject.cxl_rej_response_to} {reject.cl_ord_id!r} of "
                         f"{reject.orig_cl_ord_id!r} refused: {reject.cxl_rej_reason}: "
                         f"{reject.text}")
        self.reject = reject


@dataclass
class _Query:
    """A query awaiting ``wanted`` answers (one per shard on a sharded venue)."""
    wanted: int
    answers: list[EngineReport]
    done: asyncio.Future


class BrokerClient:
    """One broker's order-entry connection; see the module docstring.

    The MQTT session is persistent (MQTT 5 clean_start=False, a stable ``client_id``,
    ``session_expiry`` seconds): while this client is briefly disconnected the broker
    queues its execution reports and delivers them on reconnect. A lost connection is
    retried with a capped backoff; after reconnecting, every request still unanswered is
    sent again with its ClOrdID, flagged PossDup (a restarted broker may have lost it; the
    engine answers a resend with the original outcome). Reports seen twice (QoS 1
    redelivery, a resend's PossResend copy) reach ``reports()`` once. ``reports()`` has the
    OrderCancelRejects too; ``cancel`` and ``replace`` raise theirs as CancelRejected.
    """

    def __init__(self, broker: str, host: str, port: int, *, timeout: float = 2.0,
                 retries: int = 3, mqtt_options: dict | None = None,
                 client_id: str | None = None, session_expiry: int = 300,
                 reconnect_max: float = 1.0, order_topic: str = "v1"):
        if not topics.valid_name(broker):
            raise ValueError(f"broker id {broker!r} is not a valid topic segment")
        if order_topic not in ("v1", "v2"):
            raise ValueError(f"order_topic must be v1 or v2, got {order_topic!r}")
        self.broker, self.host, self.port = broker, host, port
        # "v2": each request goes to tokenbook/v2/orders/{broker}/{symbol}, the topic the
        # shard serving the symbol subscribes to (a sharded venue, feeds.shard).
        self.order_topic = order_topic
        self.timeout, self.retries = timeout, retries
        # One client id per broker: a second client for the same broker takes the session over.
        self.client_id = client_id or f"tokenbook-client-{broker}"
        self.session_expiry = session_expiry
        self.reconnect_max = reconnect_max
        # Extra aiomqtt.Client arguments: username/password, tls_params (feeds.mqtt).
        self.mqtt_options = dict(mqtt_options or {})
        # Queries go to requests/{broker}; their answers come back here (MQTT 5
        # request/response, feeds.requests), one reply topic per client id.
        self.reply_topic = topics.replies(broker, self.client_id if topics.valid_name(
            self.client_id) else "client")
        self._waiters: dict[str, asyncio.Future] = {}
        self._queries: dict[bytes, _Query] = {}        # by Correlation Data
        self._pending: dict[str, OrderMessage] = {}    # unanswered requests by ClOrdID
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._queue: asyncio.Queue[EngineReport] = asyncio.Queue()
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._decoder = msgspec.json.Decoder(EngineReport | AuctionBidStatus | AuctionAward)
        self.reconnects = 0
        self.duplicates = 0
        self._resends: set[asyncio.Future] = set()

    async def __aenter__(self) -> BrokerClient:
        self._reader = asyncio.create_task(self._run())
        await asyncio.wait_for(self._connected.wait(), 10)
        return self

    async def __aexit__(self, *exc) -> None:
        self._closing = True
        c = self._client
        if c is not None:
            # A clean goodbye ends the session too: nothing should queue for a client that left.
            try:
                disconnect_ending_session(c)                  # aiomqtt has no such option
            except Exception:  # noqa: BLE001  # pragma: no cover - best effort
                pass
        if self._reader:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, aiomqtt.MqttError):
                pass

    def _mqtt_client(self) -> aiomqtt.Client:
        will = aiomqtt.Will(topics.presence(self.broker), b"offline", qos=1, retain=True)
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.session_expiry
        options = {"identifier": self.client_id, "will": will, "clean_start": False,
                   "properties": props, **self.mqtt_options}
        return mqtt.client(self.host, self.port, **options)

    async def _run(self) -> None:
        """Stay connected: (re)connect, subscribe to our exec topic, dispatch reports."""
        delay, first = 0.05, True
        while not self._closing:
            try:
                async with self._mqtt_client() as c:
                    await c.subscribe(topics.exec_reports(self.broker), qos=1)
                    await c.subscribe(self.reply_topic, qos=1)
                    await c.publish(topics.presence(self.broker), b"online", qos=1, retain=True)
                    self._client = c
                    self._connected.set()
                    delay = 0.05
                    if not first:
                        self._resend_pending(c)
                    first = False
                    async for message in c.messages:
                        if message.topic.value == self.reply_topic:
                            self._answer(message)
                        else:
                            self._dispatch(message.payload)
            except aiomqtt.MqttError as exc:
                self._connected.clear()
                self._client = None
                if not self._closing:
                    self.reconnects += 1
                    log.warning("%s: connection lost (%s); reconnecting in %.2f s",
                                self.broker, exc, delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.reconnect_max)

    def _resend_pending(self, c: aiomqtt.Client) -> None:
        """Send every unanswered request again, same ClOrdID (the old connection may have
        lost it, or the broker restarted without it)."""
        for msg in list(self._pending.values()):
            # The loop keeps only weak references to tasks: hold each until it is done.
            task = asyncio.ensure_future(self._publish_quietly(
                c, msgspec.structs.replace(msg, poss_dup=True)))
            self._resends.add(task)
            task.add_done_callback(self._resends.discard)

    def topic_for(self, msg) -> str:
        """The order-entry topic of ``msg``: v1, or v2 by its symbol (a request without
        one, the balances query, stays on v1)."""
        symbol = getattr(msg, "symbol", "")
        if self.order_topic == "v2" and symbol:
            return topics.orders_v2(self.broker, symbol)
        return topics.orders(self.broker)

    async def _publish_quietly(self, c: aiomqtt.Client, msg) -> None:
        try:
            await c.publish(self.topic_for(msg), encode(msg), qos=1)
        except aiomqtt.MqttError:
            pass                          # the request's own retry loop sends it again

    def _dispatch(self, payload: bytes) -> None:
        try:
            report = self._decoder.decode(payload)
        except msgspec.DecodeError:
            log.error("%s: undecodable report %r", self.broker, payload[:100])
            return
        if isinstance(report, Balances):
            # The answer to a balances query: its request id names the waiter.
            waiter = self._waiters.pop(f"balances:{report.request_id}", None)
            if waiter is not None and not waiter.done():
                waiter.set_result(report)
            return
        if isinstance(report, (AuctionBidStatus, AuctionAward)):
            # A bid's status or award (matching.issuance): its auction and bid id name it.
            waiter = self._waiters.pop(f"bid:{report.auction_id}:{report.bid_id}", None)
            if waiter is not None and not waiter.done():
                waiter.set_result(report)
            key = (f"auc:{report.seq}:{type(report).__name__}", report.bid_id)
        elif isinstance(report, CorporateAction):
            # A coupon or redemption paid: no order of ours; its input and account name it.
            key = (f"ca:{report.seq}", str(report.account))
        else:
            waiter = self._waiters.pop(report.cl_ord_id, None)
            if waiter is not None and not waiter.done():
                waiter.set_result(report)
            # A cancel reject has no ExecID; its input's sequence number names it.
            key = ((report.exec_id if type(report) is ExecutionReport else f"9:{report.seq}"),
                   report.cl_ord_id)
        if key in self._seen:
            self.duplicates += 1
            return
        self._seen[key] = None
        if len(self._seen) > 200_000:
            self._seen.popitem(last=False)
        self._queue.put_nowait(report)

    def _answer(self, message: aiomqtt.Message) -> None:
        """A query's answer on the reply topic: its Correlation Data names the query."""
        correlation = getattr(message.properties, "CorrelationData", None)
        query = self._queries.get(bytes(correlation or b""))
        if query is None or query.done.done():
            return                        # a late answer to a query given up on
        try:
            query.answers.append(self._decoder.decode(message.payload))
        except msgspec.DecodeError as exc:
            query.done.set_exception(exc)
            return
        if len(query.answers) >= query.wanted:
            query.done.set_result(None)

    async def _query(self, msg, answers: int = 1) -> list[EngineReport]:
        """One query on requests/{broker}, answered on ``reply_topic`` (``answers``: how
        many to wait for, one per shard of a sharded venue); one try of ``timeout *
        retries`` seconds (a query changes nothing: ask again)."""
        correlation = uuid.uuid4().bytes
        query = _Query(answers, [], asyncio.get_running_loop().create_future())
        self._queries[correlation] = query
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = self.reply_topic
        props.CorrelationData = correlation
        try:
            async with asyncio.timeout(self.timeout * self.retries):
                await self._connected.wait()
                if self._client is None:
                    raise RequestTimeout(f"{self.broker}: not connected")
                await self._client.publish(topics.requests(self.broker), encode(msg), qos=1,
                                           properties=props)
                await query.done
        except TimeoutError:
            raise RequestTimeout(f"{len(query.answers)} of {answers} answers to "
                                 f"{type(msg).__name__}") from None
        finally:
            self._queries.pop(correlation, None)
        for report in query.answers:
            if type(report) is ExecutionReport and report.exec_type == "rejected":
                raise QueryRefused(report)
        return query.answers

    async def _request(self, msg) -> EngineReport:
        """Send and await the first report for the message's ClOrdID, resending if needed
        (flagged PossDup after the first send).

        ``retries`` unanswered sends of ``timeout`` seconds each; a send that fails because
        the connection broke does not use up a try, but the whole request still ends after
        ``timeout * retries`` seconds.
        """
        self._pending[msg.cl_ord_id] = msg
        payload, again = encode(msg), encode(msgspec.structs.replace(msg, poss_dup=True))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout * self.retries
        tries, broken = 0, 0
        try:
            while tries < self.retries and loop.time() < deadline:
                fut = loop.create_future()
                self._waiters[msg.cl_ord_id] = fut
                try:
                    async with asyncio.timeout(min(self.timeout, deadline - loop.time())):
                        await self._connected.wait()
                        if self._client is None:        # lost again: retry like a failed publish
                            raise aiomqtt.MqttError("not connected")
                        await self._client.publish(self.topic_for(msg), payload, qos=1)
                        payload = again
                        return await fut
                except (TimeoutError, aiomqtt.MqttError, AttributeError) as exc:
                    if fut.done() and not fut.cancelled():
                        return fut.result()
                    self._waiters.pop(msg.cl_ord_id, None)
                    if isinstance(exc, asyncio.TimeoutError):
                        tries += 1
                        log.warning("%s: no answer to %s (try %d)", self.broker,
                                    msg.cl_ord_id, tries)
                    else:
                        # The connection broke under the publish: give the reconnect time.
                        await asyncio.sleep(min(self.timeout, 0.05 * 2 ** broken))
                        broken += 1
            raise RequestTimeout(f"no report for ClOrdID {msg.cl_ord_id!r}")
        finally:
            self._pending.pop(msg.cl_ord_id, None)

    async def submit(self, order: NewOrderSingle) -> ExecutionReport:
        """Place an order; returns its New (or Rejected) report."""
        report = await self._request(order)
        assert type(report) is ExecutionReport, report      # a new order is never 35=9
        return report

    async def cancel(self, cl_ord_id: str, orig_cl_ord_id: str, symbol: str) -> ExecutionReport:
        """Cancel the order ``orig_cl_ord_id`` (FIX 35=F); returns its Canceled report, or
        raises CancelRejected with the venue's OrderCancelReject (the order is as it was)."""
        return self._done(await self._request(
            OrderCancelRequest(cl_ord_id, orig_cl_ord_id, symbol)))

    async def replace(self, cl_ord_id: str, orig_cl_ord_id: str, symbol: str, price: str,
                      qty: str) -> ExecutionReport:
        """Replace the order ``orig_cl_ord_id`` (FIX 35=G; ``qty``: the new total); returns
        its Replaced report, or raises CancelRejected (the order is as it was)."""
        return self._done(await self._request(
            OrderCancelReplaceRequest(cl_ord_id, orig_cl_ord_id, symbol, price, qty)))

    @staticmethod
    def _done(report: EngineReport) -> ExecutionReport:
        if type(report) is OrderCancelReject:
            raise CancelRejected(report)
        assert type(report) is ExecutionReport, report
        return report

    async def balances(self, account: int | None = None) -> Balances:
        """This broker's accounts (or ``account``) as the engine holds them, as of the
        engine seq the answer names: balances, reservations, frozen amounts. Asked over
        MQTT 5 request/response (``feeds.requests``); raises QueryRefused or
        RequestTimeout."""
        [report] = await self._query(BalancesRequest(uuid.uuid4().hex[:16], account))
        assert type(report) is Balances, report
        return report

    async def shard_balances(self, shards: int, account: int | None = None
                             ) -> dict[str, Balances]:
        """On a sharded venue of ``shards`` shards: each shard's own allocation of this
        broker's accounts, by shard id (each answers for its own ledger)."""
        out: dict[str, Balances] = {}
        for r in await self._query(BalancesRequest(uuid.uuid4().hex[:16], account), shards):
            assert type(r) is Balances, r
            out[r.shard or ""] = r
        return out

    async def order_status(self, *, cl_ord_id: str = "", order_id: str = "",
                           symbol: str = "") -> ExecutionReport:
        """FIX 35=H: one of this broker's orders as the engine holds it, an ExecType=I
        report (OrdStatus, CumQty, LeavesQty, AvgPx); an order not found is a Rejected
        report with OrdStatus rejected and ORDER_NOT_FOUND, returned as it is."""
        [report] = await self._query(OrderStatusRequest(cl_ord_id, order_id, symbol,
                                                        uuid.uuid4().hex[:16]))
        assert type(report) is ExecutionReport, report
        return report

    async def bid(self, auction_id: str, account: int, bid_id: str, amount: str,
                  rate: str = "", net_long: str = "") -> AuctionBidStatus:
        """A sealed bid in an issuance auction (``rate`` "" for non-competitive; amounts
        face value): its acknowledgement, ``status`` accepted or rejected (``reason``).
        One try of ``timeout * retries`` seconds: a bid id is used once per auction, so
        ask ``balances`` before bidding again. The award comes later on ``reports()``."""
        return await self._auction_request(AuctionInput(
            "bid", auction_id, account=account, bid_id=bid_id, amount=amount, rate=rate,
            net_long=net_long))

    async def cancel_bid(self, auction_id: str, bid_id: str) -> AuctionBidStatus:
        """Withdraw a bid before the close: ``status`` cancelled, or rejected."""
        return await self._auction_request(AuctionInput("cancel_bid", auction_id,
                                                        bid_id=bid_id))

    async def _auction_request(self, msg: AuctionInput) -> AuctionBidStatus:
        key = f"bid:{msg.auction_id}:{msg.bid_id}"
        fut = asyncio.get_running_loop().create_future()
        self._waiters[key] = fut
        try:
            async with asyncio.timeout(self.timeout * self.retries):
                await self._connected.wait()
                if self._client is None:
                    raise RequestTimeout(f"{self.broker}: not connected")
                await self._client.publish(topics.orders(self.broker), encode(msg), qos=1)
                return await fut
        except TimeoutError:
            raise RequestTimeout(f"no answer to {msg.action} {msg.bid_id}") from None
        finally:
            self._waiters.pop(key, None)

    def send_nowait(self, msg) -> asyncio.Task:
        """Fire a request without awaiting its answer (its reports still reach reports())."""
        if self._client is None:
            raise RuntimeError(f"{self.broker}: not connected")
        return asyncio.ensure_future(self._client.publish(self.topic_for(msg),
                                                          encode(msg), qos=1))

    def pending_reports(self) -> list[EngineReport]:
        """Every report received and not yet taken, without waiting."""
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def reports(self):
        """Every report for this broker, in arrival order: ExecutionReports and
        OrderCancelRejects (``msg`` tells them apart: ``exec_report``, ``cancel_reject``)."""
        while True:
            yield await self._queue.get()

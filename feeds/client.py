"""An async broker client: submit, cancel and replace orders; await their reports by ClOrdID.

    async with BrokerClient("alpha", "127.0.0.1", 1883) as c:
        ack = await c.submit(NewOrderSingle("c1", 1001, "TB3M", "buy", "1", price="99.015"))
        print(ack.exec_type, ack.leaves_qty)
        async for report in c.reports():      # fills, cancels, expiries as they come
            ...

A request not answered in ``timeout`` seconds is sent again with the same ClOrdID (the
engine answers a resend with the original outcome), after reconnecting if needed.
"""
from __future__ import annotations

import asyncio
import logging
import uuid

import aiomqtt
import msgspec

from feeds import mqtt, topics
from feeds.codec import encode
from matching.messages import (
    ExecutionReport, NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest,
)

log = logging.getLogger("tokenbook.client")

__all__ = ["BrokerClient", "RequestTimeout"]


class RequestTimeout(Exception):
    """No report for a ClOrdID after every retry."""


class BrokerClient:
    def __init__(self, broker: str, host: str, port: int, *, timeout: float = 2.0,
                 retries: int = 3, mqtt_options: dict | None = None):
        if not topics.valid_name(broker):
            raise ValueError(f"broker id {broker!r} is not a valid topic segment")
        self.broker, self.host, self.port = broker, host, port
        self.timeout, self.retries = timeout, retries
        # Extra aiomqtt.Client arguments: username/password, tls_params (feeds.mqtt).
        self.mqtt_options = dict(mqtt_options or {})
        self._waiters: dict[str, asyncio.Future] = {}
        self._queue: asyncio.Queue[ExecutionReport] = asyncio.Queue()
        self._client: aiomqtt.Client | None = None
        self._reader: asyncio.Task | None = None
        self._connected = asyncio.Event()
        self._closing = False
        self._decoder = msgspec.json.Decoder(ExecutionReport)

    async def __aenter__(self) -> "BrokerClient":
        self._reader = asyncio.create_task(self._run())
        await asyncio.wait_for(self._connected.wait(), 10)
        return self

    async def __aexit__(self, *exc) -> None:
        self._closing = True
        if self._reader:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, aiomqtt.MqttError):
                pass

    async def _run(self) -> None:
        """Stay connected: (re)connect, subscribe to our exec topic, dispatch reports."""
        while not self._closing:
            try:
                will = aiomqtt.Will(topics.presence(self.broker), b"offline", qos=1, retain=True)
                async with mqtt.client(self.host, self.port, will=will,
                                       identifier=f"{self.broker}-{uuid.uuid4().hex[:8]}",
                                       **self.mqtt_options) as c:
                    await c.subscribe(topics.exec_reports(self.broker), qos=1)
                    await c.publish(topics.presence(self.broker), b"online", qos=1, retain=True)
                    self._client = c
                    self._connected.set()
                    async for message in c.messages:
                        self._dispatch(message.payload)
            except aiomqtt.MqttError as exc:
                self._connected.clear()
                self._client = None
                if not self._closing:
                    log.warning("%s: connection lost (%s); reconnecting", self.broker, exc)
                    await asyncio.sleep(0.5)

    def _dispatch(self, payload: bytes) -> None:
        try:
            report = self._decoder.decode(payload)
        except msgspec.DecodeError:
            log.error("%s: undecodable report %r", self.broker, payload[:100])
            return
        waiter = self._waiters.pop(report.cl_ord_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(report)
        self._queue.put_nowait(report)

    async def _request(self, msg) -> ExecutionReport:
        """Send and await the first report for the message's ClOrdID, resending if needed."""
        for attempt in range(self.retries):
            await self._connected.wait()
            fut = asyncio.get_running_loop().create_future()
            self._waiters[msg.cl_ord_id] = fut
            try:
                await self._client.publish(topics.orders(self.broker), encode(msg), qos=1)
                return await asyncio.wait_for(fut, self.timeout)
            except (asyncio.TimeoutError, aiomqtt.MqttError, AttributeError):
                self._waiters.pop(msg.cl_ord_id, None)
                log.warning("%s: no answer to %s (try %d)", self.broker, msg.cl_ord_id,
                            attempt + 1)
        raise RequestTimeout(f"no report for ClOrdID {msg.cl_ord_id!r}")

    async def submit(self, order: NewOrderSingle) -> ExecutionReport:
        """Place an order; returns its New (or Rejected) report."""
        return await self._request(order)

    async def cancel(self, cl_ord_id: str, orig_cl_ord_id: str, symbol: str) -> ExecutionReport:
        return await self._request(OrderCancelRequest(cl_ord_id, orig_cl_ord_id, symbol))

    async def replace(self, cl_ord_id: str, orig_cl_ord_id: str, symbol: str, price: str,
                      qty: str) -> ExecutionReport:
        return await self._request(
            OrderCancelReplaceRequest(cl_ord_id, orig_cl_ord_id, symbol, price, qty))

    def send_nowait(self, msg) -> asyncio.Task:
        """Fire a request without awaiting its answer (its reports still reach reports())."""
        return asyncio.ensure_future(self._client.publish(topics.orders(self.broker),
                                                          encode(msg), qos=1))

    def pending_reports(self) -> list[ExecutionReport]:
        """Every report received and not yet taken, without waiting."""
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    async def reports(self):
        """Every report for this broker, in arrival order."""
        while True:
            yield await self._queue.get()

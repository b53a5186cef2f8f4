"""The fallback when no mosquitto binary exists: an in-process amqtt broker (MQTT 3.1.1).

amqtt is not a dependency; ``feeds.broker`` uses this only if it is importable, and never
for a secured broker.
"""
from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any

from feeds.localproc import accepts

__all__ = ["InProcessBroker"]

log = logging.getLogger("tokenbook.broker")


class InProcessBroker:
    """An amqtt broker on its own thread and event loop (so it serves sync callers too)."""

    def __init__(self, module, host: str, port: int, timeout: float):
        self.module, self.host, self.port, self.timeout = module, host, port, timeout
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="amqtt-broker",
                                       daemon=True)
        self.broker: Any = None

    def start(self) -> None:
        from feeds.broker import BrokerUnavailable  # feeds.broker imports this module
        self.thread.start()
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "sys_interval": 0,
            "auth": {"allow-anonymous": True},
            "topic-check": {"enabled": False},
        }

        async def go():
            self.broker = self.module.Broker(config)
            await self.broker.start()
        try:
            asyncio.run_coroutine_threadsafe(go(), self.loop).result(self.timeout)
        except BaseException as exc:
            self.stop()
            raise BrokerUnavailable(f"in-process amqtt broker did not start: {exc}") from exc
        deadline = time.monotonic() + self.timeout
        while not accepts(self.port):
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerUnavailable("in-process amqtt broker did not accept connections")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.broker is not None and self.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self.broker.shutdown(), self.loop).result(5)
            except Exception as exc:  # noqa: BLE001 - shutting down: log whatever it was
                log.warning("amqtt shutdown: %s", exc)
        self.broker = None
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self.thread.is_alive():
            self.thread.join(5)
        if not self.loop.is_running() and not self.loop.is_closed():
            self.loop.close()

"""What both gateway transports do when their broker connection is lost: stop, give up,
or wait a capped exponential backoff and connect again."""
from __future__ import annotations

import asyncio
import logging
import time

from feeds.config import GatewayConfig

__all__ = ["Reconnects"]

log = logging.getLogger("tokenbook.gateway")


class Reconnects:
    """The backoff of one gateway: ``reconnect_min`` doubling up to ``reconnect_max``
    seconds; with ``reconnect_give_up`` set, the loss is raised after that long down."""

    def __init__(self, config: GatewayConfig):
        self.config = config
        self.delay = config.reconnect_min
        self.down_since: float | None = None

    def connected(self) -> None:
        """A connection came up: the next loss starts a fresh backoff."""
        self.delay, self.down_since = self.config.reconnect_min, None

    async def after_loss(self, exc: BaseException, stop: asyncio.Event, gw) -> bool:
        """The connection of ``gw`` was lost with ``exc``: False when ``stop`` is set (the
        caller returns), True after waiting the backoff (the caller connects again).
        Raises ``exc`` once the give-up deadline passed."""
        cfg = self.config
        if stop.is_set():
            log.warning("gateway stopped while disconnected (%s); %d messages "
                        "unpublished (journaled)", exc, len(gw.cycle.outbox))
            return False
        now = time.monotonic()
        self.down_since = self.down_since or now
        if cfg.reconnect_give_up is not None and now - self.down_since > cfg.reconnect_give_up:
            raise exc
        gw.stats.reconnects += 1
        log.warning("gateway lost mqtt://%s:%d (%s); reconnecting in %.2f s",
                    gw.host, gw.port, exc, self.delay)
        try:
            await asyncio.wait_for(stop.wait(), self.delay)
        except TimeoutError:
            pass
        self.delay = min(self.delay * 2, cfg.reconnect_max)
        return True

"""The engine's connection to a NATS JetStream cluster: one stream per venue (or shard),
its subjects, and fenced appends.

Every append carries ``Nats-Expected-Last-Sequence`` (the stream sequence this writer
last saw) and a ``Nats-Msg-Id``; the stream refuses an append after another writer's
(error 10071: ``Fenced``, the stream unchanged), and a retry of the same message returns
the original ack marked duplicate. "No responders" and timeouts (a Raft election: 4-9 s
after losing the stream's leader) mean "retry the same message", for up to ``retry_for``
seconds.

nats-py is asyncio; the engine's group commit is synchronous. ``NatsLink`` runs the
client on an event loop of its own in a daemon thread: ``call`` blocks on a coroutine
there (the commit), ``acall`` awaits one from another loop (the standby, the gateway).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import threading
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["StreamNames", "NatsLink", "Fenced", "StreamUnavailable", "FENCED_CODE",
           "JOURNAL", "EPOCH", "HEARTBEAT"]

log = logging.getLogger("tokenbook.jetstream")
T = TypeVar("T")

#: JetStream's "wrong last sequence" error: another writer appended first.
FENCED_CODE = 10071
#: The kinds of message on a venue's stream (the last token of the subject).
JOURNAL, EPOCH, HEARTBEAT = "j", "e", "hb"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class Fenced(Exception):
    """The stream refused an append: another writer appended after ``expected``."""

    def __init__(self, expected: int, description: str = ""):
        super().__init__(f"another writer appended to the stream after sequence {expected}"
                         f"{f' ({description})' if description else ''}: this engine is "
                         "fenced off")
        self.expected = expected


class StreamUnavailable(Exception):
    """No quorum answered within the retry time, or the stream refused for another reason."""


@dataclass(frozen=True)
class StreamNames:
    """The names of one venue's (or shard's) stream, its subjects and its snapshot bucket."""
    venue: str = "tokenbook"

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.venue):
            raise ValueError(f"stream name must be 1-64 of [A-Za-z0-9_-], got {self.venue!r}")

    @property
    def stream(self) -> str:
        return f"TB_{self.venue}"

    def subject(self, kind: str) -> str:
        return f"tb.{self.venue}.{kind}"

    @property
    def bucket(self) -> str:
        return f"TB_{self.venue}_snapshots"


class NatsLink:
    """A nats-py connection on its own event loop thread; see the module docstring."""

    def __init__(self, servers: list[str], *, name: str = "tokenbook", timeout: float = 2.0,
                 retry_for: float = 60.0):
        self.servers, self.name = servers, name
        self.timeout, self.retry_for = timeout, retry_for
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="nats", daemon=True)
        self._thread.start()
        self.nc: Any = None
        self.js: Any = None

    @classmethod
    def parse(cls, urls: str, **kwargs) -> NatsLink:
        """``nats://h1:p1,nats://h2:p2`` (or ``h:p``): a link, not yet connected."""
        servers = [u if "://" in u else f"nats://{u}" for u in
                   (s.strip() for s in urls.split(",")) if u]
        if not servers:
            raise ValueError("no NATS server URL given")
        return cls(servers, **kwargs)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    # ------------------------------------------------------------------ crossing threads
    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the link's loop and wait for it (from any other thread)."""
        return self.submit(coro).result(timeout)

    async def acall(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` run on the link's loop, from another event loop."""
        return await asyncio.wrap_future(self.submit(coro))

    # ------------------------------------------------------------------ connection
    async def connect(self) -> None:
        """Connect (reconnecting for ever after) and get the JetStream context."""
        import nats

        async def quiet(exc: Exception) -> None:
            log.debug("nats: %s", exc)
        self.nc = await nats.connect(self.servers, name=self.name, connect_timeout=2,
                                     max_reconnect_attempts=-1, reconnect_time_wait=0.1,
                                     error_cb=quiet, allow_reconnect=True)
        self.js = self.nc.jetstream(timeout=self.timeout)

    async def ensure_stream(self, names: StreamNames, replicas: int = 3) -> None:
        """Create the venue's stream if missing (file storage, ``replicas`` copies)."""
        from nats.js.api import StorageType, StreamConfig
        from nats.js.errors import NotFoundError
        try:
            await self.js.stream_info(names.stream)
            return
        except NotFoundError:
            pass
        config = StreamConfig(name=names.stream, subjects=[names.subject(">")],
                              storage=StorageType.FILE, num_replicas=replicas,
                              duplicate_window=120.0, allow_direct=True, max_msg_size=-1)
        await self.retrying(lambda: self.js.add_stream(config), "create the stream")

    async def last_seq(self, names: StreamNames) -> int:
        """The stream's last sequence number (0: empty)."""
        info = await self.retrying(lambda: self.js.stream_info(names.stream), "read the stream")
        return int(info.state.last_seq)

    async def close(self) -> None:
        if self.nc is not None and not self.nc.is_closed:
            try:
                await asyncio.wait_for(self.nc.close(), 3)
            except (TimeoutError, asyncio.CancelledError):
                pass

    def shutdown(self) -> None:
        """Close the connection and stop the loop thread (idempotent)."""
        if self.loop.is_closed() or not self._thread.is_alive():
            return
        try:
            self.call(self.close(), 5)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    # ------------------------------------------------------------------ appends
    async def append(self, subject: str, payload: bytes, *, expected: int,
                     msg_id: str) -> tuple[int, bool]:
        """Publish one fenced message; (stream seq, duplicate) once a quorum has it.

        ``Fenced`` if another writer appended after ``expected``; StreamUnavailable if no
        quorum answered for ``retry_for`` seconds (the same message was retried)."""
        from nats.js.errors import APIError
        headers = {"Nats-Expected-Last-Sequence": str(expected), "Nats-Msg-Id": msg_id}
        try:
            ack = await self.retrying(
                lambda: self.js.publish(subject, payload, headers=dict(headers)),
                f"append after sequence {expected}")
        except APIError as exc:
            if exc.err_code == FENCED_CODE:
                raise Fenced(expected, exc.description or "") from None
            raise StreamUnavailable(f"the stream refused the append: {exc}") from None
        return int(ack.seq), bool(ack.duplicate)

    async def retrying(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        """``attempt()`` again on no responders, timeouts and lost connections."""
        import nats.errors
        from nats.js.errors import APIError, NoStreamResponseError, ServiceUnavailableError
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry_for
        pause = 0.02
        while True:
            try:
                return await attempt()
            except (ServiceUnavailableError, NoStreamResponseError,
                    nats.errors.NoRespondersError,
                    nats.errors.TimeoutError, nats.errors.ConnectionClosedError,
                    nats.errors.StaleConnectionError, nats.errors.ConnectionReconnectingError,
                    nats.errors.OutboundBufferLimitError, TimeoutError) as exc:
                # No responders and 503s: no stream leader yet. Anything else is an answer.
                last: Exception = exc
            except APIError as exc:
                if exc.code != 503 and exc.err_code not in (None, 10008):
                    raise
                last = exc
            if loop.time() > deadline:
                raise StreamUnavailable(f"cannot {what}: no quorum for {self.retry_for:g} s "
                                        f"({type(last).__name__}: {last})")
            log.debug("cannot %s yet (%s): retrying", what, type(last).__name__)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.5)

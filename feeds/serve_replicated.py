"""``tokenbook serve --journal nats://...``: the engine on a replicated JetStream journal,
as the primary or (``--standby``) as a warm standby that takes over.

Nothing is local: the venue is its stream (journal groups, epoch records, heartbeats) and
its snapshot bucket. A primary start catches up from the newest snapshot, listens for
``--takeover-after`` seconds (anything appended meanwhile: a live primary, so it refuses
to start; use ``--standby``), then claims the stream with an epoch record; on an empty
stream it founds the venue (``--accounts``, or the demo accounts). A standby catches up
and follows; once the stream has been silent for ``--takeover-after`` seconds and it is
caught up it claims: accepted, it serves (the MQTT engine identity, retained topics
republished, the last inputs' reports resent marked PossResend); refused, it follows on.
A primary that finds its append refused (10071) exits at once with EXIT_FENCED, before
it publishes anything more. ``--take-over`` claims without listening first (a planned
switch): the running primary is fenced at its next heartbeat.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time

from feeds.exits import (
    EXIT_ANOTHER_ENGINE,
    EXIT_BROKER,
    EXIT_FENCED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    broker_url,
)
from feeds.gateway import GatewayConfig
from feeds.guard import AnotherEngine
from feeds.standby import FencingGuard, Follower, ReplicatedEngine
from feeds.transports import gateway_class
from matching import __version__
from matching.jetstream import NatsLink, StreamNames, StreamUnavailable
from matching.journal_jetstream import JetStreamJournal, JournalFenced
from matching.snapshot_store import SnapshotStore

__all__ = ["serve_replicated", "fenced_exit"]

log = logging.getLogger("tokenbook")


def fenced_exit(exc: JournalFenced) -> None:
    """Another writer has the stream: say so and exit now, publishing nothing more (the
    broker's will of this connection says ``offline``; the new primary republishes)."""
    try:
        print(f"tokenbook serve: fenced: {exc}; exiting", file=sys.stderr, flush=True)
    finally:
        os._exit(EXIT_FENCED)


def _config(args, shards):
    from feeds.serve import engine_mqtt_options
    mqtt_options, probe_options = engine_mqtt_options(args)
    return GatewayConfig(
        cancel_on_disconnect=args.cancel_on_disconnect or frozenset(),
        drop_copy=args.drop_copy or frozenset(),
        # The replicated engine writes its snapshots to the bucket, not to this path.
        snapshot_dir="nats-object-store", snapshot_every=args.snapshot_every,
        mqtt_options=mqtt_options, probe_options=probe_options, freeze_gc=True,
        schedule=args.session, **shards.config())


def stream_of(venue: str, shard: str) -> StreamNames:
    """A venue's stream and bucket, or its shard's own: each shard is its own sequencer,
    journal and primary/standby pair (``--stream tokenbook --shard a`` is ``tokenbook-a``)."""
    return StreamNames(f"{venue}-{shard}" if shard else venue)


async def _found(follower: Follower, args, registry, accounts, instance: str) -> None:
    """A new venue on an empty stream: epoch 1, and its first snapshot."""
    from feeds.serve import demo_ledger
    link, names = follower.link, follower.names
    last = await link.acall(link.last_seq(names))
    if last:
        raise CliError(EXIT_USAGE, f"stream {names.stream} holds {last} messages but no "
                                   "snapshot: not a tokenbook venue, or its bucket was lost")
    ledger = accounts if accounts is not None else demo_ledger(registry)
    engine = ReplicatedEngine(registry, ledger, clock=time.time_ns)
    engine.store = follower.store
    follower.adopt(engine, 0, 0)


async def serve_replicated(args) -> int:
    """The command; see the module docstring."""
    from feeds.serve import load_accounts, load_registry, shard_plan
    if not args.broker:
        raise CliError(EXIT_USAGE, "--journal needs --broker: the primary and its standbys "
                                   "serve one broker")
    host, port = broker_url(args.broker)
    registry = load_registry(args.instruments)
    accounts = load_accounts(args.accounts, registry, args.instruments) \
        if args.accounts else None
    shards = shard_plan(args, registry)
    registry, shard = shards.registry, shards.shard
    config = _config(args, shards)
    try:
        names = stream_of(args.stream, shard)
        link = NatsLink.parse(args.journal, name=f"tokenbook-{config.instance}")
    except ValueError as exc:
        raise CliError(EXIT_USAGE, f"--journal/--stream: {exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    engine = None
    try:
        try:
            await asyncio.wait_for(link.acall(link.connect()), 15)
            await link.acall(link.ensure_stream(names, args.replicas))
        except (TimeoutError, StreamUnavailable, OSError) as exc:
            raise CliError(EXIT_BROKER, f"cannot use the JetStream cluster at {args.journal}: "
                                        f"{exc}") from None
        store = SnapshotStore(link, names, args.replicas)
        follower = Follower(link, names, store, registry)
        role = "standby" if args.standby else "primary"
        while not await follower.load():
            if not args.standby:
                await _found(follower, args, registry, accounts, config.instance)
                break
            log.info("standby: no snapshot in %s yet; waiting for the venue", names.bucket)
            if await _stopped(stop, 0.5):
                return EXIT_OK
        if follower.tail.sub is not None:
            await follower.catch_up()
        print(f"tokenbook {__version__} serve ({role}"
              f"{', shard ' + shard if shard else ''}): stream {names.stream} on "
              f"{args.journal}, at engine seq {follower.engine.seq if follower.engine else 0} "
              f"(stream seq {follower.stream_seq}, epoch {follower.epoch})", flush=True)
        claimed = await _claim(follower, args, config.instance, stop)
        if claimed is None:
            return EXIT_OK
        engine = follower.engine
        assert engine is not None
        journal = JetStreamJournal(link, names, last_seq=engine.seq, stream_seq=claimed,
                                   epoch=follower.epoch, instance=config.instance,
                                   heartbeat=args.heartbeat_every, on_fenced=fenced_exit)
        engine.journal = journal
        engine.write_snapshot()
        print(f"  primary      epoch {follower.epoch} from engine seq {engine.seq} (stream "
              f"seq {claimed}); instance {config.instance} pid {os.getpid()}; fenced off: "
              f"{', '.join(sorted(follower.instances - {config.instance})) or 'none'}",
              flush=True)
        guard = FencingGuard.fencing(host, port, config,
                                     follower.instances - {config.instance})
        if args.seconds:
            loop.call_later(args.seconds, stop.set)
        gateway = gateway_class(args.transport)(engine, host, port, config,
                                                recovered=list(follower.resend), guard=guard)
        try:
            await gateway.run(stop)
        except AnotherEngine as exc:
            raise CliError(EXIT_ANOTHER_ENGINE, str(exc)) from None
        engine.write_snapshot()
        print(f"served {gateway.stats.received} messages, {gateway.stats.trades} trades; "
              f"state {engine.state_hash()[:16]} at sequence {engine.seq}", flush=True)
        return EXIT_OK
    finally:
        if engine is not None and engine.journal is not None:
            engine.journal.close()
        await asyncio.to_thread(link.shutdown)


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


async def _claim(follower: Follower, args, instance: str, stop: asyncio.Event) -> int | None:
    """Become the primary: the stream seq of this engine's epoch record (None: stopped)."""
    silence = args.takeover_after
    if not args.standby:
        if getattr(args, "take_over", False):
            # A planned switch: claim now; the running primary is fenced at its next
            # append (a heartbeat within --heartbeat-every) and exits.
            seq = await follower.claim(instance)
            if seq is None:
                raise CliError(EXIT_ANOTHER_ENGINE, "the stream moved while claiming it: "
                                                    "try --take-over again")
            return seq
        if follower.stream_seq and await follower.heard_within(silence):
            raise CliError(EXIT_ANOTHER_ENGINE, f"another engine is appending to stream "
                                                f"{follower.names.stream} (epoch "
                                                f"{follower.epoch}, instance "
                                                f"{follower.primary}): start this one with "
                                                "--standby")
        seq = await follower.claim(instance)
        if seq is None:
            raise CliError(EXIT_ANOTHER_ENGINE, "another engine claimed the stream first")
        return seq
    while not stop.is_set():
        waiting = asyncio.ensure_future(follower.wait_quiet(silence))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait((waiting, stopping), return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            waiting.cancel()
            return None
        stopping.cancel()
        log.warning("standby: the stream has been silent for %.2f s at seq %d (primary %s): "
                    "claiming it", silence, follower.stream_seq, follower.primary or "none")
        seq = await follower.claim(instance)
        if seq is not None:
            return seq
        follower.last_heard = time.monotonic()   # someone appended: hear it before retrying
    return None

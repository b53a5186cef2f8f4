"""``tokenbook serve``: the engine of a data directory behind the MQTT gateway.

It checks the configuration against what the data directory was founded with
(``feeds.venue``) and that no other engine serves the broker (``feeds.guard``), recovers
or founds the venue, prints what it serves, then runs the gateway until stopped.
"""
from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt

from feeds.broker import BrokerUnavailable, EmbeddedBroker
from feeds.exits import (
    EXIT_ANOTHER_ENGINE,
    EXIT_BROKER,
    EXIT_DATA,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    broker_error,
    broker_url,
    os_error,
)
from feeds.gateway import GatewayConfig
from feeds.transports import gateway_class
from matching import __version__, recovery
from matching.datadir import LOCK_NAME, DataDirError, DataDirLocked
from matching.engine import Engine
from matching.instruments import InstrumentError, Registry
from matching.ledger import CASH, Ledger, LedgerError

log = logging.getLogger("tokenbook")

# ---------------------------------------------------------------------- configuration
#: Demo brokers and their accounts: (broker, account ids, eligibility).
DEMO_BROKERS = (("alpha", (1001, 1002, 1003), "retail"), ("beta", (2001, 2002), "retail"),
                ("gamma", (3001,), "institutional"), ("mm", (9001, 9002), "institutional"))


def demo_ledger(registry: Registry) -> Ledger:
    """Accounts for a demo: cash and holdings in every instrument, all whitelisted."""
    led = Ledger()
    for broker, accounts, elig in DEMO_BROKERS:
        for acct in accounts:
            led.open_account(acct, broker, elig)
            led.deposit(acct, CASH, 5_000_000 * 10**6 if broker == "mm" else 250_000 * 10**6)
            for inst in registry:
                lots = inst.qty_to_lots(2000 if broker == "mm" else 100)
                led.deposit(acct, inst.symbol, lots)
                led.whitelist(acct, inst.symbol)
    return led


def is_demo_ledger(ledger: Ledger) -> bool:
    """Whether ``ledger`` holds exactly the demo accounts (owners and eligibility)."""
    demo = {(a, b, e) for b, ids, e in DEMO_BROKERS for a in ids}
    return {(a.account_id, a.broker, a.eligibility) for a in ledger.accounts.values()} == demo


def load_registry(instruments: str | None) -> Registry:
    """The default programme plus ``--instruments``; CliError (exit 2) if unusable."""
    try:
        return Registry.load_default(instruments)
    except OSError as exc:
        raise CliError(EXIT_USAGE, os_error("--instruments", exc)) from None
    except InstrumentError as exc:
        raise CliError(EXIT_USAGE, f"--instruments: {exc}") from None


#: ``--accounts none``: found a venue with no accounts (not the demo ones).
NO_ACCOUNTS = "none"


def load_accounts(path: str, registry: Registry, instruments: str | None = None) -> Ledger:
    """The accounts of ``--accounts``, checked against the instruments; exit 2 if bad.
    ``none``: no accounts at all (the operator opens them: ``tokenbook admin``)."""
    ledger = Ledger()
    if path == NO_ACCOUNTS:
        return ledger
    try:
        ledger.load(path)
    except OSError as exc:
        raise CliError(EXIT_USAGE, os_error("--accounts", exc)) from None
    except LedgerError as exc:
        raise CliError(EXIT_USAGE, f"--accounts: {exc}") from None
    unknown = sorted({asset for (_, asset) in [*ledger.balances, *ledger.whitelisted]
                      if asset != CASH and asset not in registry})
    if unknown:
        raise CliError(EXIT_USAGE, f"--accounts {path}: holdings or whitelist name "
                                   f"{', '.join(unknown)}, not an instrument of this venue "
                                   f"(the default programme"
                                   f"{f' + {instruments}' if instruments else ''})")
    if not ledger.accounts:
        raise CliError(EXIT_USAGE, f"--accounts {path}: no [[account]] in it")
    return ledger


def open_engine(args, registry: Registry,
                accounts: Ledger | None = None) -> tuple[Engine, list]:
    """The engine of ``args.data`` (recovered, or a new venue with ``--accounts`` or the
    demo ledger), and the outcomes of the last replayed inputs for the gateway to resend."""
    def new_ledger() -> Ledger:
        return accounts if accounts is not None else demo_ledger(registry)
    return recovery.open_engine(Engine, args.data, registry, new_ledger=new_ledger,
                                fsync=args.fsync)


# ---------------------------------------------------------------------- serve



@dataclass
class ServePlan:
    """What ``serve`` checked before touching the broker or the journal."""
    registry: Registry
    accounts: Ledger | None
    config: GatewayConfig
    plan: Any                           # feeds.venue.Plan
    accounts_source: str


def engine_mqtt_options(args) -> tuple[dict, dict | None]:
    """The engine's MQTT options and the guard's probe options from ``--credentials`` and
    the TLS flags (CliError with one line if a file is unreadable or bad)."""
    from feeds import security
    try:
        return (security.options_from_args(args, default_username=security.ENGINE_USER),
                security.probe_options_from_args(args))
    except OSError as exc:
        raise CliError(EXIT_USAGE, os_error("--credentials/TLS file", exc)) from None
    except ValueError as exc:
        raise CliError(EXIT_USAGE, str(exc)) from None


@dataclass(frozen=True)
class ShardPlan:
    """What ``--shard/--symbols/--shards`` select: the instruments this engine serves and
    the GatewayConfig fields of its shard (none for a one-shard venue)."""
    registry: Registry
    shard: str = ""
    symbols: tuple[str, ...] = ()
    directory: object = None            # feeds.shard.ShardDirectory, with --shards

    def config(self) -> dict:
        """Its symbols, its own client id (so shards never meet in the single-writer
        guard) and the venue's shard map when given."""
        if not self.shard:
            return {}
        return {"shard": self.shard, "shard_symbols": self.symbols,
                "shard_directory": self.directory,
                "client_id": f"{GatewayConfig.client_id}-{self.shard}"}


def shard_plan(args, registry: Registry) -> ShardPlan:
    """``--shard ID --symbols A,B`` (and ``--shards``): the instruments this shard alone
    serves (``feeds.shard``); without ``--shard`` the whole registry (CliError if bad)."""
    from feeds.shard import ShardError, ShardSpec, parse_symbols
    shard, symbols = getattr(args, "shard", None), getattr(args, "symbols", None)
    directory = shard_directory(args, registry)
    if directory is not None and shard and not symbols and shard in directory.shards:
        symbols = ",".join(directory.shards[shard].symbols)
    if not shard and not symbols and directory is None:
        return ShardPlan(registry)
    if not (shard and symbols):
        raise CliError(EXIT_USAGE, "--shard and --symbols go together" if directory is None
                       else "--shards needs --shard, one of its shards")
    try:
        spec = ShardSpec(shard, parse_symbols(symbols))
        spec.check_listed(inst.symbol for inst in registry)
    except ShardError as exc:
        raise CliError(EXIT_USAGE, str(exc)) from None
    if directory is not None and directory.shards.get(shard) != spec:
        raise CliError(EXIT_USAGE, f"--shard {shard} --symbols {symbols} is not an entry of "
                                   f"--shards")
    return ShardPlan(Registry(i for i in registry if i.symbol in spec.symbols), shard,
                     spec.symbols, directory)


def shard_directory(args, registry: Registry):
    """``--shards 's1=A,B;s2=C'``: the venue's ShardDirectory (None without the option)."""
    from feeds.shard import ShardDirectory, ShardError
    text = getattr(args, "shards", None)
    if not text:
        return None
    try:
        table = dict(entry.split("=", 1) for entry in text.split(";") if entry.strip())
        directory = ShardDirectory.from_mapping({k.strip(): v for k, v in table.items()})
        for spec in directory.shards.values():
            spec.check_listed(inst.symbol for inst in registry)
    except ValueError as exc:          # ShardError, or an entry without '='
        message = str(exc) if isinstance(exc, ShardError) else "entries are ID=A,B"
        raise CliError(EXIT_USAGE, f"--shards: {message}") from None
    return directory


def prepare_serve(args) -> ServePlan:
    """Everything ``serve`` can check on its own: options, credentials, instruments,
    accounts, and that the data directory agrees (CliError otherwise)."""
    from feeds import venue
    mqtt_options, probe_options = engine_mqtt_options(args)
    if args.tls_ca and not args.broker:
        raise CliError(EXIT_USAGE, "--tls-ca needs --broker (the embedded broker has no TLS "
                                   "listener)")
    registry = load_registry(args.instruments)
    accounts = load_accounts(args.accounts, registry, args.instruments) \
        if args.accounts else None
    shards = shard_plan(args, registry)
    registry = shards.registry
    data = Path(args.data)
    if data.exists() and not data.is_dir():
        raise CliError(EXIT_DATA, f"--data {data} is not a directory")
    held_by = data_dir_holder(data)
    if held_by is not None:             # the same message as the lock's own refusal
        raise CliError(EXIT_DATA, str(DataDirLocked(data, held_by or None)))
    try:
        plan = venue.check(data, registry, accounts, accounts_file=args.accounts,
                           instruments_file=args.instruments)
    except (venue.VenueMismatch, ValueError) as exc:
        raise CliError(EXIT_DATA, str(exc)) from None
    except OSError as exc:
        raise CliError(EXIT_DATA, os_error("the data directory", exc)) from None
    config = GatewayConfig(
        cancel_on_disconnect=args.cancel_on_disconnect or frozenset(),
        drop_copy=args.drop_copy or frozenset(),
        snapshot_dir=data / "snapshots", snapshot_every=args.snapshot_every,
        mqtt_options=mqtt_options, probe_options=probe_options, freeze_gc=True,
        schedule=args.session, **shards.config())
    source = venue.DEMO if accounts is None else NO_ACCOUNTS \
        if args.accounts == NO_ACCOUNTS else str(Path(args.accounts).resolve())
    return ServePlan(registry, accounts, config, plan, source)


def data_dir_holder(data: Path) -> int | None:
    """If another process holds ``data``'s lock (``matching.datadir``): its pid (0 if
    unknown); else None. Looks without taking the lock or starting an epoch, so a second
    serve on the same --data is refused before it checks the broker or reads anything."""
    path = data / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None                     # no lock file: nobody has opened it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        try:
            return int(os.pread(fd, 32, 0).decode().strip() or 0)
        except (OSError, ValueError, UnicodeDecodeError):
            return 0
    finally:
        os.close(fd)                    # also drops the shared lock, if it was taken
    return None


def record_venue(args, prep: ServePlan, engine: Engine) -> bool:
    """Write the venue's record (``venue.json``); True if it serves the demo accounts."""
    from feeds import venue
    plan, source = prep.plan, prep.accounts_source
    if plan.recorded is not None and plan.recorded.legacy:
        source = venue.DEMO if is_demo_ledger(engine.ledger) else ""
    try:
        venue.record(args.data, prep.registry, engine.ledger, accounts_source=source,
                     instruments_file=args.instruments, previous=plan.recorded)
    except OSError as exc:
        raise CliError(EXIT_DATA, f"cannot write {Path(args.data) / venue.VENUE_FILE}: "
                                  f"{exc.strerror or exc}") from None
    return source == venue.DEMO or (plan.recorded is not None
                                    and plan.recorded.accounts_source == venue.DEMO)


async def serve(args) -> int:
    from feeds.guard import AnotherEngine, VenueGuard
    if getattr(args, "journal", None):       # the replicated journal: feeds.serve_replicated
        from feeds.serve_replicated import serve_replicated
        return await serve_replicated(args)
    prep = prepare_serve(args)
    config, registry, accounts, plan = prep.config, prep.registry, prep.accounts, prep.plan
    mqtt_options, probe_options = config.mqtt_options, config.probe_options
    data = Path(args.data)
    embedded = None
    if args.broker:
        host, port = broker_url(args.broker)
        url = args.broker
    else:
        try:
            embedded = EmbeddedBroker().start()
        except BrokerUnavailable as exc:
            raise CliError(EXIT_BROKER, str(exc)) from None
        host, port, url = "127.0.0.1", embedded.port, embedded.url
    engine = None
    try:
        guard = VenueGuard.for_config(host, port, config)
        try:
            verdict = await guard.check()
        except AnotherEngine as exc:
            raise CliError(EXIT_ANOTHER_ENGINE, f"refusing to start: {exc}; stop it first "
                                                "(or run the venue on --journal, where --take-over "
                                                "is a fenced switch: docs/fencing.md)") from None
        except aiomqtt.MqttError as exc:
            probe_user = (probe_options if probe_options is not None else mqtt_options)
            raise broker_error(url, exc, probe_user.get("username")) from None
        try:
            engine, recovered = open_engine(args, registry, accounts)
        except DataDirError as exc:     # another serve holds this --data, a bad epoch file
            raise CliError(EXIT_DATA, str(exc)) from None
        except Exception as exc:        # any other failure to open the venue: one line
            log.debug("opening %s failed", data, exc_info=True)
            raise CliError(EXIT_DATA, f"cannot open the venue in {data}: "
                                      f"{type(exc).__name__}: {exc}") from None
        demo = record_venue(args, prep, engine)
        print_banner(args, url=url, embedded=embedded, config=config, verdict=verdict.why,
                     engine=engine, recovered=recovered, plan=plan, demo=demo,
                     registry=registry)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if args.seconds:
            loop.call_later(args.seconds, stop.set)
        gateway = gateway_class(args.transport)(engine, host, port, config,
                                                recovered=recovered, guard=guard)
        try:
            await gateway.run(stop)
        except AnotherEngine as exc:
            raise CliError(EXIT_ANOTHER_ENGINE, str(exc)) from None
        engine.write_snapshot(data / "snapshots")
        print(f"served {gateway.stats.received} messages, {gateway.stats.trades} trades; "
              f"state {engine.state_hash()[:16]} at sequence {engine.seq}", flush=True)
    finally:
        if engine is not None:
            engine.close()                  # the journal, then the data directory's lock
        if embedded:
            embedded.stop()
    return EXIT_OK


def print_banner(args, *, url, embedded, config, verdict, engine, recovered, plan, demo,
                 registry) -> None:
    """What this engine serves, where, from what: on stdout before it goes online."""
    from feeds import topics
    from feeds.venue import id_ranges
    opts = config.mqtt_options
    where = f"a private {embedded.kind}, pid {embedded.pid}" if embedded else "--broker"
    who = f"user {opts['username']}" if opts.get("username") else "anonymous"
    tls = ", TLS" if opts.get("tls_params") else ""
    led = engine.ledger
    brokers: dict[str, int] = {}
    for a in led.accounts.values():
        brokers[a.broker] = brokers.get(a.broker, 0) + 1
    if plan.recorded is None:
        state = "a new venue, founded now"
        acct_from = f"--accounts {args.accounts}" if args.accounts else "the demo accounts"
    else:
        state = f"recovered to sequence {engine.seq} (state {engine.state_hash()[:16]})" + (
            f", resending the reports of the last {len(recovered)} inputs" if recovered else "")
        acct_from = "the data directory" + (
            f" (--accounts {args.accounts} matches it)" if plan.accounts_match_file else "")
    extra = f" + --instruments {args.instruments}" if args.instruments else ""
    lines = [
        f"tokenbook {__version__} serve: the venue at {url} ({where}), topics "
        f"{topics.ROOT}/#, as {who}{tls}" + (
            f"; shard {config.shard} ({', '.join(config.shard_symbols)}) on "
            f"{topics.ROOT_V2}/orders/+/SYMBOL" + (
                "; answers orders for symbols no shard serves (WRONG_SHARD)"
                if config.answers_unserved else "") if config.shard else ""),
        f"  engine       instance {config.instance} pid {os.getpid()}; {verdict}",
        f"  data         {Path(args.data).resolve()}: {state}; epoch {engine.epoch}",
        f"  accounts     {len(led.accounts)} ({id_ranges(led.accounts)}) of "
        f"{len(brokers)} brokers ({', '.join(f'{b} {n}' for b, n in sorted(brokers.items()))})"
        f", from {acct_from}",
    ]
    if demo:
        lines.append("  !!! DEMO ACCOUNTS: every account is funded with demo cash and tokens, "
                     "for trying tokenbook out. A real venue is founded with --accounts FILE "
                     "on a new --data DIR !!!")
    lines.append(f"  instruments  {len(registry)} ({', '.join(i.symbol for i in registry)}): "
                 f"the default programme{extra}")
    if plan.added_instruments:
        lines.append(f"  new here     {', '.join(plan.added_instruments)} joined this venue now")
    if plan.moved:
        lines.append(f"  moved        {'; '.join(plan.moved)} (since the last start)")
    lines.append(f"  session      timetable {args.session}: the gateway opens and closes"
                 if args.session else
                 "  session      no timetable: operators open and close (tokenbook admin)")
    print("\n".join(lines), flush=True)
    if demo:
        log.warning("serving the DEMO accounts (funded with demo cash and tokens)")


# ---------------------------------------------------------------------- demo

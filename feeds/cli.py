"""The ``tokenbook`` command: ``serve`` runs the engine behind the MQTT gateway.

    tokenbook serve [--broker mqtt://host:port] [--accounts FILE] [--instruments FILE]
                    [--data DIR] [--fsync group|always|none] [--seconds N]
                    [--credentials FILE [--username USER]] [--tls-ca FILE]
    tokenbook watch [SYMBOL ...] [--broker URL] [--json]
    tokenbook admin ACTION [SYMBOL] [--reason TEXT] [--broker URL]
    tokenbook simulate | demo | --version

Without ``--broker`` a private mosquitto is started on a free loopback port. State lives
in ``--data``: the journal and snapshots; a restart recovers from them, and refuses a
configuration that disagrees with them (``feeds.venue``). One engine serves a broker at a
time (``feeds.guard``): a second one refuses to start.

Every failure is one line on stderr and one of the exit codes below (README, "Exit
codes"); a traceback only with ``--log-level debug`` and only for an internal error.
"""
from __future__ import annotations

import argparse
import asyncio
import errno
import fcntl
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from feeds.broker import BrokerUnavailable, EmbeddedBroker, parse_broker_url
from feeds.gateway import Gateway, GatewayConfig
from matching import __version__, recovery
from matching.datadir import LOCK_NAME, DataDirError, DataDirLocked
from matching.engine import Engine
from matching.instruments import InstrumentError, Registry
from matching.journal import Journal
from matching.ledger import CASH, Ledger, LedgerError
from matching.session import SESSION_ACTIONS

log = logging.getLogger("tokenbook")

# ---------------------------------------------------------------------- exit codes
EXIT_OK = 0             # done (also: watch's reader closed the pipe, `| head`)
EXIT_REFUSED = 1        # the command ran and the answer is no: admin refused, demo checks
EXIT_USAGE = 2          # bad arguments or configuration files (accounts, instruments, ...)
EXIT_BROKER = 3         # broker unreachable, refused the credentials, lost, or no reply
EXIT_ANOTHER_ENGINE = 4  # another engine serves this broker: refused to start, stepped down
EXIT_DATA = 5           # the data directory disagrees with the configuration, or is unusable
EXIT_INTERNAL = 70      # a bug: one line (the traceback with --log-level debug)
EXIT_INTERRUPTED = 130  # Ctrl-C (serve stops cleanly on Ctrl-C or SIGTERM once serving: 0)

EXIT_CODES = f"""exit codes:
  {EXIT_OK}    done (watch: also when its reader closes the pipe)
  {EXIT_REFUSED}    the answer is no (admin: refused; demo: a check failed)
  {EXIT_USAGE}    bad arguments or configuration (options, accounts, instruments, credentials)
  {EXIT_BROKER}    MQTT broker unreachable, refused the credentials, lost, or no reply in time
  {EXIT_ANOTHER_ENGINE}    another engine serves this broker (serve refused to start, stepped down)
  {EXIT_DATA}    the data directory disagrees with the configuration, or cannot be used
  {EXIT_INTERNAL}   internal error (a bug: --log-level debug shows the traceback)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)"""
LOG_LEVELS = ("debug", "info", "warning", "error")


class CliError(Exception):
    """A failure the command reports as one line and an exit code."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code


def _os_error(what: str, exc: OSError) -> str:
    return f"cannot read {what} {exc.filename or ''}".rstrip() + f": {exc.strerror or exc}"


def _broker_url(url: str) -> tuple[str, int]:
    try:
        return parse_broker_url(url)
    except ValueError as exc:
        raise CliError(EXIT_USAGE, f"--broker: {exc}") from None


def _broker_error(url: str, exc: BaseException, user: str | None = None) -> CliError:
    """The one line for a broker that cannot be used."""
    from feeds.guard import CheckRefused
    who = f" as {user}" if user else ""
    if isinstance(exc, CheckRefused):
        return CliError(EXIT_BROKER, f"the MQTT broker at {url}: {exc}")
    if isinstance(exc, MqttConnectError):
        return CliError(EXIT_BROKER, f"the MQTT broker at {url} refused the connection{who}: "
                                     f"{exc} (check --credentials / --username)")
    return CliError(EXIT_BROKER, f"cannot reach the MQTT broker at {url}: {exc}")


async def _reachable(url: str, host: str, port: int, options: dict | None = None,
                     timeout: float = 10.0) -> None:
    """Connect once and leave: CliError (exit 3) if the broker cannot be used."""
    from feeds import mqtt
    try:
        async with asyncio.timeout(timeout):
            async with mqtt.client(host, port, **(options or {})):
                pass
    except TimeoutError:
        raise CliError(EXIT_BROKER, f"no answer from the MQTT broker at {url} within "
                                    f"{timeout:g} s") from None
    except aiomqtt.MqttError as exc:
        raise _broker_error(url, exc, (options or {}).get("username")) from None


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
        raise CliError(EXIT_USAGE, _os_error("--instruments", exc)) from None
    except InstrumentError as exc:
        raise CliError(EXIT_USAGE, f"--instruments: {exc}") from None


def load_accounts(path: str, registry: Registry, instruments: str | None = None) -> Ledger:
    """The accounts of ``--accounts``, checked against the instruments; exit 2 if bad."""
    ledger = Ledger()
    try:
        ledger.load(path)
    except OSError as exc:
        raise CliError(EXIT_USAGE, _os_error("--accounts", exc)) from None
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
TAKE_OVER_REFUSED = (
    "--take-over is not available yet: the engines' journals are not shared, so a new "
    "engine cannot know what the running one acknowledged; stop the running engine (the "
    "broker's retained tokenbook/v1/status names its host and pid), then start this one "
    "(README, 'One engine per venue')")


@dataclass
class ServePlan:
    """What ``serve`` checked before touching the broker or the journal."""
    registry: Registry
    accounts: Ledger | None
    config: GatewayConfig
    plan: Any                           # feeds.venue.Plan
    accounts_source: str


def prepare_serve(args) -> ServePlan:
    """Everything ``serve`` can check on its own: options, credentials, instruments,
    accounts, and that the data directory agrees (CliError otherwise)."""
    from feeds import security, venue
    if args.take_over:
        raise CliError(EXIT_USAGE, TAKE_OVER_REFUSED)
    try:
        mqtt_options = security.options_from_args(args, default_username=security.ENGINE_USER)
        probe_options = security.probe_options_from_args(args)
    except OSError as exc:
        raise CliError(EXIT_USAGE, _os_error("--credentials/TLS file", exc)) from None
    except ValueError as exc:
        raise CliError(EXIT_USAGE, str(exc)) from None
    if args.tls_ca and not args.broker:
        raise CliError(EXIT_USAGE, "--tls-ca needs --broker (the embedded broker has no TLS "
                                   "listener)")
    registry = load_registry(args.instruments)
    accounts = load_accounts(args.accounts, registry, args.instruments) \
        if args.accounts else None
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
        raise CliError(EXIT_DATA, _os_error("the data directory", exc)) from None
    cod = args.cancel_on_disconnect
    config = GatewayConfig(
        cancel_on_disconnect="*" if cod == "*" else frozenset(b for b in (cod or "").split(",")
                                                              if b),
        snapshot_dir=data / "snapshots", snapshot_every=args.snapshot_every,
        mqtt_options=mqtt_options, probe_options=probe_options, freeze_gc=True,
        schedule=args.session)
    source = venue.DEMO if accounts is None else str(Path(args.accounts).resolve())
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
    prep = prepare_serve(args)
    config, registry, accounts, plan = prep.config, prep.registry, prep.accounts, prep.plan
    mqtt_options, probe_options = config.mqtt_options, config.probe_options
    data = Path(args.data)
    embedded = None
    if args.broker:
        host, port = _broker_url(args.broker)
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
                                                "(--take-over is not available yet)") from None
        except aiomqtt.MqttError as exc:
            probe_user = (probe_options if probe_options is not None else mqtt_options)
            raise _broker_error(url, exc, probe_user.get("username")) from None
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
        gateway = Gateway(engine, host, port, config, recovered=recovered, guard=guard)
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
        f"{topics.ROOT}/#, as {who}{tls}",
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
def book_matches_view(engine: Engine, view) -> list[str]:
    """Symbols whose market-data view differs from the engine's book (should be none)."""
    bad = []
    for symbol, book in engine.books.items():
        inst = engine.instruments[symbol]
        bv = view.books.get(symbol)
        for side, name in ((1, "buy"), (2, "sell")):
            expect = [(str(inst.ticks_to_price(p)), str(inst.lots_to_qty(q)), c)
                      for p, q, c in book.depth(side, 10**6)]
            got = bv.ladder(name) if bv else []
            if got != expect:
                bad.append(f"{symbol} {name}")
    return bad


async def demo(args) -> int:
    """Embedded broker, engine and gateway, simulated brokers and a viewer; then a summary."""
    import tempfile

    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
    from rich.table import Table

    from feeds.guard import AnotherEngine, VenueGuard
    from feeds.simulate import Simulation
    from feeds.watch import MarketView, render, watch

    console = Console()
    registry = Registry.load_default()
    broker = None
    if args.broker:
        host, port = _broker_url(args.broker)
        where = args.broker
    else:
        try:
            broker = EmbeddedBroker().start()
        except BrokerUnavailable as exc:
            raise CliError(EXIT_BROKER, str(exc)) from None
        host, port = "127.0.0.1", broker.port
        where = f"private {broker.kind} at {broker.url}"
    config = GatewayConfig()
    guard = VenueGuard.for_config(host, port, config)
    try:
        await guard.check()
    except (AnotherEngine, aiomqtt.MqttError) as exc:
        if broker:
            broker.stop()
        if isinstance(exc, AnotherEngine):
            raise CliError(EXIT_ANOTHER_ENGINE, f"refusing to run the demo on this broker: "
                                                f"{exc}") from None
        raise _broker_error(where, exc) from None
    ledger = demo_ledger(registry)
    assets = [CASH] + [i.symbol for i in registry]
    before = {a: ledger.total(a) for a in assets}
    data = tempfile.TemporaryDirectory(prefix="tokenbook-demo-")
    engine = Engine(registry, ledger, clock=time.time_ns,
                    journal=Journal(Path(data.name) / "journal.log"))
    engine.write_snapshot(Path(data.name) / "snapshots")
    console.print(f"[bold]tokenbook demo[/]: {where}, "
                  f"{len(registry)} instruments, {args.seconds:.0f} s of simulated brokers")
    stop = asyncio.Event()
    gateway = Gateway(engine, host, port, config, guard=guard)
    gw_task = asyncio.create_task(gateway.run(stop))
    await asyncio.wait_for(gateway.ready.wait(), 10)
    view = MarketView()
    md_ready = asyncio.Event()
    md_task = asyncio.create_task(watch(host, port, view, ready=md_ready))
    await asyncio.wait_for(md_ready.wait(), 10)
    sim = Simulation(registry, host, port, seed=args.seed, rate=args.rate)
    session: list[str] = []
    halt_task = asyncio.create_task(demo_halt(host, port, args.seconds, session))
    try:
        with Progress(TextColumn("simulating"), BarColumn(), TextColumn("{task.fields[info]}"),
                      TimeRemainingColumn(), console=console) as progress:
            task = progress.add_task("sim", total=args.seconds, info="")

            def tick(elapsed):
                progress.update(task, completed=elapsed,
                                info=f"{gateway.stats.received} msgs, "
                                     f"{gateway.stats.trades} trades")
            await sim.run(args.seconds, progress=tick)
        await asyncio.sleep(1.0)                     # last market data in flight
    finally:
        halt_task.cancel()
        await asyncio.gather(halt_task, return_exceptions=True)
        stop.set()
        await asyncio.wait_for(gw_task, 30)
        md_task.cancel()
        await asyncio.gather(md_task, return_exceptions=True)
        await asyncio.sleep(0.1)                     # let paho drop its socket callbacks
        engine.journal.close()
        if broker:
            broker.stop()
    console.print(render(view, depth=args.depth, registry=registry))
    st = gateway.stats
    table = Table(title="Summary per instrument", title_justify="left")
    for col in ("symbol", "trades", "volume (tokens)", "cash settled (USDC)", "resting orders"):
        table.add_column(col, justify="right")
    for inst in registry:
        lots, cash = st.volume_lots.get(inst.symbol), st.settled_cash.get(inst.symbol)
        table.add_row(inst.symbol, str(st.trades_by_symbol.get(inst.symbol, 0)),
                      "0" if lots is None else str(inst.lots_to_qty(lots)),
                      "0" if cash is None else str(Decimal(cash).scaleb(-inst.cash_decimals)),
                      str(len(engine.books[inst.symbol])))
    console.print(table)
    console.print(f"orders entered {engine.next_order_id - 1}, messages {st.received}, "
                  f"execution reports {st.reports}, trades {st.trades}, "
                  f"sent by agent {sim.stats.by_agent}")
    console.print("operator: " + ("; ".join(session) or "no session command answered"))
    console.print("rejects by reason: " + (", ".join(f"{k} {v}" for k, v in
                                                     sorted(st.reject_reasons.items())) or "none"))
    after = {a: ledger.total(a) for a in assets}
    mismatched = book_matches_view(engine, view)
    # Every order the engine acknowledged (a New report went out) is live or was closed
    # by a report of its own: nothing acknowledged is unaccounted for.
    accounted = st.acks == engine.next_order_id - 1 and st.closed + len(engine.orders) == st.acks
    console.print(f"acknowledged orders {st.acks}: closed {st.closed} + live "
                  f"{len(engine.orders)}; accounted {accounted}")
    ok = after == before and not mismatched and st.trades > 0 and accounted and \
        all(line.startswith("accepted") for line in session)
    console.print(f"checks: ledger conserved {after == before}; market-data books equal the "
                  f"engine's {not mismatched} {mismatched or ''}; state {engine.state_hash()[:16]}")
    return EXIT_OK if ok else EXIT_REFUSED


#: The demo's operator moment: this instrument is halted for a while mid-run.
DEMO_HALT = ("TB6M", "issuer notice (demo)")


async def demo_halt(host: str, port: int, seconds: float, session: list[str]) -> None:
    """A third into the demo the operator halts one bill, and resumes it a sixth later:
    brokers' orders on it meanwhile get MARKET_NOT_OPEN, the viewer shows HALTED."""
    from feeds.operator import send_command
    symbol, reason = DEMO_HALT
    await asyncio.sleep(seconds / 3)
    for action, pause in (("halt", seconds / 6), ("resume", 0)):
        reply = await send_command(host, port, action, symbol, reason if action == "halt" else "")
        session.append(f"{'accepted' if reply.accepted else 'REFUSED'} {reply.text} at "
                       f"sequence {reply.seq}")
        await asyncio.sleep(pause)



# ---------------------------------------------------------------------- other commands
async def admin_command(args) -> int:
    """Send one session command; print the engine's reply; 0 if it was accepted."""
    from feeds.operator import send_command
    from feeds.security import OPERATOR_USER, options_from_args
    host, port = _broker_url(args.broker)
    try:
        options = options_from_args(args, OPERATOR_USER)
    except OSError as exc:
        raise CliError(EXIT_USAGE, _os_error("--credentials/TLS file", exc)) from None
    except ValueError as exc:
        raise CliError(EXIT_USAGE, str(exc)) from None
    try:
        reply = await send_command(host, port, args.action, args.symbol, args.reason,
                                   timeout=args.timeout, mqtt_options=options)
    except TimeoutError:
        raise CliError(EXIT_BROKER, f"no reply from the engine within {args.timeout:g} s (is "
                                    "it running? may this user send admin commands?)") from None
    except aiomqtt.MqttError as exc:
        raise _broker_error(args.broker, exc, options.get("username")) from None
    print(f"{'accepted' if reply.accepted else 'REFUSED'}: {reply.text}"
          + (f" (sequence {reply.seq})" if reply.accepted else ""), flush=True)
    return EXIT_OK if reply.accepted else EXIT_REFUSED


async def simulate_command(args) -> int:
    """Run the simulated brokers (demo accounts) against the gateway at ``--broker``."""
    from feeds.simulate import Simulation
    host, port = _broker_url(args.broker)
    await _reachable(args.broker, host, port)
    sim = Simulation(Registry.load_default(), host, port, seed=args.seed, rate=args.rate)
    stats = await sim.run(args.seconds)
    print(f"sent {stats.sent} orders: {stats.by_agent}", flush=True)
    return EXIT_OK


async def watch_command(args) -> int:
    from rich.live import Live

    from feeds.watch import MarketView, render, watch
    host, port = _broker_url(args.broker)
    view = MarketView()
    try:
        if args.json:
            def line(topic: str, payload: bytes) -> None:
                print(topic, payload.decode("utf-8", "replace"), flush=True)
            await watch(host, port, view, args.symbols or None, on_message=line)
            return EXIT_OK
        registry = Registry.load_default()
        with Live(render(view, args.symbols or None, registry=registry),
                  refresh_per_second=4) as live:
            await watch(host, port, view, args.symbols or None,
                        on_message=lambda t, p: live.update(
                            render(view, args.symbols or None, registry=registry)))
    except aiomqtt.MqttError as exc:
        raise _broker_error(args.broker, exc) from None
    return EXIT_OK


# ---------------------------------------------------------------------- the parser
def _session(spec: str):
    from matching.schedule import ScheduleError, SessionSchedule
    try:
        return SessionSchedule.parse(spec)
    except ScheduleError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, got {text}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _not_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (and exit 2)."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from feeds.security import add_client_arguments
    common = _Parser(add_help=False)
    common.add_argument("--log-level", choices=LOG_LEVELS, default=argparse.SUPPRESS,
                        help="log to stderr from this level on (default: info for serve, "
                             "warning for the other commands)")
    ap = _Parser(prog="tokenbook", parents=[common], epilog=EXIT_CODES,
                 formatter_class=argparse.RawDescriptionHelpFormatter,
                 description="A matching engine for tokenized sovereign debt, behind MQTT.")
    ap.add_argument("--version", action="version", version=f"tokenbook {__version__}",
                    help="print the version and exit")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND",
                            help="what to run (tokenbook COMMAND --help for its options)")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help, description=help,
                              epilog=EXIT_CODES,
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    s = command("serve", "run the engine behind the MQTT gateway")
    s.add_argument("--broker", help="mqtt://host:port of a running broker (default: start a "
                                    "private mosquitto on a free loopback port)")
    s.add_argument("--accounts", metavar="FILE",
                   help="TOML accounts file of a NEW venue (format in matching/ledger.py); "
                        "a restart recovers the accounts from --data and refuses a file "
                        "that differs (default: the demo accounts)")
    s.add_argument("--instruments", metavar="FILE",
                   help="TOML file of extra instruments (added to the default programme); "
                        "give it on every start of a venue that uses them")
    s.add_argument("--data", default="tokenbook-data", metavar="DIR",
                   help="the venue's journal and snapshots (default: %(default)s)")
    s.add_argument("--fsync", choices=("group", "always", "none"), default="group",
                   help="journal durability: fdatasync once per cycle (group, default), per "
                        "input (always) or never (none; see matching/journal.py)")
    s.add_argument("--seconds", type=_not_negative, default=0,
                   help="stop after this long (default 0: run until SIGINT/SIGTERM)")
    s.add_argument("--snapshot-every", type=_positive(int), default=100_000, metavar="N",
                   help="write a snapshot every N inputs (bounds recovery time; default "
                        "%(default)s)")
    s.add_argument("--session", type=_session, metavar="SPEC",
                   help="the trading day in UTC, e.g. '07:45/08:00-16:30 mon-fri' "
                        "([pre-open/]open-close [days]): each boundary is journaled as an "
                        "operator input; the close expires DAY orders (default: no "
                        "timetable, operators open and close)")
    s.add_argument("--cancel-on-disconnect", metavar="BROKERS",
                   help="comma-separated brokers (or '*') whose orders are cancelled when "
                        "their connection drops (their presence last will)")
    s.add_argument("--take-over", action="store_true",
                   help="take the venue over from a running engine: not available yet "
                        "(refused; README, 'One engine per venue')")
    add_client_arguments(s)          # --username --credentials --tls-ca --tls-cert --tls-key

    m = command("simulate", "simulated brokers (demo accounts) against a running engine")
    m.add_argument("--broker", default="mqtt://127.0.0.1:1883",
                   help="mqtt://host:port of the engine's broker (default: %(default)s)")
    m.add_argument("--seconds", type=_positive(float), default=30,
                   help="how long to send orders (default: %(default)s)")
    m.add_argument("--rate", type=_positive(float), default=150,
                   help="orders/s (default: %(default)s)")
    m.add_argument("--seed", type=int, default=7,
                   help="random seed of the simulated flow (default: %(default)s)")

    d = command("demo", "embedded broker, engine, simulated brokers and a viewer; then a "
                        "summary and two checks")
    d.add_argument("--seconds", type=_positive(float), default=30,
                   help="how long the simulated brokers trade (default: %(default)s)")
    d.add_argument("--rate", type=_positive(float), default=150,
                   help="orders/s of the simulated flow (default: %(default)s)")
    d.add_argument("--seed", type=int, default=7,
                   help="random seed of the simulated flow (default: %(default)s)")
    d.add_argument("--depth", type=_positive(int), default=5,
                   help="levels shown per side (default: %(default)s)")
    d.add_argument("--broker", help="mqtt://host:port of a running broker with no engine "
                                    "on it (default: embedded)")

    o = command("admin", "operator: open, halt, resume or close trading")
    o.add_argument("action", choices=SESSION_ACTIONS, help="the session action")
    o.add_argument("symbol", nargs="?", default="", help="instrument (default: every one)")
    o.add_argument("--reason", default="", help="why, shown to brokers in rejections")
    o.add_argument("--broker", default="mqtt://127.0.0.1:1883",
                   help="mqtt://host:port of the engine's broker (default: %(default)s)")
    o.add_argument("--timeout", type=_positive(float), default=10.0,
                   help="seconds to wait for the reply (default: %(default)s)")
    add_client_arguments(o)

    w = command("watch", "live view of the books from market data")
    w.add_argument("symbols", nargs="*", metavar="SYMBOL",
                   help="instruments to show (default: every one)")
    w.add_argument("--broker", default="mqtt://127.0.0.1:1883",
                   help="mqtt://host:port of the engine's broker (default: %(default)s)")
    w.add_argument("--json", action="store_true",
                   help="print the stream as 'topic payload' lines instead of tables")
    return ap


COMMANDS = {"serve": serve, "demo": demo, "watch": watch_command,
            "simulate": simulate_command, "admin": admin_command}


def _say(line: str) -> None:
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _stdout_gone() -> None:
    """The reader of stdout went away (``| head``): stop writing, quietly."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def main(argv: list[str] | None = None) -> int:
    """``tokenbook COMMAND ...``: the exit code (never a traceback; see EXIT_CODES)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:              # --help / --version (0), or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    level = getattr(args, "log_level", None) or ("info" if args.command == "serve"
                                                 else "warning")
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(name)s %(message)s")
    name = f"tokenbook {args.command}"
    try:
        return asyncio.run(COMMANDS[args.command](args))
    except CliError as exc:
        _say(f"{name}: {exc}")
        return exc.code
    except BrokenPipeError:
        _stdout_gone()
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            _stdout_gone()
            return EXIT_OK
        log.debug("%s failed", name, exc_info=True)
        _say(f"{name}: {exc.strerror or exc} ({type(exc).__name__})")
        return EXIT_INTERNAL
    except Exception as exc:
        log.debug("%s failed", name, exc_info=True)
        _say(f"{name}: internal error: {type(exc).__name__}: {exc} (--log-level debug "
             "shows the traceback)")
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())

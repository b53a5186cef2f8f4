"""The ``tokenbook`` command: ``serve`` runs the engine behind the MQTT gateway.

    tokenbook serve [--broker mqtt://host:port] [--accounts FILE] [--instruments FILE]
                    [--data DIR] [--fsync group|always|none] [--seconds N]
                    [--credentials FILE [--username USER]] [--tls-ca FILE]

Without ``--broker`` a private mosquitto is started on a free loopback port. State lives
in ``--data``: the journal and snapshots; a restart recovers from them.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path

from feeds.broker import EmbeddedBroker, parse_broker_url
from feeds.gateway import Gateway, GatewayConfig
from matching import recovery
from matching.datadir import DataDirLocked
from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import Journal
from matching.ledger import CASH, Ledger
from matching.session import SESSION_ACTIONS

log = logging.getLogger("tokenbook")

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


def open_engine(args, registry: Registry) -> tuple[Engine, list]:
    """The engine of ``args.data`` (recovered, or a new venue with ``--accounts`` or the
    demo ledger), and the outcomes of the last replayed inputs for the gateway to resend."""
    def new_ledger() -> Ledger:
        if not args.accounts:
            return demo_ledger(registry)
        ledger = Ledger()
        ledger.load(args.accounts)
        return ledger
    return recovery.open_engine(Engine, args.data, registry, new_ledger=new_ledger,
                                fsync=args.fsync)


async def serve(args) -> int:
    from feeds.security import ENGINE_USER, options_from_args
    mqtt_options = options_from_args(args, default_username=ENGINE_USER)
    if args.tls_ca and not args.broker:
        raise SystemExit("--tls-ca needs --broker (the embedded broker has no TLS listener)")
    registry = Registry.load_default(args.instruments)
    try:
        engine, recovered = open_engine(args, registry)
    except DataDirLocked as exc:            # a second serve on the same --data: one line
        raise SystemExit(f"tokenbook serve: {exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.seconds:
        loop.call_later(args.seconds, stop.set)
    embedded = None
    if args.broker:
        host, port = parse_broker_url(args.broker)
        log.info("using the MQTT broker at %s", args.broker)
    else:
        embedded = EmbeddedBroker().start()
        host, port = "127.0.0.1", embedded.port
        log.info("no --broker given: started a private %s at %s", embedded.kind, embedded.url)
    try:
        cod = args.cancel_on_disconnect
        gateway = Gateway(engine, host, port, GatewayConfig(
            cancel_on_disconnect="*" if cod == "*" else
            frozenset(b for b in (cod or "").split(",") if b),
            snapshot_dir=Path(args.data) / "snapshots", snapshot_every=args.snapshot_every,
            mqtt_options=mqtt_options, freeze_gc=True, schedule=args.session),
            recovered=recovered)
        if args.session:
            log.info("trading session %s: the gateway opens and closes it", args.session)
        await gateway.run(stop)
        engine.write_snapshot(Path(args.data) / "snapshots")
        print(f"served {gateway.stats.received} messages, {gateway.stats.trades} trades; "
              f"state {engine.state_hash()[:16]} at sequence {engine.seq}")
    finally:
        engine.close()                      # the journal, then the data directory's lock
        if embedded:
            embedded.stop()
    return 0


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

    from feeds.simulate import Simulation
    from feeds.watch import MarketView, render, watch

    console = Console()
    registry = Registry.load_default()
    ledger = demo_ledger(registry)
    assets = [CASH] + [i.symbol for i in registry]
    before = {a: ledger.total(a) for a in assets}
    data = tempfile.TemporaryDirectory(prefix="tokenbook-demo-")
    engine = Engine(registry, ledger, clock=time.time_ns,
                    journal=Journal(Path(data.name) / "journal.log"))
    engine.write_snapshot(Path(data.name) / "snapshots")
    broker = None if args.broker else EmbeddedBroker().start()
    if broker is None:
        host, port = parse_broker_url(args.broker)
        where = args.broker
    else:
        host, port = "127.0.0.1", broker.port
        where = f"private {broker.kind} at {broker.url}"
    console.print(f"[bold]tokenbook demo[/]: {where}, "
                  f"{len(registry)} instruments, {args.seconds:.0f} s of simulated brokers")
    stop = asyncio.Event()
    gateway = Gateway(engine, host, port)
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
    return 0 if ok else 1


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


def _session(spec: str):
    from matching.schedule import ScheduleError, SessionSchedule
    try:
        return SessionSchedule.parse(spec)
    except ScheduleError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tokenbook", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the engine behind the MQTT gateway")
    s.add_argument("--broker", help="mqtt://host:port of a running broker (default: embedded)")
    s.add_argument("--accounts", help="TOML accounts file (default: demo accounts)")
    s.add_argument("--instruments", help="TOML file of extra instruments")
    s.add_argument("--data", default="tokenbook-data", help="journal and snapshot folder")
    s.add_argument("--fsync", choices=("group", "always", "none"), default="group")
    s.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    s.add_argument("--snapshot-every", type=int, default=100_000, metavar="N",
                   help="write a snapshot every N inputs (bounds recovery time)")
    s.add_argument("--session", type=_session, metavar="SPEC",
                   help="the trading day in UTC, e.g. '07:45/08:00-16:30 mon-fri' "
                        "([pre-open/]open-close [days]): each boundary is journaled as an "
                        "operator input; the close expires DAY orders (default: no "
                        "timetable, operators open and close)")
    s.add_argument("--cancel-on-disconnect", metavar="BROKERS",
                   help="comma-separated brokers (or '*') whose orders are cancelled when "
                        "their connection drops (their presence last will)")
    from feeds.security import add_client_arguments
    add_client_arguments(s)          # --username --credentials --tls-ca --tls-cert --tls-key
    m = sub.add_parser("simulate", help="simulated brokers against a running gateway")
    m.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    m.add_argument("--seconds", type=float, default=30)
    m.add_argument("--rate", type=float, default=150, help="orders/s")
    m.add_argument("--seed", type=int, default=7)
    d = sub.add_parser("demo", help="embedded broker, engine, simulated brokers, viewer")
    d.add_argument("--seconds", type=float, default=30)
    d.add_argument("--rate", type=float, default=150, help="orders/s of the simulated flow")
    d.add_argument("--seed", type=int, default=7)
    d.add_argument("--depth", type=int, default=5, help="levels shown per side")
    d.add_argument("--broker", help="mqtt://host:port of a running broker (default: embedded)")
    o = sub.add_parser("admin", help="operator: open, halt, resume or close trading")
    o.add_argument("action", choices=SESSION_ACTIONS)
    o.add_argument("symbol", nargs="?", default="", help="instrument (default: every one)")
    o.add_argument("--reason", default="", help="why, shown to brokers in rejections")
    o.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    o.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the reply")
    add_client_arguments(o)
    w = sub.add_parser("watch", help="live view of the books from market data")
    w.add_argument("symbols", nargs="*")
    w.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    w.add_argument("--json", action="store_true", help="print the stream as JSON lines")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.command != "serve" else logging.INFO,
                        format="%(asctime)s %(name)s %(message)s")
    if args.command == "serve":
        return asyncio.run(serve(args))
    if args.command == "demo":
        return asyncio.run(demo(args))
    if args.command == "watch":
        return asyncio.run(watch_command(args))
    if args.command == "simulate":
        return asyncio.run(simulate_command(args))
    if args.command == "admin":
        return asyncio.run(admin_command(args))
    return 2


async def admin_command(args) -> int:
    """Send one session command; print the engine's reply; 0 if it was accepted."""
    from feeds.operator import send_command
    from feeds.security import OPERATOR_USER, options_from_args
    host, port = parse_broker_url(args.broker)
    try:
        reply = await send_command(host, port, args.action, args.symbol, args.reason,
                                   timeout=args.timeout,
                                   mqtt_options=options_from_args(args, OPERATOR_USER))
    except TimeoutError:
        print(f"no reply from the engine within {args.timeout:g} s (is it running? may this "
              "user send admin commands?)", file=sys.stderr)
        return 3
    print(f"{'accepted' if reply.accepted else 'REFUSED'}: {reply.text}"
          + (f" (sequence {reply.seq})" if reply.accepted else ""))
    return 0 if reply.accepted else 1


async def simulate_command(args) -> int:
    """Run the simulated brokers (demo accounts) against the gateway at ``--broker``."""
    from feeds.simulate import Simulation
    host, port = parse_broker_url(args.broker)
    sim = Simulation(Registry.load_default(), host, port, seed=args.seed, rate=args.rate)
    stats = await sim.run(args.seconds)
    print(f"sent {stats.sent} orders: {stats.by_agent}")
    return 0


async def watch_command(args) -> int:
    from rich.live import Live

    from feeds.watch import MarketView, render, watch
    host, port = parse_broker_url(args.broker)
    view = MarketView()
    if args.json:
        await watch(host, port, view, args.symbols or None,
                    on_message=lambda t, p: print(t, p.decode(), flush=True))
        return 0
    registry = Registry.load_default()
    with Live(render(view, args.symbols or None, registry=registry),
              refresh_per_second=4) as live:
        await watch(host, port, view, args.symbols or None,
                    on_message=lambda t, p: live.update(
                        render(view, args.symbols or None, registry=registry)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

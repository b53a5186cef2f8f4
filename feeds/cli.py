"""The ``tokenbook`` command: ``serve`` runs the engine behind the MQTT gateway.

    tokenbook serve [--broker mqtt://host:port] [--accounts FILE] [--instruments FILE]
                    [--data DIR] [--fsync group|always|none] [--seconds N]
                    [--credentials FILE [--username USER]] [--tls-ca FILE]
    tokenbook watch [SYMBOL ...] [--broker URL] [--json] [--credentials FILE [--username USER]]
    tokenbook admin ACTION [SYMBOL] [--reason TEXT] [--coupon-date DATE] [--broker URL]
    tokenbook admin open-account ACCOUNT BROKER --country CC [--eligibility CLASS]
    tokenbook admin deposit|withdraw ACCOUNT ASSET AMOUNT; whitelist ACCOUNT SYMBOL ...
    tokenbook admin set-compliance SYMBOL '{"max_balance": "1000"}'  (no RULES: all off)
    tokenbook serve --journal nats://h1:p1,... --broker URL [--standby] [--takeover-after S]
    tokenbook cluster [--dir DIR] [--nodes 3]
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
import logging
import os
import signal
import sys
import threading

import aiomqtt

from feeds.demo import demo
from feeds.exits import (
    EXIT_BROKER,
    EXIT_CODES,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    LOG_LEVELS,
    CliError,
    arguments_checked,
    broker_error,
    broker_url,
    engine_answers,
    os_error,
    print_reply,
    reachable,
)
from feeds.issuance_wire import AUCTION_USAGE
from feeds.operator import FORMS, TRANSFER_CASH_USAGE, usage
from feeds.serve import serve
from feeds.transports import DEFAULT_TRANSPORT, TRANSPORTS
from matching import __version__
from matching.instruments import Registry
from matching.messages import LIFECYCLE_ACTIONS
from matching.session import SESSION_ACTIONS

log = logging.getLogger("tokenbook")


async def admin_command(args) -> int:
    """Send one operator command (or a transfer agent's control); print the engine's
    reply; 0 if it was accepted."""
    from feeds.codec import AdminCommand
    from feeds.operator import command_of, is_account_action, send
    from feeds.security import AGENT_USER, OPERATOR_USER, options_from_args
    from matching.messages import AGENT_ACTIONS
    if args.action == "auction":            # the issuer's auctions (feeds.issuance_wire)
        from feeds.issuance_wire import auction_admin
        return await auction_admin(args)
    host, port = broker_url(args.broker)
    if args.action == "transfer-cash":      # cash between two shards (matching.transfers)
        return await transfer_cash_command(args, host, port)
    with arguments_checked():
        if is_account_action(args.action) or args.action.replace("-", "_") in FORMS:
            cmd = command_of(args.action, args.operands, reason=args.reason,
                             eligibility=args.eligibility, country=args.country, qty=args.qty)
        elif len(args.operands) > 1:
            raise ValueError(f"usage: tokenbook admin {args.action} [SYMBOL]")
        else:
            cmd = AdminCommand(args.action, (args.operands or [""])[0], args.reason,
                               coupon_date=args.coupon_date)
        options = options_from_args(args, AGENT_USER if cmd.action in AGENT_ACTIONS
                                    else OPERATOR_USER)
    if args.shard and cmd.action in AGENT_ACTIONS:
        raise CliError(EXIT_USAGE, f"{args.action} is the transfer agent's: every shard hears "
                                   "the agent's topic, so it takes no --shard")
    with engine_answers(args.broker, args.timeout, options):
        reply = await send(host, port, cmd, timeout=args.timeout, mqtt_options=options,
                           shard=args.shard)
    return print_reply(reply, f" on shard {reply.shard}" if reply.shard else "")


async def transfer_cash_command(args, host: str, port: int) -> int:
    """``tokenbook admin transfer-cash``: both legs, one line, 0 once both are applied."""
    from feeds.operator import already_applied, transfer_cash
    from feeds.security import OPERATOR_USER, options_from_args
    with arguments_checked():
        options = options_from_args(args, OPERATOR_USER)
    with arguments_checked(), engine_answers(args.broker, args.timeout, options, "a shard",
                                             "are both shards running? run it again: it "
                                             "is idempotent"):
        out, inn = await transfer_cash(host, port, args.operands, timeout=args.timeout,
                                       mqtt_options=options)
    tid, _, amount, payer, payee = args.operands
    if inn is None:
        print(f"REFUSED: transfer {tid} out of {payer}: {out.text}", flush=True)
        return EXIT_REFUSED
    if not (inn.accepted or already_applied(inn)):
        print(f"REFUSED: transfer {tid} into {payee} (out of {payer} is applied: run it "
              f"again): {inn.text}", flush=True)
        return EXIT_REFUSED
    print(f"accepted: transfer {tid}: {amount} from {payer} to {payee} (sequence "
          f"{out.seq or 'earlier'} on {payer}, {inn.seq or 'earlier'} on {payee})", flush=True)
    return EXIT_OK


async def simulate_command(args) -> int:
    """Run the simulated brokers (demo accounts) against the gateway at ``--broker``."""
    from feeds.simulate import Simulation
    host, port = broker_url(args.broker)
    await reachable(args.broker, host, port)
    sim = Simulation(Registry.load_default(), host, port, seed=args.seed, rate=args.rate)
    stats = await sim.run(args.seconds)
    print(f"sent {stats.sent} orders: {stats.by_agent}", flush=True)
    return EXIT_OK


#: Why ``serve --take-over`` on the file journal is refused, and what to do instead.
TAKE_OVER_REFUSED = (
    "--take-over is refused with --data: without a replicated journal a take-over from "
    "another data directory would fork the venue's state (orders the running engine "
    "acknowledged are not in this journal); stop the running engine (tokenbook/v1/status "
    "names its host and pid) and start this one on its --data, or run the venue with "
    "--journal, where --take-over is a fenced switch (docs/fencing.md)")


async def serve_command(args) -> int:
    """``tokenbook serve``; ``--take-over`` without ``--journal`` is refused before
    anything is checked."""
    if args.take_over and not getattr(args, "journal", None):
        raise CliError(EXIT_USAGE, TAKE_OVER_REFUSED)
    return await serve(args)


async def watch_command(args) -> int:
    from rich.live import Live

    from feeds.security import MD_USER, options_from_args
    from feeds.watch import MarketView, render, watch
    host, port = broker_url(args.broker)
    try:
        options = options_from_args(args, MD_USER)      # the read-only viewer by default
    except OSError as exc:
        raise CliError(EXIT_USAGE, os_error("--credentials/TLS file", exc)) from None
    except ValueError as exc:
        raise CliError(EXIT_USAGE, str(exc)) from None
    view = MarketView()
    subscribed = asyncio.Event()
    _interrupt_ends_within(WATCH_GRACE)
    try:
        if args.json:
            def line(topic: str, payload: bytes) -> None:
                print(topic, payload.decode("utf-8", "replace"), flush=True)
            await watch(host, port, view, args.symbols or None, on_message=line,
                        mqtt_options=options, ready=subscribed)
            return EXIT_OK
        registry = Registry.load_default()
        with Live(render(view, args.symbols or None, registry=registry),
                  refresh_per_second=4) as live:
            await watch(host, port, view, args.symbols or None, mqtt_options=options,
                        ready=subscribed, on_message=lambda t, p: live.update(
                            render(view, args.symbols or None, registry=registry)))
    except aiomqtt.MqttError as exc:
        if not subscribed.is_set():
            raise broker_error(args.broker, exc, options.get("username")) from None
        who = f" as {options['username']}" if options.get("username") else ""
        raise CliError(EXIT_BROKER, f"lost the connection to the MQTT broker at "
                                    f"{args.broker}{who}: {exc} (the broker stopped, or "
                                    "another connection took this user's place: give each "
                                    "viewer a user of its own)") from None
    except asyncio.CancelledError:
        return EXIT_INTERRUPTED
    return EXIT_OK


#: Seconds a viewer has after Ctrl-C to say goodbye to the broker before it just ends.
WATCH_GRACE = 3.0


def _interrupt_ends_within(grace: float) -> None:
    """Ctrl-C cancels the running command and ends the process with 130 after ``grace``
    seconds even if the broker never answers the DISCONNECT: only for commands that keep
    no state (the viewer), so that a stopped terminal is never left hanging."""
    task = asyncio.current_task()
    assert task is not None
    armed: list[threading.Timer] = []

    def interrupted() -> None:
        if not armed:
            armed.append(threading.Timer(grace, os._exit, (EXIT_INTERRUPTED,)))
            armed[0].daemon = True
            armed[0].start()
        task.cancel()
    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, interrupted)


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
                        "that differs; 'none': no accounts, the operator opens them with "
                        "tokenbook admin open-account (default: the demo accounts)")
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
    s.add_argument("--transport", choices=TRANSPORTS, default=DEFAULT_TRANSPORT,
                   help="the engine's MQTT connection: link (default: an asyncio Protocol "
                        "on the mqtt5 codec, ~10x the orders/s; README, Performance) or "
                        "aiomqtt (aiomqtt/paho)")
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
    s.add_argument("--drop-copy", metavar="BROKERS",
                   help="comma-separated brokers (or '*') whose every report is also "
                        "published on tokenbook/v1/dropcopy/BROKER for its risk user "
                        "BROKER-risk (default: none)")
    s.add_argument("--take-over", action="store_true",
                   help="take the venue over from a running engine: with --journal, claim "
                        "the stream now (the running primary is fenced and exits 6); with "
                        "--data refused: a take-over would fork the venue (docs/fencing.md)")
    s.add_argument("--shard", metavar="ID",
                   help="serve as one shard of a sharded venue: its own retained status "
                        "and client id, orders only on tokenbook/v2/orders/+/SYMBOL for "
                        "--symbols (docs/replication.md, Shards)")
    s.add_argument("--symbols", metavar="A,B",
                   help="the instruments this --shard alone serves")
    s.add_argument("--shards", metavar="MAP",
                   help="the venue's whole shard map, 's1=A,B;s2=C' (the same on every "
                        "shard): --symbols defaults to this shard's entry, and the first "
                        "shard answers orders for a symbol no shard serves (WRONG_SHARD)")
    add_client_arguments(s)          # --username --credentials --tls-ca --tls-cert --tls-key
    _replication_arguments(s)        # --journal --standby ... (docs/replication.md)

    c = command("cluster", "a local 3-node NATS JetStream cluster on loopback ports (for "
                           "serve --journal; docs/replication.md)")
    c.add_argument("--dir", metavar="DIR",
                   help="the nodes' stores and logs (default: a temporary folder, removed "
                        "on exit)")
    c.add_argument("--nodes", type=_positive(int), default=3,
                   help="how many nats-server processes (default: %(default)s)")

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
    d.add_argument("--transport", choices=TRANSPORTS, default=DEFAULT_TRANSPORT,
                   help="the engine's MQTT connection (default: %(default)s; see serve)")

    o = command("admin", "operator: trading sessions, lifecycle steps, accounts, custody; "
                         "transfer agent: freezes, forced transfers, recovery, pause")
    o.add_argument("action", choices=(*SESSION_ACTIONS, *LIFECYCLE_ACTIONS,
                                      *(usage(a).split()[0] for a in FORMS), "auction",
                                      "transfer-cash"),
                   metavar="ACTION",
                   help="a session action or lifecycle step [SYMBOL] (default: every "
                        "instrument), or: " + "; ".join(usage(a) for a in FORMS)
                        + "; " + AUCTION_USAGE + "; " + TRANSFER_CASH_USAGE)
    o.add_argument("operands", nargs="*", metavar="OPERAND",
                   help="the action's operands; amounts are decimals in units of the asset "
                        "(the cash token, e.g. USDC, or a symbol)")
    o.add_argument("--eligibility", default="", choices=("retail", "institutional"),
                   help="open-account: the investor class (default: retail)")
    o.add_argument("--country", default="",
                   help="open-account: ISO 3166-1 alpha-2 or alpha-3 code, e.g. DE")
    o.add_argument("--qty", default="",
                   help="freeze / unfreeze: that many tokens of SYMBOL (a partial freeze)")
    o.add_argument("--coupon-date", default="",
                   help="record / pay_coupon: the coupon's payment date, ISO (default: the "
                        "next one due)")
    o.add_argument("--reason", default="", help="why, shown to brokers in rejections")
    o.add_argument("--shard", default="", metavar="ID",
                   help="a sharded venue: send it on that shard's own admin topic (account "
                        "inputs apply on one shard only)")
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
    add_client_arguments(w)      # --credentials: the tokenbook-md line unless --username
    return ap


def _replication_arguments(s: argparse.ArgumentParser) -> None:
    r = s.add_argument_group("replicated journal (docs/replication.md)")
    r.add_argument("--journal", metavar="NATS_URLS",
                   help="journal on a replicated NATS JetStream stream instead of --data, "
                        "e.g. nats://h1:4222,nats://h2:4222,nats://h3:4222 (needs --broker)")
    r.add_argument("--stream", default="tokenbook", metavar="NAME",
                   help="the venue's stream and snapshot bucket name (default: %(default)s)")
    r.add_argument("--replicas", type=_positive(int), default=3,
                   help="copies of the stream and the snapshots (default: %(default)s)")
    r.add_argument("--standby", action="store_true",
                   help="follow the stream and take over when the primary goes silent")
    r.add_argument("--takeover-after", type=_positive(float), default=1.0, metavar="S",
                   help="silence of the stream before a standby claims it (default: "
                        "%(default)s s)")
    r.add_argument("--heartbeat-every", type=_positive(float), default=0.25, metavar="S",
                   help="the primary's heartbeat on the idle stream (default: %(default)s s)")


async def cluster_command(args) -> int:
    from feeds.cluster import NatsUnavailable
    from feeds.cluster import cluster_command as run
    try:
        return await run(args)
    except NatsUnavailable as exc:
        raise CliError(EXIT_USAGE, str(exc)) from None


COMMANDS = {"serve": serve_command, "demo": demo, "watch": watch_command,
            "simulate": simulate_command, "admin": admin_command, "cluster": cluster_command}


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

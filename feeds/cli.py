"""The ``tokenbook`` command: ``serve`` runs the engine behind the MQTT gateway.

    tokenbook serve [--broker mqtt://host:port] [--accounts FILE] [--instruments FILE]
                    [--data DIR] [--fsync group|always|none] [--seconds N]

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
from pathlib import Path

from feeds.broker import EmbeddedBroker, parse_broker_url
from feeds.gateway import Gateway
from matching.engine import Engine
from matching.instruments import Registry
from matching.journal import Journal, latest_snapshot
from matching.ledger import CASH, Ledger

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


def open_engine(args, registry: Registry) -> Engine:
    """Recover from ``args.data`` if it holds a snapshot, else start fresh and snapshot."""
    data = Path(args.data)
    data.mkdir(parents=True, exist_ok=True)
    snaps, journal_path = data / "snapshots", data / "journal.log"
    journal = Journal(journal_path, fsync=args.fsync)
    if latest_snapshot(snaps) is not None:
        engine = Engine.recover(registry, snapshot_dir=snaps, journal_path=journal_path,
                                clock=time.time_ns, journal=journal)
        log.info("recovered to sequence %d (state %s)", engine.seq, engine.state_hash()[:16])
        return engine
    ledger = Ledger()
    if args.accounts:
        ledger.load(args.accounts)
    else:
        ledger = demo_ledger(registry)
    engine = Engine(registry, ledger, clock=time.time_ns, journal=journal)
    engine.write_snapshot(snaps)
    return engine


async def serve(args) -> int:
    registry = Registry.load_default(args.instruments)
    engine = open_engine(args, registry)
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
        gateway = Gateway(engine, host, port)
        await gateway.run(stop)
        engine.write_snapshot(Path(args.data) / "snapshots")
        print(f"served {gateway.stats.received} messages, {gateway.stats.trades} trades; "
              f"state {engine.state_hash()[:16]} at sequence {engine.seq}")
    finally:
        engine.journal.close()
        if embedded:
            embedded.stop()
    return 0


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
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "serve":
        return asyncio.run(serve(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())

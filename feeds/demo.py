"""``tokenbook demo``: a live market for a while on an embedded broker, then a summary.

Simulated brokers trade through the gateway. The primary market comes first: a new bill
is auctioned, awarded and issued (``feeds.demo_issuance``), and its minted tokens then
trade. The venue opens with a call auction
(``demo_opening``), the operator halts and resumes one bill, and the securities live a
compressed life: the instruments are dated relative to the day the demo runs
(``demo_registry``) and the engine's clock runs fast (``DemoClock``), so a bond pays a
coupon and a bill matures and is redeemed while it runs. The demo ends with the checks:
cash conserved, every token's supply conserved but for the new bill's (minted by its
issue) and the redeemed bill's (burned to 0), and the market-data viewer's books equal
the engine's.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import aiomqtt

from feeds.broker import BrokerUnavailable, EmbeddedBroker
from feeds.config import GatewayConfig
from feeds.demo_issuance import DEMO_BILL, result_line, run_issuance
from feeds.exits import (
    EXIT_ANOTHER_ENGINE,
    EXIT_BROKER,
    EXIT_OK,
    EXIT_REFUSED,
    CliError,
    broker_error,
    broker_url,
)
from feeds.serve import DEMO_BROKERS
from feeds.transports import DEFAULT_TRANSPORT, make_gateway
from matching.engine import Engine
from matching.fees import VENUE_BROKER, parse_fees
from matching.fixed_income import add_months
from matching.instruments import Registry
from matching.journal import Journal
from matching.ledger import CASH, Ledger
from matching.messages import AccountInput

#: The date the shipped programme's reference prices are set for (instruments.toml).
PROGRAMME_DATE = date(2026, 11, 25)
#: The demo issuer's paying account (coupons and redemptions come out of it).
DEMO_ISSUER = 9900
#: Days of the demo's compressed life: TB3M matures on day 15, BD3Y pays a coupon on day 8.
BILL_DAYS, COUPON_DAYS, LIFE_DAYS = 15, 8, 20
#: The demo's fee schedule (an instrument's ``fees`` table, docs/fees-and-compliance.md):
#: maker/taker bp with a minimum per fill, and a dearer retail tier.
DEMO_FEES = {"maker_bps": "0.5", "taker_bps": "1", "minimum": "0.01",
             "retail_maker_bps": "1", "retail_taker_bps": "2.5", "retail_minimum": "0.05"}
#: ``demo_registry`` gives the programme's n-th instrument that schedule and the fee
#: account DEMO_FEE_ACCOUNT + n, so the ledger itself shows each instrument's takings.
DEMO_FEE_ACCOUNT = 9100


def demo_registry(today: date) -> Registry:
    """The shipped programme dated relative to ``today``: every bill and bond moved by the
    days since the programme's date (so its reference prices still fit), paid from
    DEMO_ISSUER, TB3M maturing in BILL_DAYS days and BD3Y's next coupon in COUPON_DAYS.
    (The new bill the demo's issuance auction lists is defined by its announcement.)"""
    shift = today - PROGRAMME_DATE
    out = []
    for n, inst in enumerate(Registry.load_default(), 1):
        inst = dataclasses.replace(inst, fees=parse_fees(
            {"account": DEMO_FEE_ACCOUNT + n, **DEMO_FEES}, inst.cash_decimals))
        if inst.maturity is not None and inst.issue_date is not None:
            inst = dataclasses.replace(inst, issue_date=inst.issue_date + shift,
                                       maturity=inst.maturity + shift,
                                       issuer_account=DEMO_ISSUER)
        if inst.symbol == "TB3M":
            maturity = today + timedelta(days=BILL_DAYS)
            inst = dataclasses.replace(inst, issue_date=maturity - timedelta(days=91),
                                       maturity=maturity)
        elif inst.symbol == "BD3Y":
            coupon = today + timedelta(days=COUPON_DAYS)
            inst = dataclasses.replace(inst, issue_date=add_months(coupon, -6),
                                       maturity=add_months(coupon, 30))
        out.append(inst)
    return Registry(out)


class DemoClock:
    """The engine's clock in the demo: from the real start (or from ``run_fast``, when
    made with ``fast=False``: real time until then), ``LIFE_DAYS`` days pass in the first
    two thirds of ``seconds`` (about 1 day a second for 30 s). Never goes back."""

    def __init__(self, seconds: float, start: int | None = None, *, fast: bool = True):
        self.start = time.time_ns() if start is None else start
        self.speed = LIFE_DAYS * 86_400 / max(seconds * 2 / 3, 1.0)
        self.base = self.start                  # engine ns at the real ns ``fast_at``
        self.fast_at: int | None = self.start if fast else None

    def run_fast(self) -> None:
        """From now on the compressed life runs (the issuance auction ran in real time)."""
        real = time.time_ns()
        self.base, self.fast_at = (real if self.fast_at is None else self()), real

    def __call__(self) -> int:
        if self.fast_at is None:
            return time.time_ns()
        return self.base + int((time.time_ns() - self.fast_at) * self.speed)


def demo_account_inputs(registry: Registry) -> list[AccountInput]:
    """The operator's inputs that set up the demo venue from an empty ledger: open each
    demo account (and the issuer's), whitelist it for every instrument, deposit its cash
    and tokens (``feeds.serve.DEMO_BROKERS``'s amounts), as ``tokenbook admin`` would."""
    cash = next(iter(registry)).cash_token
    out = [AccountInput("open_account", DEMO_ISSUER, "treasury", "institutional", "US"),
           AccountInput("deposit", DEMO_ISSUER, asset=cash, amount="1000000000")]
    out += [AccountInput("whitelist", DEMO_ISSUER, symbol=i.symbol) for i in registry]
    for broker, accounts, eligibility in DEMO_BROKERS:
        for acct in accounts:
            out.append(AccountInput("open_account", acct, broker, eligibility, "DE"))
            out.append(AccountInput("deposit", acct, asset=cash,
                                    amount="5000000" if broker == "mm" else "250000"))
            for inst in registry:
                out.append(AccountInput("whitelist", acct, symbol=inst.symbol))
                out.append(AccountInput("deposit", acct, asset=inst.symbol,
                                        amount="2000" if broker == "mm" else "100"))
    return out


def set_up_accounts(engine: Engine, registry: Registry) -> int:
    """Apply ``demo_account_inputs`` to ``engine`` (journaled like every input); returns
    how many. A refused one is a demo bug: RuntimeError with its reason."""
    inputs = demo_account_inputs(registry)
    for msg in inputs:
        out = engine.account_input(msg)
        if not out.sequenced:
            raise RuntimeError(f"demo account input {msg.action} {msg.account} refused: "
                               f"{out.refused}")
    return len(inputs)


def fee_takings(ledger: Ledger, inst) -> Decimal:
    """What ``inst``'s fee account holds, in the cash token (0 without a schedule)."""
    if inst.fees is None or inst.fees.account not in ledger.accounts:
        return Decimal(0)
    return Decimal(ledger.balance(inst.fees.account, CASH)).scaleb(-inst.cash_decimals)


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
    clock = DemoClock(args.seconds, fast=False)       # the auction runs in real time
    today = datetime.fromtimestamp(clock.start / 1e9, tz=UTC).date()
    registry = demo_registry(today)
    broker = None
    if args.broker:
        host, port = broker_url(args.broker)
        where = args.broker
    else:
        try:
            broker = EmbeddedBroker().start()
        except BrokerUnavailable as exc:
            raise CliError(EXIT_BROKER, str(exc)) from None
        host, port = "127.0.0.1", broker.port
        where = f"private {broker.kind} at {broker.url}"
    config = GatewayConfig(drop_copy="*")         # each broker's risk user sees its copy
    guard = VenueGuard.for_config(host, port, config)
    try:
        await guard.check()
    except (AnotherEngine, aiomqtt.MqttError) as exc:
        if broker:
            broker.stop()
        if isinstance(exc, AnotherEngine):
            raise CliError(EXIT_ANOTHER_ENGINE, f"refusing to run the demo on this broker: "
                                                f"{exc}") from None
        raise broker_error(where, exc) from None
    ledger = Ledger()                    # no accounts file: the operator's inputs open them
    data = tempfile.TemporaryDirectory(prefix="tokenbook-demo-")
    engine = Engine(registry, ledger, clock=clock,
                    journal=Journal(Path(data.name) / "journal.log"))
    setup_inputs = set_up_accounts(engine, registry)
    ledger = engine.ledger
    assets = [CASH] + [i.symbol for i in registry]
    before = {a: ledger.total(a) for a in assets}
    engine.write_snapshot(Path(data.name) / "snapshots")
    console.print(f"[bold]tokenbook demo[/]: {where}, "
                  f"{len(registry)} instruments, {args.seconds:.0f} s of simulated brokers")
    stop = asyncio.Event()
    gateway = make_gateway(engine, host, port, config, guard=guard,
                           transport=getattr(args, "transport", DEFAULT_TRANSPORT))
    gw_task = asyncio.create_task(gateway.run(stop))
    await asyncio.wait_for(gateway.ready.wait(), 10)
    view = MarketView()
    md_ready = asyncio.Event()
    md_task = asyncio.create_task(watch(host, port, view, ready=md_ready))
    await asyncio.wait_for(md_ready.wait(), 10)
    # The primary market first: the new bill is auctioned and issued before trading opens.
    issuance = await run_issuance(host, port, engine, DEMO_ISSUER, 1.0, registry["TB3M"])
    clock.run_fast()
    # The new bill is listed now (by its auction's close): the rest of the demo has it.
    registry = Registry(list(engine.instruments.values()))
    if DEMO_BILL in registry:
        before[DEMO_BILL] = 0
        assets.append(DEMO_BILL)
    sim = Simulation(registry, host, port, seed=args.seed, rate=args.rate)
    session: list[str] = []
    opening: dict[str, tuple[int, int, int]] = {}
    open_task = asyncio.create_task(demo_opening(host, port, args.seconds, engine, session,
                                                 opening))
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
        for t in (open_task, halt_task):
            t.cancel()
        await asyncio.gather(open_task, halt_task, return_exceptions=True)
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
    for col in ("symbol", "trades", "volume (tokens)", "cash settled (USDC)", "fees (USDC)",
                "resting orders"):
        table.add_column(col, justify="right")
    for inst in registry:
        lots, cash = st.volume_lots.get(inst.symbol), st.settled_cash.get(inst.symbol)
        table.add_row(inst.symbol, str(st.trades_by_symbol.get(inst.symbol, 0)),
                      "0" if lots is None else str(inst.lots_to_qty(lots)),
                      "0" if cash is None else str(Decimal(cash).scaleb(-inst.cash_decimals)),
                      str(fee_takings(ledger, inst)), str(len(engine.books[inst.symbol])))
    console.print(table)
    console.print(f"orders entered {engine.next_order_id - 1}, messages {st.received}, "
                  f"execution reports {st.reports}, trades {st.trades}, "
                  f"sent by agent {sim.stats.by_agent}")
    console.print(f"accounts: {len(ledger.accounts)} opened, whitelisted and funded by "
                  f"{setup_inputs} operator inputs (open_account, whitelist, deposit), "
                  "journaled like orders; no accounts file")
    console.print(result_line(issuance, registry.get(DEMO_BILL)))
    console.print("operator: " + ("; ".join(session) or "no session command answered"))
    console.print("opening auctions: " + ("; ".join(
        f"{s} {registry[s].ticks_to_price(price)} x {registry[s].lots_to_qty(lots)} "
        f"at sequence {seq}" for s, (seq, price, lots) in sorted(opening.items()))
        or "none uncrossed"))
    console.print("rejects by reason: " + (", ".join(f"{k} {v}" for k, v in
                                                     sorted(st.reject_reasons.items())) or "none"))
    life_end = datetime.fromtimestamp(clock() / 1e9, tz=UTC).date()
    console.print(f"lifecycle (engine clock x{clock.speed:.0f}, {today} to {life_end}): "
                  + ("; ".join(st.lifecycle) or "no step taken"))
    usdc = next(iter(registry)).cash_token
    console.print("coupons paid: " + (", ".join(
        f"{s} {Decimal(v).scaleb(-registry[s].cash_decimals)} {usdc}"
        for s, v in sorted(st.coupons_paid.items())) or "none"))
    console.print("redeemed: " + (", ".join(
        f"{s} {registry[s].lots_to_qty(st.burned_lots.get(s, 0))} tokens burned for "
        f"{Decimal(v).scaleb(-registry[s].cash_decimals)} {usdc}"
        for s, v in sorted(st.redeemed_cash.items())) or "none"))
    after = {a: ledger.total(a) for a in assets}
    cash_ok = after[CASH] == before[CASH]
    # The fee accounts' takings: balances of the ledger, so cash conservation counts them.
    charged = {i.fees.account: i.symbol for i in registry if i.fees is not None}
    fee_accounts = list(charged)
    places = next(iter(registry)).cash_decimals
    taken = sum(ledger.balance(a, CASH) for a in fee_accounts)
    fees_ok = taken > 0                 # every fill pays its fee (at least 1 minor unit)
    console.print(f"cash: {Decimal(before[CASH]).scaleb(-places)} {usdc} before and "
                  f"{Decimal(after[CASH]).scaleb(-places)} after, the {len(fee_accounts)} "
                  f"fee accounts of the venue ({VENUE_BROKER}) included; fees charged "
                  f"{Decimal(taken).scaleb(-places)} {usdc}")
    console.print("fees: " + (", ".join(
        f"{charged[a]} {Decimal(ledger.balance(a, CASH)).scaleb(-places)} {usdc} (account {a})"
        for a in fee_accounts) or "none charged") + f"; cash conserved including fees {cash_ok}")
    # Supply: every token's total as it was, plus what the issue minted, less what
    # redemption burned (all of it).
    minted = {DEMO_BILL: issuance.minted_lots}
    supply_ok = all(after[a] == before[a] + minted.get(a, 0) - st.burned_lots.get(a, 0)
                    for a in assets[1:]) \
        and all(ledger.supply(s) == 0 for s in engine.corporate.redeemed)
    mismatched = book_matches_view(engine, view)
    # Every order id went to an order the engine acknowledged (a New report went out) or
    # the book refused (a Rejected report naming it); every acknowledged order is live or
    # was closed by a report of its own: nothing is unaccounted for.
    accounted = (st.acks + st.book_rejects == engine.next_order_id - 1
                 and st.closed + len(engine.orders) == st.acks)
    console.print(f"acknowledged orders {st.acks}: closed {st.closed} + live "
                  f"{len(engine.orders)}; refused by the book {st.book_rejects}; "
                  f"accounted {accounted}")
    lived = bool(st.coupons_paid) and bool(engine.corporate.redeemed)
    ok = cash_ok and supply_ok and not mismatched and st.trades > 0 and accounted and \
        lived and issuance.ok and bool(opening) and \
        all(line.startswith("accepted") for line in session)
    console.print(f"checks: ledger conserved {cash_ok and supply_ok} (cash conserved {cash_ok}, "
                  f"supply conserved {supply_ok}, {DEMO_BILL} minted "
                  f"{issuance.minted_qty(registry.get(DEMO_BILL))} by its issue, "
                  "redeemed "
                  f"{', '.join(sorted(engine.corporate.redeemed)) or 'none'} to supply 0); "
                  f"market-data books equal the engine's {not mismatched} {mismatched or ''}; "
                  f"state {engine.state_hash()[:16]}")
    return EXIT_OK if ok and fees_ok else EXIT_REFUSED


#: The share of the demo's time the opening call lasts before the uncross.
OPENING_CALL_SHARE = 0.1


async def demo_opening(host: str, port: int, seconds: float, engine: Engine,
                       session: list[str], opening: dict) -> None:
    """The venue opens with a call: the operator's ``pre_open`` puts every book in a call
    (brokers' orders rest, nothing matches), ``open`` a tenth of the run (at least 1 s)
    later uncrosses each book at one price (docs/matching-rules.md) and trading
    continues. ``opening`` gets each uncrossed instrument's (seq, price ticks, lots)."""
    from feeds.operator import send_command
    for action, pause in (("pre_open", max(1.0, seconds * OPENING_CALL_SHARE)), ("open", 0)):
        reply = await send_command(host, port, action, "", "opening auction (demo)"
                                   if action == "pre_open" else "")
        session.append(f"{'accepted' if reply.accepted else 'REFUSED'} {reply.text} at "
                       f"sequence {reply.seq}")
        await asyncio.sleep(pause)
    opening.update(engine.auctions.uncrossed)


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

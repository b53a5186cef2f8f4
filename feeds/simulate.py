"""Simulated brokers: market makers on a yield curve, retail savers, institutions, noise.

Seeded and reproducible in what each agent decides (network timing still varies).
Market makers quote both sides around a fair value priced from a yield curve (bills on
money-market yields, bonds on yield to maturity, gold on a random walk), skewed against
their inventory. Retail investors buy small fractions of bills and bonds; an institution
places blocks; noise traders add and cancel at random.
"""
from __future__ import annotations

import asyncio
import itertools
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from feeds.client import BrokerClient, CancelRejected
from matching import fixed_income as fi
from matching.instruments import Instrument, Registry
from matching.messages import ExecutionReport, NewOrderSingle, SideName

__all__ = ["YieldCurve", "Simulation", "SimStats"]


@dataclass
class YieldCurve:
    """Zero-spread par curve: yield by years to maturity, linear between points."""
    points: tuple[tuple[float, str], ...] = ((0.25, "0.0395"), (0.5, "0.0400"), (1, "0.0405"),
                                             (3, "0.0410"), (5, "0.0420"), (10, "0.0440"))

    def at(self, years: Decimal) -> Decimal:
        pts = [(Decimal(str(t)), Decimal(y)) for t, y in self.points]
        if years <= pts[0][0]:
            return pts[0][1]
        for (t0, y0), (t1, y1) in itertools.pairwise(pts):
            if years <= t1:
                return y0 + (y1 - y0) * (years - t0) / (t1 - t0)
        return pts[-1][1]


def fair_price(inst: Instrument, curve: YieldCurve, settle: date, shift: Decimal,
               gold: Decimal) -> Decimal:
    """Clean price per 100 (bills, bonds) or per token (gold) from the curve + a shift."""
    if inst.kind == "commodity":
        return gold
    _, issue, maturity = inst.debt_terms()
    years = Decimal((maturity - settle).days) / 365
    y = curve.at(years) + shift
    if inst.kind == "tbill":
        return fi.bill_price_from_yield(y, settle, maturity)
    return fi.bond_clean_price(y, inst.coupon_rate, inst.coupon_frequency, issue, maturity,
                               settle, inst.day_count)


def on_tick(inst: Instrument, price: Decimal, up: bool) -> str:
    steps = (price / inst.tick_size).to_integral_value(ROUND_CEILING if up else ROUND_FLOOR)
    return str(inst.ticks_to_price(int(steps)))


@dataclass
class SimStats:
    sent: int = 0
    by_agent: dict[str, int] = field(default_factory=dict)

    def count(self, agent: str) -> None:
        self.sent += 1
        self.by_agent[agent] = self.by_agent.get(agent, 0) + 1


class Simulation:
    """All agents against one gateway; ``await sim.run(seconds)``."""

    def __init__(self, registry: Registry, host: str, port: int, *, seed: int = 7,
                 rate: float = 150.0, accounts: dict[str, tuple[int, ...]] | None = None):
        self.registry = registry
        self.host, self.port = host, port
        self.rng = random.Random(seed)
        self.rate = rate
        self.curve = YieldCurve()
        self.accounts = accounts or {"alpha": (1001, 1002, 1003), "beta": (2001, 2002),
                                     "gamma": (3001,), "mm": (9001, 9002)}
        self.stats = SimStats()
        self.shift = Decimal(0)                   # parallel curve move, a random walk
        self.gold = Decimal("110.00")
        self.inventory: dict[str, Decimal] = {i.symbol: Decimal(0) for i in registry}
        self.quotes: dict[tuple[str, str], str] = {}   # (symbol, side) -> live ClOrdID
        self.n = 0
        self.settle = datetime.now(UTC).date()

    def _cl(self, agent: str) -> str:
        self.n += 1
        return f"{agent}-{self.n}"

    def fair(self, inst: Instrument) -> Decimal:
        return fair_price(inst, self.curve, self.settle, self.shift, self.gold)

    # ------------------------------------------------------------------ agents
    async def market_maker(self, client: BrokerClient, stop: asyncio.Event) -> None:
        """Quote every instrument both sides around fair value, skewed by inventory."""
        acct = self.accounts["mm"][0]
        while not stop.is_set():
            self.shift += Decimal(self.rng.choice((-1, 0, 0, 1))) / 10000
            self.gold += Decimal(self.rng.choice((-5, 0, 0, 5))) / 100
            for inst in self.registry:
                fair = self.fair(inst)
                skew = -self.inventory[inst.symbol] * inst.tick_size / 4
                half = inst.tick_size * (3 if inst.kind == "tbill" else 8)
                size = str(self.rng.choice((5, 10, 20)))
                sides: tuple[tuple[SideName, str], ...] = (
                    ("buy", on_tick(inst, fair + skew - half, up=False)),
                    ("sell", on_tick(inst, fair + skew + half, up=True)))
                for side, px in sides:
                    key = (inst.symbol, side)
                    cl = self._cl("mm")
                    ack: ExecutionReport | None
                    if key in self.quotes:
                        try:
                            ack = await client.replace(cl, self.quotes[key], inst.symbol, px,
                                                       size)
                        except CancelRejected:          # the quote traded away meanwhile
                            ack = None
                    else:
                        ack = await client.submit(NewOrderSingle(
                            cl, acct, inst.symbol, side, size, price=px, time_in_force="gtc",
                            stp="cancel_resting"))
                    self.stats.count("market_maker")
                    if ack is not None and ack.exec_type in ("new", "replaced"):
                        self.quotes[key] = cl
                    else:
                        self.quotes.pop(key, None)
            for r in client.pending_reports():
                if not isinstance(r, ExecutionReport):
                    continue                            # a cancel reject: nothing changed
                if r.exec_type == "trade" and r.last_qty:
                    sign = 1 if r.side == "buy" else -1
                    self.inventory[r.symbol] += sign * Decimal(r.last_qty)
                if r.ord_status in ("filled", "canceled", "expired"):
                    self.quotes = {k: v for k, v in self.quotes.items() if v != r.cl_ord_id}
            await asyncio.sleep(0.5)

    def retail(self, client: BrokerClient) -> None:
        """A saver buys a small fraction of a bill or bond at a price a little through fair."""
        inst = self.rng.choice([i for i in self.registry if "retail" in i.eligibility
                                and i.kind != "commodity"])
        qty = str(Decimal(self.rng.choice((1, 2, 5, 10, 25, 50, 100, 250))) / 100)
        buy = self.rng.random() < 0.8
        px = on_tick(inst, self.fair(inst) + (1 if buy else -1) * 12 * inst.tick_size, up=buy)
        acct = self.rng.choice(self.accounts["alpha"])
        client.send_nowait(NewOrderSingle(self._cl("alpha"), acct, inst.symbol,
                                          "buy" if buy else "sell", qty, price=px,
                                          time_in_force="ioc"))
        self.stats.count("retail")

    def institution(self, client: BrokerClient) -> None:
        """A block order near fair value, resting."""
        inst = self.rng.choice(list(self.registry))
        buy = self.rng.random() < 0.5
        px = on_tick(inst, self.fair(inst) + (-2 if buy else 2) * inst.tick_size, up=not buy)
        client.send_nowait(NewOrderSingle(self._cl("gamma"), self.accounts["gamma"][0],
                                          inst.symbol, "buy" if buy else "sell",
                                          str(self.rng.choice((50, 100, 150))), price=px,
                                          time_in_force="day"))
        self.stats.count("institution")

    def noise(self, client: BrokerClient) -> None:
        """A random limit order a few ticks around fair, sometimes crossing."""
        inst = self.rng.choice([i for i in self.registry if "retail" in i.eligibility])
        buy = self.rng.random() < 0.5
        off = self.rng.randint(-4, 20) * inst.tick_size
        px = on_tick(inst, self.fair(inst) + (-off if buy else off), up=not buy)
        client.send_nowait(NewOrderSingle(self._cl("beta"), self.rng.choice(self.accounts["beta"]),
                                          inst.symbol, "buy" if buy else "sell",
                                          str(self.rng.choice((1, 3, 7))), price=px,
                                          time_in_force=self.rng.choice(("gtc", "ioc", "day"))))
        self.stats.count("noise")

    async def run(self, seconds: float, progress=None) -> SimStats:
        stop = asyncio.Event()
        clients = {b: BrokerClient(b, self.host, self.port) for b in self.accounts}
        for c in clients.values():
            await c.__aenter__()
        mm = asyncio.create_task(self.market_maker(clients["mm"], stop))
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        try:
            while loop.time() < end:
                r = self.rng.random()
                if r < 0.45:
                    self.retail(clients["alpha"])
                elif r < 0.9:
                    self.noise(clients["beta"])
                else:
                    self.institution(clients["gamma"])
                if progress:
                    progress(seconds - (end - loop.time()))
                await asyncio.sleep(self.rng.expovariate(self.rate))
        finally:
            stop.set()
            await asyncio.wait_for(mm, 30)
            await asyncio.sleep(0.5)                 # let the last reports arrive
            for c in clients.values():
                await c.__aexit__(None, None, None)
        return self.stats

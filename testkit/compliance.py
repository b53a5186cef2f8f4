"""The compliance tests' venue: TB3M with the rules a test names, four accounts of known
countries and classes, and order helpers at a fixed engine time."""
from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from matching.compliance_rules import ComplianceRules
from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger
from matching.messages import NewOrderSingle, OrderCancelReplaceRequest

__all__ = ["T0", "DAY", "USD", "LOT", "BUYER", "SELLER", "OTHER", "NOWHERE", "PLAIN",
           "registry", "ledger", "engine", "buy", "sell", "report", "replace"]

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
DAY = 86_400 * 10**9
USD = 10**6
LOT = 10**4                       # lots per TB3M token
#: alpha's retail DE buyer, beta's institutional FR seller (holds 100 TB3M), alpha's
#: retail US account, alpha's institutional account with no country on file.
BUYER, SELLER, OTHER, NOWHERE = 10, 20, 30, 40
PLAIN = Registry.load_default()


def registry(**rules) -> list:
    """The default programme with TB3M's compliance terms set to ``rules``."""
    terms = ComplianceRules(**rules)
    return [dataclasses.replace(i, compliance=terms) if i.symbol == "TB3M" else i
            for i in PLAIN]


def ledger() -> Ledger:
    led = Ledger()
    led.open_account(BUYER, "alpha", "retail", "DE")
    led.open_account(SELLER, "beta", "institutional", "FR")
    led.open_account(OTHER, "alpha", "retail", "US")
    led.open_account(NOWHERE, "alpha", "institutional")
    for acct in (BUYER, SELLER, OTHER, NOWHERE):
        led.deposit(acct, CASH, 100_000 * USD)
        led.whitelist(acct, "TB3M")
    led.deposit(SELLER, "TB3M", 100 * LOT)
    return led


def engine(book_engine: str = "core", journal=None, **rules) -> Engine:
    return Engine(registry(**rules), ledger(), clock=lambda: T0, book_engine=book_engine,
                  journal=journal)


def buy(eng, cl, account, qty, price="99.270", broker="alpha", now=T0):
    return eng.submit(broker, NewOrderSingle(cl, account, "TB3M", "buy", qty, price=price),
                      now=now)


def sell(eng, cl, qty, price="99.270", account=SELLER, broker="beta", now=T0):
    return eng.submit(broker, NewOrderSingle(cl, account, "TB3M", "sell", qty, price=price),
                      now=now)


def report(out, broker="alpha"):
    """The last report of ``out`` to ``broker`` (a taker's fill comes after its ack)."""
    return [r for b, r in out.reports if b == broker][-1]


def replace(eng, cl, orig, qty, price, broker="alpha", now=T0):
    """A replace of ``broker``'s TB3M order ``orig`` to ``qty`` at ``price``."""
    return eng.submit(broker, OrderCancelReplaceRequest(cl, orig, "TB3M", price, qty),
                      now=now)

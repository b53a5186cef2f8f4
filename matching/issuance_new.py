"""New issues: an instrument defined by its auction's announcement (``AuctionInput.instrument``)
and listed by the engine at the auction's close, live, in replay and in recovery alike.

Until the close the instrument exists only for its auction (bids are checked and priced
against it, accounts may be whitelisted for it); the close lists it (``matching.listing``)
when anything is awarded, so the issue mints into a listed token. A new note or bond
announced without a ``coupon_rate`` gets the coupon its high yield sets (31 CFR
356.20(b), ``issuance_rules.interest_rate_of``); its bids reserve cash at par, which any
uniform-price award at that coupon is at or below.
"""
from __future__ import annotations

from decimal import Decimal

import msgspec

from matching.errors import EngineReject, Rejection
from matching.instruments import (
    DEFAULT_CASH_DECIMALS,
    DEFAULT_CASH_TOKEN,
    Instrument,
    InstrumentError,
)
from matching.issuance_rules import RATE_PLACES, interest_rate_of
from matching.listing import instrument_of_terms, list_instrument
from matching.messages import AuctionInput

__all__ = ["NewIssue", "NewIssues"]

Terms = dict[str, str | int | bool | list[str]]


class NewIssue(msgspec.Struct, array_like=True):
    """One announced new issue: its terms as they will be listed (``coupon_rate`` filled
    in at the close when the auction sets it), and whether the close listed it."""
    auction_id: str
    symbol: str
    terms: Terms
    coupon_at_auction: bool
    listed: bool = False


def _no(code: EngineReject, text: str) -> Rejection:
    return Rejection(code.value, text)


class NewIssues:
    """The new issues of one engine's auctions, by auction id."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.by_auction: dict[str, NewIssue] = {}
        self._inst: dict[str, Instrument] = {}          # derived: rebuilt from the terms

    def _cash(self) -> tuple[str, int]:
        first = next(iter(self.engine.instruments.values()), None)
        if first is None:
            return DEFAULT_CASH_TOKEN, DEFAULT_CASH_DECIMALS
        return first.cash_token, first.cash_decimals

    def _build(self, symbol: str, terms: Terms) -> Instrument:
        return instrument_of_terms(symbol, terms, *self._cash())

    # ------------------------------------------------------------------ checks
    def check(self, m: AuctionInput) -> Instrument:
        """The instrument ``m`` (an announce with terms) defines, as bids will see it; a
        Rejection if its terms are wrong or its symbol or ISIN is taken."""
        assert m.instrument is not None
        symbol = m.symbol
        if symbol in self.engine.instruments or self.pending(symbol):
            raise _no(EngineReject.SYMBOL_LISTED, f"{symbol!r} is listed or announced "
                      "already: a reopening announces it without terms")
        terms = dict(m.instrument)
        if "issue_date" in terms and terms["issue_date"] != m.issue_date:
            raise _no(EngineReject.INVALID_ISSUE_TERMS, f"the new issue is dated "
                      f"{terms['issue_date']}, the auction issues on {m.issue_date}")
        terms["issue_date"] = m.issue_date
        at_auction = terms.get("kind") == "bond" and "coupon_rate" not in terms
        if at_auction:
            if m.basis != "yield":
                raise _no(EngineReject.INVALID_ISSUE_TERMS, "a coupon set by the auction "
                          "needs yield bids (basis yield)")
            terms["coupon_rate"] = "0"               # a placeholder until the close
        try:
            inst = self._build(symbol, terms)
        except InstrumentError as exc:
            raise _no(EngineReject.INVALID_ISSUE_TERMS, f"{symbol}: {exc}") from None
        taken = {i.isin for i in self.engine.instruments.values()}
        taken |= {self.instrument(a).isin for a, n in self.by_auction.items() if not n.listed}
        if inst.isin in taken:
            raise _no(EngineReject.SYMBOL_LISTED, f"ISIN {inst.isin} is listed or announced")
        return inst

    def pending(self, symbol: str) -> bool:
        """Whether ``symbol`` is a new issue announced and not listed (nor refused) yet."""
        return any(n.symbol == symbol and not n.listed and n.auction_id in self.open_ids()
                   for n in self.by_auction.values())

    def open_ids(self) -> set[str]:
        return {a.auction_id for a in self.engine.issuance.auctions.values()
                if a.status in ("open", "closed")}

    # ------------------------------------------------------------------ state
    def add(self, m: AuctionInput) -> None:
        """Record the new issue of the checked announce ``m``."""
        assert m.instrument is not None
        terms = dict(m.instrument)
        terms["issue_date"] = m.issue_date
        at_auction = terms.get("kind") == "bond" and "coupon_rate" not in terms
        if at_auction:
            terms["coupon_rate"] = "0"
        self.by_auction[m.auction_id] = NewIssue(m.auction_id, m.symbol, terms, at_auction)

    def of(self, auction_id: str) -> NewIssue | None:
        return self.by_auction.get(auction_id)

    def instrument(self, auction_id: str) -> Instrument:
        """The new issue as announced (a coupon set at auction still a placeholder)."""
        inst = self._inst.get(auction_id)
        if inst is None:
            n = self.by_auction[auction_id]
            inst = self._inst[auction_id] = self._build(n.symbol, n.terms)
        return inst

    def final(self, auction_id: str, high_yield: int | None) -> Instrument:
        """The new issue as it will be listed: with the coupon its high yield sets."""
        n = self.by_auction[auction_id]
        if not n.coupon_at_auction or high_yield is None:
            return self.instrument(auction_id)
        return self._build(n.symbol, {**n.terms, "coupon_rate": coupon_text(high_yield)})

    def list_at_close(self, auction_id: str, inst: Instrument) -> None:
        """List ``inst`` (``final``'s) in the engine: its book opens at the close."""
        n = self.by_auction[auction_id]
        n.terms = {**n.terms, "coupon_rate": str(inst.coupon_rate)} if n.coupon_at_auction \
            else n.terms
        n.listed = True
        self._inst[auction_id] = inst
        list_instrument(self.engine, inst)

    def snapshot(self) -> list:
        return msgspec.to_builtins(list(self.by_auction.values()))

    def restore(self, rows) -> None:
        """The new issues of a snapshot; the listed ones are listed again (before the
        snapshot's books are restored into them)."""
        for n in msgspec.convert(rows or [], list[NewIssue]):
            self.by_auction[n.auction_id] = n
            if n.listed:
                inst = self._build(n.symbol, n.terms)
                self._inst[n.auction_id] = inst
                list_instrument(self.engine, inst)


def coupon_text(high_yield: int) -> str:
    """The coupon ``interest_rate_of`` sets, as a fraction ("0.03625" for 3 5/8 %)."""
    rate = Decimal(interest_rate_of(high_yield)).scaleb(-RATE_PLACES["yield"] - 2)
    return format(rate.normalize(), "f")


def coupon_percent(inst: Instrument) -> str:
    """A coupon fraction as the percent a result publishes ("3.625")."""
    return format((inst.coupon_rate * 100).quantize(Decimal("0.001")), "f")

"""The primary market in the engine: issuance auctions announced, bid, closed and issued
(``matching.messages.AuctionInput``), journaled and replayed like every input.

``announce`` (issuer/operator): an auction of an existing bill or bond (a new issue with
zero supply, or a reopening), its offering, close time, issue date, method and basis.
``bid`` (a broker, sealed): competitive (amount + rate) or non-competitive (amount only;
one per investor, within the NC cap); the cash is reserved at once at the worst price
the bid can pay (its own price; ``nc_price`` for NC). ``cancel_bid`` until the close.
``close`` (at or after the close time): the award (``matching.issuance_rules``), each
bidder told its own award, unsuccessful reservations released, results published.
``issue`` (on or after the issue date): one ``Ledger.mint`` step creates the tokens and
pays the issuer.

``check`` runs every rule before anything is journaled (a refusal raises ``Rejection``
with its ``EngineReject`` code); ``apply`` cannot then fail, live or on replay.
"""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Literal

import msgspec

from matching.economics import trade_date
from matching.errors import EngineCancel, EngineReject, Rejection
from matching.issuance_new import NewIssues, coupon_percent
from matching.issuance_results import (
    allotment_cash,
    cash_str,
    lot_face,
    price_of_rate,
    rate_str,
    reserve_cash,
    result_of,
)
from matching.issuance_rules import (
    BASES,
    METHODS,
    NC_OVERFLOWS,
    RATE_PLACES,
    Tender,
    Terms,
    award,
)
from matching.issuance_state import AuctionState, BidState
from matching.ledger import CASH, Delivery
from matching.messages import AuctionAward, AuctionBidStatus, AuctionInput, AuctionResult

__all__ = ["Issuance", "AuctionState", "BidState"]

_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_DECIMAL = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,18})?")
_BID_NOT_ACCEPTED = EngineCancel.BID_NOT_ACCEPTED.value
_AUCTION_REJECTED = EngineCancel.AUCTION_REJECTED.value
BidStatusName = Literal["accepted", "cancelled", "rejected", "released"]


def _no(code: EngineReject, text: str) -> Rejection:
    return Rejection(code.value, text)


def _decimal(text: str, what: str, code: EngineReject) -> Decimal:
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise _no(code, f"{what} must be a non-negative decimal string, got {text!r}")
    try:
        return Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        raise _no(code, f"{what} {text!r} is not a number") from None


class Issuance:
    """Every issuance auction of one engine; checks and applies ``AuctionInput``s."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.auctions: dict[str, AuctionState] = {}
        self.next_ref = 1
        self.new = NewIssues(engine)       # instruments defined by their announcement

    # ------------------------------------------------------------------ units
    def _lots(self, inst, text: str, what: str, code: EngineReject) -> int:
        """A face amount in whole lots of ``inst``; a fraction of a lot is refused."""
        face = _decimal(text, what, code)
        lots = Decimal(face) / Decimal(lot_face(inst).numerator) * lot_face(inst).denominator
        if lots != lots.to_integral_value():
            raise _no(code, f"{what} {text} is not a whole number of lots of {inst.symbol}")
        return int(lots)

    def _rate(self, text: str, basis: str, code: EngineReject) -> int:
        places = RATE_PLACES[basis]
        d = _decimal(text, f"a {basis}", code)
        scaled = d.scaleb(places)
        if scaled != scaled.to_integral_value():
            raise _no(code, f"a {basis} has at most {places} decimals, got {text}")
        if basis == "price" and not scaled:
            raise _no(code, "a price must be positive")
        return int(scaled)

    def _inst(self, a: AuctionState):
        """The auction's instrument: listed, or its new issue as announced."""
        inst = self.engine.instruments.get(a.symbol)
        return inst if inst is not None else self.new.instrument(a.auction_id)

    def _price(self, a: AuctionState, rate: int | None) -> Decimal:
        """The price a bid's cash is reserved at: its own; NC's ``nc_price``; par for a
        new bond whose coupon the auction sets (a uniform award at coupon <= high yield
        costs at most par)."""
        if rate is None:
            return Decimal(a.nc_price)
        n = self.new.of(a.auction_id)
        if n is not None and n.coupon_at_auction and not n.listed:
            return Decimal(100)
        return price_of_rate(self._inst(a), rate, a.basis, date.fromisoformat(a.issue_date))

    def _auction(self, m: AuctionInput) -> AuctionState:
        a = self.auctions.get(m.auction_id)
        if a is None:
            raise _no(EngineReject.UNKNOWN_AUCTION, f"no auction {m.auction_id!r}")
        return a

    # ------------------------------------------------------------------ checks
    def check(self, m: AuctionInput, now: int) -> AuctionInput:
        """Every rule of ``m`` against the state at ``now``; a ``Rejection`` says which."""
        action = m.action
        if action == "announce":
            self._check_announce(m, now)
        elif action == "bid":
            self._check_bid(m, now)
        elif action == "cancel_bid":
            a = self._auction(m)
            if a.status != "open" or now >= a.close_time:
                raise _no(EngineReject.AUCTION_CLOSED, f"auction {a.auction_id} is closed")
            self._live_bid(a, m)
        elif action == "close":
            self._check_close(m, now)
        elif action == "issue":
            a = self._auction(m)
            if a.status != "closed":
                raise _no(EngineReject.AUCTION_STATE,
                          f"auction {a.auction_id} is {a.status}, not closed")
            if trade_date(now) < date.fromisoformat(a.issue_date):
                raise _no(EngineReject.AUCTION_NOT_DUE,
                          f"auction {a.auction_id} issues on {a.issue_date}")
        else:
            raise _no(EngineReject.INVALID_FIELD, f"unknown auction action {action!r}")
        return m

    def _check_announce(self, m: AuctionInput, now: int) -> None:
        bad = EngineReject.INVALID_AUCTION_TERMS
        if not _ID.fullmatch(m.auction_id or ""):
            raise _no(bad, f"auction id {m.auction_id!r} is not 1-64 of [A-Za-z0-9_.-]")
        if m.auction_id in self.auctions:
            raise _no(EngineReject.AUCTION_EXISTS, f"auction {m.auction_id} exists")
        if m.instrument is not None:
            inst = self.new.check(m)
        else:
            inst = self.engine.instruments.get(m.symbol)
        if inst is None or inst.kind not in ("tbill", "bond"):
            raise _no(EngineReject.UNKNOWN_SYMBOL, f"{m.symbol!r} is not a listed bill or bond")
        if any(a.symbol == m.symbol and a.status in ("open", "closed")
               for a in self.auctions.values()):
            raise _no(EngineReject.AUCTION_EXISTS, f"{m.symbol} has an auction pending")
        if m.method not in METHODS or m.basis not in BASES or m.nc_overflow not in NC_OVERFLOWS:
            raise _no(bad, f"method one of {METHODS}, basis one of {BASES}, nc_overflow "
                      f"one of {NC_OVERFLOWS}")
        if self._lots(inst, m.amount, "the offering", bad) <= 0:
            raise _no(bad, "the offering must be positive")
        if m.close_time <= now:
            raise _no(bad, "the close time must be in the future")
        try:
            issue = date.fromisoformat(m.issue_date)
        except (TypeError, ValueError):
            raise _no(bad, f"issue date {m.issue_date!r} is not an ISO date") from None
        if issue < trade_date(m.close_time) or issue >= inst.debt_terms()[2]:
            raise _no(bad, f"issue date {issue} must be on or after the close and before "
                      f"maturity {inst.debt_terms()[2]}")
        if m.nc_max:
            self._lots(inst, m.nc_max, "the NC cap", bad)
        pct = _decimal(m.max_award_pct, "max_award_pct", bad)
        if not 0 < pct <= 100 or pct.scaleb(2) != pct.scaleb(2).to_integral_value():
            raise _no(bad, "max_award_pct must be in (0, 100] to 0.01")
        if m.limit:
            self._rate(m.limit, m.basis, bad)
        if not 0 < _decimal(m.nc_price, "nc_price", bad) < 1000:
            raise _no(bad, "nc_price must be a positive price per 100")
        issuer = m.issuer_account or inst.issuer_account
        if issuer is None or issuer not in self.engine.ledger.accounts:
            raise _no(EngineReject.UNKNOWN_ACCOUNT, f"issuer account {issuer} is not open")

    def _check_bid(self, m: AuctionInput, now: int) -> None:
        a = self._auction(m)
        if a.status != "open" or now >= a.close_time:
            raise _no(EngineReject.AUCTION_CLOSED, f"auction {a.auction_id} closed for bids")
        ledger = self.engine.ledger
        inst = self._inst(a)
        if ledger.broker_of(m.account) != m.broker or not m.broker:
            raise _no(EngineReject.UNKNOWN_ACCOUNT,
                      f"account {m.account} does not belong to {m.broker}")
        if not ledger.may_trade(m.account, a.symbol):
            raise _no(EngineReject.NOT_WHITELISTED, f"account {m.account} may not hold "
                      f"{a.symbol}")
        if ledger.is_blocked(m.account, a.symbol):
            raise _no(EngineReject.ACCOUNT_FROZEN, f"account {m.account} is frozen")
        if ledger.eligibility_of(m.account) not in inst.eligibility:
            raise _no(EngineReject.NOT_ELIGIBLE, f"{a.symbol} is not for this investor class")
        if not _ID.fullmatch(m.bid_id or ""):
            raise _no(EngineReject.INVALID_BID, f"bid id {m.bid_id!r} is not 1-64 of "
                      "[A-Za-z0-9_.-]")
        if any(b.broker == m.broker and b.bid_id == m.bid_id for b in a.bids):
            raise _no(EngineReject.DUPLICATE_BID, f"bid {m.bid_id} exists in {a.auction_id}")
        lots = self._lots(inst, m.amount, "the amount", EngineReject.INVALID_BID)
        if lots <= 0:
            raise _no(EngineReject.INVALID_BID, "the amount must be positive")
        if m.net_long:
            self._lots(inst, m.net_long, "the net long position", EngineReject.INVALID_BID)
        if m.rate:
            if a.competitive and m.account not in a.competitive:
                raise _no(EngineReject.NOT_COMPETITIVE_BIDDER, f"account {m.account} may "
                          f"not bid competitively in {a.auction_id}")
            rate = self._rate(m.rate, a.basis, EngineReject.INVALID_BID)
        else:
            if lots > a.nc_max:
                raise _no(EngineReject.ABOVE_NC_CAP, f"{m.amount} is above the NC cap of "
                          f"{self._face(a, a.nc_max)}")
            if any(b.account == m.account and b.rate is None for b in a.bids):
                raise _no(EngineReject.DUPLICATE_NC_BID, f"account {m.account} has an NC "
                          f"bid in {a.auction_id}")
            rate = None
        need = reserve_cash(inst, lots, self._price(a, rate), date.fromisoformat(a.issue_date))
        free = ledger.free(m.account, CASH)
        if need > free:
            raise _no(EngineReject.INSUFFICIENT_FUNDS, f"the bid reserves {need} cash units, "
                      f"account {m.account} has {free} free")

    def _live_bid(self, a: AuctionState, m: AuctionInput) -> BidState:
        for b in a.bids:
            if b.broker == m.broker and b.bid_id == m.bid_id:
                return b
        raise _no(EngineReject.UNKNOWN_BID, f"{m.broker} has no bid {m.bid_id!r} in "
                  f"{a.auction_id}")

    def _check_close(self, m: AuctionInput, now: int) -> None:
        a = self._auction(m)
        if a.status != "open":
            raise _no(EngineReject.AUCTION_STATE, f"auction {a.auction_id} is {a.status}")
        if now < a.close_time:
            raise _no(EngineReject.AUCTION_NOT_DUE, f"auction {a.auction_id} closes later")
        if m.reject_all:
            return
        ledger = self.engine.ledger
        extra: dict[int, int] = {}
        for b, (lots, cash, _) in zip(a.bids, self._awards(a)[1], strict=True):
            if lots and cash > b.reserved:
                extra[b.account] = extra.get(b.account, 0) + cash - b.reserved
        for account, need in sorted(extra.items()):
            if need > ledger.free(account, CASH):
                raise _no(EngineReject.AUCTION_UNFUNDED, f"account {account} needs {need} "
                          "more cash than its NC bid reserved")

    # ------------------------------------------------------------------ the award
    def _awards(self, a: AuctionState):
        """The award of ``a`` now: the rules' result, the instrument as it issues (a new
        bond with the coupon its high yield sets), and per bid (lots, cash, price)."""
        settle = date.fromisoformat(a.issue_date)
        terms = Terms(a.offering, a.method, a.basis, a.max_award_bp, a.limit, a.nc_overflow)
        res = award(terms, [Tender(-b.ref, b.account, b.lots, b.rate, b.net_long)
                            for b in a.bids])
        n = self.new.of(a.auction_id)
        inst = self.new.final(a.auction_id, res.stop_rate) if n and not n.listed \
            else self._inst(a)
        rows: list[tuple[int, int, Decimal | None]] = []
        for aw in res.awards:
            if not aw.lots:
                rows.append((0, 0, None))
                continue
            price = (Decimal(100) if aw.rate is None
                     else price_of_rate(inst, aw.rate, a.basis, settle))
            rows.append((aw.lots, allotment_cash(inst, aw.lots, price, settle), price))
        return res, rows, inst

    def _face(self, a: AuctionState, lots: int) -> str:
        face = lots * lot_face(self._inst(a))
        return str(Decimal(face.numerator) / face.denominator)

    # ------------------------------------------------------------------ apply
    def apply(self, m: AuctionInput) -> None:
        """Apply a checked ``m`` (``check`` passed against this same state)."""
        getattr(self, "_" + m.action)(m)

    def _tell(self, broker: str, report) -> None:
        self.engine.executions.tell(broker, report)

    def _status(self, a: AuctionState, b: BidState, status: BidStatusName, reason=None,
                text=None) -> AuctionBidStatus:
        ex = self.engine.executions
        return AuctionBidStatus(a.auction_id, b.bid_id, status, self.engine.seq, ex.stamp,
                                symbol=a.symbol, account=b.account, amount=self._face(a, b.lots),
                                rate=rate_str(b.rate, a.basis) if b.rate is not None else None,
                                reserved=cash_str(b.reserved, self._inst(a).cash_decimals),
                                reason=reason, text=text)

    def _announce(self, m: AuctionInput) -> None:
        if m.instrument is not None:
            self.new.add(m)
            inst = self.new.instrument(m.auction_id)
        else:
            inst = self.engine.instruments[m.symbol]
        bad = EngineReject.INVALID_AUCTION_TERMS
        pct = Decimal(m.max_award_pct)
        issuer = m.issuer_account or inst.issuer_account
        assert issuer is not None                  # checked: an open account
        self.auctions[m.auction_id] = AuctionState(
            m.auction_id, m.symbol, self._lots(inst, m.amount, "offering", bad), m.method,
            m.basis, m.close_time, m.issue_date, sorted(m.competitive_accounts),
            self._lots(inst, m.nc_max, "nc", bad) if m.nc_max else 0, int(pct.scaleb(2)),
            self._rate(m.limit, m.basis, bad) if m.limit else None, m.nc_overflow,
            m.nc_price, issuer)

    def _bid(self, m: AuctionInput) -> None:
        a = self.auctions[m.auction_id]
        inst = self._inst(a)
        bad = EngineReject.INVALID_BID
        lots = self._lots(inst, m.amount, "amount", bad)
        rate = self._rate(m.rate, a.basis, bad) if m.rate else None
        need = reserve_cash(inst, lots, self._price(a, rate), date.fromisoformat(a.issue_date))
        ref = -self.next_ref
        self.next_ref += 1
        self.engine.ledger.hold(m.account, CASH, need, ref, True)
        b = BidState(ref, m.broker, m.account, m.bid_id, lots, rate,
                     self._lots(inst, m.net_long, "net", bad) if m.net_long else 0, need)
        a.bids.append(b)
        self._tell(m.broker, self._status(a, b, "accepted"))

    def _cancel_bid(self, m: AuctionInput) -> None:
        a = self.auctions[m.auction_id]
        b = self._live_bid(a, m)
        self.engine.ledger.release(b.ref)
        a.bids.remove(b)
        self._tell(b.broker, self._status(a, b, "cancelled"))

    def _close(self, m: AuctionInput) -> None:
        a = self.auctions[m.auction_id]
        ledger = self.engine.ledger
        settle = date.fromisoformat(a.issue_date)
        res, rows, inst = self._awards(a)
        if m.reject_all:
            rows = [(0, 0, None)] * len(a.bids)
        new = self.new.of(a.auction_id)
        if new is not None and not m.reject_all and any(lots for lots, _, _ in rows):
            self.new.list_at_close(a.auction_id, inst)      # the new issue's book opens now
        ex = self.engine.executions
        for b, (lots, cash, price) in zip(a.bids, rows, strict=True):
            if not lots:
                ledger.release(b.ref)
                why = _AUCTION_REJECTED if m.reject_all else _BID_NOT_ACCEPTED
                self._tell(b.broker, self._status(a, b, "released", why))
                continue
            if cash < b.reserved:
                ledger.release(b.ref, b.reserved - cash)
            elif cash > b.reserved:
                ledger.hold(b.account, CASH, cash - b.reserved, b.ref, True)
            b.awarded, b.cash, b.reserved = lots, cash, cash
            y = None
            if a.basis == "yield":
                tender = res.awards[a.bids.index(b)]
                y = rate_str(tender.rate, "yield")
            self._tell(b.broker, AuctionAward(
                a.auction_id, b.bid_id, a.symbol, b.account, self._face(a, b.lots),
                self._face(a, lots), str(price), cash_str(cash, inst.cash_decimals),
                a.issue_date, self.engine.seq,
                ex.stamp, yield_pct=y))
        a.bids = [b for b in a.bids if b.awarded]
        a.status = "rejected" if m.reject_all else "closed"
        a.result = result_of(a.auction_id, inst, a.method, a.basis, a.offering, res, settle,
                             self.engine.seq, "rejected" if m.reject_all else "closed")
        if new is not None and new.coupon_at_auction and new.listed:
            a.result = msgspec.structs.replace(a.result, interest_rate=coupon_percent(inst))
        if m.reject_all:
            a.result = msgspec.structs.replace(
                a.result, accepted_competitive="0", accepted_noncompetitive="0",
                bid_to_cover="0.00", high_rate=None, low_rate=None, median_rate=None,
                high_price=None, low_price=None, median_price=None, nc_price=None,
                allotted_at_high=None)

    def _issue(self, m: AuctionInput) -> None:
        a = self.auctions[m.auction_id]
        self.engine.ledger.mint(a.symbol, a.issuer, CASH, [
            Delivery(b.account, b.awarded, b.ref, b.cash) for b in a.bids])
        a.bids = []
        a.status = "issued"
        if a.result is not None:
            a.result = msgspec.structs.replace(a.result, status="issued")

    # ------------------------------------------------------------------ queries, state
    def result(self, symbol: str) -> AuctionResult | None:
        """The latest published result of an auction of ``symbol`` (None: none closed)."""
        found = [a for a in self.auctions.values() if a.symbol == symbol and a.result]
        return found[-1].result if found else None

    def snapshot(self) -> list:
        """Every auction as plain lists, in announcement order (msgpack-ready), and the
        new issues when there are any."""
        if not self.auctions:
            return []
        snap = [self.next_ref, msgspec.to_builtins(list(self.auctions.values()))]
        if self.new.by_auction:
            snap.append(self.new.snapshot())
        return snap

    def restore(self, snap) -> None:
        """Restore ``snapshot()``; the new issues listed by a close are listed again, so
        call it before the snapshot's books are restored."""
        if not snap:
            return
        self.next_ref = snap[0]
        for a in msgspec.convert(snap[1], list[AuctionState]):
            self.auctions[a.auction_id] = a
        if len(snap) > 2:
            self.new.restore(snap[2])

"""The exchange engine: one sequencer in front of every instrument's book.

Each input (an order-entry message or a session action) gets the next global sequence
number and is journaled before any of its reports may leave (``commit`` returns the
durable watermark). The engine is the facade over its parts: ``risk`` (pre-trade checks),
``session`` (trading states), ``clordids`` (ClOrdID memory and resend outcomes),
``reports`` (FIX execution reports), ``expiry`` (the GTD timer) and ``recovery``
(snapshots and replay); it turns the books' events into reports, market data and one
delivery-versus-payment ledger step per fill.

A ClOrdID names one message per broker and trading day (FIX). ``submit`` answers an exact
resend (the same content, or flagged PossDup) of an input still in the resend window with
its original outcome, unsequenced; any other message reusing a ClOrdID used today is a
duplicate, sequenced and refused without touching anything (a new order: Rejected
DUPLICATE_ORDER; a cancel or replace: an OrderCancelReject DUPLICATE_CL_ORD_ID). A
refused cancel or replace is answered with an OrderCancelReject (35=9), never with an
execution report.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import msgspec

from matching import recovery
from matching.accounts_admin import AccountsAdmin
from matching.auction import Auctions
from matching.book import OrderBook, make_book
from matching.clordid import ClOrdIdMemory
from matching.compliance import compliance_of, wire_fills
from matching.constants import EventType, OrdType, Side, TimeInForce
from matching.corporate import CorporateActions
from matching.day_stats import DayStats
from matching.economics import Economics
from matching.errors import (
    BookReject,
    CancelReject,
    EngineCancel,
    EngineFault,
    EngineReject,
    Rejection,
)
from matching.executions import Executions
from matching.expiry import ExpiryIndex
from matching.fees import open_fee_accounts
from matching.issuance import Issuance
from matching.ledger import Ledger
from matching.mass_cancel import MassCancels
from matching.messages import (
    LIFECYCLE_ACTIONS,
    AccountInput,
    Admin,
    AuctionBidStatus,
    AuctionInput,
    JournalEntry,
    Lifecycle,
    MassCancelRequest,
    NewOrderSingle,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrderMessage,
    OrderStatusRequest,
    OrdStatusName,
    utc_timestamp,
)
from matching.order_status import OrderStatusDesk
from matching.orders import LiveOrder, id_str
from matching.outputs import LevelChange, Outcome, SessionStatus, new_outcome
from matching.reports import ReportBuilder
from matching.risk import STP_MODES, PreTradeRisk
from matching.session import ADMIN_ACTIONS, TradingSession, TradingState

__all__ = ["Engine"]

_LIMIT = int(OrdType.LIMIT)
_MARKET = int(OrdType.MARKET)
_IOC = int(TimeInForce.IOC)
_FOK = int(TimeInForce.FOK)
_DAY = int(TimeInForce.DAY)
_GTD = int(TimeInForce.GTD)
_BUY, _SELL = int(Side.BUY), int(Side.SELL)
# A book event row's type and reason (take_event_rows: matching.records.Event's order).
_TYPE, _REASON = 1, 3
_EV_REJECTED = int(EventType.REJECTED)
_EV_AMENDED = int(EventType.AMENDED)
_VOLATILITY = EngineReject.VOLATILITY_INTERRUPTION.value
_INVALID_REFERENCE = EngineReject.INVALID_REFERENCE.value
_CALL_NOT_DUE = EngineReject.CALL_NOT_DUE.value
_ILLEGAL_TRANSITION = EngineReject.ILLEGAL_TRANSITION.value
_REJECT_NAMES = {m.number: m.value for m in BookReject}
_JOURNAL_UNAVAILABLE = EngineReject.JOURNAL_UNAVAILABLE.value
_ENGINE_FAULT = EngineReject.ENGINE_FAULT.value
_DUPLICATE_ORDER = EngineReject.DUPLICATE_ORDER.value
_DUPLICATE_CL_ORD_ID = CancelReject.DUPLICATE_CL_ORD_ID.value
_CXL_OTHER = CancelReject.OTHER.value
_CANCEL_ON_DISCONNECT = EngineCancel.CANCEL_ON_DISCONNECT.value
_JOURNAL_ENCODER = msgspec.msgpack.Encoder()


def _reject_name(code: int) -> str:
    return _REJECT_NAMES[code]


class Engine:
    """All books of one venue behind one sequencer; see the module docstring."""

    #: Inputs whose outcome an exact resend gets back verbatim. Client retries come within
    #: seconds; past the window a ClOrdID used today still refuses a second message
    #: (DUPLICATE_ORDER), so memory is bounded and nothing doubles.
    RESEND_WINDOW = 100_000

    def __init__(self, instruments: Iterable, ledger: Ledger, *, clock: Callable[[], int],
                 journal=None, book_engine: str = "core",
                 resend_window: int = RESEND_WINDOW):
        self.ledger = ledger
        self.clock = clock
        self.journal = journal
        self.book_engine = book_engine
        self.instruments = {inst.symbol: inst for inst in instruments}
        self.economics = {s: Economics(i) for s, i in self.instruments.items()}
        self.books: dict[str, OrderBook] = {}
        for symbol, inst in self.instruments.items():
            lo, n = inst.ladder()
            self.books[symbol] = make_book(book_engine, lo, n)
        self.session = TradingSession(self.instruments)
        self.clordids = ClOrdIdMemory(resend_window)
        self.risk = PreTradeRisk(self.instruments, self.economics, ledger, self.session,
                                 self.clordids)
        self.risk.books = self.books
        self.conv = self.risk.conv
        self.reports = ReportBuilder(self.economics, 1, 0, self.conv)
        self.expiry = ExpiryIndex()
        self.seq = 0
        self.orders: dict[int, LiveOrder] = {}
        self.next_order_id = 1
        self.executions = Executions(self.orders, ledger, self.risk, self.reports,
                                     self.expiry, self.economics)
        open_fee_accounts(ledger, self.instruments.values())
        # Compliance rules and retail limits (matching.compliance; None: no instrument has any).
        self.risk.compliance = compliance_of(self.instruments, self.risk, self.orders)
        wire_fills(self)
        self.auctions = Auctions(self.instruments)     # calls: matching/auction.py
        self.executions.auctions = self.auctions
        self.now = 0
        # The life of each security: records, coupons, redemptions (matching.corporate).
        self.corporate = CorporateActions(self, clock)
        # Accounts, custody and the transfer agent's controls (matching.accounts_admin).
        self.accounts_admin = AccountsAdmin(self)
        # The primary market: issuance auctions and the mint (matching.issuance).
        self.issuance = Issuance(self)
        # Broker services: order status queries and mass cancels (matching.order_status,
        # matching.mass_cancel).
        self.order_status_desk = OrderStatusDesk(self)
        self.mass_cancels = MassCancels(self)
        # Open, high, low, last, volume, VWAP of each session (matching.day_stats).
        self.day_stats = DayStats(self.instruments)
        # Why the engine takes no more inputs after one failed inside it (None: it takes).
        self.fault: str | None = None
        self._replaying = False
        # The data directory this engine holds (matching.datadir; None: an engine in
        # memory or on a bare journal); ``recovery.open_engine`` sets it and the epoch.
        self.data_dir = None

    # ------------------------------------------------------------------ inputs
    def submit(self, broker: str, msg: OrderMessage, *, now: int | None = None) -> Outcome:
        """Handle one order-entry message from ``broker``; never raises on bad content."""
        told = self.clordids.resend(broker, msg)
        if told is not None:
            # An exact resend gets its original outcome again, not a second input.
            return Outcome(self.seq, [(broker, msgspec.structs.replace(r, poss_resend=True))
                                      for r in told], replayed=True)
        return self._sequenced(broker, msg, now)

    def admin(self, action: str, symbol: str = "", reason: str = "", *, broker: str = "",
              price: str = "", now: int | None = None) -> Outcome:
        """Operator input: a session action (``matching.session.TRANSITIONS``; ``close``
        expires DAY orders, closing every instrument ends the trading day), ``expire``
        (GTD orders due) or ``cancel_broker`` (every live order of ``broker``). An illegal
        transition is refused whole (``Outcome.refused``, nothing journaled); an unknown
        action or instrument is a caller's bug: ValueError."""
        if action not in ADMIN_ACTIONS:
            raise ValueError(f"unknown admin action {action!r}: one of {', '.join(ADMIN_ACTIONS)}")
        if symbol and symbol not in self.instruments:
            raise ValueError(f"unknown instrument {symbol!r}")
        try:
            if not (action == "resume" and self.auctions.extended_of(
                    [symbol] if symbol else self.instruments)):
                self.session.check(action, symbol)
            if action == "set_reference":
                self._check_reference(symbol, price)
            elif action == "end_call":
                now = self.clock() if now is None else now
                symbols = [symbol] if symbol else list(self.instruments)
                if not self.auctions.timer.due(symbols, now):
                    raise Rejection(_CALL_NOT_DUE, f"no call of {symbol or 'any instrument'}"
                                    " has reached its timed end")
        except Rejection as r:
            text = r.text if r.reason == _ILLEGAL_TRANSITION else f"{r.reason}: {r.text}"
            return Outcome(self.seq, refused=text)
        return self._sequenced("", Admin(action, symbol, reason, broker, price), now)

    def _check_reference(self, symbol: str, price: str) -> None:
        """``set_reference``: one tradable instrument and a price on its grid and ladder
        (raises INVALID_REFERENCE; runs before anything is journaled)."""
        if not symbol:
            raise Rejection(_INVALID_REFERENCE, "set_reference needs an instrument")
        if self.session.state[symbol] is TradingState.MATURED:
            raise Rejection(_INVALID_REFERENCE, f"{symbol} has matured")
        try:
            ticks = self.conv[symbol].to_ticks(price)
        except Rejection as r:
            raise Rejection(_INVALID_REFERENCE, f"price {price!r}: {r.text}") from None
        book = self.books[symbol]
        if not book.price_lo <= ticks < book.price_lo + book.n_levels:
            raise Rejection(_INVALID_REFERENCE, f"price {price} is off {symbol}'s price "
                            "ladder")

    def lifecycle(self, action: str, symbol: str, coupon_date: str = "", reason: str = "",
                  *, now: int | None = None) -> Outcome:
        """A lifecycle input (``matching.messages.LIFECYCLE_ACTIONS``) of ``symbol``: checked
        first (not due, done already, not funded: refused whole, ``Outcome.refused`` says
        why, nothing journaled), then journaled and applied (``matching.corporate``). An
        unknown action or instrument is a caller's bug: ValueError."""
        if action not in LIFECYCLE_ACTIONS:
            raise ValueError(f"unknown lifecycle action {action!r}: one of "
                             f"{', '.join(LIFECYCLE_ACTIONS)}")
        if symbol not in self.instruments:
            raise ValueError(f"unknown instrument {symbol!r}")
        at = self.clock() if now is None else now
        try:
            msg = self.corporate.check(Lifecycle(action, symbol, coupon_date, reason), at)
        except Rejection as r:
            return Outcome(self.seq, refused=r.text)
        return self._sequenced("", msg, at)

    def account_input(self, msg: AccountInput, *, now: int | None = None) -> Outcome:
        """An operator's account input or a transfer agent's control
        (``matching.accounts_admin``): checked first (refused whole, ``Outcome.refused``
        starting with its ``EngineReject`` code, nothing journaled), then journaled and
        applied."""
        try:
            self.accounts_admin.check(msg)
        except Rejection as r:
            return Outcome(self.seq, refused=f"{r.reason}: {r.text}")
        return self._sequenced("", msg, now)

    def auction_input(self, msg: AuctionInput, *, broker: str = "",
                      now: int | None = None) -> Outcome:
        """An issuance auction input (``matching.issuance``): the issuer's announce, close
        or issue, or ``broker``'s bid or cancel_bid (``broker`` is the authenticated
        sender and overrides the payload's). Checked first (refused whole,
        ``Outcome.refused`` starting with its ``EngineReject`` code, nothing journaled;
        a bidder also gets its rejected ``AuctionBidStatus``), then journaled and applied."""
        if broker or msg.action in ("bid", "cancel_bid"):
            msg = msgspec.structs.replace(msg, broker=broker)
        at = self.clock() if now is None else now
        try:
            self.issuance.check(msg, at)
        except Rejection as r:
            out = Outcome(self.seq, refused=f"{r.reason}: {r.text}")
            if broker:
                out.reports = [(broker, AuctionBidStatus(
                    msg.auction_id, msg.bid_id, "rejected", self.seq, utc_timestamp(at),
                    account=msg.account or None, reason=r.reason, text=r.text))]
            return out
        return self._sequenced("", msg, at)

    def auction_result(self, symbol: str):
        """The latest published issuance result of ``symbol`` (``md/{symbol}/auction_result``),
        or None."""
        return self.issuance.result(symbol)

    def balances(self, broker: str, request_id: str = "", account: int | None = None
                 ) -> Outcome:
        """A broker's balances query, not an input (nothing journaled): its own accounts
        as of ``self.seq`` (``matching.accounts_admin``), one report to ``broker``."""
        return Outcome(self.seq, [(broker, self.accounts_admin.balances(broker, request_id,
                                                                        account))])

    def order_status(self, broker: str, req: OrderStatusRequest) -> Outcome:
        """A broker's Order Status Request (FIX 35=H), not an input (nothing journaled):
        one ExecType=I report of its order as of ``self.seq`` (``matching.order_status``)."""
        return Outcome(self.seq, [(broker, self.order_status_desk.answer(broker, req))])

    def mass_cancel(self, broker: str, msg: MassCancelRequest, *,
                    now: int | None = None) -> Outcome:
        """A broker's Order Mass Cancel Request (FIX 35=q, ``matching.mass_cancel``): an
        exact resend gets its original outcome; a refused one its rejected report,
        nothing journaled; else journaled and applied."""
        told = self.clordids.resend(broker, msg)
        if told is not None:
            return Outcome(self.seq, [(broker, msgspec.structs.replace(r, poss_resend=True))
                                      for r in told], replayed=True)
        try:
            self.mass_cancels.check(broker, msg)
        except Rejection as r:
            return Outcome(self.seq, [(broker, self.mass_cancels.refused(broker, msg, r))],
                           refused=f"{r.reason}: {r.text}")
        return self._sequenced(broker, msg, now)

    def refuse(self, broker: str, reason: str, text: str, cl_ord_id: str | None = None,
               symbol: str | None = None) -> Outcome:
        """A Rejected report for a message that never became an input (it did not decode)."""
        report = self.reports.unparsed(reason, text, cl_ord_id, symbol, self.seq,
                                       utc_timestamp(self.clock()))
        return Outcome(self.seq, [(broker, report)])

    def commit(self) -> int:
        """Make the journal durable up to here; returns the durable sequence number."""
        if self.journal is None:
            return self.seq
        self.journal.commit()
        return self.journal.durable_seq

    def _sequenced(self, broker: str, msg, now) -> Outcome:
        """Number, journal and apply one input; what it told its sender is remembered,
        unless it reused a ClOrdID (a duplicate, refused: the ClOrdID keeps its first
        outcome)."""
        journal = self.journal
        if journal is not None and journal.failed is not None:
            # Nothing may be acknowledged that cannot be persisted: refuse, change nothing.
            return self._unpersistable(broker, msg, f"the engine cannot persist orders: "
                                       f"{journal.failed}")
        if self.fault is not None:
            return self._unpersistable(broker, msg, self.fault, _ENGINE_FAULT)
        self.seq += 1
        seq = self.seq
        self.now = self.clock() if now is None else now
        if journal is not None and not self._replaying:
            journal.append(seq, _JOURNAL_ENCODER.encode(JournalEntry(seq, self.now, broker, msg)))
        out = new_outcome(seq)
        executions = self.executions
        executions.begin(out, self.now)
        duplicate = False
        try:
            if broker and (broker, msg.cl_ord_id) in self.clordids.orders:
                duplicate = True
                self._duplicate(broker, msg)
            else:
                self._apply(broker, msg)
        except Exception as exc:
            # Every refusal was checked before the book: this input is half applied.
            self.fault = (f"input {seq} ({type(msg).__name__}) failed inside the engine: "
                          f"{type(exc).__name__}: {exc}")
            raise EngineFault(self.fault) from exc
        finally:
            executions.end()
        if out.trades:
            self.day_stats.record(out.trades)
        if broker and not duplicate:
            self.clordids.remember(broker, msg, out.reports)
        return out

    def refuse_unpersisted(self, broker: str, msg: OrderMessage) -> Outcome:
        """``msg`` refused because the journal cannot persist it (JOURNAL_UNAVAILABLE):
        a new order's Rejected report, a cancel's or replace's OrderCancelReject (FIX:
        a refused cancel is never an execution report). For a resend whose original
        never became durable (``feeds.cycle``)."""
        return self._unpersistable(broker, msg, "the engine cannot persist orders: "
                                   f"{self.journal_failure}")

    def _unpersistable(self, broker: str, msg, text: str,
                       code: str = _JOURNAL_UNAVAILABLE) -> Outcome:
        """An input refused whole because the journal is down (JOURNAL_UNAVAILABLE) or an
        earlier input failed inside the engine (ENGINE_FAULT)."""
        if not broker or isinstance(msg, (Admin, Lifecycle, AccountInput, AuctionInput)):
            return Outcome(self.seq, refused=text)
        if isinstance(msg, NewOrderSingle):
            out = self.refuse(broker, code, text, msg.cl_ord_id, msg.symbol)
        elif isinstance(msg, MassCancelRequest):
            out = Outcome(self.seq, [(broker, self.mass_cancels.refused(
                broker, msg, Rejection(code, text)))])
        else:
            out = Outcome(self.seq, [(broker, self._cancel_reject_of(
                broker, msg, _CXL_OTHER, f"{code}: {text}",
                utc_timestamp(self.clock())))])
        out.refused = text
        return out

    def _apply(self, broker: str, msg) -> None:
        t = type(msg)
        if t is NewOrderSingle or isinstance(msg, NewOrderSingle):
            self._new_order(broker, msg)
        elif t is OrderCancelRequest or isinstance(msg, OrderCancelRequest):
            self._cancel(broker, msg)
        elif isinstance(msg, OrderCancelReplaceRequest):
            self._replace(broker, msg)
        elif isinstance(msg, Admin):
            self._admin(msg)
        elif isinstance(msg, Lifecycle):
            self.corporate.apply(msg)
        elif isinstance(msg, AccountInput):
            self.accounts_admin.apply(msg)
        elif isinstance(msg, AuctionInput):
            self.issuance.apply(msg)
        elif isinstance(msg, MassCancelRequest):
            self.mass_cancels.apply(broker, msg)
        else:  # pragma: no cover - the types above are the whole union
            raise TypeError(f"not an engine input: {type(msg).__name__}")

    def _reject(self, broker: str, m, reason: str, text: str) -> None:
        """A new order refused: its Rejected report."""
        self.executions.tell(broker, self.reports.reject(m, reason, text, self.seq,
                                                         self.executions.stamp))

    def _cancel_reject(self, broker: str, m, reason: str, text: str) -> None:
        """A cancel or replace refused: its OrderCancelReject."""
        self.executions.tell(broker, self._cancel_reject_of(broker, m, reason, text,
                                                            self.executions.stamp))

    def _cancel_reject_of(self, broker: str, m, reason: str, text: str, stamp: str):
        """The OrderCancelReject of ``m`` with the status of the order it names now:
        live, done today (OrderID known), or none of the sender's (``rejected``)."""
        order_id = account = None
        status: OrdStatusName = "rejected"
        oid = self.clordids.order_of(broker, m.orig_cl_ord_id)
        if oid:
            o = self.orders.get(oid)
            if o is None:
                done = self.clordids.status_of(oid)
                if done is not None:
                    order_id, status = str(oid), done
            elif o.symbol == m.symbol:
                order_id, account = id_str(o), o.account
                status = "partially_filled" if o.cum_qty else "new"
        return self.reports.cancel_reject(
            m, "cancel" if isinstance(m, OrderCancelRequest) else "replace", reason, text,
            order_id, account, status, self.seq, stamp)

    def _duplicate(self, broker: str, m) -> None:
        """A message reusing a ClOrdID of today (not a resend): refused, nothing touched."""
        text = f"ClOrdID {m.cl_ord_id!r} already used today"
        if isinstance(m, NewOrderSingle):
            self._reject(broker, m, _DUPLICATE_ORDER, text)
        else:
            self._cancel_reject(broker, m, _DUPLICATE_CL_ORD_ID, text)

    # ------------------------------------------------------------------ orders
    def _new_order(self, broker: str, m: NewOrderSingle) -> None:
        try:
            o = self.risk.admit(broker, m, self.next_order_id, self.now)
        except Rejection as r:
            self._reject(broker, m, r.reason, r.text)
            return
        book = self.books[o.symbol]
        hit = None if book.in_call else self.auctions.interruption(
            o.symbol, book, o.side, o.price, o.qty)
        if hit is not None and o.tif == _FOK:
            # A FOK that would fill outside a band is rejected whole, before the book.
            self.ledger.release(o.order_id, o.reserved)
            conv = self.conv[o.symbol]
            self._reject(broker, m, _VOLATILITY, f"it would fill at "
                         f"{conv.price(hit.next_price)}, outside the {hit.band} band "
                         f"{conv.price(hit.lo)}..{conv.price(hit.hi)}")
            return
        if hit is not None and o.ord_type == _MARKET and o.side == _BUY:
            # It rests in the call at the band edge: it needs the band's reservation.
            try:
                self.risk.top_up(o, self.risk.need(o, o.price, o.qty))
            except Rejection as r:
                self.ledger.release(o.order_id, o.reserved)
                self._reject(broker, m, r.reason, r.text)
                return
        self.next_order_id += 1
        oid = o.order_id
        symbol = o.symbol
        self.orders[oid] = o
        self.clordids.bind(broker, m.cl_ord_id, oid)
        tif = o.tif
        if tif == _GTD:
            self.expiry.add(o.expire_time, oid)
        if hit is not None:
            self._interrupted(m, o, book, hit)
            return
        ord_type = _LIMIT
        if o.ord_type == _MARKET:
            if book.in_call:
                ord_type = _MARKET            # rests in the call for the uncross
            else:
                # Market orders trade as IOC (or FOK) limits at the band edge: price
                # protection.
                tif = _FOK if tif == _FOK else _IOC
        # Positional, the OrderBook signature: order_id, side, price, qty, ord_type, tif,
        # account, stp, post_only, min_qty, expire_time.
        book.new_order(oid, o.side, o.price, o.qty, ord_type, tif, o.account, STP_MODES[m.stp],
                       m.post_only, self.risk.lots(symbol, m.min_qty) if m.min_qty else 0,
                       o.expire_time)
        self.executions.handle(symbol, book.take_event_rows())

    def _interrupted(self, m: NewOrderSingle, o: LiveOrder, book, hit) -> None:
        """Volatility interruption (matching/auction.py): the order fills up to the band
        edge, then the instrument enters a volatility call in which its remainder rests
        at its own limit (an IOC or market order's remainder is cancelled)."""
        symbol, conv = o.symbol, self.conv[o.symbol]
        tif = o.tif
        if o.ord_type == _MARKET:
            tif = _IOC
        book.new_order(o.order_id, o.side, hit.edge, o.qty, _LIMIT, tif, o.account,
                       STP_MODES[m.stp], m.post_only,
                       self.risk.lots(symbol, m.min_qty) if m.min_qty else 0, o.expire_time)
        events = book.take_event_rows()
        if not events or events[0][_TYPE] == _EV_REJECTED:
            self.executions.handle(symbol, events)
            return
        book.set_call(True)
        rest = book.order(o.order_id)
        if rest is not None and o.price != hit.edge:
            # Back to its own limit: an engine move, not a replace the broker asked for.
            book.amend(o.order_id, o.price, rest[2])
            events += [e for e in book.take_event_rows() if e[_TYPE] != _EV_AMENDED]
        self.executions.handle(symbol, events)
        self.session.state[symbol] = TradingState.PRE_OPEN
        self.session.reason[symbol] = (
            f"volatility interruption: next fill at {conv.price(hit.next_price)} outside "
            f"the {hit.band} band {conv.price(hit.lo)}..{conv.price(hit.hi)}")
        self.session.seq[symbol] = self.seq
        end = self.auctions.timer.schedule(symbol, "volatility", self.seq, self.now)
        assert end is not None                 # a volatility call always waits its minimum
        self.session.reason[symbol] += f"; the call ends at {utc_timestamp(end.ends_at)} " \
            "at the earliest"

    def _cancel(self, broker: str, m: OrderCancelRequest) -> None:
        try:
            o = self.risk.find(broker, m, self.orders)
        except Rejection as r:
            self._cancel_reject(broker, m, r.reason, r.text)
            return
        self.clordids.bind(broker, m.cl_ord_id, o.order_id)
        o.orig_cl_ord_id, o.cl_ord_id = o.cl_ord_id, m.cl_ord_id
        self.books[o.symbol].cancel(o.order_id)
        self._drain(o.symbol)

    def _replace(self, broker: str, m: OrderCancelReplaceRequest) -> None:
        try:
            o = self.risk.find(broker, m, self.orders)
        except Rejection as r:
            self._cancel_reject(broker, m, r.reason, r.text)
            return
        try:
            price, total, new_leaves = self.risk.replace_terms(o, m, self.now)
        except Rejection as r:
            # The order stays as it was; the reason names the rule the new terms broke.
            self._cancel_reject(broker, m, _CXL_OTHER, f"{r.reason}: {r.text}")
            return
        book = self.books[o.symbol]
        book.amend(o.order_id, price, new_leaves)
        events = book.take_event_rows()
        if events and events[0][_TYPE] == _EV_REJECTED:
            # The book refused the amend (e.g. post-only would take): the order stays as it was.
            self.executions.resize_reservation(o)
            reason = _reject_name(events[0][_REASON])
            self._cancel_reject(broker, m, _CXL_OTHER, f"{reason}: replace refused by the book")
            return
        self.clordids.bind(broker, m.cl_ord_id, o.order_id)
        o.orig_cl_ord_id, o.cl_ord_id = o.cl_ord_id, m.cl_ord_id
        o.qty = total
        o.qty_str = None
        self.executions.handle(o.symbol, events)

    # ------------------------------------------------------------------ session actions
    def _admin(self, a: Admin) -> None:
        action = a.action
        if action == "cancel_broker":
            # Cancel-on-disconnect: the reports say so (CANCEL_ON_DISCONNECT, not USER).
            for o in sorted((o for o in self.orders.values() if o.broker == a.broker),
                            key=lambda o: o.order_id):
                if o.order_id in self.orders:
                    book = self.books[o.symbol]
                    book.cancel(o.order_id)
                    self.executions.handle(o.symbol, book.take_event_rows(),
                                           _CANCEL_ON_DISCONNECT)
            return
        symbols = [a.symbol] if a.symbol else list(self.instruments)
        if action == "expire":
            self._expire_due(symbols)
            return
        if action == "set_reference":
            self.auctions.set_reference(a.symbol, self.conv[a.symbol].to_ticks(a.price))
            return
        if action == "end_call":
            for symbol in self.auctions.timer.due(symbols, self.now):
                self._end_call(symbol)
            return
        before = {s: self.session.state[s].value for s in symbols}
        moved = self.session.apply(action, symbols, a.reason, self.seq)
        if action == "resume":
            # An extended volatility call waits for the operator: resume ends it.
            for symbol in self.auctions.extended_of(symbols):
                self._uncross(symbol, False)
                self.session.state[symbol] = TradingState.CONTINUOUS
                self.session.reason[symbol] = a.reason
                self.session.seq[symbol] = self.seq
        deferred = set()
        for symbol in moved:
            if before[symbol] == "closed":
                self.day_stats.reset(symbol)      # a new session: its statistics start
            if self._call_phase(action, symbol, before[symbol], venue_wide=not a.symbol):
                deferred.add(symbol)
        if action == "close":
            for symbol in moved:
                if symbol not in deferred:
                    self._expire_day(symbol)
            if not a.symbol and not self._closing_calls():
                # The whole venue closed: the trading day ended (ClOrdIDs are per day).
                self.clordids.end_of_day(self.orders)

    def _expire_day(self, symbol: str) -> None:
        self._expire(symbol, [o.order_id for o in self.orders.values()
                              if o.symbol == symbol and o.tif == _DAY])

    def _closing_calls(self) -> bool:
        """Whether a close waits for a closing call's random end."""
        return any(e.kind == "close" for e in self.auctions.timer.pending.values())

    def _call_phase(self, action: str, symbol: str, was: str, venue_wide: bool = False
                    ) -> bool:
        """``pre_open`` puts the book in a call; ``open`` after it, ``resume``
        after a halt and ``close`` end the call with the uncross (matching/auction.py),
        unless the call has a random end (matching/call_end.py): then the instrument
        stays in its call until the timed ``end_call`` and this returns True."""
        book = self.books[symbol]
        timer = self.auctions.timer
        if action in ("pre_open", "halt"):
            if action == "pre_open":
                book.set_call(True)
            self.auctions.extended.discard(symbol)   # the operator's call or halt now
            # A new call, or a halt: no timed end now. A halt keeps the book as it was (a
            # book in a call stays in it); ``resume`` ends the halt through a call.
            timer.pending.pop(symbol, None)
            return False
        ends_call = ((action == "open" and book.in_call)
                     or (action == "resume" and was == "halted")
                     or (action == "close" and was != "closed"))
        if not ends_call:
            return False
        if symbol in timer.pending:
            timer.pending.pop(symbol)          # the operator ends the timed call now
        elif book.in_call and timer.schedule(symbol, action, self.seq, self.now,
                                             venue_wide) is not None:
            end = timer.pending[symbol]
            self.session.state[symbol] = TradingState.PRE_OPEN
            self.session.reason[symbol] = (f"{action} call: random end at "
                                           f"{utc_timestamp(end.ends_at)}")
            return True
        self._uncross(symbol, action == "close")
        return False

    def _uncross(self, symbol: str, closing: bool) -> None:
        """End ``symbol``'s call: the uncross and its auction fills; a closing uncross
        retains the closing price."""
        events, found = self.auctions.uncross(symbol, self.books[symbol], self.seq)
        executions = self.executions
        executions.auction = True
        try:
            executions.handle(symbol, events)
        finally:
            executions.auction = False
        if closing:
            self.auctions.close(symbol, found, self.now)

    def _end_call(self, symbol: str) -> None:
        """``end_call`` for a call past its timed end: a volatility call whose indicative
        price lies outside the wider band is extended until the operator opens; one
        inside it draws its random end (if any); otherwise the uncross finishes what the
        call deferred (open or resume: continuous; close: closed, DAY orders expire)."""
        timer, session = self.auctions.timer, self.session
        end = timer.pending[symbol]
        session.seq[symbol] = self.seq
        if end.kind == "volatility" and not end.drawn:
            outside = self.auctions.outside_extended(symbol, self.books[symbol])
            if outside is not None:
                timer.pending.pop(symbol)
                self.auctions.extended.add(symbol)
                conv = self.conv[symbol]
                price, lo, hi = outside
                session.reason[symbol] = (
                    f"volatility interruption extended: indicative price {conv.price(price)}"
                    f" outside the extended band {conv.price(lo)}..{conv.price(hi)}; the "
                    "operator ends it (resume or open)")
                return
            drawn = timer.redraw(symbol, self.seq, self.now)
            if drawn is not None:
                session.reason[symbol] = ("volatility call: random end at "
                                          f"{utc_timestamp(drawn.ends_at)}")
                return
        timer.pending.pop(symbol)
        closing = end.kind == "close"
        self._uncross(symbol, closing)
        session.state[symbol] = TradingState.CLOSED if closing else TradingState.CONTINUOUS
        session.reason[symbol] = f"{end.kind} call ended at its timed end"
        if closing:
            self._expire_day(symbol)
            if end.venue_wide and not self._closing_calls():
                self.clordids.end_of_day(self.orders)

    def _expire_due(self, symbols: list) -> None:
        """Expire every GTD order of ``symbols`` whose time has come, by symbol then id."""
        orders = self.orders
        by_symbol: dict[str, list] = {s: [] for s in symbols}
        for oid in self.expiry.due(self.now, orders):
            o = orders[oid]
            if o.symbol in by_symbol:
                by_symbol[o.symbol].append(oid)
            else:
                self.expiry.put_back(o.expire_time, oid)
        for symbol, due in by_symbol.items():
            self._expire(symbol, due)

    def _expire(self, symbol: str, order_ids: list) -> None:
        book = self.books[symbol]
        for oid in sorted(order_ids):
            book.expire(oid)
        self._drain(symbol)

    def next_call_end(self) -> int | None:
        """When the earliest timed call end falls due (ns), for the caller's timer that
        sends ``end_call``; None: no call waits for one."""
        return self.auctions.timer.next_at()

    def next_expiry(self) -> int | None:
        """Earliest GTD expiry among live orders, for the caller's timer (O(log n))."""
        return self.expiry.next(self.orders)

    # ------------------------------------------------------------------ book events
    def _drain(self, symbol: str) -> None:
        self.executions.handle(symbol, self.books[symbol].take_event_rows())

    # ------------------------------------------------------------------ queries
    @property
    def epoch(self) -> int:
        """The venue's start this engine runs in (``matching.datadir``: 1 for a new venue,
        +1 per restart; 0 without a data directory). Not engine state: it numbers
        ``R<epoch>.<n>`` rejects and goes on market data so subscribers see a restart."""
        return self.reports.epoch

    @epoch.setter
    def epoch(self, epoch: int) -> None:
        self.reports.epoch = epoch

    def auction_view(self, symbol: str):
        """``md/{symbol}/auction`` now (matching.auction.AuctionView), or None."""
        return self.auctions.view(symbol, self.books[symbol], self.conv[symbol], self.seq,
                                  self.epoch)

    def closing_price(self, symbol: str):
        """The last close's price of ``symbol`` and how it was found, or None."""
        return self.auctions.closing.get(symbol)

    def depth_levels(self, symbol: str) -> list[LevelChange]:
        """Every price level of ``symbol``'s book as it stands, bids best first then asks
        best first, as LevelChanges (what a market-data layer rebuilds itself from)."""
        book, conv = self.books[symbol], self.conv[symbol]
        n = len(book)
        return [LevelChange(symbol, name, conv.price(ticks), conv.qty(lots), count, ticks,
                            lots)
                for side, name in ((_BUY, "buy"), (_SELL, "sell"))
                for ticks, lots, count in book.depth(side, n)]

    @property
    def symbols(self) -> tuple[str, ...]:
        """Every listed instrument, in the registry's order."""
        return tuple(self.instruments)

    @property
    def durable_seq(self) -> int:
        """The last sequence number the journal has made durable (``seq`` without one)."""
        journal = self.journal
        return self.seq if journal is None else journal.durable_seq

    @property
    def journal_failure(self) -> str | None:
        """Why the journal cannot persist inputs, or None while it can."""
        journal = self.journal
        failed = None if journal is None else journal.failed
        return None if failed is None else str(failed)

    def trading_status(self, symbol: str) -> SessionStatus:
        """The trading state of ``symbol``, the operator's reason, and the input that set it."""
        session = self.session
        return SessionStatus(symbol, session.state[symbol].value, session.reason[symbol],
                             session.seq[symbol])

    def has_live_orders(self, broker: str) -> bool:
        """Whether ``broker`` has any order still working."""
        return any(o.broker == broker for o in self.orders.values())

    def brokers_with_live_orders(self) -> set[str]:
        """Every broker that has an order still working."""
        return {o.broker for o in self.orders.values()}

    def state_hash(self) -> str:
        """sha256 over sequence, counters, trading states, books, live orders and ledger."""
        doc = [
            self.seq,
            [self.next_order_id, self.reports.next_exec_id, self.executions.next_trade_id],
            sorted((s, st.value) for s, st in self.session.state.items()),
            sorted((s, b.resting_orders()) for s, b in self.books.items()),
            [self.orders[oid].row() for oid in sorted(self.orders)],
            self.ledger.state_digest(),
            [sorted(s for s, b in self.books.items() if b.in_call), self.auctions.snapshot()],
        ]
        life = self.corporate.state_doc()
        if life:                # a venue with no lifecycle input hashes as before
            doc.append(life)
        issues = self.issuance.snapshot()
        if issues:              # likewise a venue with no issuance auction
            doc.append(["issuance", issues])
        moved = self.accounts_admin.transfers.state_doc()
        if moved:               # cash moved between shards (matching.transfers)
            doc.append(["transfers", moved])
        compliance = self.risk.compliance
        ruled = compliance.snapshot() if compliance is not None else None
        if ruled:               # retail buys counted, or rules the operator set
            doc.append(["compliance", ruled])
        return hashlib.sha256(msgspec.msgpack.encode(doc)).hexdigest()

    # ------------------------------------------------------------------ persistence
    def close(self) -> None:
        """Close the journal and release the data directory (another engine may open it)."""
        if self.journal is not None:
            self.journal.close()
        if self.data_dir is not None:
            self.data_dir.close()

    def use_ledger(self, ledger: Ledger) -> None:
        """Hold ``ledger`` instead (a restored one): every part that settles or reserves."""
        open_fee_accounts(ledger, self.instruments.values())
        self.ledger = self.risk.ledger = self.executions.ledger = ledger

    def snapshot(self) -> bytes:
        """Everything needed to rebuild this engine exactly, as of ``self.seq``."""
        return recovery.snapshot_of(self)

    def write_snapshot(self, directory) -> None:
        """Commit the journal, then store a snapshot at the current sequence number."""
        self.commit()
        recovery.write_snapshot(directory, self.seq, self.snapshot())

    def replay(self, records, on_outcome: Callable[[Outcome], None] | None = None) -> int:
        """Apply journaled inputs ``(seq, payload)`` again, in order; returns how many."""
        return recovery.replay(self, records, on_outcome)

    @classmethod
    def recover(cls, instruments, *, snapshot_dir, journal_path, clock,
                book_engine: str = "core", journal=None,
                on_outcome: Callable[[Outcome], None] | None = None,
                resend_window: int = RESEND_WINDOW) -> Engine:
        """Latest snapshot + the journal after it: the state the engine had acknowledged."""
        return recovery.recover(cls, instruments, snapshot_dir=snapshot_dir,
                                journal_path=journal_path, clock=clock,
                                book_engine=book_engine, journal=journal,
                                on_outcome=on_outcome, resend_window=resend_window)

    @classmethod
    def from_snapshot(cls, instruments, payload: bytes, *, clock, book_engine: str = "core",
                      resend_window: int = RESEND_WINDOW) -> Engine:
        """An engine in the state ``payload`` (``snapshot()``) describes, with no journal."""
        engine = cls(instruments, Ledger(), clock=clock, book_engine=book_engine,
                     resend_window=resend_window)
        recovery.restore_into(engine, payload)
        return engine

"""Executions: what the engine does with a book's events for the input being applied.

Each event becomes an execution report (to the order's broker), a level change (public
depth) or a fill; a fill settles delivery-versus-payment in one ledger step (tokens
seller -> buyer, cash buyer -> seller, both out of the orders' reservations), then
reports to both sides and prints on the tape. An order that is done releases what it
still holds, and the ClOrdID memory keeps its last OrdStatus for the day (a cancel that
comes too late is told it). The engine calls ``begin`` before an input and ``end`` after
it.
"""
from __future__ import annotations

import cython
import msgspec

from matching.auction import Auctions
from matching.compliance import Compliance
from matching.constants import EventType, Side, TimeInForce
from matching.economics import _cash_str
from matching.errors import BookCancel, BookReject
from matching.ledger import CASH, Ledger
from matching.messages import utc_timestamp
from matching.orders import Conversions, LiveOrder
from matching.outputs import LevelChange, Outcome, TradePrint

__all__ = ["Executions"]

_SIDE_NAMES = {int(Side.BUY): "buy", int(Side.SELL): "sell"}
_BUY = int(Side.BUY)
_GTD = int(TimeInForce.GTD)
_EV_LEVEL = int(EventType.LEVEL)
_EV_ACCEPTED = int(EventType.ACCEPTED)
_EV_TRADE = int(EventType.TRADE)
_EV_CANCELLED = int(EventType.CANCELLED)
_EV_EXPIRED = int(EventType.EXPIRED)
_EV_DECREMENTED = int(EventType.DECREMENTED)
_EV_AMENDED = int(EventType.AMENDED)
_EV_REJECTED = int(EventType.REJECTED)
# Positions in a book event row (take_event_rows: matching.records.Event's field order).
_TYPE, _SIDE, _REASON, _ORDER_ID, _OTHER_ID, _PRICE, _QTY, _LEAVES = 1, 2, 3, 4, 5, 6, 7, 8
# The book's codes by number, as plain wire strings (an enum call is ~1 us per event).
_CANCEL_NAMES = {m.number - 100: m.value for m in BookCancel}
_REJECT_NAMES = {m.number: m.value for m in BookReject}
_SELF_TRADE = BookCancel.SELF_TRADE.value
_NS = 1_000_000_000


@cython.cclass
class Executions:
    """Turns book events into reports, fills and market data for the current input.

    ``orders`` is the engine's dict of live orders (shared: an order leaves it when it is
    done); ``next_trade_id`` numbers the venue's trades (state: snapshots keep it);
    ``now`` is the input's time (ns) and ``stamp`` the same as a UTCTimestamp (reports'
    TransactTime, the tape's time)."""

    def __init__(self, orders: dict, ledger: Ledger, risk, reports, expiry, economics: dict):
        self.orders = orders
        self.ledger = ledger
        self.risk = risk
        self.reports = reports
        self.expiry = expiry
        self.economics = economics
        self.conv = risk.conv
        self.fees = risk.fees            # symbol -> FeeSchedule, only those that charge
        self.clordids = risk.clordids
        self.next_trade_id = 1
        # The input being applied is an uncross (its fills say match_type auction), and
        # the engine's auctions, told every trade (reference and closing prices).
        self.auction = False
        self.auctions: Auctions | None = None
        # Told every fill when an instrument has a retail daily buy limit (else None).
        self.compliance: Compliance | None = None
        self.now = 0
        self.stamp = utc_timestamp(0)
        self._second = 0
        self._prefix = _prefix_of(self.stamp)
        self._idle = Outcome(0)          # where outputs go between inputs (nobody reads it)
        self.end()

    def begin(self, out: Outcome, now) -> None:
        """The input numbered ``out.seq`` at ``now`` is being applied: its outputs go to
        ``out``, its reports' TransactTime is ``stamp``."""
        self._out = out
        if now != self.now:
            self.now = now
            self.stamp = self._stamp(now)
        self._reports, self._trades, self._levels = out.reports, out.trades, out.levels

    def _stamp(self, now) -> str:
        """``utc_timestamp(now)``, the second's prefix cached (formatted once a second)."""
        if now < 0:
            return utc_timestamp(now)
        second = now // _NS
        if second != self._second:
            self._second = second
            self._prefix = _prefix_of(utc_timestamp(now))
        return f"{self._prefix}{now % _NS:09d}Z"

    def end(self) -> None:
        """No input is being applied: outputs go to the idle outcome nobody reads."""
        self.begin(self._idle, self.now)

    def tell(self, broker: str, report) -> None:
        """A report of the current input to ``broker`` (e.g. a pre-trade reject)."""
        self._reports.append((broker, report))

    def resize_reservation(self, o: LiveOrder) -> None:
        """After a fill or a reduction, keep exactly the reservation the open part needs."""
        need = self.risk.need(o, o.price, o.leaves)
        reserved = o.reserved
        if reserved > need:
            self.ledger.release(o.order_id, reserved - need)
            o.reserved = need

    def handle(self, symbol: str, events: list, cancel_text=None) -> None:
        """Turn the book's events (``take_event_rows``: tuples in records.Event's field
        order) into reports, settlements and market data. ``cancel_text``: the reason a
        canceled report gives instead of the book's (the engine's own cancels)."""
        conv = self.conv[symbol]
        orders = self.orders
        reports = self.reports
        seq, stamp = self._out.seq, self.stamp
        for e in events:
            t = e[_TYPE]
            if t == _EV_LEVEL:
                price, qty = e[_PRICE], e[_QTY]
                self._levels.append(LevelChange(
                    symbol, _SIDE_NAMES[e[_SIDE]], conv.price(price), conv.qty(qty),
                    e[_LEAVES], price, qty))
                continue
            o = orders.get(e[_ORDER_ID])
            if o is None:  # pragma: no cover - every book order is an engine order
                raise AssertionError(f"book event for unknown order {e}")
            if t == _EV_ACCEPTED:
                o.status = "new"
                r = reports.order(o, "new", "new", None, None, conv, seq, stamp)
            elif t == _EV_TRADE:
                self._fill(o, orders[e[_OTHER_ID]], e[_PRICE], e[_QTY], conv)
                continue
            elif t == _EV_CANCELLED or t == _EV_EXPIRED:
                o.leaves = 0
                status = "expired" if t == _EV_EXPIRED else "canceled"
                r = reports.order(o, status, status, _CANCEL_NAMES[e[_REASON]]
                                  if cancel_text is None else cancel_text, None, conv, seq, stamp)
                self._close(o, status)
            elif t == _EV_DECREMENTED:
                o.leaves = e[_LEAVES]
                o.qty -= e[_QTY]
                o.qty_str = None
                self.resize_reservation(o)
                r = reports.order(o, "restated", self._status(o), _SELF_TRADE, None, conv,
                                  seq, stamp)
            elif t == _EV_AMENDED:
                o.leaves = e[_LEAVES]
                o.price = e[_PRICE]
                o.price_str = None
                self.resize_reservation(o)
                r = reports.order(o, "replaced", self._status(o), None, None, conv, seq, stamp)
            elif t == _EV_REJECTED:
                reason = _REJECT_NAMES[e[_REASON]]
                o.leaves = 0                    # a rejected order has nothing left (FIX)
                r = reports.order(o, "rejected", "rejected", reason, reason, conv, seq, stamp)
                self._close(o, "rejected")
            else:  # pragma: no cover - the event types above are the book's whole set
                raise AssertionError(f"unknown book event {e}")
            self._reports.append((o.broker, r))

    def _status(self, o: LiveOrder) -> str:
        if o.leaves == 0:
            return "filled" if o.cum_qty == o.qty else "canceled"
        return "partially_filled" if o.cum_qty else "new"

    def _fill(self, taker: LiveOrder, maker: LiveOrder, price: int, lots: int,
              conv: Conversions) -> None:
        """One trade: settle both legs at once (DvP), then report to both sides and the tape."""
        buyer, seller = (taker, maker) if taker.side == _BUY else (maker, taker)
        symbol = taker.symbol
        economics = self.economics[symbol]
        fill = economics.of_fill(price, lots, self.now)
        amount = fill.settlement_amount
        schedule = self.fees.get(symbol) if self.fees else None
        if schedule is None:
            fee_buyer = fee_seller = 0
            # Ledger.settle_trade without fees, its arguments positional (the C call).
            self.ledger.settle(buyer.account, seller.account, symbol, lots, amount,
                               buyer.order_id, seller.order_id, 0, 0, None, CASH)
        else:
            fee_buyer, fee_seller = self._fees(schedule, buyer, seller, taker, amount, lots,
                                               conv)
            self.ledger.settle(buyer.account, seller.account, symbol, lots, amount,
                               buyer.order_id, seller.order_id, fee_buyer, fee_seller,
                               schedule.account, CASH)
        buyer.reserved -= amount + fee_buyer
        if self.compliance is not None:
            self.compliance.on_fill(buyer.account, symbol, price, lots, self.now)
        seller.reserved -= lots
        self._out.settled_cash += amount
        trade_id = f"T{self.next_trade_id}"
        self.next_trade_id += 1
        reports = self.reports
        auction = self.auction
        for o, liquidity in ((maker, "maker"), (taker, "taker")):
            o.cum_qty += lots
            o.cum_value += price * lots
            o.leaves -= lots
            self.resize_reservation(o)
            report = reports.fill(o, fill, trade_id, liquidity, conv, self._out.seq,
                                  self.stamp)
            if schedule is not None:
                fee = fee_buyer if o is buyer else fee_seller
                if fee:
                    # FIX Commission (12) in cash, CommType (13) 3 = absolute.
                    report = msgspec.structs.replace(
                        report, commission=_cash_str(fee, conv.inst.cash_decimals),
                        comm_type="3")
            if auction:
                # An uncross has no maker or taker: FIX MatchType 574=7 (call auction).
                report = msgspec.structs.replace(report, liquidity=None, match_type="auction")
            self._reports.append((o.broker, report))
            if o.leaves == 0:
                self._close(o, "filled" if o.cum_qty == o.qty else "canceled")
        if self.auctions is not None:
            self.auctions.on_fill(symbol, self.now, price, lots)
        self._trades.append(TradePrint(
            symbol, trade_id, self._out.seq, self.stamp, fill.price, fill.qty, price, lots,
            "auction" if auction else _SIDE_NAMES[taker.side], fill.yield_pct))

    def _fees(self, schedule, buyer: LiveOrder, seller: LiveOrder, taker: LiveOrder,
              amount, lots, conv: Conversions) -> tuple:
        """The buyer's and the seller's fee on one fill of settlement cash ``amount``
        (matching.fees): the maker or taker rate of each account's tier (an uncross has no
        taker: both pay the taker rate); the seller's never above its proceeds."""
        ledger = self.ledger
        min_lots = conv.min_order_lots
        auction = self.auction
        fee_buyer = schedule.fee(amount, lots, min_lots, buyer is not taker and not auction,
                                 ledger.eligibility_of(buyer.account) == "retail")
        fee_seller = schedule.fee(amount, lots, min_lots, seller is not taker and not auction,
                                  ledger.eligibility_of(seller.account) == "retail")
        return fee_buyer, (fee_seller if fee_seller < amount else amount)

    def _close(self, o: LiveOrder, status: str) -> None:
        """The order is done with OrdStatus ``status``: release whatever it still holds."""
        self.clordids.finish(o.order_id, status)
        reserved = o.reserved
        if reserved > 0:
            self.ledger.release(o.order_id, reserved)
            o.reserved = 0
        if self.orders.pop(o.order_id, None) is not None and o.tif == _GTD:
            self.expiry.ended(self.orders)


def _prefix_of(stamp: str) -> str:
    """A UTCTimestamp up to its nanoseconds (``2026-12-02T18:00:00.``)."""
    return stamp[:len(stamp) - 10]

"""Pre-trade risk: every check an order or a replace passes before its book sees it.

The checks run in the order ``docs/engine-rules.md`` lists; the first that fails raises
``Rejection`` with its ``EngineReject`` code (``CancelReject`` when a cancel or replace
names no order it may change), and nothing has changed. The first check, that the
message's ClOrdID is new today, is the engine's (``Engine._sequenced``: a reused one is a
resend or a duplicate). The reservation (cash for a buy, tokens for a sell) is the last
check of a new order, so an order id is used only by an order that passed all of them.
A shortfall says the amounts in the asset's units (``990.005000 USDC``, ``51.0000 TB3M``).
"""
from __future__ import annotations

from datetime import date

import cython

from matching.clordid import ClOrdIdMemory
from matching.compliance import Compliance
from matching.constants import OrdType, Side, StpMode, TimeInForce
from matching.economics import Economics
from matching.errors import CancelReject, Rejection
from matching.errors import EngineReject as R
from matching.fees import FeeSchedule
from matching.ledger import CASH, InsufficientCash, InsufficientTokens, Ledger, LedgerError
from matching.lifecycle import DAY_NS, first_trading_date, last_trading_date
from matching.market_reserve import MarketWalk, walk_asks
from matching.orders import Conversions, LiveOrder
from matching.session import TradingSession

__all__ = ["PreTradeRisk", "STP_MODES", "INT64_MAX"]

INT64_MAX = 2**63 - 1
#: Wire names of the self-trade prevention modes -> the book's codes.
STP_MODES = {m.name.lower(): m for m in StpMode}
_SIDE_CODES = {"buy": int(Side.BUY), "sell": int(Side.SELL)}
_TIF_CODES = {"day": int(TimeInForce.DAY), "gtc": int(TimeInForce.GTC),
              "ioc": int(TimeInForce.IOC), "fok": int(TimeInForce.FOK),
              "gtd": int(TimeInForce.GTD), "gfa": int(TimeInForce.GFA)}
_BUY = int(Side.BUY)
_GTD = int(TimeInForce.GTD)
_LIMIT_CODE = int(OrdType.LIMIT)
_MARKET = int(OrdType.MARKET)
# Plain str values of the codes (a StrEnum member is built once, compared as a str).
_UNKNOWN_SYMBOL = R.UNKNOWN_SYMBOL.value
_UNKNOWN_ACCOUNT, _NOT_WHITELISTED = R.UNKNOWN_ACCOUNT.value, R.NOT_WHITELISTED.value
_NOT_ELIGIBLE, _INVALID_FIELD = R.NOT_ELIGIBLE.value, R.INVALID_FIELD.value
_INVALID_QUANTITY, _BELOW_MIN_QTY = R.INVALID_QUANTITY.value, R.BELOW_MIN_QTY.value
_INVALID_MIN_QTY, _MISSING_PRICE = R.INVALID_MIN_QTY.value, R.MISSING_PRICE.value
_OUTSIDE_BAND, _INVALID_EXPIRE = R.OUTSIDE_PRICE_BAND.value, R.INVALID_EXPIRE_TIME.value
_FUNDS, _TOKENS = R.INSUFFICIENT_FUNDS.value, R.INSUFFICIENT_TOKENS.value
_NOT_REPLACEABLE = R.NOT_REPLACEABLE.value
_ACCOUNT_FROZEN = R.ACCOUNT_FROZEN.value
_MATURED, _NOT_ISSUED = R.INSTRUMENT_MATURED.value, R.NOT_YET_ISSUED.value
_EPOCH_ORDINAL = 719163          # date(1970, 1, 1).toordinal()
_UNKNOWN_ORDER = CancelReject.UNKNOWN_ORDER.value
_TOO_LATE = CancelReject.TOO_LATE_TO_CANCEL.value


def _units(amount: int, places: int) -> str:
    """``amount`` minor units (lots, cash minor units) as a decimal with ``places`` digits."""
    if places <= 0:
        return str(amount)
    digits = str(abs(amount)).rjust(places + 1, "0")
    point = len(digits) - places
    return f"{'-' if amount < 0 else ''}{digits[:point]}.{digits[point:]}"


@cython.cclass
class PreTradeRisk:
    """The checks of one venue's instruments against its ledger, session and ClOrdIDs.

    ``bands``: each instrument's static price band in ticks; ``conv``: its exact
    wire-decimal conversions (memoised: prices and sizes repeat)."""

    def __init__(self, instruments: dict, economics: dict, ledger: Ledger,
                 session: TradingSession, clordids: ClOrdIdMemory):
        self.instruments = instruments
        self.economics = economics
        self.ledger = ledger
        self.session = session
        self.clordids = clordids
        self.bands = {s: i.band_ticks(i.reference_ticks()) for s, i in instruments.items()}
        self.conv = {s: Conversions(i) for s, i in instruments.items()}
        # A bill's or bond's trading days as UTC day numbers: (first, last) inclusive.
        self.life = {s: _trading_days(i) for s, i in instruments.items()
                     if i.maturity is not None}
        # Each instrument's book (the engine's; a market buy reserves by its depth) and
        # fee schedule (only instruments that charge fees: none costs nothing per order).
        self.books: dict = {}
        self.fees = {s: i.fees for s, i in instruments.items()
                     if getattr(i, "fees", None) is not None}
        # The compliance rules (matching.compliance; None: no instrument has any).
        self.compliance: Compliance | None = None

    # ------------------------------------------------------------------ new order
    def admit(self, broker: str, m, order_id: int, now: int) -> LiveOrder:
        """Every check of a NewOrderSingle after its ClOrdID's (the engine's), in order;
        returns the order (id ``order_id``) with its reservation taken."""
        cl_ord_id = m.cl_ord_id
        symbol = m.symbol
        inst = self.instruments.get(symbol)
        if inst is None:
            raise Rejection(_UNKNOWN_SYMBOL, f"unknown instrument {symbol!r}")
        life = self.life.get(symbol)
        if life is not None:
            self._require_life(symbol, life, now)
        self.session.require_open(symbol)
        account = m.account
        self._require_account(broker, account, inst)
        side = _SIDE_CODES.get(m.side)
        time_in_force, ord_type_name = m.time_in_force, m.ord_type
        # The wire codec enforces these Literals; a direct API caller may not have.
        if side is None or time_in_force not in _TIF_CODES or m.stp not in STP_MODES \
                or ord_type_name not in ("limit", "market"):
            raise Rejection(_INVALID_FIELD, "side, ord_type, time_in_force or stp is not "
                            "one of the values FIX allows here")
        conv: Conversions = self.conv[symbol]
        qty = m.qty
        lots = conv.lots.get(qty)
        if lots is None:
            lots = conv.to_lots(qty)
        if lots > INT64_MAX:
            raise Rejection(_INVALID_QUANTITY, f"quantity {qty} is beyond the book's "
                            "64-bit lot count")
        if lots < conv.min_order_lots:
            raise Rejection(_BELOW_MIN_QTY, f"quantity {qty} is below the minimum "
                            f"{inst.lots_to_qty(inst.min_order_lots)} of {symbol}")
        min_qty = m.min_qty
        if min_qty is not None and self.lots(symbol, min_qty) > lots:
            raise Rejection(_INVALID_MIN_QTY, f"min_qty {min_qty} exceeds quantity {qty}")
        band_lo, band_hi = self.bands[symbol]
        if ord_type_name == "limit":
            wire_price = m.price
            if wire_price is None:
                raise Rejection(_MISSING_PRICE, "a limit order needs a price")
            price = conv.ticks.get(wire_price)
            if price is None:
                price = conv.to_ticks(wire_price)
            if not band_lo <= price <= band_hi:
                raise Rejection(_OUTSIDE_BAND, f"price {wire_price} is outside the band "
                                f"{inst.ticks_to_price(band_lo)}..{inst.ticks_to_price(band_hi)}")
            ord_type = _LIMIT_CODE
        else:
            # A market order is bounded by the band: it trades as if limited there (a buy
            # in continuous trading reserves only the asks it can reach: see below).
            price = band_hi if side == _BUY else band_lo
            ord_type = _MARKET
        tif = _TIF_CODES[time_in_force]
        expire = 0
        if tif == _GTD:
            expire_time = m.expire_time
            if expire_time is None or expire_time <= now:
                raise Rejection(_INVALID_EXPIRE, "GTD needs an expire_time in the future")
            if expire_time > INT64_MAX:
                raise Rejection(_INVALID_EXPIRE, f"expire_time {expire_time} is beyond "
                                "the book's 64-bit clock")
            expire = expire_time
        compliance = self.compliance
        if compliance is not None:
            compliance.check_order(account, symbol, side, price, lots, now, order_id)
        if side == _BUY:
            economics: Economics = self.economics[symbol]
            book = self.books.get(symbol) if ord_type == _MARKET else None
            if book is not None and not book.in_call:
                amount = self._market_buy_cash(economics, book, account, symbol, lots,
                                               price, conv, m.stp != "none")
            else:
                amount = economics.worst_case_cash(price, lots)
                if self.fees:
                    amount += self._fee_reserve(symbol, account, amount, lots, conv)
            self._hold(account, CASH, amount, order_id, True, inst, "")
        else:
            amount = lots
            self._hold(account, symbol, amount, order_id, False, inst, "")
        return LiveOrder(order_id, broker, cl_ord_id, account, symbol, side, ord_type, price,
                         lots, tif, expire, 0, 0, lots, amount)

    def _market_buy_cash(self, economics: Economics, book, account, symbol: str, lots,
                         band_hi, conv: Conversions, prevents_self_trade: bool):
        """What a market buy in continuous trading can pay: each ask level's worst-case
        cash for the lots it takes there, up to its quantity and the band
        (``matching.market_reserve``), plus the fees of those lots. With STP ``none`` it
        trades with the account's own asks too, so they are walked like any other."""
        own_asks = prevents_self_trade and self.ledger.reserved(account, symbol) > 0
        walk: MarketWalk = walk_asks(book, lots, band_hi, account, own_asks)
        amount = 0
        for ticks, take in walk.levels:
            amount += economics.worst_case_cash(ticks, take)
        if self.fees:
            amount += self._fee_reserve(symbol, account, amount, walk.lots, conv)
        return amount

    def _fee_reserve(self, symbol: str, account, worst_cash, lots, conv: Conversions):
        """The fees a buy of ``lots`` costing at most ``worst_cash`` can owe (0 when the
        instrument charges none; ``matching.fees.FeeSchedule.reserve``)."""
        schedule: FeeSchedule | None = self.fees.get(symbol)
        if schedule is None:
            return 0
        retail = self.ledger.eligibility_of(account) == "retail"
        return schedule.reserve(worst_cash, lots, conv.min_order_lots, retail)

    def _require_life(self, symbol: str, life: tuple, now) -> None:
        """A fill today must settle within the instrument's life: from the first trading
        date to the last (``matching.lifecycle``), else INSTRUMENT_MATURED /
        NOT_YET_ISSUED. Checked before the book, so no fill can fall outside the life."""
        day = now // DAY_NS
        first, last = life
        if day > last:
            raise Rejection(_MATURED, f"{symbol}'s last trading date "
                            f"{_iso(last)} has passed: no new orders")
        if day < first:
            raise Rejection(_NOT_ISSUED, f"{symbol} trades from {_iso(first)}: a trade "
                            "today would settle before its issue date")

    def _require_account(self, broker: str, account, inst) -> None:
        """The account is the broker's, whitelisted for the token (KYC) and of an investor
        class the instrument is for."""
        ledger = self.ledger
        if ledger.broker_of(account) != broker:
            raise Rejection(_UNKNOWN_ACCOUNT, f"account {account} does not belong to {broker}")
        if not ledger.may_trade(account, inst.symbol):
            raise Rejection(_NOT_WHITELISTED, f"account {account} is not whitelisted for "
                            f"{inst.symbol}")
        blocked = ledger.blocked
        if blocked and ((account, "") in blocked or (account, inst.symbol) in blocked):
            raise Rejection(_ACCOUNT_FROZEN, f"account {account} is frozen by the transfer "
                            f"agent for {inst.symbol}: no new orders")
        if ledger.eligibility_of(account) not in inst.eligibility:
            raise Rejection(_NOT_ELIGIBLE, f"{inst.symbol} is for "
                            f"{'/'.join(sorted(inst.eligibility))} investors only")

    def _hold(self, account, asset: str, amount, ref, is_cash: bool, inst, more: str) -> None:
        """Reserve for order ``ref``; a shortfall becomes the order's Rejection, its
        amounts in the asset's units (``inst``: the order's instrument; ``more``: what the
        need is for, if not the order itself)."""
        try:
            self.ledger.hold(account, asset, amount, ref, is_cash)
        except LedgerError as exc:
            raise Rejection(_FUNDS if is_cash else _TOKENS, _shortfall(exc, inst, more)) from None

    # ------------------------------------------------------------------ cancel / replace
    def find(self, broker: str, m, orders: dict) -> LiveOrder:
        """The live order a cancel or replace names by OrigClOrdID (its own ClOrdID is new
        today: the engine checked); else a ``CancelReject`` Rejection, TOO_LATE_TO_CANCEL
        if the order is done today, UNKNOWN_ORDER if the sender has no such order on that
        symbol."""
        oid = self.clordids.order_of(broker, m.orig_cl_ord_id)
        if oid:
            o = orders.get(oid)
            if o is not None:
                if o.symbol == m.symbol:
                    return o
            else:
                status = self.clordids.status_of(oid)
                if status is not None:
                    raise Rejection(_TOO_LATE, f"order {m.orig_cl_ord_id!r} is already {status}")
        raise Rejection(_UNKNOWN_ORDER, f"no order {m.orig_cl_ord_id!r} on {m.symbol}")

    def replace_terms(self, o: LiveOrder, m, now) -> tuple:
        """The checks of a replace of ``o`` at ``now``; returns ``(price ticks, total lots,
        new leaves)`` with any extra reservation the new terms need already taken."""
        symbol = o.symbol
        life = self.life.get(symbol)
        if life is not None:
            self._require_life(symbol, life, now)
        self.session.require_open(symbol)
        inst = self.instruments[symbol]
        price = self.ticks(symbol, m.price)
        lo, hi = self.bands[symbol]
        if not lo <= price <= hi:
            raise Rejection(_OUTSIDE_BAND, f"price {m.price} is outside the band "
                            f"{inst.ticks_to_price(lo)}..{inst.ticks_to_price(hi)}")
        if o.ord_type != _LIMIT_CODE:
            raise Rejection(_NOT_REPLACEABLE, "only resting limit orders can be replaced")
        total = self.lots(symbol, m.qty)
        new_leaves = total - o.cum_qty
        if total > INT64_MAX:
            raise Rejection(_INVALID_QUANTITY, f"quantity {m.qty} is beyond the book's "
                            "64-bit lot count")
        if new_leaves <= 0:
            raise Rejection(_INVALID_QUANTITY, f"new quantity {m.qty} is not above the "
                            f"filled {inst.lots_to_qty(o.cum_qty)}")
        compliance = self.compliance
        if compliance is not None:
            compliance.check_replace(o, price, total, new_leaves, now)
        extra = self.need(o, price, new_leaves) - o.reserved
        if extra > 0:
            self._reserve_more(o, extra)
        return price, total, new_leaves

    def need(self, o: LiveOrder, price, leaves):
        """What ``o`` must hold for ``leaves`` at ``price``: worst-case cash for a buy,
        the lots for a sell."""
        if o.side == _BUY:
            economics: Economics = self.economics[o.symbol]
            cash = economics.worst_case_cash(price, leaves)
            if self.fees:
                cash += self._fee_reserve(o.symbol, o.account, cash, leaves,
                                          self.conv[o.symbol])
            return cash
        return leaves

    def top_up(self, o: LiveOrder, need) -> None:
        """Hold what ``o`` lacks of ``need`` (a market buy about to rest in a volatility
        call needs its band's reservation); a shortfall is a Rejection."""
        if need > o.reserved:
            self._reserve_more(o, need - o.reserved)

    def _reserve_more(self, o: LiveOrder, amount) -> None:
        is_cash = o.side == _BUY
        self._hold(o.account, CASH if is_cash else o.symbol, amount, o.order_id, is_cash,
                   self.instruments[o.symbol], " more for the replace")
        o.reserved += amount

    # ------------------------------------------------------------------ conversions
    def lots(self, symbol: str, qty: str):
        conv: Conversions = self.conv[symbol]
        lots = conv.lots.get(qty)
        return lots if lots is not None else conv.to_lots(qty)

    def ticks(self, symbol: str, price: str):
        conv: Conversions = self.conv[symbol]
        ticks = conv.ticks.get(price)
        return ticks if ticks is not None else conv.to_ticks(price)


def _trading_days(inst) -> tuple:
    first, last = first_trading_date(inst), last_trading_date(inst)
    assert first is not None and last is not None, "a bill or bond has a life"
    return first.toordinal() - _EPOCH_ORDINAL, last.toordinal() - _EPOCH_ORDINAL


def _iso(day: int) -> str:
    return date.fromordinal(day + _EPOCH_ORDINAL).isoformat()


def _shortfall(exc: LedgerError, inst, more: str) -> str:
    """The why of a reservation the ledger refused, in currency or token units."""
    if isinstance(exc, InsufficientCash):
        unit, places = inst.cash_token, inst.cash_decimals
    elif isinstance(exc, InsufficientTokens):
        unit, places = inst.symbol, inst.token_decimals
    else:
        return str(exc)
    return (f"account {exc.account} needs {_units(exc.needed, places)} {unit}{more}, "
            f"has {_units(exc.available, places)} {unit} available")

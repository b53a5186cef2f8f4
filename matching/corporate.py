"""The lifecycle inputs of a security, applied by the engine: mature, record, pay_coupon,
redeem (``matching.messages.Lifecycle``).

``check`` runs every rule before anything is journaled, so a refused input (not due,
already done, under-funded) changes nothing; ``apply`` then cannot fail, live or on
replay. Coupons and redemptions move cash out of the instrument's ``issuer_account`` to
every entitled account in one ledger step (``Ledger.distribute`` / ``Ledger.redeem``):
all of it or none. Holders of record are every account's balance of the token, reserved
lots included, at the ``record`` input's sequence number.
"""
from __future__ import annotations

from datetime import date

from matching.errors import EngineCancel, EngineReject, Rejection
from matching.ledger import CASH, LedgerError
from matching.lifecycle import (
    CouponEvent,
    cash_of,
    coupon_schedule,
    day_start_ns,
    face_per_100,
    last_trading_date,
    record_cut,
    trade_day,
)
from matching.messages import CorporateAction, Lifecycle

__all__ = ["CorporateActions"]

_REFUSED = EngineReject.LIFECYCLE_REFUSED.value
_MATURED = EngineCancel.MATURED.value


def _refuse(text: str) -> Rejection:
    return Rejection(_REFUSED, text)


class CorporateActions:
    """What the venue has done of each security's life, and doing the next step.

    ``records``: (symbol, payment date ISO) -> (seq, {account: lots}) of coupons recorded
    and not yet paid; ``paid``: coupons paid (the final one with the redemption);
    ``redeemed``: symbol -> the redeem input's seq. ``since``: when this venue started
    (ns), so the timetable never pays what fell due before it existed; not engine state.
    """

    def __init__(self, engine, clock) -> None:
        self.engine = engine
        self.records: dict[tuple[str, str], tuple[int, dict[int, int]]] = {}
        self.paid: set[tuple[str, str]] = set()
        self.redeemed: dict[str, int] = {}
        self.since: int = clock()

    # ------------------------------------------------------------------ checks
    def check(self, msg: Lifecycle, now: int) -> Lifecycle:
        """``msg`` with its coupon date resolved (the earliest one due when none is given),
        or a LIFECYCLE_REFUSED Rejection saying why not."""
        inst = self.engine.instruments[msg.symbol]
        if inst.maturity is None:
            raise _refuse(f"{msg.symbol} is not a bill or bond: it has no life to run")
        if msg.symbol in self.redeemed:
            raise _refuse(f"{msg.symbol} is redeemed already: its life is over")
        today = trade_day(now)
        action = msg.action
        if action == "mature":
            return self._check_mature(msg, inst, today)
        if action == "redeem":
            self._check_redeem(msg, inst, today)
            return Lifecycle("redeem", msg.symbol, "", msg.reason)
        coupon = self._coupon(msg, inst)
        key = (msg.symbol, coupon.payment_date.isoformat())
        if action == "record":
            if key in self.records or key in self.paid:
                raise _refuse(f"{msg.symbol} coupon {key[1]}: holders already recorded")
            cut = record_cut(inst, coupon.record_date)
            if now < day_start_ns(cut):
                raise _refuse(f"{msg.symbol} coupon {key[1]}: the record date "
                              f"{coupon.record_date} has not closed")
        else:
            if coupon.final:
                raise _refuse(f"{msg.symbol} coupon {key[1]} is the final one: paid by "
                              "redeem")
            if key in self.paid:
                raise _refuse(f"{msg.symbol} coupon {key[1]} already paid")
            if key not in self.records:
                raise _refuse(f"{msg.symbol} coupon {key[1]}: no holders of record yet")
            if today < coupon.payment_date:
                raise _refuse(f"{msg.symbol} coupon {key[1]} is not due yet")
            self._funded(inst, self._coupon_payments(inst, coupon, key), "coupon")
        return Lifecycle(action, msg.symbol, key[1], msg.reason)

    def _coupon(self, msg: Lifecycle, inst) -> CouponEvent:
        """The coupon ``msg`` names, or the earliest not yet done for its action."""
        schedule = coupon_schedule(inst)
        if not schedule:
            raise _refuse(f"{msg.symbol} pays no coupons")
        if msg.coupon_date:
            for c in schedule:
                if c.payment_date.isoformat() == msg.coupon_date:
                    return c
            raise _refuse(f"{msg.symbol} pays no coupon on {msg.coupon_date!r}")
        for c in schedule:
            key = (msg.symbol, c.payment_date.isoformat())
            if key in self.paid:
                continue
            if msg.action == "pay_coupon" and c.final:
                break
            if msg.action == "record" and key in self.records:
                continue
            return c
        raise _refuse(f"{msg.symbol}: no coupon left to {msg.action.replace('_', ' ')}")

    def _check_mature(self, msg: Lifecycle, inst, today: date) -> Lifecycle:
        session = self.engine.session
        if session.state[msg.symbol].value == "matured":
            raise _refuse(f"{msg.symbol} has matured already")
        last = last_trading_date(inst)
        if last is not None and today <= last:
            raise _refuse(f"{msg.symbol} trades until {last}: it matures after that")
        return Lifecycle("mature", msg.symbol, "", msg.reason)

    def _check_redeem(self, msg: Lifecycle, inst, today: date) -> None:
        symbol = msg.symbol
        if self.engine.session.state[symbol].value != "matured":
            raise _refuse(f"{symbol} must mature (end trading) before it is redeemed")
        if today < inst.maturity:
            raise _refuse(f"{symbol} is redeemed on its maturity {inst.maturity}")
        final = self._final(inst)
        if final is not None and (symbol, final.payment_date.isoformat()) not in self.records:
            raise _refuse(f"{symbol}: the holders of record of the final coupon are not "
                          "recorded yet")
        self._funded(inst, self._redemption(inst)[1], "redemption")

    def _funded(self, inst, payments: dict[int, int], what: str) -> None:
        """The issuer's paying account is open and can pay every account at once."""
        ledger = self.engine.ledger
        issuer = inst.issuer_account
        if issuer is None or issuer not in ledger.accounts:
            raise _refuse(f"{inst.symbol} has no open issuer account to pay the {what} from"
                          f" (issuer_account {issuer})")
        need = sum(v for a, v in payments.items() if a != issuer)
        free = ledger.available(issuer, CASH)
        if need > free:
            raise _refuse(f"{inst.symbol} {what} refused whole: issuer account {issuer} "
                          f"needs {_cash(inst, need)} {inst.cash_token}, has "
                          f"{_cash(inst, free)} available")

    # ------------------------------------------------------------------ amounts
    def _coupon_payments(self, inst, coupon: CouponEvent, key) -> dict[int, int]:
        _seq, holders = self.records[key]
        return {a: cash_of(inst, lots, coupon.per_100) for a, lots in holders.items()}

    def _final(self, inst) -> CouponEvent | None:
        schedule = coupon_schedule(inst)
        return schedule[-1] if schedule and schedule[-1].final else None

    def _redemption(self, inst) -> tuple[dict[int, int], dict[int, int], dict[int, int]]:
        """Lots burned and principal per current holder, the final coupon per holder of
        record, and the total cash per account: ``(burns, totals, coupons)`` as dicts."""
        holders = self.engine.ledger.holders(inst.symbol)
        totals = {a: cash_of(inst, lots, face_per_100()) for a, lots in holders.items()}
        coupons: dict[int, int] = {}
        final = self._final(inst)
        if final is not None:
            key = (inst.symbol, final.payment_date.isoformat())
            if key in self.records:
                coupons = self._coupon_payments(inst, final, key)
        for a, v in coupons.items():
            totals[a] = totals.get(a, 0) + v
        return holders, dict(sorted(totals.items())), coupons

    # ------------------------------------------------------------------ apply
    def apply(self, msg: Lifecycle) -> None:
        """Do a checked lifecycle input (the engine's ``_apply``)."""
        engine = self.engine
        inst = engine.instruments[msg.symbol]
        if msg.action == "mature":
            self._mature(msg)
        elif msg.action == "record":
            # Holders of record: every balance of the token, reserved lots included.
            self.records[(msg.symbol, msg.coupon_date)] = (engine.seq,
                                                           engine.ledger.holders(msg.symbol))
        elif msg.action == "pay_coupon":
            self._pay(inst, msg)
        elif msg.action == "redeem":
            self._redeem(inst)
        else:  # pragma: no cover - Engine.lifecycle checks the action
            raise ValueError(f"unknown lifecycle action {msg.action!r}")

    def _mature(self, msg: Lifecycle) -> None:
        """Trading ends for good: every resting order expires (text MATURED), releasing
        what it held."""
        engine = self.engine
        symbol = msg.symbol
        engine.session.apply("mature", [symbol], msg.reason or "matured", engine.seq)
        book = engine.books[symbol]
        for oid in sorted(o.order_id for o in engine.orders.values() if o.symbol == symbol):
            book.expire(oid)
        engine.executions.handle(symbol, book.take_event_rows(), _MATURED)

    def _pay(self, inst, msg: Lifecycle) -> None:
        key = (msg.symbol, msg.coupon_date)
        coupon = next(c for c in coupon_schedule(inst)
                      if c.payment_date.isoformat() == msg.coupon_date)
        payments = self._coupon_payments(inst, coupon, key)
        try:
            self.engine.ledger.distribute(inst.issuer_account, CASH, payments)
        except LedgerError as exc:  # pragma: no cover - check() made sure it is funded
            raise AssertionError(f"coupon checked as funded, refused: {exc}") from exc
        _seq, holders = self.records.pop(key)
        self.paid.add(key)
        for account, amount in payments.items():
            self._tell(inst, "coupon", account, holders[account], amount,
                       coupon.record_date.isoformat(), msg.coupon_date)

    def _redeem(self, inst) -> None:
        burns, totals, coupons = self._redemption(inst)
        symbol = inst.symbol
        try:
            self.engine.ledger.redeem(symbol, inst.issuer_account, CASH, burns, totals)
        except LedgerError as exc:  # pragma: no cover - check() made sure it is funded
            raise AssertionError(f"redemption checked as funded, refused: {exc}") from exc
        final = self._final(inst)
        record_date = ""
        if final is not None:
            key = (symbol, final.payment_date.isoformat())
            _seq, _recorded = self.records.pop(key)
            self.paid.add(key)
            record_date = final.record_date.isoformat()
        self.redeemed[symbol] = self.engine.seq
        for account, amount in totals.items():
            coupon = coupons.get(account, 0)
            self._tell(inst, "redemption", account, burns.get(account, 0), amount,
                       record_date, inst.maturity.isoformat(),
                       principal=amount - coupon, coupon=coupon if final is not None else None)

    def _tell(self, inst, action: str, account: int, lots: int, amount: int,
              record_date: str, payment_date: str, *, principal: int | None = None,
              coupon: int | None = None) -> None:
        engine = self.engine
        broker = engine.ledger.broker_of(account) or ""
        engine.executions.tell(broker, CorporateAction(
            action, inst.symbol, account, str(inst.lots_to_qty(lots)), _cash(inst, amount),  # type: ignore[arg-type]
            record_date, payment_date, engine.seq, engine.executions.stamp,
            None if principal is None else _cash(inst, principal),
            None if coupon is None else _cash(inst, coupon)))

    # ------------------------------------------------------------------ state
    def done(self, action: str, symbol: str, coupon_date: str = "") -> bool:
        """Whether the venue did this step of ``symbol``'s life already (the timetable)."""
        key = (symbol, coupon_date)
        if symbol in self.redeemed:
            return True
        if action == "record":
            return key in self.records or key in self.paid
        if action == "pay_coupon":
            return key in self.paid
        if action == "mature":
            return self.engine.session.state[symbol].value == "matured"
        return False

    def state_doc(self) -> list:
        """The lifecycle state in a canonical order (empty: nothing done yet)."""
        if not (self.records or self.paid or self.redeemed):
            return []
        return [sorted([s, d, seq, sorted(h.items())] for (s, d), (seq, h)
                       in self.records.items()),
                sorted([s, d] for s, d in self.paid),
                sorted(self.redeemed.items())]

    def snapshot(self) -> dict:
        return {"records": [[s, d, seq, sorted(h.items())]
                            for (s, d), (seq, h) in sorted(self.records.items())],
                "paid": sorted([s, d] for s, d in self.paid),
                "redeemed": sorted([s, q] for s, q in self.redeemed.items()),
                "since": self.since}

    def restore(self, snap: dict | None) -> None:
        if not snap:
            return
        self.records = {(s, d): (seq, dict(h)) for s, d, seq, h in snap["records"]}
        self.paid = {(s, d) for s, d in snap["paid"]}
        self.redeemed = dict(snap["redeemed"])
        self.since = snap["since"]


def _cash(inst, amount: int) -> str:
    """Minor units as a decimal in the cash token, with all its places (20.000000)."""
    places = inst.cash_decimals
    if places <= 0:
        return str(amount)
    digits = str(abs(amount)).rjust(places + 1, "0")
    return f"{'-' if amount < 0 else ''}{digits[:-places]}.{digits[-places:]}"

"""Prices and published results of an issuance auction: a rate's price in the instrument's
own conventions, the cash of an allotment, and the results announcement.

Prices from yields use the formulas tokenbook already has for the instrument (bills:
money-market, US discount or investment rate; bonds: the street yield, 31 CFR 356
Appendix B section I for a regular coupon), rounded to six decimal places as Treasury
results are (Appendix B: "prices are rounded to six decimals").
"""
from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from matching.fixed_income import instrument_accrued, instrument_clean_price, round_cash
from matching.instruments import Instrument
from matching.issuance_rules import RATE_PLACES, AwardResult
from matching.messages import AuctionResult
from matching.yields import (
    bill_price_from_discount,
    bill_price_from_investment_rate,
    bill_price_from_yield,
)

__all__ = ["rate_str", "cash_str", "price_of_rate", "lot_face", "allotment_cash", "reserve_cash",
           "result_of", "PRICE_PLACES"]

PRICE_PLACES = 6
_SIX = Decimal("0.000001")


def rate_str(rate: int | None, basis: str) -> str | None:
    """A rate integer as its decimal string (a yield in percent, a price per 100)."""
    if rate is None:
        return None
    places = RATE_PLACES[basis]
    return str(Decimal(rate).scaleb(-places).quantize(Decimal(1).scaleb(-places)))


def cash_str(minor: int, places: int) -> str:
    """Cash minor units as a decimal string of the cash token (6 places: "34654.405450")."""
    return str(Decimal(minor).scaleb(-places).quantize(Decimal(1).scaleb(-places)))


def price_of_rate(inst: Instrument, rate: int, basis: str, settle: date) -> Decimal:
    """Clean price per 100 of ``rate`` settled on ``settle``, to six decimals (half up)."""
    if basis == "price":
        return Decimal(rate).scaleb(-RATE_PLACES["price"])
    y = Decimal(rate).scaleb(-RATE_PLACES["yield"] - 2)       # percent -> a fraction
    maturity = inst.debt_terms()[2]
    if inst.kind == "tbill":
        if inst.yield_convention == "discount":
            price = bill_price_from_discount(y, settle, maturity)
        elif inst.yield_convention == "investment_rate":
            price = bill_price_from_investment_rate(y, settle, maturity, inst.issue_date)
        else:
            price = bill_price_from_yield(y, settle, maturity, inst.day_count)
    else:
        price = instrument_clean_price(inst, y, settle)
    return Decimal(price).quantize(_SIX, rounding=ROUND_HALF_UP)


def lot_face(inst: Instrument) -> Fraction:
    """Face value of one lot in cash units."""
    return Fraction(inst.debt_terms()[0]) / 10 ** inst.token_decimals


def _exact_cash(inst: Instrument, lots: int, price: Decimal, settle: date) -> Fraction:
    accrued = instrument_accrued(inst, settle) if inst.kind == "bond" else Fraction(0)
    return (lots * lot_face(inst) * (Fraction(price) + accrued) / 100
            * 10 ** inst.cash_decimals)


def allotment_cash(inst: Instrument, lots: int, price: Decimal, settle: date) -> int:
    """Cash due on ``lots`` at ``price`` plus accrued interest at ``settle`` (a
    reopening's buyers pay it), minor units, rounded once by the instrument's rounding."""
    return round_cash(_exact_cash(inst, lots, price, settle), inst.rounding)


def reserve_cash(inst: Instrument, lots: int, price: Decimal, settle: date) -> int:
    """What a bid reserves: ``allotment_cash`` rounded up, so any award at this price or
    below is covered."""
    exact = _exact_cash(inst, lots, price, settle)
    return -(-exact.numerator // exact.denominator)


def _face(inst: Instrument, lots: int) -> str:
    face = lots * lot_face(inst)
    return str(Decimal(face.numerator) / Decimal(face.denominator)) if face.denominator != 1 \
        else str(face.numerator)


def result_of(auction_id: str, inst: Instrument, method: str, basis: str, offering: int,
              res: AwardResult, settle: date, seq: int, status: str = "closed"
              ) -> AuctionResult:
    """The results announcement: tendered and accepted by type, high/low/median rate and
    price, allotted at high, bid-to-cover (total tendered / total accepted, 2 places)."""
    accepted = res.accepted_competitive + res.accepted_noncompetitive
    tendered = res.tendered_competitive + res.tendered_noncompetitive
    cover = "0.00"
    if accepted:
        cover = str((Decimal(tendered) / Decimal(accepted)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP))

    def px(rate: int | None) -> str | None:
        return None if rate is None else str(price_of_rate(inst, rate, basis, settle))

    allotted = None
    if res.stop_rate is not None:
        allotted = str(Decimal(res.allotted_at_stop_bp).scaleb(-2).quantize(Decimal("0.01")))
    return AuctionResult(
        auction_id=auction_id, symbol=inst.symbol, method=method, basis=basis,
        offering=_face(inst, offering),
        tendered_competitive=_face(inst, res.tendered_competitive),
        tendered_noncompetitive=_face(inst, res.tendered_noncompetitive),
        accepted_competitive=_face(inst, res.accepted_competitive),
        accepted_noncompetitive=_face(inst, res.accepted_noncompetitive),
        bid_to_cover=cover, issue_date=settle.isoformat(), seq=seq, status=status,  # type: ignore[arg-type]
        high_rate=rate_str(res.stop_rate, basis), low_rate=rate_str(res.low_rate, basis),
        median_rate=rate_str(res.median_rate, basis), high_price=px(res.stop_rate),
        low_price=px(res.low_rate), median_price=px(res.median_rate),
        nc_price=px(res.nc_rate), allotted_at_high=allotted)

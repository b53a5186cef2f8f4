"""Instrument registry: what tokenbook trades, and exact decimal <-> tick/lot conversion.

Instruments come from TOML (the shipped programme in ``instruments.toml`` plus an
optional user file). A price off the tick or a quantity off the lot is rejected with a
clear message, never rounded; binary floats are refused outright.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from importlib import resources
from os import PathLike
from typing import Iterator

__all__ = ["Instrument", "Registry", "InstrumentError", "OffTickError", "OffLotError",
           "isin_is_valid", "KINDS"]

KINDS = ("tbill", "bond", "commodity")
ELIGIBILITIES = ("retail", "institutional")


class InstrumentError(ValueError):
    """A bad instrument definition or a price/quantity that does not fit an instrument."""


class OffTickError(InstrumentError):
    pass


class OffLotError(InstrumentError):
    pass


def isin_is_valid(isin: str) -> bool:
    """ISO 6166: 2 letters, 9 alphanumerics, a Luhn check digit over the letters as numbers."""
    if len(isin) != 12 or not isin[:2].isalpha() or not isin.isalnum() or not isin[-1].isdigit():
        return False
    digits = "".join(str(int(c, 36)) for c in isin[:-1].upper())
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return (10 - total % 10) % 10 == int(isin[-1])


def _decimal(value, what: str) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"{what} must be a decimal string or Decimal, not a float ({value!r})")
    try:
        d = Decimal(value) if not isinstance(value, Decimal) else value
    except (InvalidOperation, TypeError):
        raise InstrumentError(f"{what} {value!r} is not a decimal number") from None
    if not d.is_finite():
        raise InstrumentError(f"{what} {value!r} is not a finite number")
    return d


@dataclass(frozen=True)
class Instrument:
    """One tradable token: its economics, its tick and lot, its band and who may hold it."""
    symbol: str
    isin: str
    name: str
    kind: str
    token_decimals: int
    tick_size: Decimal
    reference_price: Decimal
    band_pct: Decimal
    min_order_qty: Decimal
    eligibility: frozenset[str]
    cash_token: str = "USDC"
    cash_decimals: int = 6
    face_value: Decimal | None = None
    issue_date: date | None = None
    maturity: date | None = None
    coupon_rate: Decimal = Decimal(0)
    coupon_frequency: int = 0
    day_count: str = "ACT/365"
    settlement_lag: int = 0
    extra: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def lot(self) -> Decimal:
        """Token quantity of one lot, e.g. 0.0001 for 4 token decimals."""
        return Decimal(1).scaleb(-self.token_decimals)

    @property
    def min_order_lots(self) -> int:
        return self.qty_to_lots(self.min_order_qty)

    def price_to_ticks(self, price) -> int:
        """Exact ticks of a decimal price; OffTickError if it is not a multiple of the tick."""
        p = _decimal(price, "price")
        ticks, rest = divmod(p, self.tick_size)
        if rest != 0:
            raise OffTickError(f"price {price} is not a multiple of tick {self.tick_size} "
                               f"for {self.symbol}")
        if p < 0:
            raise InstrumentError(f"price {price} is negative for {self.symbol}")
        return int(ticks)

    def ticks_to_price(self, ticks: int) -> Decimal:
        return self.tick_size * ticks

    def qty_to_lots(self, qty) -> int:
        """Exact lots of a token quantity; OffLotError if finer than the lot."""
        q = _decimal(qty, "quantity")
        lots = q.scaleb(self.token_decimals)
        if lots != lots.to_integral_value():
            raise OffLotError(f"quantity {qty} is finer than the lot {self.lot} of {self.symbol}")
        return int(lots)

    def lots_to_qty(self, lots: int) -> Decimal:
        return Decimal(lots).scaleb(-self.token_decimals)

    def reference_ticks(self) -> int:
        return self.price_to_ticks(self.reference_price)

    def band_ticks(self, reference_ticks: int) -> tuple[int, int]:
        """Lowest and highest acceptable price in ticks: reference +- band_pct percent."""
        width = int(Decimal(reference_ticks) * self.band_pct / 100)
        return max(1, reference_ticks - width), reference_ticks + width

    def ladder(self) -> tuple[int, int]:
        """The book's tick ladder ``(price_lo, n_levels)``: three band widths each side."""
        ref = self.reference_ticks()
        lo, hi = self.band_ticks(ref)
        width = hi - ref
        start = max(0, ref - 3 * width)
        return start, ref + 3 * width - start + 1


class Registry:
    """Instruments by symbol and ISIN; iteration in definition order.

    >>> reg = Registry.load_default()
    >>> reg["TB3M"].price_to_ticks("99.015")
    99015
    """

    def __init__(self) -> None:
        self._by_symbol: dict[str, Instrument] = {}
        self._by_isin: dict[str, Instrument] = {}

    @classmethod
    def load_default(cls, user_file: str | PathLike | None = None) -> "Registry":
        reg = cls()
        text = resources.files("matching").joinpath("instruments.toml").read_text()
        reg.add_toml(tomllib.loads(text), "matching/instruments.toml")
        if user_file is not None:
            reg.load(user_file)
        return reg

    def load(self, path: str | PathLike) -> None:
        with open(path, "rb") as f:
            self.add_toml(tomllib.load(f), str(path))

    def add_toml(self, data: dict, source: str) -> None:
        cash = data.get("cash", {})
        for i, row in enumerate(data.get("instrument", [])):
            where = f"{source}: instrument {i} ({row.get('symbol', '?')})"
            try:
                inst = _parse(row, cash)
            except (KeyError, TypeError, InstrumentError) as exc:
                raise InstrumentError(f"{where}: {exc}") from exc
            if inst.symbol in self._by_symbol:
                raise InstrumentError(f"{where}: duplicate symbol {inst.symbol}")
            if inst.isin in self._by_isin:
                raise InstrumentError(f"{where}: duplicate ISIN {inst.isin}")
            self._by_symbol[inst.symbol] = inst
            self._by_isin[inst.isin] = inst

    def __getitem__(self, symbol: str) -> Instrument:
        return self._by_symbol[symbol]

    def get(self, symbol: str) -> Instrument | None:
        return self._by_symbol.get(symbol)

    def by_isin(self, isin: str) -> Instrument | None:
        return self._by_isin.get(isin)

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_symbol.values())

    def __len__(self) -> int:
        return len(self._by_symbol)


def _parse(row: dict, cash: dict) -> Instrument:
    kind = row["kind"]
    if kind not in KINDS:
        raise InstrumentError(f"kind must be one of {KINDS}, got {kind!r}")
    symbol = row["symbol"]
    if not (symbol.isascii() and symbol.isalnum() and 1 <= len(symbol) <= 12):
        raise InstrumentError(f"symbol must be 1-12 ASCII letters/digits, got {symbol!r}")
    if not isin_is_valid(row["isin"]):
        raise InstrumentError(f"ISIN {row['isin']!r} is malformed or fails its check digit")
    elig = frozenset(row["eligibility"])
    if not elig or not elig <= set(ELIGIBILITIES):
        raise InstrumentError(f"eligibility must be a non-empty subset of {ELIGIBILITIES}")
    tick = _decimal(row["tick_size"], "tick_size")
    if tick <= 0:
        raise InstrumentError("tick_size must be positive")
    debt = kind in ("tbill", "bond")
    inst = Instrument(
        symbol=symbol, isin=row["isin"], name=row.get("name", symbol), kind=kind,
        token_decimals=int(row["token_decimals"]), tick_size=tick,
        reference_price=_decimal(row["reference_price"], "reference_price"),
        band_pct=_decimal(row["band_pct"], "band_pct"),
        min_order_qty=_decimal(row.get("min_order_qty", "0"), "min_order_qty"),
        eligibility=elig, cash_token=cash.get("token", "USDC"),
        cash_decimals=int(cash.get("decimals", 6)),
        face_value=_decimal(row["face_value"], "face_value") if debt else None,
        issue_date=row.get("issue_date"), maturity=row.get("maturity"),
        coupon_rate=_decimal(row.get("coupon_rate", "0"), "coupon_rate"),
        coupon_frequency=int(row.get("coupon_frequency", 0)),
        day_count=row.get("day_count", "ACT/365"),
        settlement_lag=int(row.get("settlement_lag", 0)),
    )
    if debt and not (isinstance(inst.issue_date, date) and isinstance(inst.maturity, date)
                     and inst.issue_date < inst.maturity):
        raise InstrumentError("bills and bonds need issue_date < maturity (TOML dates)")
    if kind == "bond" and inst.coupon_frequency not in (1, 2, 4, 12):
        raise InstrumentError("a bond needs coupon_frequency 1, 2, 4 or 12")
    inst.price_to_ticks(inst.reference_price)
    inst.qty_to_lots(inst.min_order_qty)
    return inst

"""Instrument registry: what tokenbook trades, and exact decimal <-> tick/lot conversion.

Instruments come from TOML: the shipped programme (``instruments.toml``) plus an optional
user file, every field checked (errors name the file, the instrument and the field).

Units. Bills and bonds are priced per 100 of face, so their ``tick_size`` is in those
units; a commodity token is priced per token in cash. A lot is ``10**-token_decimals``
token. Cash is a dollar stablecoin, "USDC" with 6 decimals (minor unit 0.000001) unless a
file says otherwise: with the default programme one tick on one lot is exactly one minor
unit (0.0001 token x 1000 face x 0.001 / 100), so price x quantity is exact cash and only
accrued interest ever needs rounding (see ``matching.fixed_income``).

A price off the tick or a quantity off the lot raises (``OffTickError``, ``OffLotError``),
never rounds; a binary float raises TypeError.
"""
from __future__ import annotations

import operator
import re
import tomllib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Context, Decimal
from importlib import resources
from os import PathLike

from matching.calendars import BUSINESS_DAY_RULES, CalendarError, load_calendar
from matching.call_terms import DEFAULT_CALL_TERMS, CallTerms, CallTermsError, parse_call_terms
from matching.compliance_rules import ComplianceError, ComplianceRules, parse_compliance
from matching.coupons import bond_of
from matching.daycount import canonical_day_count
from matching.fees import FeeError, FeeSchedule, parse_fees
from matching.fixed_income import ROUNDING_MODES
from matching.toml_terms import date_term
from matching.yields import LAST_PERIOD_YIELDS

__all__ = ["Instrument", "Registry", "InstrumentError", "OffTickError", "OffLotError",
           "isin_is_valid", "parse_instrument", "DEBT_FIELDS", "KINDS", "ELIGIBILITIES"]

KINDS = ("tbill", "bond", "commodity")
ELIGIBILITIES = ("retail", "institutional")
DEFAULT_CASH_TOKEN, DEFAULT_CASH_DECIMALS = "USDC", 6

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_ISIN = re.compile(r"[A-Z]{2}[A-Z0-9]{9}[0-9]")
_SYMBOL = re.compile(r"[A-Z][A-Z0-9]{0,11}")
_EXACT = Context(prec=80)          # wide enough that tick and lot products never round


class InstrumentError(ValueError):
    """A bad instrument definition, or a price or quantity that does not fit an instrument."""


class OffTickError(InstrumentError):
    """A price that is not a whole number of ticks."""


class OffLotError(InstrumentError):
    """A quantity that is not a whole number of lots."""


def isin_is_valid(isin: str) -> bool:
    """ISO 6166: 2 letters, 9 letters/digits, a Luhn check digit over the letters as numbers."""
    if not isinstance(isin, str) or not _ISIN.fullmatch(isin):
        return False
    digits = "".join(str(int(c, 36)) for c in isin[:-1])
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return (10 - total % 10) % 10 == int(isin[-1])


def _decimal(value, what: str) -> Decimal:
    """A decimal string, Decimal or int as a finite Decimal of sane magnitude; floats refused."""
    if (type(value) is Decimal and value.is_finite()
            and (not value or -40 <= value.adjusted() <= 18)):
        return value                                     # the engine's hot path
    if isinstance(value, (float, bool)) or not isinstance(value, (str, Decimal, int)):
        raise TypeError(f"{what} must be a decimal string, Decimal or int, "
                        f"not {type(value).__name__} ({value!r})")
    if isinstance(value, str):
        if not _NUMBER.fullmatch(value):
            raise InstrumentError(f"{what} {value!r} is not a decimal number")
        value = Decimal(value)
    d = Decimal(value)
    if not d.is_finite():
        raise InstrumentError(f"{what} {value} is not a finite number")
    if d and not -40 <= d.adjusted() <= 18:
        raise InstrumentError(f"{what} {value} is out of range")
    return d


def _index(n, what: str) -> int:
    """An integer count (int or numpy integer), never a float or bool."""
    if isinstance(n, bool):
        raise TypeError(f"{what} must be an integer, not bool")
    try:
        return operator.index(n)
    except TypeError:
        raise TypeError(f"{what} must be an integer, not {type(n).__name__} ({n!r})") from None


def _scaled(n: int, exponent: int) -> Decimal:
    """Exactly ``n * 10**exponent`` as a Decimal (no context rounding)."""
    if -10**40 < n < 10**40:
        return _EXACT.scaleb(Decimal(n), exponent)
    return Decimal(f"{n}E{exponent}")


@dataclass(frozen=True)
class Instrument:
    """One tradable token: its economics, its tick and lot, its band and who may hold it."""
    symbol: str
    isin: str
    name: str
    kind: str                         # tbill | bond | commodity
    token_decimals: int               # lot = 10**-token_decimals token
    tick_size: Decimal                # per 100 of face (bills, bonds); per token (commodity)
    reference_price: Decimal          # centre of the price band
    band_pct: Decimal                 # band half-width, percent of the reference price
    min_order_qty: Decimal            # tokens (a whole number of lots)
    eligibility: frozenset[str]       # retail and/or institutional
    cash_token: str = DEFAULT_CASH_TOKEN
    cash_decimals: int = DEFAULT_CASH_DECIMALS
    face_value: Decimal | None = None     # cash per token at maturity (bills, bonds)
    issue_date: date | None = None
    maturity: date | None = None
    coupon_rate: Decimal = Decimal(0)     # annual, as a fraction: 0.045 is 4.5 %
    coupon_frequency: int = 0             # coupons a year (bonds)
    day_count: str = "ACT/365F"           # canonical name, see fixed_income.DAY_COUNTS
    yield_convention: str | None = None   # see _YIELD_CONVENTIONS (bills 3, bonds street)
    settlement_lag: int = 0               # business days of ``calendar``, T+0 by default
    # Market conventions (docs/fixed-income.md); the defaults change no answer.
    calendar: str | None = None           # business days; None: every day (on-chain)
    rounding: str = "half_even"           # of settlement cash: half_even | half_up | truncate
    first_coupon: date | None = None      # bonds: explicit (long or short) first coupon
    penultimate_coupon: date | None = None  # bonds: start of an odd last period
    end_of_month: bool = True             # bonds: a month-end anchor keeps month ends
    business_day_rule: str = "none"       # debt: payment-date roll (calendars.adjust)
    last_period_yield: str = "compound"   # bonds: compound | simple (US street)
    # The life (matching.lifecycle): the last day orders are taken (None: the last trade
    # date settling before maturity), the record date in business days before each coupon
    # payment, the ex-coupon period (0: none; else equal to record_lag), and the issuer's
    # paying account (coupons and redemption come out of it; None: none set).
    last_trading_date: date | None = None
    record_lag: int = 1
    ex_coupon_days: int = 0
    issuer_account: int | None = None
    # Trading fees (matching.fees; None: the instrument charges none).
    fees: FeeSchedule | None = None
    # Compliance rules and retail limits (matching.compliance; None: the instrument has none).
    compliance: ComplianceRules | None = None
    # Call-auction settings (matching.call_terms; the defaults are the engine's former ones).
    call_auction: CallTerms = DEFAULT_CALL_TERMS
    # Exact integer ratios of the tick and the band, cached for the per-order checks.
    _tick: tuple[int, int] = field(init=False, repr=False, compare=False)
    _band: tuple[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_tick", Decimal(self.tick_size).as_integer_ratio())
        object.__setattr__(self, "_band", Decimal(self.band_pct).as_integer_ratio())

    def debt_terms(self) -> tuple[Decimal, date, date]:
        """A bill's or bond's face value, issue date and maturity (the loader requires all
        three of every bill and bond); InstrumentError for a commodity token."""
        if self.face_value is None or self.issue_date is None or self.maturity is None:
            raise InstrumentError(f"{self.symbol} ({self.kind}) has no face value and life")
        return self.face_value, self.issue_date, self.maturity

    @property
    def lot(self) -> Decimal:
        """Token quantity of one lot, e.g. 0.0001 for 4 token decimals."""
        return _scaled(1, -self.token_decimals)

    @property
    def min_order_lots(self) -> int:
        return self.qty_to_lots(self.min_order_qty)

    def price_to_ticks(self, price) -> int:
        """Exact ticks of a decimal price; OffTickError if it is not a multiple of the tick."""
        p = _decimal(price, "price")
        if p < 0:
            raise InstrumentError(f"price {price} is negative for {self.symbol}")
        num, den = p.as_integer_ratio()
        tick_num, tick_den = self._tick
        ticks, rest = divmod(num * tick_den, den * tick_num)
        if rest:
            raise OffTickError(f"price {price} is not a multiple of tick {self.tick_size} "
                               f"for {self.symbol}")
        return ticks

    def ticks_to_price(self, ticks: int) -> Decimal:
        """The decimal price of a whole number of ticks, exactly."""
        n = ticks if type(ticks) is int else _index(ticks, "ticks")
        if -10**40 < n < 10**40:
            return _EXACT.multiply(self.tick_size, n)
        _sign, digits, exp = self.tick_size.as_tuple()
        assert type(exp) is int                  # a finite tick: not 'n', 'N' or 'F'
        return _scaled(n * int("".join(map(str, digits))), exp)

    def qty_to_lots(self, qty) -> int:
        """Exact lots of a token quantity; OffLotError if finer than the lot."""
        q = _decimal(qty, "quantity")
        if q < 0:
            raise InstrumentError(f"quantity {qty} is negative for {self.symbol}")
        num, den = q.as_integer_ratio()
        lots, rest = divmod(num * 10 ** self.token_decimals, den)
        if rest:
            raise OffLotError(f"quantity {qty} is finer than the lot {self.lot} of "
                              f"{self.symbol}")
        return lots

    def lots_to_qty(self, lots: int) -> Decimal:
        """The token quantity of a whole number of lots, exactly."""
        return _scaled(lots if type(lots) is int else _index(lots, "lots"), -self.token_decimals)

    def reference_ticks(self) -> int:
        return self.price_to_ticks(self.reference_price)

    def band_ticks(self, reference_ticks: int) -> tuple[int, int]:
        """Lowest and highest acceptable price in ticks: reference +- band_pct percent
        (the width rounded down to whole ticks; never below one tick)."""
        ref = _index(reference_ticks, "reference_ticks")
        band_num, band_den = self._band
        width = ref * band_num // (band_den * 100)
        return max(1, ref - width), ref + width

    def ladder(self) -> tuple[int, int]:
        """The book's integer price ladder ``(price_lo_ticks, n_levels)``: three band widths
        each side of the reference, so the band can follow the reference as it moves."""
        ref = self.reference_ticks()
        width = self.band_ticks(ref)[1] - ref
        start = max(0, ref - 3 * width)
        return start, ref + 3 * width - start + 1


class Registry:
    """Instruments by symbol and ISIN, iterated in definition order.

    >>> reg = Registry.load_default()
    >>> reg["TB3M"].price_to_ticks("99.270")
    99270
    """

    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_symbol: dict[str, Instrument] = {}
        self._by_isin: dict[str, Instrument] = {}
        self._add_all([(inst, f"instrument {inst.symbol}") for inst in instruments])

    @classmethod
    def load_default(cls, user_file: str | PathLike | None = None) -> Registry:
        """The shipped programme, plus the instruments of ``user_file`` if given."""
        reg = cls()
        text = resources.files("matching").joinpath("instruments.toml").read_text("utf-8")
        reg.add_toml(tomllib.loads(text), "matching/instruments.toml")
        if user_file is not None:
            reg.load(user_file)
        return reg

    def load(self, path: str | PathLike) -> None:
        """Add every instrument of a TOML file, or none of them if any is bad."""
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise InstrumentError(f"{path}: not valid TOML: {exc}") from exc
        self.add_toml(data, str(path))

    def add_toml(self, data: dict, source: str) -> None:
        """Add the instruments of parsed TOML (``source`` names it in errors); all or none."""
        unknown = set(data) - {"cash", "instrument"}
        if unknown:
            raise InstrumentError(f"{source}: unknown table(s) {sorted(unknown)}")
        cash = data.get("cash", {})
        if not isinstance(cash, dict) or set(cash) - {"token", "decimals"}:
            raise InstrumentError(f"{source}: [cash] takes only 'token' and 'decimals'")
        rows = data.get("instrument", [])
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InstrumentError(f"{source}: instruments must be [[instrument]] tables")
        parsed = []
        for i, row in enumerate(rows):
            where = f"{source}: instrument {i} ({row.get('symbol', '?')})"
            try:
                parsed.append((_parse(row, cash), where))
            except (TypeError, InstrumentError, ValueError) as exc:
                raise InstrumentError(f"{where}: {exc}") from exc
        self._add_all(parsed)

    def _add_all(self, items: list[tuple[Instrument, str]]) -> None:
        symbols, isins = dict(self._by_symbol), dict(self._by_isin)
        for inst, where in items:
            if inst.symbol in symbols:
                raise InstrumentError(f"{where}: field symbol: duplicate symbol {inst.symbol}")
            if inst.isin in isins:
                raise InstrumentError(f"{where}: field isin: duplicate ISIN {inst.isin} "
                                      f"(already {isins[inst.isin].symbol})")
            symbols[inst.symbol] = isins[inst.isin] = inst
        self._by_symbol, self._by_isin = symbols, isins

    def __getitem__(self, symbol: str) -> Instrument:
        try:
            return self._by_symbol[symbol]
        except KeyError:
            raise KeyError(f"unknown instrument {symbol!r}") from None

    def get(self, symbol: str) -> Instrument | None:
        return self._by_symbol.get(symbol)

    def by_isin(self, isin: str) -> Instrument | None:
        return self._by_isin.get(isin)

    def lookup(self, key: str) -> Instrument:
        """By symbol or by ISIN; KeyError if neither."""
        inst = self._by_symbol.get(key) or self._by_isin.get(key)
        if inst is None:
            raise KeyError(f"no instrument with symbol or ISIN {key!r}")
        return inst

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def __iter__(self) -> Iterator[Instrument]:
        return iter(self._by_symbol.values())

    def __len__(self) -> int:
        return len(self._by_symbol)


# ---------------------------------------------------------------------- TOML parsing
_COMMON = {"symbol", "isin", "name", "kind", "token_decimals", "tick_size", "reference_price",
           "band_pct", "min_order_qty", "eligibility", "settlement_lag", "cash_token",
           "cash_decimals", "fees", "compliance", "call_auction"}
_DEBT = {"face_value", "issue_date", "maturity", "day_count", "yield_convention",
         "last_trading_date", "record_lag", "ex_coupon_days", "issuer_account"}
_FIELDS = {"commodity": _COMMON, "tbill": _COMMON | _DEBT,
           "bond": _COMMON | _DEBT | {"coupon_rate", "coupon_frequency"}}
_YIELD_CONVENTIONS = {"tbill": ("money_market", "discount", "investment_rate"),
                      "bond": ("street",)}
# Market-convention fields, parsed by _conventions.
_CONV_COMMON = {"calendar", "rounding"}
_CONV_DEBT = {"business_day_rule"}
_CONV_BOND = {"first_coupon", "penultimate_coupon", "end_of_month", "last_period_yield"}
_FIELDS = {"commodity": _FIELDS["commodity"] | _CONV_COMMON,
           "tbill": _FIELDS["tbill"] | _CONV_COMMON | _CONV_DEBT,
           "bond": _FIELDS["bond"] | _CONV_COMMON | _CONV_DEBT | _CONV_BOND}
#: Every field a bill's or bond's ``[[instrument]]`` table may have.
DEBT_FIELDS = frozenset(_FIELDS["tbill"] | _FIELDS["bond"])
_MISSING = object()


def _field(row: dict, key: str, default=_MISSING):
    if key in row:
        return row[key]
    if default is _MISSING:
        raise InstrumentError(f"missing field {key}")
    return default


def _int_field(row: dict, key: str, lo: int, hi: int, default=_MISSING) -> int:
    v = _field(row, key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise InstrumentError(f"field {key}: must be an integer in {lo}..{hi}, got {v!r}")
    return v


def _dec_field(row: dict, key: str, default=_MISSING, *, positive=False) -> Decimal:
    v = _field(row, key, default)
    if not isinstance(v, str):
        raise InstrumentError(f"field {key}: must be a decimal string like \"99.5\" "
                              f"(never a TOML float), got {v!r}")
    try:
        d = _decimal(v, key)
    except (TypeError, InstrumentError) as exc:
        raise InstrumentError(f"field {key}: {exc}") from None
    if d < 0 or (positive and d == 0):
        raise InstrumentError(f"field {key}: must be {'positive' if positive else '>= 0'}, "
                              f"got {v}")
    return d


def _date_field(row: dict, key: str) -> date:
    return date_term(_field(row, key), f"field {key}:", InstrumentError)


def _str_field(row: dict, key: str, default=_MISSING) -> str:
    v = _field(row, key, default)
    if not isinstance(v, str) or not v.strip():
        raise InstrumentError(f"field {key}: must be a non-empty string, got {v!r}")
    return v


def _life_fields(row: dict) -> dict:
    """A bill's or bond's life fields (matching.lifecycle), checked."""
    ex = _int_field(row, "ex_coupon_days", 0, 30, 0)
    lag = _int_field(row, "record_lag", 0, 30, ex or 1)
    if ex and lag != ex:
        raise InstrumentError(f"field ex_coupon_days: the ex period runs from the record "
                              f"date, so it must equal record_lag ({lag}), got {ex}")
    issuer = _field(row, "issuer_account", None)
    if issuer is not None and (isinstance(issuer, bool) or not isinstance(issuer, int)
                               or not 0 < issuer < 2**63):
        raise InstrumentError(f"field issuer_account: must be a positive account id, "
                              f"got {issuer!r}")
    last = _date_field(row, "last_trading_date") if "last_trading_date" in row else None
    return {"last_trading_date": last, "record_lag": lag, "ex_coupon_days": ex,
            "issuer_account": issuer}


def _fees_field(row: dict, cash: dict) -> FeeSchedule | None:
    if "fees" not in row:
        return None
    decimals = _int_field(row, "cash_decimals", 0, 18, cash.get("decimals", DEFAULT_CASH_DECIMALS))
    try:
        return parse_fees(row["fees"], decimals)
    except FeeError as exc:
        raise InstrumentError(f"field fees: {exc}") from None


def _compliance_field(row: dict, cash: dict, token_decimals: int) -> ComplianceRules | None:
    if "compliance" not in row:
        return None
    decimals = _int_field(row, "cash_decimals", 0, 18, cash.get("decimals", DEFAULT_CASH_DECIMALS))
    try:
        return parse_compliance(row["compliance"], token_decimals, decimals)
    except ComplianceError as exc:
        raise InstrumentError(f"field compliance: {exc}") from None


def _call_field(row: dict) -> CallTerms:
    if "call_auction" not in row:
        return DEFAULT_CALL_TERMS
    try:
        return parse_call_terms(row["call_auction"])
    except CallTermsError as exc:
        raise InstrumentError(f"field call_auction: {exc}") from None


def _choice(row: dict, key: str, choices: tuple[str, ...]) -> str:
    v = _field(row, key, choices[0])
    if v not in choices:
        raise InstrumentError(f"field {key}: must be one of {choices}, got {v!r}")
    return v


def _conventions(row: dict, kind: str) -> dict:
    """The market-convention fields of a row (calendar, rounding, schedule, yields)."""
    out: dict = {"rounding": _choice(row, "rounding", ROUNDING_MODES)}
    if "calendar" in row:
        try:
            out["calendar"] = load_calendar(_str_field(row, "calendar")).name
        except CalendarError as exc:
            raise InstrumentError(f"field calendar: {exc}") from None
    if kind != "commodity":
        out["business_day_rule"] = _choice(row, "business_day_rule", BUSINESS_DAY_RULES)
    if kind == "bond":
        for key in ("first_coupon", "penultimate_coupon"):
            if key in row:
                out[key] = _date_field(row, key)
        eom = _field(row, "end_of_month", True)
        if not isinstance(eom, bool):
            raise InstrumentError(f"field end_of_month: must be true or false, got {eom!r}")
        out["end_of_month"] = eom
        out["last_period_yield"] = _choice(row, "last_period_yield", LAST_PERIOD_YIELDS)
    return out


def parse_instrument(row: dict, cash: dict) -> Instrument:
    """One ``[[instrument]]`` table (``cash``: the ``[cash]`` table) as a checked
    Instrument; InstrumentError saying which field is wrong."""
    try:
        return _parse(row, cash)
    except InstrumentError:
        raise
    except (TypeError, ValueError) as exc:
        raise InstrumentError(str(exc)) from exc


def _parse(row: dict, cash: dict) -> Instrument:
    """One ``[[instrument]]`` table as a checked Instrument."""
    kind = _field(row, "kind")
    if kind not in KINDS:
        raise InstrumentError(f"field kind: must be one of {KINDS}, got {kind!r}")
    extra = set(row) - _FIELDS[kind]
    if extra:
        known = set().union(*_FIELDS.values())
        bad = sorted(extra)
        why = "does not apply to a " + kind if set(bad) <= known else "is unknown"
        raise InstrumentError(f"field {bad[0]} {why}")
    symbol = _field(row, "symbol")
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        raise InstrumentError(f"field symbol: must be 1-12 capital letters/digits starting "
                              f"with a letter, got {symbol!r}")
    isin = _field(row, "isin")
    if not isin_is_valid(isin):
        raise InstrumentError(f"field isin: {isin!r} is malformed or fails its check digit")
    elig = _field(row, "eligibility")
    if (not isinstance(elig, list) or not elig
            or not all(isinstance(e, str) and e in ELIGIBILITIES for e in elig)):
        raise InstrumentError(f"field eligibility: must be a non-empty list from "
                              f"{ELIGIBILITIES}, got {elig!r}")
    decimals = _int_field(row, "token_decimals", 0, 18)
    debt = kind != "commodity"
    conventions = _YIELD_CONVENTIONS.get(kind, (None,))
    convention = _field(row, "yield_convention", conventions[0])
    if convention not in conventions:
        raise InstrumentError(f"field yield_convention: must be one of {conventions} "
                              f"for a {kind}, got {convention!r}")
    day_count = "ACT/365F"
    if debt:
        try:
            day_count = canonical_day_count(
                _str_field(row, "day_count", "ACT/ACT ICMA" if kind == "bond" else "ACT/365F"))
        except ValueError as exc:
            raise InstrumentError(f"field day_count: {exc}") from None
        if kind == "tbill" and day_count not in ("ACT/365F", "ACT/360"):
            raise InstrumentError(f"field day_count: a bill's is ACT/365F or ACT/360, "
                                  f"got {day_count}")
    inst = Instrument(
        symbol=symbol, isin=isin, name=_str_field(row, "name", symbol), kind=kind,
        token_decimals=decimals, tick_size=_dec_field(row, "tick_size", positive=True),
        reference_price=_dec_field(row, "reference_price", positive=True),
        band_pct=_dec_field(row, "band_pct", positive=True),
        min_order_qty=_dec_field(row, "min_order_qty", str(_scaled(1, -decimals)),
                                 positive=True),
        eligibility=frozenset(elig),
        cash_token=_str_field(row, "cash_token", cash.get("token", DEFAULT_CASH_TOKEN)),
        cash_decimals=_int_field(row, "cash_decimals", 0, 18,
                                 cash.get("decimals", DEFAULT_CASH_DECIMALS)),
        face_value=_dec_field(row, "face_value", positive=True) if debt else None,
        issue_date=_date_field(row, "issue_date") if debt else None,
        maturity=_date_field(row, "maturity") if debt else None,
        coupon_rate=_dec_field(row, "coupon_rate") if kind == "bond" else Decimal(0),
        coupon_frequency=(_int_field(row, "coupon_frequency", 1, 12) if kind == "bond" else 0),
        day_count=day_count, yield_convention=convention,
        settlement_lag=_int_field(row, "settlement_lag", 0, 30, 0),
        **_conventions(row, kind),
        **(_life_fields(row) if debt else {}),
        fees=_fees_field(row, cash),
        compliance=_compliance_field(row, cash, decimals),
        call_auction=_call_field(row),
    )
    if inst.band_pct >= 100:
        raise InstrumentError(f"field band_pct: must be below 100, got {inst.band_pct}")
    if debt:
        _, issue, maturity = inst.debt_terms()
        if not issue < maturity:
            raise InstrumentError(f"field maturity: {maturity} must be after issue_date "
                                  f"{issue}")
        last = inst.last_trading_date
        if last is not None and not issue <= last < maturity:
            raise InstrumentError(f"field last_trading_date: {last} must be in "
                                  f"{issue}..{maturity} (before maturity)")
    if kind == "bond":
        if inst.coupon_frequency not in (1, 2, 4, 12):
            raise InstrumentError(f"field coupon_frequency: must be 1, 2, 4 or 12, "
                                  f"got {inst.coupon_frequency}")
        if inst.coupon_rate >= 1:
            raise InstrumentError(f"field coupon_rate: a fraction (0.045 for 4.5%), "
                                  f"got {inst.coupon_rate}")
        try:
            bond_of(inst)             # first/penultimate coupon dates in order, on cycle
        except ValueError as exc:
            raise InstrumentError(f"field {str(exc).split()[0]}: {exc}") from None
    for key, check in (("reference_price", lambda: inst.reference_ticks()),
                       ("min_order_qty", lambda: inst.min_order_lots)):
        try:
            check()
        except InstrumentError as exc:
            raise InstrumentError(f"field {key}: {exc}") from None
    return inst

"""An instrument's call-auction settings (its ``call_auction`` table in the instruments
TOML): the volatility interruption's bands, the call's minimum duration and random end,
the uncross's market-pressure limit and the closing price's VWAP window.

The defaults are Xetra's figures the engine used before they were terms (Deutsche Börse,
"Xetra Market Model": a volatility interruption of at least 2 minutes, an extended range
beyond the static one, a random end of up to 30 s where the venue sets one; LSE rule
2110-style closing VWAP of the last 5 minutes). Percentages are decimal strings (never a
TOML float), durations whole seconds.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal

from matching.toml_terms import decimal_term

__all__ = ["CallTerms", "CallTermsError", "DEFAULT_CALL_TERMS", "parse_call_terms"]

_NS = 1_000_000_000
#: Longest duration a term may set (a day): more is a typo.
_MAX_SECONDS = 86_400


class CallTermsError(ValueError):
    """A ``call_auction`` table in the instruments file is malformed."""


@dataclass(frozen=True)
class CallTerms:
    """One instrument's call settings; percentages of a reference price, durations in s."""
    dynamic_band_pct: Decimal = Decimal("2")       # around the last trade
    static_band_pct: Decimal = Decimal("5")        # around the last auction price
    extended_band_pct: Decimal = Decimal("10")     # a volatility call ending outside: extended
    pressure_limit_pct: Decimal = Decimal("1")     # the uncross's market-pressure cap/floor
    min_call_seconds: int = 120                    # a volatility call's minimum duration
    random_end_seconds: int = 0                    # 0: no random end of open/resume/close
    closing_vwap_seconds: int = 300                # the closing price's VWAP window

    @property
    def min_call_ns(self) -> int:
        return self.min_call_seconds * _NS

    @property
    def random_end_ns(self) -> int:
        return self.random_end_seconds * _NS

    @property
    def closing_vwap_ns(self) -> int:
        return self.closing_vwap_seconds * _NS

    def as_strings(self) -> dict[str, str]:
        """Every term as a string, decimals normalized (reference data, definitions)."""
        return {f.name: (format(v.normalize(), "f") if isinstance(v, Decimal) else str(v))
                for f in fields(self) for v in (getattr(self, f.name),)}

    def definition(self) -> str:
        """A stable one-line form for ``venue.json``; "" for the defaults, so a venue
        founded before these were terms compares equal."""
        if self == DEFAULT_CALL_TERMS:
            return ""
        return " ".join(f"{k}={v}" for k, v in self.as_strings().items())


DEFAULT_CALL_TERMS = CallTerms()
_PCT_KEYS = ("dynamic_band_pct", "static_band_pct", "extended_band_pct", "pressure_limit_pct")
#: Seconds keys and their smallest value (a VWAP window of 0 s would average nothing).
_SECONDS_KEYS = {"min_call_seconds": 0, "random_end_seconds": 0, "closing_vwap_seconds": 1}


def _pct(value, key: str, allow_zero: bool) -> Decimal:
    """A percentage as a decimal string, below 100 (and above 0 unless ``allow_zero``)."""
    d = decimal_term(value, f"{key}:", CallTermsError, "2.5")
    if d < 0 or d >= 100 or (d == 0 and not allow_zero):
        low = "0" if allow_zero else "above 0"
        raise CallTermsError(f"{key}: a percentage from {low} to below 100, got {value!r}")
    return d


def _seconds(value, key: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= _MAX_SECONDS:
        raise CallTermsError(f"{key}: whole seconds in {lo}..{_MAX_SECONDS}, got {value!r}")
    return value


def parse_call_terms(row) -> CallTerms:
    """An instrument's ``call_auction`` table -> its terms, each key defaulting to
    ``DEFAULT_CALL_TERMS``'s; CallTermsError (one line) for a bad or unknown key.

    >>> parse_call_terms({"dynamic_band_pct": "3", "min_call_seconds": 60}).min_call_ns
    60000000000
    """
    if not isinstance(row, dict):
        raise CallTermsError(f"call_auction must be a table, got {row!r}")
    extra = set(row) - set(_PCT_KEYS) - set(_SECONDS_KEYS)
    if extra:
        raise CallTermsError(f"call_auction: unknown key {sorted(extra)[0]!r}")
    values: dict = {}
    for key in _PCT_KEYS:
        if key in row:
            values[key] = _pct(row[key], key, allow_zero=key == "pressure_limit_pct")
    for key, lo in _SECONDS_KEYS.items():
        if key in row:
            values[key] = _seconds(row[key], key, lo)
    terms = CallTerms(**values)
    if terms.extended_band_pct < terms.static_band_pct:
        raise CallTermsError(f"extended_band_pct: the wider band must be at least "
                             f"static_band_pct ({terms.static_band_pct}), got "
                             f"{terms.extended_band_pct}")
    return terms

"""An instrument's compliance terms: who may buy how much of it, and when holders may sell.

The terms are part of the instrument's definition (``compliance = { ... }`` in the
instruments TOML), so a venue restarted with other terms is refused like any changed
definition (``feeds.venue``). Quantities are parsed exactly into lots and cash into the
cash token's minor units; floats are refused. The engine's checks are
``matching.compliance``.

>>> r = parse_compliance({"max_balance": "1000", "lockup_until": "2026-12-01"}, 4, 6)
>>> (r.max_balance, r.lockup_until.isoformat())
(10000000, '2026-12-01')
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from matching.toml_terms import date_term, decimal_term

__all__ = ["ComplianceRules", "ComplianceError", "parse_compliance", "COMPLIANCE_KEYS"]

#: ISO 3166-1 alpha-2 or alpha-3, as accounts carry it (``open_account``, accounts file).
_COUNTRY = re.compile(r"[A-Z]{2,3}")
_TOKENS = ("max_balance", "retail_max_position")
_CASH = ("retail_max_order_notional", "retail_daily_buy_limit")
COMPLIANCE_KEYS = frozenset({*_TOKENS, *_CASH, "max_holders", "countries_allow",
                             "countries_deny", "lockup_until"})


class ComplianceError(ValueError):
    """A compliance table in the instruments file is malformed."""


@dataclass(frozen=True)
class ComplianceRules:
    """One instrument's rules; None or empty: the rule is off. Token figures are lots,
    cash figures minor units of the cash token, countries sorted ISO 3166-1 codes."""
    max_balance: int | None = None                 # tokens held + open buys, any account
    max_holders: int | None = None                 # accounts holding or buying
    countries_allow: tuple[str, ...] = ()          # only these may buy
    countries_deny: tuple[str, ...] = ()           # these may not buy
    lockup_until: date | None = None               # no sell before this trade date
    retail_max_order_notional: int | None = None   # one order's clean consideration
    retail_max_position: int | None = None         # tokens held + open buys, retail
    retail_daily_buy_limit: int | None = None      # bought today + open buys, retail

    @property
    def retail(self) -> bool:
        """Whether any retail limit is set (the checks then ask the account's class)."""
        return (self.retail_max_order_notional is not None
                or self.retail_max_position is not None
                or self.retail_daily_buy_limit is not None)


def _exact(value, places: int, key: str) -> int:
    """A positive decimal string as an integer count of ``10**-places`` units, exactly."""
    d = decimal_term(value, key, ComplianceError, "1000")
    if d <= 0:
        raise ComplianceError(f"{key} must be positive, got {value}")
    scaled = d.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise ComplianceError(f"{key} {value} is finer than 1e-{places}")
    return int(scaled)


def _countries(value, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
            isinstance(c, str) and _COUNTRY.fullmatch(c) for c in value):
        raise ComplianceError(f"{key} must be a list of ISO 3166-1 codes like \"DE\" or "
                              f"\"DEU\", got {value!r}")
    return tuple(sorted(set(value)))


def _date(value, key: str) -> date:
    return date_term(value, key, ComplianceError)


def parse_compliance(table, token_decimals: int, cash_decimals: int) -> ComplianceRules:
    """A ``compliance`` table as checked rules (``ComplianceError`` names the bad key)."""
    if not isinstance(table, dict):
        raise ComplianceError(f"must be a table, got {table!r}")
    unknown = set(table) - COMPLIANCE_KEYS
    if unknown:
        raise ComplianceError(f"unknown key(s) {sorted(unknown)}: one of "
                              f"{sorted(COMPLIANCE_KEYS)}")
    out: dict = {}
    for key in _TOKENS:
        if key in table:
            out[key] = _exact(table[key], token_decimals, key)
    for key in _CASH:
        if key in table:
            out[key] = _exact(table[key], cash_decimals, key)
    if "max_holders" in table:
        n = table["max_holders"]
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ComplianceError(f"max_holders must be a positive integer, got {n!r}")
        out["max_holders"] = n
    for key in ("countries_allow", "countries_deny"):
        if key in table:
            out[key] = _countries(table[key], key)
    if set(out.get("countries_allow", ())) & set(out.get("countries_deny", ())):
        raise ComplianceError("a country is both allowed and denied")
    if "lockup_until" in table:
        out["lockup_until"] = _date(table["lockup_until"], "lockup_until")
    return ComplianceRules(**out)

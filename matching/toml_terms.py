"""The shapes every instrument term in a TOML file takes, checked one way: decimals are
strings (a TOML float such as 0.1 is not exact, so it is refused, never rounded) and dates
are TOML dates or ISO strings. Each caller names the term (``label``) and its own error."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal, InvalidOperation

__all__ = ["decimal_term", "date_term"]


def decimal_term(value, label: str, error: type[Exception], example: str = "1") -> Decimal:
    """``value`` as a finite Decimal from a decimal string; ``error`` otherwise."""
    if not isinstance(value, str):
        raise error(f"{label} must be a decimal string like \"{example}\" (never a TOML "
                    f"float), got {value!r}")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise error(f"{label} not a decimal: {value!r}") from None
    if not d.is_finite():
        raise error(f"{label} not a decimal: {value!r}")
    return d


def date_term(value, label: str, error: type[Exception]) -> date:
    """``value`` as a date: a TOML date or an ISO string (not a date-time)."""
    if isinstance(value, str):
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise error(f"{label} {value!r} is not an ISO date") from None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise error(f"{label} must be a date like 2026-12-01, got {value!r}")
    return value

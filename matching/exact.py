"""Exact numbers for fixed-income arithmetic: no binary float ever enters.

Money and day-count fractions are ``Fraction``s; rates that need non-integer powers are
Decimals of ``PRECISION`` significant digits, computed in a local half-even context.
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

__all__ = ["PRECISION", "ctx", "exact", "dec"]

PRECISION = 40


def ctx():
    """A decimal context of PRECISION significant digits, half-even, for one computation."""
    return localcontext(prec=PRECISION, rounding=ROUND_HALF_EVEN)


def exact(x, what: str = "value") -> Fraction:
    """A Decimal, int, str or Fraction as an exact Fraction; floats and bools refused."""
    if isinstance(x, float) or isinstance(x, bool):
        raise TypeError(f"{what} must be a Decimal, int, decimal string or Fraction, "
                        f"not {type(x).__name__} ({x!r})")
    if isinstance(x, str):
        x = Decimal(x)
    if isinstance(x, Decimal) and not x.is_finite():
        raise ValueError(f"{what} {x} is not finite")
    if not isinstance(x, (Decimal, int, Fraction)):
        raise TypeError(f"{what} must be a Decimal, int, decimal string or Fraction, "
                        f"not {type(x).__name__}")
    return Fraction(x)


def dec(q: Fraction) -> Decimal:
    """A Fraction as a Decimal of PRECISION digits (exact when it terminates that soon)."""
    with ctx():
        return Decimal(q.numerator) / Decimal(q.denominator)

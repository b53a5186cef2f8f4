"""Hostile wire inputs shared by the fuzz tests and the fuzz campaign (reliability/fuzz.py):
JSON with tokens no encoder would write (1e400, NaN, 2**64, deep nesting) and strings that
look like numbers or identifiers but are not."""
from __future__ import annotations

import json

__all__ = ["Raw", "dump", "NASTY_NUMBERS", "NASTY_STRINGS"]


class Raw(str):
    """A JSON token put in the payload as is (1e400, NaN, 18446744073709551616, ...)."""


def dump(doc, ensure_ascii: bool = True) -> bytes:
    """JSON bytes of ``doc`` with every ``Raw`` value spliced in unquoted."""
    raws: list[str] = []

    def walk(v):
        if isinstance(v, Raw):
            raws.append(v)
            return f"@@RAW{len(raws) - 1}@@"
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    text = json.dumps(walk(doc), ensure_ascii=ensure_ascii)
    for i, raw in enumerate(raws):
        text = text.replace(f'"@@RAW{i}@@"', raw)
    return text.encode("utf-8", "surrogatepass")


NASTY_NUMBERS = [
    "1e400", "-1e400", "1E+999999", "1e-999999", "NaN", "-NaN", "Infinity", "-Infinity",
    "-0", "-0.0", "0", "0.0", "1.0", "1.5e3", "1e2", "-1", str(2**63 - 1), str(2**63),
    str(2**64), str(2**64 + 1), str(-2**63), str(-2**63 - 1), "9" * 400, "0x10", "01",
    "+1", ".5", "1.", "true", "false", "null", "[]", "{}", '[1,[2,[3]]]', '{"a":{"b":1}}',
]
NASTY_STRINGS = [
    "", " ", "NaN", "nan", "sNaN", "Infinity", "-Infinity", "inf", "-0", "+1", "-1",
    "1E+999999", "1e400", "1e2", "0x10", "1_000", "\u0661\u0662\u0663", "1,5", "1.0.0",
    " 1", "1 ", "\u202e99.270", "99.270\u0000", "\u0000", "\U0001f4b8", "\ud800", "\udfff",
    "9" * 16, "9" * 15, "0" * 15, "1." + "0" * 12, "1." + "0" * 13, "99.270", "-99.270",
    "99,270", "\t99.270", "99.270\n", "\uff19\uff19", "x" * 5000,
]

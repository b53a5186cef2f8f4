"""``set_compliance``: the operator replaces an instrument's compliance rules while the
venue runs (an ``AccountInput`` with ``symbol`` and the ``compliance`` table, the
instruments TOML's keys; an empty table turns every rule off).

Journaled and replayed like every account input: ``check`` refuses a bad table whole
(INVALID_FIELD, nothing journaled), ``apply`` cannot fail. The rules set this way are
engine state (``matching.compliance``: snapshots, the state hash); the instrument's
definition (``venue.json``) keeps the founding terms, and replay reapplies the change.
Orders already resting are not re-checked: the new rules apply to the next entry or
replace that increases an order.
"""
from __future__ import annotations

from matching.compliance import install, wire_fills
from matching.compliance_rules import ComplianceError, ComplianceRules, parse_compliance
from matching.errors import EngineReject, Rejection
from matching.messages import AccountInput

__all__ = ["COMPLIANCE_ACTION", "check_set_compliance", "apply_set_compliance",
           "parse_table"]

COMPLIANCE_ACTION = "set_compliance"


def parse_table(engine, symbol: str, table: dict) -> ComplianceRules:
    """``table``'s rules in ``symbol``'s units; ``ComplianceError`` if malformed."""
    inst = engine.instruments[symbol]
    return parse_compliance(table, inst.token_decimals, inst.cash_decimals)


def check_set_compliance(engine, m: AccountInput) -> None:
    """A listed instrument and a well-formed table, else a ``Rejection``."""
    if m.symbol not in engine.instruments:
        raise Rejection(EngineReject.UNKNOWN_SYMBOL.value, f"unknown instrument {m.symbol!r}")
    try:
        parse_table(engine, m.symbol, m.compliance)
    except ComplianceError as exc:
        raise Rejection(EngineReject.INVALID_FIELD.value, f"compliance: {exc}") from None


def apply_set_compliance(engine, m: AccountInput) -> None:
    """Replace ``m.symbol``'s rules (checked by ``check_set_compliance``)."""
    install(engine).set_rules(m.symbol, parse_table(engine, m.symbol, m.compliance),
                              m.compliance)
    wire_fills(engine)


def describe_rules(table: dict) -> str:
    """``max_balance=1000, max_holders=3`` (``all rules off`` for an empty table)."""
    def text(v) -> str:
        return ",".join(v) if isinstance(v, list) else str(v)
    return ", ".join(f"{k}={text(table[k])}" for k in sorted(table)) or "all rules off"

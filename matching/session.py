"""Trading states per instrument and the table of session actions that move between them.

The table (``TRANSITIONS``) is the whole rule: an action is legal only from the states it
lists; a repeat (``halt`` of a halted book) is a legal no-op. ``resume`` only leaves a
halt: a closed or pre-opening book opens with ``open``, so a resume can never reopen a
book the close ended. A venue-wide action applies to every instrument it is legal for
and is refused only if it is legal for none (``docs/engine-rules.md``).
"""
from __future__ import annotations

from collections.abc import Iterable
from enum import Enum
from typing import Literal

from matching.errors import EngineReject, Rejection

__all__ = ["TradingState", "TradingStateName", "TradingSession", "TRANSITIONS",
           "SESSION_ACTIONS", "ADMIN_ACTIONS"]

#: A trading state's wire name (TradingState's values).
TradingStateName = Literal["pre_open", "continuous", "halted", "closed", "matured"]


class TradingState(str, Enum):
    PRE_OPEN = "pre_open"
    CONTINUOUS = "continuous"
    HALTED = "halted"
    CLOSED = "closed"
    MATURED = "matured"


_PRE, _CONT, _HALT, _CLOSED, _MATURED = (
    TradingState.PRE_OPEN, TradingState.CONTINUOUS, TradingState.HALTED, TradingState.CLOSED,
    TradingState.MATURED)

#: action -> (the states it is legal from, the state it leaves). ``pre_open`` is legal
#: from continuous too: a venue started mid-timetable pre-opens from its initial state.
TRANSITIONS: dict[str, tuple[frozenset[TradingState], TradingState]] = {
    "pre_open": (frozenset({_CLOSED, _PRE, _CONT}), _PRE),
    "open": (frozenset({_PRE, _CLOSED, _CONT}), _CONT),
    "halt": (frozenset({_CONT, _PRE, _HALT}), _HALT),
    "resume": (frozenset({_HALT, _CONT}), _CONT),
    "close": (frozenset({_CONT, _HALT, _PRE, _CLOSED}), _CLOSED),
    # The lifecycle's ``mature`` input (matching.corporate), never an operator's session
    # action: no action leaves matured, so it is for good.
    "mature": (frozenset({_CONT, _HALT, _PRE, _CLOSED}), _MATURED),
}

#: Operator actions on an instrument's trading state (``symbol`` empty: every instrument).
SESSION_ACTIONS = tuple(a for a in TRANSITIONS if a != "mature")
#: Every admin input: the session actions, plus the gateway's own expiry timer,
#: cancel-on-disconnect, the static band's reference and the timed end of a call
#: (matching/call_end.py).
ADMIN_ACTIONS = (*SESSION_ACTIONS, "expire", "cancel_broker", "set_reference", "end_call")
_MARKET_NOT_OPEN = EngineReject.MARKET_NOT_OPEN.value
_INSTRUMENT_MATURED = EngineReject.INSTRUMENT_MATURED.value


class TradingSession:
    """Each instrument's trading state, the operator's reason, and the input that set it."""

    def __init__(self, symbols: Iterable[str]):
        symbols = tuple(symbols)
        self.state = dict.fromkeys(symbols, _CONT)
        self.reason = dict.fromkeys(symbols, "")
        self.seq = dict.fromkeys(symbols, 0)

    def require_open(self, symbol: str) -> None:
        """Raise MARKET_NOT_OPEN, with the operator's reason, unless ``symbol`` is
        continuous or pre-opening (a call: orders rest for the uncross); new orders and
        replaces need it, cancels do not."""
        state = self.state[symbol]
        if state is not _CONT and state is not _PRE:
            why = self.reason[symbol]
            if state == _MATURED:
                raise Rejection(_INSTRUMENT_MATURED, f"{symbol} has matured: no new orders")
            raise Rejection(_MARKET_NOT_OPEN, f"{symbol} is {state.value}"
                            f"{f' ({why})' if why else ''}: no new orders")

    def legal_for(self, action: str, symbols: Iterable[str]) -> list[str]:
        """The instruments among ``symbols`` that ``action`` may move now."""
        allowed = TRANSITIONS[action][0]
        return [s for s in symbols if self.state[s] in allowed]

    def check(self, action: str, symbol: str) -> None:
        """Raise ILLEGAL_TRANSITION if ``action`` is legal for none of its instruments
        (``symbol`` empty: every instrument)."""
        symbols = [symbol] if symbol else list(self.state)
        if action not in TRANSITIONS or self.legal_for(action, symbols):
            return
        allowed, _ = TRANSITIONS[action]
        states = sorted({self.state[s].value for s in symbols})
        raise Rejection(EngineReject.ILLEGAL_TRANSITION.value,
                        f"{action} {symbol or 'every instrument'}: the book is "
                        f"{'/'.join(states)}; {action} needs "
                        f"{' or '.join(sorted(s.value for s in allowed))}")

    def apply(self, action: str, symbols: Iterable[str], reason: str, seq: int) -> list[str]:
        """Move every instrument of ``symbols`` that ``action`` is legal for; returns them."""
        moved = self.legal_for(action, symbols)
        after = TRANSITIONS[action][1]
        for s in moved:
            self.state[s] = after
            self.reason[s] = reason
            self.seq[s] = seq
        return moved

    def snapshot(self) -> dict:
        return {"state": {s: st.value for s, st in self.state.items()},
                "state_reason": dict(self.reason), "state_seq": dict(self.seq)}

    def restore(self, snap: dict) -> None:
        self.state.update({s: TradingState(v) for s, v in snap["state"].items()})
        self.reason.update(snap.get("state_reason", {}))
        self.seq.update(snap.get("state_seq", {}))

"""The golden engine stream: recorded inputs replayed through an engine, answer by answer.

``tests/data/golden/record.py`` records the inputs; ``run_stream`` turns them into the
answers the test compares (one line per input, plus the state hash every ``HASH_EVERY``
inputs and after the last).
"""
from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import msgspec

from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import Ledger
from matching.messages import NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest

GOLDEN = Path(__file__).resolve().parents[1] / "tests" / "data" / "golden"
HASH_EVERY = 250
#: A short resend window, so the stream also forgets outcomes (then a reused ClOrdID of a
#: live order is a duplicate, not a resend).
RESEND_WINDOW = 400
_MSG = msgspec.json.Decoder(NewOrderSingle | OrderCancelRequest | OrderCancelReplaceRequest)


class _Clock:
    """The stream's clock: the time of the input being applied."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def registry() -> Registry:
    reg = Registry()
    reg.load(GOLDEN / "instruments.toml")
    return reg


def new_engine(journal=None) -> tuple[Engine, _Clock]:
    ledger = Ledger()
    ledger.load(GOLDEN / "accounts.toml")
    clock = _Clock()
    return Engine(registry(), ledger, clock=clock, journal=journal,
                  resend_window=RESEND_WINDOW), clock


def load_inputs() -> list[dict]:
    with open(GOLDEN / "inputs.jsonl") as f:
        return [json.loads(line) for line in f]


def load_expected() -> list[dict]:
    with gzip.open(GOLDEN / "expected.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


def apply(engine: Engine, clock: _Clock, rec: dict):
    """One recorded engine call; returns its Outcome."""
    clock.now = now = rec["now"]
    kind = rec["kind"]
    if kind == "submit":
        msg = _MSG.decode(json.dumps(rec["msg"]))
        return engine.submit(rec["broker"], msg, now=now)
    if kind == "admin":
        return engine.admin(rec["action"], rec["symbol"], rec["reason"], broker=rec["broker"],
                            now=now)
    if kind == "refuse":
        return engine.refuse(rec["broker"], rec["reason"], rec["text"], rec["cl_ord_id"],
                             rec["symbol"])
    raise ValueError(f"unknown golden record kind {kind!r}")


def answer(out) -> dict:
    """An Outcome as plain JSON data: what the venue said to whom."""
    return {
        "seq": out.seq, "replayed": out.replayed,
        "reports": [[b, msgspec.to_builtins(r)] for b, r in out.reports],
        "trades": [msgspec.to_builtins(t) for t in out.trades],
        "levels": [msgspec.to_builtins(c) for c in out.levels],
    }


def answers(engine: Engine, clock: _Clock, inputs: Iterable[dict],
            start: int = 0) -> Iterator[dict]:
    """Apply ``inputs`` (numbered from ``start``), yielding each answer and the periodic
    state hashes."""
    i = start
    for i, rec in enumerate(inputs, start):
        yield answer(apply(engine, clock, rec))
        if (i + 1) % HASH_EVERY == 0:
            yield {"after": i + 1, "state_hash": engine.state_hash()}
    yield {"after": i + 1, "state_hash": engine.state_hash(), "final": True}


def run_stream(inputs: list[dict]) -> list[dict]:
    engine, clock = new_engine()
    return list(answers(engine, clock, inputs))

"""Records the golden engine stream: a seeded mix of every input the engine takes.

    python tests/data/golden/record.py            # rewrites inputs.jsonl and expected.jsonl.gz

``inputs.jsonl`` holds one engine call per line (``submit``, ``admin`` or ``refuse``, with the
time it happens at); ``expected.jsonl.gz`` holds what the engine answered to each (reports,
trades, level changes) and the state hash every 250 inputs and at the end. The test
``test_golden_replay`` replays the inputs and requires every answer and hash to be equal,
so a refactoring that changes what the venue does fails it. Re-record only when a
behaviour change is intended, and say so in the commit.
"""
from __future__ import annotations

import gzip
import json
import random
import sys
from pathlib import Path

import msgspec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))

from matching.messages import (  # noqa: E402
    NewOrderSingle,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
)

SEED = 20261203
N_INPUTS = 4000
START_NS = 1_795_687_200 * 10**9          # 2026-11-26 10:00 UTC, inside every instrument's life
HASH_EVERY = 250
SYMBOLS = ("TB3M", "BD5Y", "GOLD")
#: broker -> its accounts (accounts.toml gives their cash, tokens and whitelists).
BROKERS = {"alpha": (1001, 1002, 1003), "beta": (2001, 2002), "mm": (9001,)}
REFS = {"TB3M": 99_270, "BD5Y": 100_190, "GOLD": 11_000}        # reference price in ticks
TICK = {"TB3M": "0.001", "BD5Y": "0.001", "GOLD": "0.01"}


def _doc(msg) -> dict:
    """A message as recorded: its JSON, without a PossDup flag that is not set."""
    doc = json.loads(msgspec.json.encode(msg))
    if not doc.get("poss_dup"):
        doc.pop("poss_dup", None)
    return doc


def _price(symbol: str, ticks: int) -> str:
    places = len(TICK[symbol]) - 2
    return f"{ticks // 10**places}.{ticks % 10**places:0{places}d}"


class _Recorder:
    """Draws inputs from a seeded generator, remembering ClOrdIDs so cancels, replaces and
    resends name real orders."""

    def __init__(self, seed: int):
        self.rnd = random.Random(seed)
        # Choices added later draw from their own generator, so the stream's other inputs
        # stayed the same draws (a re-record's diff shows only what the engine changed).
        self.extra = random.Random(seed + 1)
        self.msgs: dict[tuple[str, str], dict] = {}         # what each ClOrdID first sent
        self.now = START_NS
        self.n = 0
        self.sent: list[tuple[str, str, str]] = []        # (broker, cl_ord_id, symbol)
        self.gtd: list[int] = []
        # Trading state per symbol, so admin inputs are legal transitions.
        self.state = dict.fromkeys(SYMBOLS, "continuous")

    def _id(self) -> str:
        self.n += 1
        return f"g{self.n}"

    def next(self) -> dict:
        rnd = self.rnd
        self.now += rnd.randint(1, 40) * 1_000_000
        r = rnd.random()
        shut = [s for s in SYMBOLS if self.state[s] != "continuous"]
        if shut and r < 0.04:
            return self._admin(rnd.choice(shut))
        if r < 0.50:
            return self._new_limit()
        if r < 0.55:
            return self._new_market()
        if r < 0.68:
            return self._cancel()
        if r < 0.78:
            return self._replace()
        if r < 0.81:
            return self._resend()
        if r < 0.83:
            return self._admin(rnd.choice(SYMBOLS))
        if r < 0.86:
            return self._refuse()
        return self._bad()

    def _submit(self, broker: str, msg) -> dict:
        cl = msg.cl_ord_id
        self.sent.append((broker, cl, msg.symbol))
        doc = _doc(msg)
        self.msgs.setdefault((broker, cl), doc)
        return {"kind": "submit", "broker": broker, "now": self.now, "msg": doc}

    def _order(self, **kw) -> tuple[str, NewOrderSingle]:
        rnd = self.rnd
        broker = kw.pop("broker", None) or rnd.choice(list(BROKERS))
        symbol = kw.pop("symbol", None) or rnd.choice(SYMBOLS)
        account = kw.pop("account", None) or rnd.choice(BROKERS[broker])
        side = kw.pop("side", None) or rnd.choice(("buy", "sell"))
        qty = kw.pop("qty", None) or f"{rnd.choice((1, 2, 3, 5, 10, 25))}.{rnd.randint(0, 99):02d}"
        fields = {"cl_ord_id": self._id(), "account": account, "symbol": symbol,
                  "side": side, "qty": qty}
        fields.update(kw)
        return broker, NewOrderSingle(**fields)

    def _new_limit(self) -> dict:
        rnd = self.rnd
        symbol = rnd.choice(SYMBOLS)
        side = rnd.choice(("buy", "sell"))
        # Around the reference, buys a little below and sells a little above: they cross often.
        off = rnd.randint(-12, 12) + (-3 if side == "buy" else 3)
        tif = rnd.choices(("day", "gtc", "ioc", "fok", "gtd"), (40, 30, 12, 8, 10))[0]
        extra: dict = {"time_in_force": tif}
        if tif == "gtd":
            extra["expire_time"] = self.now + rnd.randint(50, 3000) * 1_000_000
        if rnd.random() < 0.08 and tif in ("day", "gtc"):
            extra["post_only"] = True
        if rnd.random() < 0.08 and tif in ("ioc", "fok", "day"):
            extra["min_qty"] = "1"
        if rnd.random() < 0.3:
            extra["stp"] = rnd.choice(("none", "cancel_resting", "cancel_incoming",
                                       "cancel_both", "decrement_and_cancel"))
        broker, msg = self._order(symbol=symbol, side=side,
                                  price=_price(symbol, REFS[symbol] + off), **extra)
        return self._submit(broker, msg)

    def _new_market(self) -> dict:
        tif = self.rnd.choice(("ioc", "fok", "day"))
        broker, msg = self._order(ord_type="market", time_in_force=tif)
        return self._submit(broker, msg)

    def _pick(self) -> tuple[str, str, str]:
        if not self.sent:
            return "alpha", "none", "TB3M"
        window = 30 if self.rnd.random() < 0.7 else 300
        return self.rnd.choice([s for s in self.sent[-window:] if s[2] in REFS] or
                               [("alpha", "none", "TB3M")])

    def _cancel(self) -> dict:
        broker, orig, symbol = self._pick()
        return self._submit(broker, OrderCancelRequest(self._id(), orig, symbol))

    def _replace(self) -> dict:
        rnd = self.rnd
        broker, orig, symbol = self._pick()
        price = _price(symbol, REFS[symbol] + rnd.randint(-10, 10))
        qty = f"{rnd.choice((1, 2, 4, 8, 30))}.{rnd.randint(0, 99):02d}"
        return self._submit(broker, OrderCancelReplaceRequest(self._id(), orig, symbol,
                                                              price, qty))

    def _resend(self) -> dict:
        """A ClOrdID already sent, again: the same message (a client's retry), the same
        flagged PossDup, or another message under it (a new order, or a cancel of another
        order: duplicates), within or past the resend window."""
        old = [s for s in self.sent[:-500] if s[2] in REFS]
        if old and self.rnd.random() < 0.4:
            broker, cl, symbol = self.rnd.choice(old)    # past the resend window
        else:
            broker, cl, symbol = self._pick()
        _, msg = self._order(broker=broker, symbol=symbol, price=_price(symbol, REFS[symbol]))
        msg = msgspec.structs.replace(msg, cl_ord_id=cl)
        doc = _doc(msg)
        first = self.msgs.get((broker, cl))
        k = self.extra.random()
        if first is not None and k < 0.65:
            doc = dict(first, poss_dup=True) if k >= 0.45 else first    # a retry
        elif first is not None and k < 0.75:
            other = self.extra.choice([s for s in self.sent[-30:] if s[0] == broker] or
                                      [(broker, "none", symbol)])
            doc = _doc(OrderCancelRequest(cl, other[1], other[2]))
        return {"kind": "submit", "broker": broker, "now": self.now, "msg": doc}

    def _admin(self, symbol: str) -> dict:
        rnd = self.rnd
        state = self.state[symbol]
        legal = {"continuous": ("halt", "close", "expire", "cancel_broker"),
                 "halted": ("resume", "close"),
                 "closed": ("pre_open", "open"),
                 "pre_open": ("open",)}[state]
        action = rnd.choice(legal)
        after = {"halt": "halted", "close": "closed", "pre_open": "pre_open",
                 "open": "continuous", "resume": "continuous"}
        rec = {"kind": "admin", "action": action, "symbol": symbol,
               "reason": f"golden {action}", "broker": "", "now": self.now}
        if action == "cancel_broker":
            rec.update(symbol="", reason="disconnected", broker=rnd.choice(list(BROKERS)))
        elif action == "expire":
            rec.update(symbol="", reason="")
        elif rnd.random() < 0.15 and action in ("close", "open") and all(
                self.state[s] == state for s in SYMBOLS):
            rec["symbol"] = ""                     # every instrument: a whole-venue close
        if action in after:
            for s in ([symbol] if rec["symbol"] else SYMBOLS):
                self.state[s] = after[action]
        return rec

    def _refuse(self) -> dict:
        rnd = self.rnd
        reason = rnd.choice(("MALFORMED_JSON", "INVALID_FIELD", "MESSAGE_TOO_LARGE"))
        return {"kind": "refuse", "broker": rnd.choice(list(BROKERS)), "reason": reason,
                "text": f"golden {reason.lower()}", "now": self.now,
                "cl_ord_id": rnd.choice((None, self._id())),
                "symbol": rnd.choice((None, "TB3M"))}

    def _bad(self) -> dict:
        """An order that breaks one pre-trade rule."""
        rnd = self.rnd
        kind = rnd.randrange(13)
        sym = rnd.choice(SYMBOLS)
        ref = _price(sym, REFS[sym])
        cases = [
            lambda: self._order(symbol="NOPE", price="1.000"),
            lambda: self._order(broker="alpha", account=2001, symbol=sym, price=ref),
            lambda: self._order(symbol=sym, price=ref + "7"),                # off the tick
            lambda: self._order(symbol=sym, price=_price(sym, REFS[sym] * 2)),  # band
            lambda: self._order(symbol=sym, price=ref, qty="0.001"),         # below minimum
            lambda: self._order(symbol=sym, price=ref, qty="2", min_qty="5"),
            lambda: self._order(symbol=sym),                                  # no price
            lambda: self._order(symbol=sym, price=ref, time_in_force="gtd",
                                expire_time=self.now - 1),
            lambda: self._order(symbol=sym, price=ref, qty="99999999999999"),
            lambda: self._order(broker="alpha", account=1003, symbol=sym, side="buy",
                                price=ref, qty="900"),                        # no cash
            lambda: self._order(broker="beta", account=2002, symbol="GOLD", price="110.00"),
            lambda: self._order(broker="mm", account=9001, symbol=sym, side="sell",
                                price=ref, qty="500000"),                     # no tokens
            lambda: self._order(broker="alpha", account=1002, symbol="BD10Y",
                                price="100.765", qty="1"),                    # institutional
        ]
        broker, msg = cases[kind]()
        if kind == 12 and rnd.random() < 0.5:
            # A duplicate ClOrdID of an earlier order instead.
            b, cl, s = self._pick()
            broker, msg = b, msgspec.structs.replace(msg, cl_ord_id=cl, symbol=s,
                                                     price=_price(s, REFS[s]))
        return self._submit(broker, msg)


def record(n: int = N_INPUTS, seed: int = SEED) -> list[dict]:
    rec = _Recorder(seed)
    return [rec.next() for _ in range(n)]


def main() -> None:
    from testkit.golden import run_stream  # the replayer the test uses
    inputs = record()
    with open(HERE / "inputs.jsonl", "w") as f:
        for line in inputs:
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    expected = run_stream(inputs)
    with gzip.open(HERE / "expected.jsonl.gz", "wt", compresslevel=9) as f:
        for line in expected:
            f.write(json.dumps(line, separators=(",", ":")) + "\n")
    print(f"{len(inputs)} inputs; final state {expected[-1]['state_hash'][:16]}")


if __name__ == "__main__":
    main()

"""Bad-input generators for the fuzz campaign (``reliability/fuzz.py``), on ``random.Random``.

The same categories as the hypothesis strategies of ``tests/reliability/test_fuzz.py``,
which share this module's engine fixture (``build_engine``), its constants and ``frozen``:
random bytes and text, arbitrary JSON,
oversized payloads, truncated and mutated messages, unicode identifiers, out-of-range
numbers, deep nesting, rule-breaking orders (with the reason the engine must give),
valid orders, resends, well-typed engine inputs with bad content, and MQTT topics.

Every generator takes the ``Random`` and returns ``(broker, payload)`` (payload bytes or
str) except ``rule_breaking`` (``(broker, payload, reason)``), ``engine_direct``
(``(broker, message)``) and ``topic`` (any object).
"""
from __future__ import annotations

import random
import string
from datetime import UTC, datetime
from decimal import Decimal

from feeds.codec import MAX_ID_LEN, MAX_MESSAGE_BYTES
from matching.engine import Engine
from matching.instruments import Registry
from matching.ledger import CASH, Ledger
from matching.messages import (
    NewOrderSingle,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
)

__all__ = ["T0", "HOUR", "REG", "INSTS", "ACCOUNTS", "OWN", "BROKERS", "OPEN_SYMBOLS",
           "build_engine", "frozen", "kind_of", "reason_of", "dump", "Raw", "CATEGORIES",
           "RULES", "rule_breaking", "engine_direct", "topic", "NASTY_NUMBERS",
           "NASTY_STRINGS"]

T0 = int(datetime(2026, 11, 25, 10, tzinfo=UTC).timestamp()) * 10**9
HOUR = 3600 * 10**9
REG = Registry.load_default()
INSTS = {i.symbol: i for i in REG}
ACCOUNTS = ((1, "alpha", "retail"), (2, "beta", "retail"), (3, "alpha", "institutional"))
OWN = {"alpha": (1, 3), "beta": (2,)}
BROKERS = ("alpha", "beta")
OPEN_SYMBOLS = ("TB3M", "TB6M", "BD3Y", "GOLD")            # TB12M is halted in the fixture
FIXTURE_IDS = {"rest-buy": "TB3M", "part-sell": "BD3Y", "beta-rest": "TB6M", "post": "GOLD",
               "gtd": "TB6M", "beta-buy": "BD3Y", "gold-bid": "GOLD"}


def build_engine(clock=None) -> Engine:
    """Three accounts, live orders of both brokers (one partly filled, one post-only, one
    GTD) and a halted instrument (TB12M): the fixture of tests/reliability/test_fuzz.py."""
    led = Ledger()
    for acct, broker, elig in ACCOUNTS:
        led.open_account(acct, broker, elig)
        led.deposit(acct, CASH, 100_000 * 10**6)
        for inst in REG:
            led.deposit(acct, inst.symbol, 50 * 10**4)
            led.whitelist(acct, inst.symbol)
    eng = Engine(REG, led, clock=clock or (lambda: T0))
    for broker, msg in (
        ("alpha", NewOrderSingle("rest-buy", 1, "TB3M", "buy", "5", price="99.000",
                                 time_in_force="gtc")),
        ("alpha", NewOrderSingle("part-sell", 1, "BD3Y", "sell", "4", price="100.250",
                                 time_in_force="gtc")),
        ("beta", NewOrderSingle("beta-buy", 2, "BD3Y", "buy", "1.5", price="100.300")),
        ("beta", NewOrderSingle("beta-rest", 2, "TB6M", "sell", "2", price="98.300",
                                time_in_force="gtc")),
        ("beta", NewOrderSingle("gold-bid", 2, "GOLD", "buy", "1", price="109.00",
                                time_in_force="gtc")),
        ("alpha", NewOrderSingle("post", 3, "GOLD", "sell", "1", price="111.00",
                                 time_in_force="gtc", post_only=True)),
        ("alpha", NewOrderSingle("gtd", 1, "TB6M", "buy", "1", price="98.000",
                                 time_in_force="gtd", expire_time=T0 + HOUR)),
    ):
        out = eng.submit(broker, msg)
        assert out.reports[0][1].exec_type == "new", out.reports
    eng.admin("halt", "TB12M")
    assert len(eng.orders) == 6 and eng.orders[2].cum_qty == 15_000   # part-sell: 1.5 filled
    return eng


def frozen(eng: Engine, ignore: tuple[str, str] | None = None) -> tuple:
    """What a rejected input must not change: everything in state_hash but the counters
    (seq, exec id, order id), plus the ClOrdID index (less ``ignore``)."""
    return (
        eng.executions.next_trade_id,
        sorted((s, st_.value) for s, st_ in eng.session.state.items()),
        sorted((s, b.resting_orders()) for s, b in eng.books.items()),
        [eng.orders[oid].row() for oid in sorted(eng.orders)],
        sorted(kv for kv in eng.clordids.orders.items() if kv[0] != ignore),
        eng.ledger.state_digest(),
    )


def kind_of(report) -> str:
    """What an answer is: its ExecType, or ``cancel_reject`` (an OrderCancelReject)."""
    return "cancel_reject" if type(report) is OrderCancelReject else report.exec_type


def reason_of(report) -> str | None:
    """The rule a refusal names: its OrdRejReason, or its CxlRejReason (for ``OTHER``,
    the code its text starts with: the replace rule that was broken)."""
    if type(report) is not OrderCancelReject:
        return report.ord_rej_reason
    if report.cxl_rej_reason == "OTHER":
        return report.text.split(":", 1)[0]
    return report.cxl_rej_reason


from testkit.fuzzdata import NASTY_NUMBERS, NASTY_STRINGS, Raw, dump  # noqa: E402

WEIRD_IDS = ["\u202eevil", "c\u0000", "\ud83d", "\U0001f4b8\U0001f4b8", "TB3M\u200b",
             "\u0391\u03b2", "\u05d0\u05d1", "TB3M ", " TB3M", "TB3M/x", "+", "#", "$SYS",
             "TB3\u041c", "c" * 65, ""]
_PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F))


def _text(r: random.Random, n: int = 20) -> str:
    """Any code points, lone surrogates, NUL, RTL marks and emoji included."""
    pools = ((0, 0x7F), (0x80, 0x7FF), (0x800, 0xFFFF), (0xD800, 0xDFFF), (0x10000, 0x10FFFF),
             (0x200E, 0x202E))
    return "".join(chr(r.randint(*r.choice(pools))) for _ in range(r.randint(0, n)))


def _fresh_id(r: random.Random) -> str:
    return "fz-" + "".join(r.choice(_PRINTABLE) for _ in range(r.randint(1, MAX_ID_LEN - 3)))


def _json_value(r: random.Random, depth: int = 0):
    k = r.random()
    if depth > 3 or k < 0.5:
        return r.choice([None, True, False, r.randint(-2**70, 2**70), r.random() * 1e6,
                         _text(r), r.choice(NASTY_STRINGS)])
    if k < 0.75:
        return [_json_value(r, depth + 1) for _ in range(r.randint(0, 4))]
    return {_text(r, 8): _json_value(r, depth + 1) for _ in range(r.randint(0, 4))}


def _nasty(r: random.Random):
    k = r.randrange(5)
    if k == 0:
        return Raw(r.choice(NASTY_NUMBERS))
    if k == 1:
        return r.choice(NASTY_STRINGS)
    if k == 2:
        return r.choice([r.randint(2**62, 2**80), r.randint(-2**80, -1)])
    if k == 3:
        return _text(r)
    return _json_value(r)


def _ticks_price(symbol: str, ticks: int) -> str:
    return str(INSTS[symbol].ticks_to_price(ticks))


def _band(symbol: str) -> tuple[int, int]:
    inst = INSTS[symbol]
    return inst.band_ticks(inst.reference_ticks())


def _qty(r: random.Random) -> str:
    return str(Decimal(r.randint(100, 30_000)) / 10**4)


def valid_doc(r: random.Random, broker: str) -> dict:
    """A well-formed message: a plausible new order or a cancel/replace of a fixture id."""
    kind = r.choice(["new_order", "new_order", "cancel", "replace"])
    cl = _fresh_id(r)
    if kind == "new_order":
        symbol = r.choice(OPEN_SYMBOLS)
        lo, hi = _band(symbol)
        ref = INSTS[symbol].reference_ticks()
        doc = {"msg": "new_order", "cl_ord_id": cl, "account": r.choice(OWN[broker]),
               "symbol": symbol, "side": r.choice(["buy", "sell"]), "qty": _qty(r),
               "price": _ticks_price(symbol, r.randint(max(lo, ref - 40), min(hi, ref + 40))),
               "time_in_force": r.choice(["day", "gtc", "ioc", "fok", "gtd"]),
               "post_only": r.random() < 0.3,
               "stp": r.choice(["none", "cancel_resting", "cancel_incoming", "cancel_both",
                                "decrement_and_cancel"])}
        if r.random() < 0.3:
            doc["ord_type"] = "market"
            del doc["price"]
        if doc["time_in_force"] == "gtd":
            doc["expire_time"] = T0 + r.randint(1, 10 * HOUR)
        if r.random() < 0.2:
            doc["min_qty"] = "0.01"
        return doc
    orig = r.choice([*list(FIXTURE_IDS), "fz-unknown"])
    symbol = FIXTURE_IDS.get(orig, r.choice(OPEN_SYMBOLS))
    if kind == "cancel":
        return {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": orig, "symbol": symbol}
    lo, hi = _band(symbol)
    ref = INSTS[symbol].reference_ticks()
    return {"msg": "replace", "cl_ord_id": cl, "orig_cl_ord_id": orig, "symbol": symbol,
            "price": _ticks_price(symbol, r.randint(max(lo, ref - 60), min(hi, ref + 60))),
            "qty": _qty(r)}


# ------------------------------------------------------------------ categories
def random_bytes(r):
    return r.choice(BROKERS), r.randbytes(r.randint(0, 300))


def random_text(r):
    return r.choice(BROKERS), _text(r, 200)


def json_value(r):
    return r.choice(BROKERS), dump(_json_value(r), ensure_ascii=r.random() < 0.5)


def huge(r):
    n = r.randint(MAX_MESSAGE_BYTES + 1, 4 * MAX_MESSAGE_BYTES)
    doc = valid_doc(r, "alpha")
    doc["pad"] = "x" * n
    return "alpha", dump(doc) if r.random() < 0.5 else r.randbytes(n)


def truncated(r):
    raw = dump(valid_doc(r, "alpha"))
    return "alpha", raw[:r.randrange(len(raw))]


def missing_field(r):
    doc = valid_doc(r, "alpha")
    for _ in range(r.randint(1, 3)):
        doc.pop(r.choice(list(doc)), None)
    return "alpha", dump(doc)


def extra_field(r):
    doc = valid_doc(r, "alpha")
    doc[r.choice(["MSG", "Price", "qty ", "tag", "55", _text(r, 8)])] = _nasty(r)
    return "alpha", dump(doc)


def wrong_type(r):
    doc = valid_doc(r, "alpha")
    doc[r.choice(list(doc))] = _nasty(r)
    return "alpha", dump(doc, ensure_ascii=r.random() < 0.5)


def wrong_tag(r):
    doc = valid_doc(r, "alpha")
    doc["msg"] = r.choice(["new_order", "cancel", "replace", "exec_report", "admin", "NEW_ORDER",
                           "", "new_order\u0000", "D", "F", "G", _text(r, 10)])
    return "alpha", dump(doc)


def huge_number(r):
    doc = valid_doc(r, "alpha")
    field = r.choice(["account", "expire_time", "qty", "price", "min_qty"]
                     if doc["msg"] == "new_order" else list(doc))
    doc[field] = r.choice([Raw(r.choice(NASTY_NUMBERS)), r.choice(NASTY_STRINGS),
                           Raw(str(r.randint(2**63, 2**200))), Raw(str(-r.randint(1, 2**70)))])
    return "alpha", dump(doc)


def deep_nesting(r):
    depth = r.randint(1, 2040)
    doc = valid_doc(r, "alpha")
    k = r.random()
    if k < 0.4:
        doc[r.choice(list(doc))] = Raw("[" * depth + "]" * depth)
        return "alpha", dump(doc)
    if k < 0.7:
        return "alpha", "[" * depth + "]" * depth
    depth = min(depth, 800)
    return "alpha", '{"a":' * depth + "1" + "}" * depth


def long_string(r):
    doc = valid_doc(r, "alpha")
    doc[r.choice(list(doc))] = r.choice(["9", "x", "\u05d0", "\U0001f4b8"]) * r.randint(65, 5000)
    return "alpha", dump(doc, ensure_ascii=r.random() < 0.5)


def unicode_ids(r):
    doc = valid_doc(r, "alpha")
    for field in ("cl_ord_id", "symbol", "orig_cl_ord_id"):
        if field in doc and r.random() < 0.6:
            doc[field] = r.choice(WEIRD_IDS) if r.random() < 0.5 else _text(r, 30)
    return "alpha", dump(doc, ensure_ascii=r.random() < 0.5)


def valid(r):
    broker = r.choice(BROKERS)
    return broker, dump(valid_doc(r, broker))


RULES = ["off_tick", "off_lot", "below_min", "outside_band", "unknown_account",
         "other_brokers_account", "unknown_symbol", "halted", "not_eligible",
         "gtd_in_the_past", "min_qty_above_qty", "missing_price", "insufficient_funds",
         "insufficient_tokens", "cancel_unknown", "cancel_other_brokers",
         "cancel_wrong_symbol", "cancel_filled", "replace_below_filled", "replace_unknown",
         "replace_outside_band", "replace_off_tick", "replace_insufficient",
         "replace_post_only_would_take"]


def rule_breaking(r: random.Random, rule: str | None = None,
                  cl: str | None = None) -> tuple[str, bytes, str, str]:
    """``(broker, payload, expected reason, rule)`` against a fresh ``build_engine()``
    (``cl``: the ClOrdID to use, e.g. a unique one; a random one by default)."""
    rule = rule or r.choice(RULES)
    cl = cl or _fresh_id(r)
    symbol = r.choice(OPEN_SYMBOLS)
    lo, hi = _band(symbol)
    price = _ticks_price(symbol, r.randint(lo, hi))
    new = {"msg": "new_order", "cl_ord_id": cl, "account": 1, "symbol": symbol,
           "side": r.choice(["buy", "sell"]), "qty": "1", "price": price}
    broker, doc = "alpha", new

    def replace(orig, sym, px, qty):
        return {"msg": "replace", "cl_ord_id": cl, "orig_cl_ord_id": orig, "symbol": sym,
                "price": px, "qty": qty}

    if rule == "off_tick":
        new["price"] = price + str(r.randint(1, 9))
        reason = "INVALID_PRICE"
    elif rule == "off_lot":
        new["qty"] = f"{r.randint(1, 40)}.0000{r.randint(1, 99999)}"
        reason = "INVALID_QUANTITY"
    elif rule == "below_min":
        new["qty"] = r.choice(["0", "0.0", "0.0001", "0.0099", "0.000"])
        reason = "BELOW_MIN_QTY"
    elif rule == "outside_band":
        new["price"] = _ticks_price(symbol, r.choice([r.randint(0, lo - 1),
                                                      r.randint(hi + 1, 10**14)]))
        reason = "OUTSIDE_PRICE_BAND"
    elif rule == "unknown_account":
        new["account"] = r.randint(4, 2**63 - 1)
        reason = "UNKNOWN_ACCOUNT"
    elif rule == "other_brokers_account":
        broker = r.choice(BROKERS)
        new["account"] = r.choice([a for a, b, _ in ACCOUNTS if b != broker])
        reason = "UNKNOWN_ACCOUNT"
    elif rule == "unknown_symbol":
        new["symbol"] = "".join(r.choice(string.ascii_letters + string.digits + "_.-")
                                for _ in range(r.randint(1, 64)))
        if new["symbol"] in INSTS:
            new["symbol"] += "X"
        reason = "UNKNOWN_SYMBOL"
    elif rule == "halted":
        new["symbol"] = "TB12M"
        reason = "MARKET_NOT_OPEN"
    elif rule == "not_eligible":
        new.update(symbol="BD10Y", price="100.765")
        reason = "NOT_ELIGIBLE"
    elif rule == "gtd_in_the_past":
        new["time_in_force"] = "gtd"
        if r.random() < 0.5:
            new["expire_time"] = r.randint(1, T0)
        reason = "INVALID_EXPIRE_TIME"
    elif rule == "min_qty_above_qty":
        lots = r.randint(100, 10**6)
        new["qty"] = str(Decimal(lots) / 10**4)
        new["min_qty"] = str(Decimal(r.randint(lots + 1, 10**12)) / 10**4)
        reason = "INVALID_MIN_QTY"
    elif rule == "missing_price":
        del new["price"]
        reason = "MISSING_PRICE"
    elif rule == "insufficient_funds":
        new.update(side="buy", qty=str(r.randint(2000, 10**14)))
        reason = "INSUFFICIENT_FUNDS"
    elif rule == "insufficient_tokens":
        new.update(side="sell", qty=str(r.randint(51, 10**14)))
        reason = "INSUFFICIENT_TOKENS"
    elif rule == "cancel_unknown":
        doc = {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": _fresh_id(r), "symbol": symbol}
        reason = "UNKNOWN_ORDER"
    elif rule == "cancel_other_brokers":
        doc = {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": "beta-rest", "symbol": "TB6M"}
        reason = "UNKNOWN_ORDER"
    elif rule == "cancel_wrong_symbol":
        doc = {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": "rest-buy",
               "symbol": r.choice(["TB6M", "GOLD", "NOPE"])}
        reason = "UNKNOWN_ORDER"
    elif rule == "cancel_filled":
        broker = "beta"
        doc = {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": "beta-buy", "symbol": "BD3Y"}
        reason = "TOO_LATE_TO_CANCEL"
    elif rule == "replace_below_filled":
        doc = replace("part-sell", "BD3Y", "100.250", str(Decimal(r.randint(0, 15_000)) / 10**4))
        reason = "INVALID_QUANTITY"
    elif rule == "replace_unknown":
        doc = replace(_fresh_id(r), symbol, price, "1")
        reason = "UNKNOWN_ORDER"
    elif rule == "replace_outside_band":
        blo, bhi = _band("TB3M")
        doc = replace("rest-buy", "TB3M", _ticks_price("TB3M", r.choice(
            [r.randint(0, blo - 1), r.randint(bhi + 1, 10**9)])), "5")
        reason = "OUTSIDE_PRICE_BAND"
    elif rule == "replace_off_tick":
        doc = replace("rest-buy", "TB3M", f"99.00{r.randint(1, 9)}1", "5")
        reason = "INVALID_PRICE"
    elif rule == "replace_insufficient":
        doc = replace("rest-buy", "TB3M", "99.000", str(r.randint(2000, 10**14)))
        reason = "INSUFFICIENT_FUNDS"
    elif rule == "replace_post_only_would_take":
        glo, _ = _band("GOLD")
        doc = replace("post", "GOLD", _ticks_price("GOLD", r.randint(glo, 10900)), "1")
        reason = "POST_ONLY_WOULD_TAKE"
    else:
        raise ValueError(f"unknown rule {rule!r}")
    return broker, dump(doc), reason, rule


def engine_direct(r: random.Random):
    """A message of the right Python types but any content, straight to Engine.submit (as
    an API caller, not the gateway, could send): strings anything, ints of any size.
    Half are a valid message with one or two fields so corrupted, to reach deep checks."""
    if r.random() < 0.5:
        broker = r.choice(BROKERS)
        doc = valid_doc(r, broker)
        for _ in range(r.randint(1, 2)):
            field = r.choice([f for f in doc if f not in ("msg", "side", "ord_type",
                                                          "time_in_force", "stp", "post_only")])
            if field in ("account", "expire_time"):
                doc[field] = r.choice([r.randint(-2**80, 2**80), 2**63, 2**64, -1, 0])
                if field == "expire_time":
                    doc["time_in_force"] = "gtd"
            else:
                doc[field] = r.choice([r.choice(NASTY_STRINGS), _text(r)])
        cls = {"new_order": NewOrderSingle, "cancel": OrderCancelRequest,
               "replace": OrderCancelReplaceRequest}[doc.pop("msg")]
        return broker, cls(**doc)

    def text():
        return r.choice([r.choice(NASTY_STRINGS), _text(r), _qty(r), "99.270"])

    def anyint():
        return r.choice([r.randint(-2**63, 2**63 - 1), r.randint(-2**80, 2**80), 1, 2, 3])

    ids = lambda: r.choice([_fresh_id(r), _text(r), r.choice(list(FIXTURE_IDS))])  # noqa: E731
    sym = lambda: r.choice([*list(INSTS), "NOPE", "", _text(r, 6)])  # noqa: E731
    k = r.randrange(3)
    broker = r.choice(BROKERS)
    if k == 0:
        return broker, NewOrderSingle(
            ids(), anyint(), sym(), r.choice(["buy", "sell"]), text(),
            ord_type=r.choice(["limit", "market"]), price=r.choice([None, text()]),
            time_in_force=r.choice(["day", "gtc", "ioc", "fok", "gtd"]),
            expire_time=r.choice([None, anyint(), T0 + r.randint(1, HOUR)]),
            post_only=r.random() < 0.3, min_qty=r.choice([None, text()]),
            stp=r.choice(["none", "cancel_resting", "cancel_incoming", "cancel_both",
                          "decrement_and_cancel"]))
    if k == 1:
        return broker, OrderCancelRequest(ids(), ids(), sym())
    return broker, OrderCancelReplaceRequest(ids(), ids(), sym(), text(), text())


def topic(r: random.Random):
    k = r.randrange(6)
    if k == 0:
        return _text(r, 80)
    if k == 1:
        return "tokenbook/v1/orders/" + _text(r, 20)
    if k == 2:
        return r.choice([None, 0, b"tokenbook/v1/orders/alpha", ["tokenbook"], 1.5])
    if k == 3:
        return "/".join(r.choice(["tokenbook", "v1", "orders", "presence", "md", "exec", "TB3M",
                                  "depth", "bbo", "+", "#", "", "alpha", "$SYS"])
                        for _ in range(r.randint(1, 7)))
    if k == 4:
        return "x" * r.randint(200, 400)
    return r.choice(["tokenbook/v1/orders/alpha", "tokenbook/v1/presence/beta",
                     "tokenbook/v1/md/TB3M/depth", "tokenbook/v1/md/GOLD/snapshot"])


#: Category name -> generator of (broker, payload) for the decode -> refuse/submit path.
CATEGORIES = {
    "random_bytes": random_bytes, "random_text": random_text, "json_value": json_value,
    "huge": huge, "truncated": truncated, "missing_field": missing_field,
    "extra_field": extra_field, "wrong_type": wrong_type, "wrong_tag": wrong_tag,
    "huge_number": huge_number, "deep_nesting": deep_nesting, "long_string": long_string,
    "unicode_ids": unicode_ids, "valid": valid,
}

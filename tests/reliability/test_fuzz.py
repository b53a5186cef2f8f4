"""Bad input tried, never a crash: hypothesis fuzzing of the order decoder, the engine behind
it (decode, then refuse or submit: what the gateway does), the gateway's message handler,
the topic parser, and the wire codec's round trip.

Properties, for every input:
- nothing raises;
- the sender gets exactly one acknowledgement of its input (a Rejected report or an
  OrderCancelReject with a reason code and a text, or the New / Canceled / Replaced of
  what it asked for);
- a rejected input changes nothing but the sequence counters (seq, exec id; a refused
  payload not even those) and marks its ClOrdID used: books, live orders, the rest of the
  ClOrdID index, trading states, ledger;
- an exact resend gets its original outcome back and changes nothing at all; any other
  message with a used ClOrdID is refused as a duplicate;
- every asset's ledger total is conserved, reservations match the live orders' and the
  books hold exactly the live orders.
"""
from __future__ import annotations

import json
import sys
from decimal import Decimal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds import topics
from feeds.codec import (
    DECIMAL_PATTERN,
    DECODE_REASONS,
    MAX_ID_LEN,
    MAX_MESSAGE_BYTES,
    DecodeError,
    decode_order_message,
    encode,
    valid_cl_ord_id,
    valid_decimal,
)
from feeds.config import GatewayConfig
from feeds.cycle import GatewayCycle
from matching.engine import Engine
from matching.messages import NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest

# The engine fixture, its constants and ``frozen`` are the fuzz campaign's (testkit/fuzzgen.py).
from testkit.fuzzgen import (
    ACCOUNTS,
    BROKERS,
    HOUR,
    INSTS,
    OPEN_SYMBOLS,
    OWN,
    T0,
    build_engine,
    frozen,
    kind_of,
    reason_of,
)

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.filter_too_much])


class Clock:
    def __init__(self):
        self.now = T0

    def __call__(self):
        return self.now


def fresh_engine() -> Engine:
    """Three accounts, live orders of both brokers (one partly filled, one post-only, one
    GTD), a halted instrument: every rule has something to bite on. ``build_engine``
    asserts that every seeded order was taken."""
    return build_engine(Clock())


def check_invariants(eng: Engine, totals: dict[str, int]) -> None:
    led = eng.ledger
    assert led.totals() == totals, "an asset total changed"
    for key, held in led.held.items():
        assert 0 < held <= led.balance(*key), (key, held)
    assert all(v >= 0 for v in led.balances.values())
    # Reservations are exactly what the live orders hold.
    assert {ref: amt for ref, (_, _, amt) in led.reservations.items()} == {
        o.order_id: o.reserved for o in eng.orders.values() if o.reserved}
    # The books hold exactly the live orders, with their open quantity.
    resting = {oid: leaves for b in eng.books.values()
               for oid, _, _, leaves, *_ in b.resting_orders()}
    assert resting == {o.order_id: o.leaves for o in eng.orders.values()}


ACK = {NewOrderSingle: "new", OrderCancelRequest: "canceled",
       OrderCancelReplaceRequest: "replaced"}


def through_gateway(eng: Engine, broker: str, payload) -> tuple[str, object, object]:
    """Decode, then refuse or submit (as ``Gateway._handle``), checking every property.

    Returns ``(kind, decoded, report)``, kind one of refused / replayed / rejected /
    accepted, report the sender's acknowledgement.
    """
    before, totals = frozen(eng), eng.ledger.totals()
    seq, exec_id, order_id = eng.seq, eng.reports.next_exec_id, eng.next_order_id
    outcomes = len(eng.clordids.outcomes)
    msg = decode_order_message(payload)
    if isinstance(msg, DecodeError):
        assert msg.reason in DECODE_REASONS and msg.text
        assert msg.cl_ord_id is None or valid_cl_ord_id(msg.cl_ord_id)
        assert msg.symbol is None or topics.valid_symbol(msg.symbol)
        out = eng.refuse(broker, msg.reason, msg.text, msg.cl_ord_id, msg.symbol)
        [(to, r)] = out.reports
        assert (to, r.exec_type, r.ord_status, r.ord_rej_reason) == (
            broker, "rejected", "rejected", msg.reason)
        assert r.text and r.cl_ord_id == (msg.cl_ord_id or "")
        assert (eng.seq, eng.reports.next_exec_id, eng.next_order_id) == (seq, exec_id, order_id)
        assert len(eng.clordids.outcomes) == outcomes           # not an input: nothing to resend
        assert frozen(eng) == before
        check_invariants(eng, totals)
        return "refused", msg, r
    key = (broker, msg.cl_ord_id)
    before_but_key = frozen(eng, key)
    resend = eng.clordids.resend(broker, msg)
    used = eng.clordids.used(*key)
    out = eng.submit(broker, msg)
    assert out.reports, "an input without any report"
    if resend is not None:
        assert out.replayed and out.reports == [
            (broker, msgspec.structs.replace(r, poss_resend=True)) for r in resend]
        assert (eng.seq, eng.reports.next_exec_id, eng.next_order_id) == (seq, exec_id, order_id)
        assert frozen(eng) == before
        check_invariants(eng, totals)
        return "replayed", msg, out.reports[0][1] if out.reports else None
    assert eng.seq == seq + 1 and not out.replayed
    mine = [r for to, r in out.reports if to == broker and r.cl_ord_id == msg.cl_ord_id
            and kind_of(r) in ("rejected", "cancel_reject", ACK[type(msg)])]
    assert len(mine) == 1, out.reports                 # exactly one acknowledgement
    [r] = mine
    assert r.seq == eng.seq and r.symbol == msg.symbol
    if kind_of(r) in ("rejected", "cancel_reject"):
        assert out.reports == [(broker, r)] and not out.trades and not out.levels
        assert reason_of(r) and r.text
        if kind_of(r) == "rejected":
            assert isinstance(msg, NewOrderSingle) and r.ord_status == "rejected"
            assert r.leaves_qty.strip("0.") == ""        # a rejected order has nothing left
            assert eng.reports.next_exec_id == exec_id + 1
        else:                                          # a cancel reject takes no ExecID
            assert not isinstance(msg, NewOrderSingle)
            assert eng.reports.next_exec_id == exec_id
        if used:
            assert reason_of(r) in ("DUPLICATE_ORDER", "DUPLICATE_CL_ORD_ID")
        # A pre-trade reject takes no order id; a new order the book refused (post-only
        # IOC, ...) had taken one. Either way its ClOrdID is used for the day from now on.
        order_given = kind_of(r) == "rejected" and bool(r.order_id)
        assert eng.next_order_id == order_id + (1 if order_given else 0)
        if not used:
            assert eng.clordids.orders[key] == (int(r.order_id) if order_given else 0)
        assert frozen(eng, key) == before_but_key
        kind = "rejected"
    else:
        kind = "accepted"
    if not used:
        told = [x for to, x in out.reports if to == broker]
        assert list(eng.clordids.told(*key)) == told
    check_invariants(eng, totals)
    return kind, msg, r


# ------------------------------------------------------------------ strategies
from testkit.fuzzdata import NASTY_NUMBERS, NASTY_STRINGS, Raw, dump  # noqa: E402

OFFSETS = [-1, 1, 10, 2**31, 2**63, 2**64]

printable_id = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E),
                       min_size=1, max_size=MAX_ID_LEN - 3)
fresh_id = printable_id.map(lambda s: "fz-" + s)
any_text = st.text(st.characters(exclude_categories=()), max_size=80)   # surrogates too
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False,
                      allow_infinity=False), any_text, st.sampled_from(NASTY_STRINGS))
json_value = st.recursive(json_leaf, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)), max_leaves=12)
nasty_value = st.one_of(json_value, st.sampled_from(NASTY_NUMBERS).map(Raw),
                        st.sampled_from(NASTY_STRINGS), st.integers(min_value=2**62),
                        st.integers(max_value=-1))


def ticks_price(symbol: str, ticks: int) -> str:
    return str(INSTS[symbol].ticks_to_price(ticks))


def band(symbol: str) -> tuple[int, int]:
    inst = INSTS[symbol]
    return inst.band_ticks(inst.reference_ticks())


@st.composite
def valid_doc(draw, broker: str = "alpha") -> dict:
    """A well-formed message of ``broker``: a plausible new order, or a cancel/replace of
    one of the fixture's ClOrdIDs (live, filled, the other broker's, or unknown)."""
    kind = draw(st.sampled_from(["new_order", "new_order", "cancel", "replace"]))
    cl = draw(fresh_id)
    symbol = draw(st.sampled_from(OPEN_SYMBOLS))
    lo, hi = band(symbol)
    ref = INSTS[symbol].reference_ticks()
    price = ticks_price(symbol, draw(st.integers(max(lo, ref - 40), min(hi, ref + 40))))
    qty = str(Decimal(draw(st.integers(100, 300_00))) / 10**4)
    if kind == "new_order":
        doc = {"msg": "new_order", "cl_ord_id": cl, "account": draw(st.sampled_from(OWN[broker])),
               "symbol": symbol, "side": draw(st.sampled_from(["buy", "sell"])), "qty": qty,
               "price": price,
               "time_in_force": draw(st.sampled_from(["day", "gtc", "ioc", "fok", "gtd"])),
               "post_only": draw(st.booleans()),
               "stp": draw(st.sampled_from(["none", "cancel_resting", "cancel_incoming",
                                            "cancel_both", "decrement_and_cancel"]))}
        if draw(st.booleans()):
            doc["ord_type"] = "market"
            del doc["price"]
        if doc["time_in_force"] == "gtd":
            doc["expire_time"] = T0 + draw(st.integers(1, 10 * HOUR))
        if draw(st.integers(0, 4)) == 0:
            doc["min_qty"] = "0.01"
        return doc
    orig = draw(st.sampled_from(["rest-buy", "part-sell", "beta-rest", "post", "gtd",
                                 "beta-buy", "gold-bid", "fz-unknown"]))
    orig_symbol = {"rest-buy": "TB3M", "part-sell": "BD3Y", "beta-rest": "TB6M",
                   "post": "GOLD", "gtd": "TB6M", "beta-buy": "BD3Y",
                   "gold-bid": "GOLD"}.get(orig, symbol)
    if kind == "cancel":
        return {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": orig, "symbol": orig_symbol}
    lo, hi = band(orig_symbol)
    ref = INSTS[orig_symbol].reference_ticks()
    return {"msg": "replace", "cl_ord_id": cl, "orig_cl_ord_id": orig, "symbol": orig_symbol,
            "price": ticks_price(orig_symbol, draw(st.integers(max(lo, ref - 60),
                                                               min(hi, ref + 60)))),
            "qty": qty}


@st.composite
def mutated(draw) -> bytes:
    """A valid-looking message broken in one or more ways."""
    doc = draw(valid_doc())
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["drop", "extra", "replace", "tag", "nest", "long"]))
        keys = list(doc)
        if how == "drop":
            doc.pop(draw(st.sampled_from(keys)), None)
        elif how == "extra":
            doc[draw(st.one_of(any_text, st.sampled_from(["MSG", "Price", "qty ", "tag", "55"])))] \
                = draw(nasty_value)
        elif how == "replace":
            doc[draw(st.sampled_from(keys))] = draw(nasty_value)
        elif how == "tag":
            doc["msg"] = draw(st.one_of(st.sampled_from(
                ["new_order", "cancel", "replace", "exec_report", "admin", "NEW_ORDER", "",
                 "new_order\u0000", "D", "F", "G"]), any_text, nasty_value))
        elif how == "nest":
            depth = draw(st.integers(1, 2000))
            doc[draw(st.sampled_from(keys))] = Raw("[" * depth + "]" * depth)
        else:
            doc[draw(st.sampled_from(keys))] = "9" * draw(st.integers(65, 5000))
    return dump(doc, ensure_ascii=draw(st.booleans()))


@st.composite
def truncated(draw) -> bytes:
    raw = dump(draw(valid_doc()))
    return raw[:draw(st.integers(0, len(raw) - 1))]


@st.composite
def unicode_ids(draw) -> bytes:
    """ClOrdID / OrigClOrdID / symbol with RTL marks, NUL, surrogates, emoji, ..."""
    doc = draw(valid_doc())
    weird = st.one_of(any_text, st.sampled_from([
        "\u202eevil", "c\u0000", "\ud83d", "\U0001f4b8\U0001f4b8", "TB3M\u200b", "\u0391\u03b2",
        "\u05d0\u05d1", "TB3M ", " TB3M", "TB3M/x", "+", "#", "$SYS", "TB3\u041c", "c" * 65]))
    for field in draw(st.lists(st.sampled_from(["cl_ord_id", "symbol", "orig_cl_ord_id"]),
                               min_size=1, max_size=3, unique=True)):
        if field in doc:
            doc[field] = draw(weird)
    return dump(doc, ensure_ascii=draw(st.booleans()))


CATEGORIES = {
    "random_bytes": st.binary(max_size=300),
    "random_text": any_text,                        # str payloads, lone surrogates included
    "json_value": json_value.map(dump),
    "huge": st.binary(min_size=MAX_MESSAGE_BYTES + 1, max_size=MAX_MESSAGE_BYTES + 50),
    "truncated": truncated(),
    "mutated": mutated(),
    "unicode_ids": unicode_ids(),
    "valid": valid_doc().map(dump),
}
any_payload = st.one_of(*(s.map(lambda p, k=k: (k, p)) for k, s in CATEGORIES.items()))


# ------------------------------------------------------------------ decoder
@FUZZ
@given(any_payload)
def test_decoder_never_raises_and_anything_it_returns_is_clean(item):
    category, payload = item
    msg = decode_order_message(payload)
    if isinstance(msg, DecodeError):
        assert msg.reason in DECODE_REASONS and msg.text
        assert msg.reason != "DECODER_FAULT", msg        # a fault is a decoder bug
        if category == "huge":
            assert msg.reason == "MESSAGE_TOO_LARGE"
        return
    assert category in ("valid", "mutated", "unicode_ids", "truncated", "json_value"), category
    # Whatever decodes meets every wire rule, so it re-encodes to itself.
    assert valid_cl_ord_id(msg.cl_ord_id) and topics.valid_symbol(msg.symbol)
    for name in ("qty", "price", "min_qty"):
        value = getattr(msg, name, None)
        assert value is None or valid_decimal(value)
    assert decode_order_message(encode(msg)) == msg


@pytest.mark.parametrize("payload", [None, 0, 1.5, [], {}, object(), b"", "", bytearray(b"{"),
                                     memoryview(b"[]"), "\ud800", b"\xff\xfe\x00"])
def test_decoder_refuses_non_payloads_and_empty_input(payload):
    msg = decode_order_message(payload)
    assert isinstance(msg, DecodeError), msg
    assert msg.reason in ("MALFORMED_JSON", "INVALID_FIELD") and msg.text


BASE_NEW = {"msg": "new_order", "cl_ord_id": "n1", "account": 1, "symbol": "TB3M",
            "side": "buy", "qty": "1", "price": "99.270", "time_in_force": "gtd",
            "expire_time": T0 + HOUR, "min_qty": "0.5"}


@pytest.mark.parametrize("field", ["account", "expire_time", "qty", "price", "min_qty",
                                   "cl_ord_id", "symbol", "side", "post_only"])
@pytest.mark.parametrize("token", NASTY_NUMBERS)
def test_out_of_range_and_non_json_numbers_are_refused_with_the_ids(field, token):
    """1e400, NaN, Infinity, -0, 2**64, 1E+999999, nested arrays, ... in every field."""
    msg = decode_order_message(dump({**BASE_NEW, field: Raw(token)}))
    # Only these are legal: the largest 63-bit integer where an id or time goes, a JSON
    # boolean for a flag, and null for an optional field. Floats never pass for integers.
    expect_ok = ((field in ("account", "expire_time") and token == str(2**63 - 1))
                 or (field == "post_only" and token in ("true", "false"))
                 or (field in ("expire_time", "price", "min_qty") and token == "null"))
    assert isinstance(msg, DecodeError) != expect_ok, msg
    if isinstance(msg, DecodeError) and msg.reason == "INVALID_FIELD":
        assert msg.field == f"$.{field}"
        if field not in ("cl_ord_id", "symbol") and token not in ("0x10", "01", "+1", ".5", "1.",
                                                                   "NaN", "-NaN", "Infinity",
                                                                   "-Infinity"):
            # Well-formed JSON: the reject can name the order (see the test below for
            # when the symbol field itself holds an out-of-range number).
            assert (msg.cl_ord_id, msg.symbol) == ("n1", "TB3M"), msg


@pytest.mark.parametrize("field, value", [
    ("symbol", Raw("1e400")), ("symbol", Raw("-1E+999999")), ("side", Raw("1e400")),
    ("orig_cl_ord_id", Raw("[" * 1000 + "]" * 1000)), ("stp", Raw('{"a":' * 600 + "1" + "}" * 600)),
])
def test_a_decode_error_names_the_order_whenever_the_payload_is_well_formed_json(field, value):
    """The codec promises the ClOrdID in a DecodeError "when the bytes reveal them", so the
    sender's client can match the Rejected report to its request instead of timing out.

    Found by fuzzing: ``feeds.codec._peek`` decodes ``symbol`` as ``Any``, so a number out
    of float range there (1e400) fails the whole peek; and the peek skips a deeply nested
    value (>= ~1000 levels) with a RecursionError. Either way ``cl_ord_id`` is lost although
    ``"cl_ord_id": "n1"`` is right there in well-formed JSON (``json.loads`` reads it)."""
    doc = {"msg": "cancel", "cl_ord_id": "n1", "orig_cl_ord_id": "n0", "symbol": "TB3M"}
    if field in ("side", "stp"):
        doc = dict(BASE_NEW)
    doc[field] = value
    payload = dump(doc)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(limit + 5000)     # only for the stdlib check that the JSON is valid
    try:
        assert len(payload) <= MAX_MESSAGE_BYTES and json.loads(payload)["cl_ord_id"] == "n1"
    finally:
        sys.setrecursionlimit(limit)
    msg = decode_order_message(payload)
    assert isinstance(msg, DecodeError) and msg.reason == "INVALID_FIELD", msg
    assert msg.cl_ord_id == "n1", msg


@FUZZ
@given(st.sampled_from(["qty", "price", "min_qty"]),
       st.one_of(st.sampled_from(NASTY_STRINGS), any_text,
                 st.from_regex(DECIMAL_PATTERN, fullmatch=True)))
def test_a_decimal_field_decodes_iff_it_is_a_plain_decimal(field, value):
    msg = decode_order_message(dump({**BASE_NEW, field: value}))
    if valid_decimal(value):
        assert isinstance(msg, NewOrderSingle) and getattr(msg, field) == value
    else:
        assert isinstance(msg, DecodeError) and msg.reason in (
            "INVALID_FIELD", "MALFORMED_JSON", "MESSAGE_TOO_LARGE")
        if msg.reason == "INVALID_FIELD":
            assert msg.field == f"$.{field}" and msg.cl_ord_id == "n1"


@FUZZ
@given(st.sampled_from(["cl_ord_id", "symbol"]), any_text, st.booleans())
def test_unicode_ids_decode_only_when_in_the_safe_charset(field, value, ascii_escapes):
    msg = decode_order_message(dump({**BASE_NEW, field: value}, ensure_ascii=ascii_escapes))
    ok = valid_cl_ord_id(value) if field == "cl_ord_id" else topics.valid_symbol(value)
    assert isinstance(msg, NewOrderSingle) == ok, (value, msg)
    if ok:
        assert getattr(msg, field) == value


@pytest.mark.parametrize("depth", [1, 10, 100, 500, 1000, 2040])
def test_deeply_nested_json_is_refused(depth):
    for payload in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                    dump({**BASE_NEW, "price": Raw("[" * depth + "]" * depth)})):
        msg = decode_order_message(payload)
        assert isinstance(msg, DecodeError) and msg.reason in ("MALFORMED_JSON", "INVALID_FIELD",
                                                              "MESSAGE_TOO_LARGE"), msg


# ------------------------------------------------------------------ engine behind the decoder
@FUZZ
@given(st.sampled_from(BROKERS), any_payload)
def test_any_payload_through_decode_and_engine_gets_one_report_and_rejects_change_nothing(
        broker, item):
    eng = fresh_engine()
    kind, _, _report = through_gateway(eng, broker, item[1])
    assert kind in ("refused", "rejected", "accepted", "replayed")
    if item[0] not in ("valid", "mutated", "unicode_ids", "truncated", "json_value"):
        assert kind == "refused"


@settings(FUZZ, max_examples=60)
@given(st.lists(st.tuples(st.sampled_from(BROKERS), any_payload), min_size=1, max_size=30))
def test_a_stream_of_mixed_inputs_keeps_every_invariant(stream):
    eng = fresh_engine()
    totals = eng.ledger.totals()
    for broker, (_, payload) in stream:
        through_gateway(eng, broker, payload)
    check_invariants(eng, totals)


@st.composite
def rule_breaking(draw, rule: str) -> tuple[str, dict, str]:
    """``(broker, message, expected reason)``: decodes fine, breaks exactly ``rule``."""
    cl = draw(fresh_id)
    symbol = draw(st.sampled_from(("TB3M", "TB6M", "BD3Y", "GOLD")))
    lo, hi = band(symbol)
    price = ticks_price(symbol, draw(st.integers(lo, hi)))
    new = {"msg": "new_order", "cl_ord_id": cl, "account": 1, "symbol": symbol,
           "side": draw(st.sampled_from(["buy", "sell"])), "qty": "1", "price": price}
    broker = "alpha"
    if rule == "off_tick":
        new["price"] = price + str(draw(st.integers(1, 9)))       # one digit finer than the tick
        reason = "INVALID_PRICE"
    elif rule == "off_lot":
        new["qty"] = f"{draw(st.integers(1, 40))}.0000{draw(st.integers(1, 99999))}"
        reason = "INVALID_QUANTITY"
    elif rule == "below_min":
        new["qty"] = draw(st.sampled_from(["0", "0.0", "0.0001", "0.0099", "0.000"]))
        reason = "BELOW_MIN_QTY"
    elif rule == "outside_band":
        new["price"] = ticks_price(symbol, draw(st.one_of(st.integers(0, lo - 1),
                                                          st.integers(hi + 1, 10**14))))
        reason = "OUTSIDE_PRICE_BAND"
    elif rule == "unknown_account":
        new["account"] = draw(st.integers(4, 2**63 - 1))
        reason = "UNKNOWN_ACCOUNT"
    elif rule == "other_brokers_account":
        broker = draw(st.sampled_from(BROKERS))
        new["account"] = draw(st.sampled_from([a for a, b, _ in ACCOUNTS if b != broker]))
        reason = "UNKNOWN_ACCOUNT"
    elif rule == "unknown_symbol":
        new["symbol"] = draw(st.from_regex(topics.NAME_PATTERN, fullmatch=True).filter(
            lambda s: s not in INSTS))
        reason = "UNKNOWN_SYMBOL"
    elif rule == "halted":
        new["symbol"] = "TB12M"
        reason = "MARKET_NOT_OPEN"
    elif rule == "not_eligible":
        new.update(symbol="BD10Y", price="100.765")
        reason = "NOT_ELIGIBLE"
    elif rule == "gtd_in_the_past":
        new["time_in_force"] = "gtd"
        if draw(st.booleans()):
            new["expire_time"] = draw(st.integers(1, T0))
        reason = "INVALID_EXPIRE_TIME"
    elif rule == "min_qty_above_qty":
        lots = draw(st.integers(100, 10**6))
        new["qty"] = str(Decimal(lots) / 10**4)
        new["min_qty"] = str(Decimal(draw(st.integers(lots + 1, 10**12))) / 10**4)
        reason = "INVALID_MIN_QTY"
    elif rule == "missing_price":
        del new["price"]
        reason = "MISSING_PRICE"
    elif rule == "insufficient_funds":
        new.update(side="buy", qty=str(draw(st.integers(2000, 10**14))))
        reason = "INSUFFICIENT_FUNDS"
    elif rule == "insufficient_tokens":
        new.update(side="sell", qty=str(draw(st.integers(51, 10**14))))
        reason = "INSUFFICIENT_TOKENS"
    elif rule == "cancel_unknown":
        return broker, {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": draw(fresh_id),
                        "symbol": symbol}, "UNKNOWN_ORDER"
    elif rule == "cancel_other_brokers":
        return "alpha", {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": "beta-rest",
                         "symbol": "TB6M"}, "UNKNOWN_ORDER"
    elif rule == "cancel_wrong_symbol":
        return "alpha", {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": "rest-buy",
                         "symbol": draw(st.sampled_from(["TB6M", "GOLD", "NOPE"]))}, "UNKNOWN_ORDER"
    elif rule == "cancel_filled":
        return "beta", {"msg": "cancel", "cl_ord_id": cl, "orig_cl_ord_id": "beta-buy",
                        "symbol": "BD3Y"}, "TOO_LATE_TO_CANCEL"
    elif rule == "replace_below_filled":
        qty = str(Decimal(draw(st.integers(0, 15_000))) / 10**4)     # 1.5 already filled
        return "alpha", {"msg": "replace", "cl_ord_id": cl, "orig_cl_ord_id": "part-sell",
                         "symbol": "BD3Y", "price": "100.250", "qty": qty}, "INVALID_QUANTITY"
    elif rule == "replace_unknown":
        return "alpha", {"msg": "replace", "cl_ord_id": cl, "orig_cl_ord_id": draw(fresh_id),
                         "symbol": symbol, "price": price, "qty": "1"}, "UNKNOWN_ORDER"
    elif rule == "replace_outside_band":
        lo, hi = band("TB3M")
        px = ticks_price("TB3M", draw(st.one_of(st.integers(0, lo - 1),
                                                st.integers(hi + 1, 10**9))))
        return "alpha", {"msg": "replace", "cl_ord_id": cl, "orig_cl_ord_id": "rest-buy",
                         "symbol": "TB3M", "price": px, "qty": "5"}, "OUTSIDE_PRICE_BAND"
    elif rule == "replace_off_tick":
        return "alpha", {"msg": "replace", "cl_ord_id": cl, "orig_cl_ord_id": "rest-buy",
                         "symbol": "TB3M", "price": f"99.00{draw(st.integers(1, 9))}1",
                         "qty": "5"}, "INVALID_PRICE"
    elif rule == "replace_insufficient":
        return "alpha", {"msg": "replace", "cl_ord_id": cl, "orig_cl_ord_id": "rest-buy",
                         "symbol": "TB3M", "price": "99.000",
                         "qty": str(draw(st.integers(2000, 10**14)))}, "INSUFFICIENT_FUNDS"
    elif rule == "replace_post_only_would_take":
        lo, _ = band("GOLD")
        px = ticks_price("GOLD", draw(st.integers(lo, 10900)))     # at or through the 109 bid
        return "alpha", {"msg": "replace", "cl_ord_id": cl, "orig_cl_ord_id": "post",
                         "symbol": "GOLD", "price": px, "qty": "1"}, "POST_ONLY_WOULD_TAKE"
    else:  # pragma: no cover
        raise AssertionError(rule)
    return broker, new, reason


RULES = ["off_tick", "off_lot", "below_min", "outside_band", "unknown_account",
         "other_brokers_account", "unknown_symbol", "halted", "not_eligible",
         "gtd_in_the_past", "min_qty_above_qty", "missing_price", "insufficient_funds",
         "insufficient_tokens", "cancel_unknown", "cancel_other_brokers",
         "cancel_wrong_symbol", "cancel_filled", "replace_below_filled", "replace_unknown",
         "replace_outside_band", "replace_off_tick", "replace_insufficient",
         "replace_post_only_would_take"]


@pytest.mark.parametrize("rule", RULES)
@settings(FUZZ, max_examples=12)
@given(data=st.data())
def test_rule_breaking_orders_are_rejected_with_their_reason_and_change_nothing(rule, data):
    broker, doc, reason = data.draw(rule_breaking(rule))
    eng = fresh_engine()
    kind, _msg, report = through_gateway(eng, broker, dump(doc))
    assert (kind, reason_of(report)) == ("rejected", reason), (doc, report)
    # The ClOrdID of a rejected input answers a resend with the same reject...
    again, _, report2 = through_gateway(eng, broker, dump(doc))
    assert again == "replayed" and report2 == msgspec.structs.replace(report, poss_resend=True)
    # ... and refuses a corrected message as a duplicate: a ClOrdID is used once a day.
    fixed = {**doc, "symbol": "TB3M", "price": "99.000", "qty": "1", "account": OWN[broker][0]}
    if doc["msg"] != "new_order":
        fixed.update(orig_cl_ord_id="rest-buy" if broker == "alpha" else "beta-rest",
                     symbol="TB3M" if broker == "alpha" else "TB6M")
        fixed.pop("account")
        if doc["msg"] == "cancel":
            fixed.pop("price"), fixed.pop("qty")
    third, _, report3 = through_gateway(eng, broker, dump(fixed))
    assert third == "rejected" and reason_of(report3) in ("DUPLICATE_ORDER",
                                                          "DUPLICATE_CL_ORD_ID"), report3


@FUZZ
@given(st.sampled_from(BROKERS), valid_doc())
def test_resending_any_input_gives_the_original_outcome_and_changes_nothing(broker, doc):
    eng = fresh_engine()
    first = through_gateway(eng, broker, dump(doc))
    hash_after = eng.state_hash()
    again = through_gateway(eng, broker, dump(doc))
    assert again[0] == "replayed" and eng.state_hash() == hash_after
    assert again[2] == msgspec.structs.replace(first[2], poss_resend=True)


# ------------------------------------------------------------------ engine API, well-typed
def well_typed_messages():
    """Messages of the right Python types but any content: what a caller of the engine
    API (not the gateway) could pass. Strings anything; ints within the int64 range."""
    text = st.one_of(any_text, st.sampled_from(NASTY_STRINGS),
                     st.from_regex(DECIMAL_PATTERN, fullmatch=True))
    ids = st.one_of(fresh_id, any_text, st.sampled_from(["rest-buy", "part-sell", "post"]))
    sym = st.one_of(st.sampled_from([*list(INSTS), "NOPE", ""]), any_text)
    i64 = st.integers(-2**63, 2**63 - 1)
    return st.one_of(
        st.builds(NewOrderSingle, ids, st.one_of(st.sampled_from([1, 2, 3]), i64), sym,
                  st.sampled_from(["buy", "sell"]), text,
                  ord_type=st.sampled_from(["limit", "market"]), price=st.none() | text,
                  time_in_force=st.sampled_from(["day", "gtc", "ioc", "fok", "gtd"]),
                  expire_time=st.none() | i64, post_only=st.booleans(),
                  min_qty=st.none() | text,
                  stp=st.sampled_from(["none", "cancel_resting", "cancel_incoming",
                                       "cancel_both", "decrement_and_cancel"])),
        st.builds(OrderCancelRequest, ids, ids, sym),
        st.builds(OrderCancelReplaceRequest, ids, ids, sym, text, text),
    )


@FUZZ
@given(st.sampled_from(BROKERS), well_typed_messages())
def test_engine_submit_never_raises_on_well_typed_bad_content(broker, msg):
    eng = fresh_engine()
    key = (broker, msg.cl_ord_id)
    before, totals, exec_id = frozen(eng, key), eng.ledger.totals(), eng.reports.next_exec_id
    resend = eng.clordids.resend(broker, msg) is not None
    out = eng.submit(broker, msg)
    assert out.reports
    if not resend:
        mine = [r for to, r in out.reports if to == broker and r.cl_ord_id == msg.cl_ord_id
                and kind_of(r) in ("rejected", "cancel_reject", ACK[type(msg)])]
        assert len(mine) == 1
        if kind_of(mine[0]) in ("rejected", "cancel_reject"):
            assert reason_of(mine[0]) and mine[0].text
            # As above: a refused message's ClOrdID is used from now on.
            took = 1 if kind_of(mine[0]) == "rejected" else 0
            assert eng.reports.next_exec_id == exec_id + took
            assert frozen(eng, key) == before
    check_invariants(eng, totals)


@pytest.mark.parametrize("expire_time", [2**63, 2**64, 10**30])
def test_engine_submit_refuses_a_gtd_expire_time_beyond_int64(expire_time):
    """The codec bounds expire_time to 63 bits; the engine must not rely on it.

    Found by fuzzing: Engine.submit raised OverflowError ("int too big to convert") from
    the book after the order had taken its reservation and its order id."""
    eng = fresh_engine()
    before, totals = frozen(eng), eng.ledger.totals()
    msg = NewOrderSingle("big-exp", 1, "TB3M", "buy", "1", price="99.270",
                         time_in_force="gtd", expire_time=expire_time)
    out = eng.submit("alpha", msg)
    [(to, r)] = [x for x in out.reports if x[1].cl_ord_id == "big-exp"][:1]
    assert to == "alpha" and r.exec_type == "rejected" and r.ord_rej_reason and r.text
    assert frozen(eng, ("alpha", "big-exp")) == before        # its ClOrdID is used now
    check_invariants(eng, totals)


def test_engine_refuse_reports_whatever_ids_it_is_given():
    eng = fresh_engine()
    h = eng.state_hash()
    for cl, sym in ((None, None), ("", ""), ("\ud800", "\u202e"), ("x" * 10_000, "y" * 10_000)):
        out = eng.refuse("alpha", "MALFORMED_JSON", "bad", cl, sym)
        [(to, r)] = out.reports
        assert (to, r.exec_type, r.cl_ord_id) == ("alpha", "rejected", cl or "")
        assert r.ord_rej_reason == "MALFORMED_JSON" and r.text == "bad"
    assert eng.state_hash() == h


# ------------------------------------------------------------------ the gateway's handler
topic_text = st.one_of(
    any_text,
    st.sampled_from(["tokenbook/v1/orders/alpha", "tokenbook/v1/orders/beta",
                     "tokenbook/v1/orders/", "tokenbook/v1/orders/+", "tokenbook/v1/orders/#",
                     "tokenbook/v1/orders/alpha/x", "tokenbook/v2/orders/alpha",
                     "tokenbook/v1/orders/al pha", "tokenbook/v1/orders/\u202ealpha",
                     "tokenbook/v1/orders/" + "a" * 65, "tokenbook/v1/orders/$SYS",
                     "tokenbook/v1/presence/alpha", "tokenbook/v1/presence/", "",
                     "/", "tokenbook//orders/alpha"]),
    st.builds(lambda s: f"tokenbook/v1/orders/{s}", any_text),
)


@FUZZ
@given(st.lists(st.tuples(topic_text, st.one_of(any_payload, st.just(("offline", b"offline")))),
                min_size=1, max_size=10))
def test_gateway_handler_never_raises_and_answers_every_attributable_message(stream):
    eng = fresh_engine()
    totals = eng.ledger.totals()
    gw = GatewayCycle(eng, GatewayConfig(cancel_on_disconnect="*"))
    for topic, (_, payload) in stream:
        if isinstance(payload, str):
            payload = payload.encode("utf-8", "surrogatepass")   # MQTT payloads are bytes
        stats = (gw.stats.received, gw.stats.unattributable, gw.stats.decode_rejects)
        out = gw._handle(topic, payload)
        broker = topics.broker_from_orders_topic(topic)
        if topic.startswith("tokenbook/v1/presence/"):
            assert out is None or out.seq == eng.seq       # cancel-on-disconnect only
        elif broker is None:
            assert out is None
            assert gw.stats.unattributable == stats[1] + 1
        else:
            assert out is not None and out.reports
            assert sum(1 for to, r in out.reports if to == broker and kind_of(r) in (
                "rejected", "cancel_reject", "new", "canceled", "replaced")) >= 1
            assert all(kind_of(r) not in ("rejected", "cancel_reject")
                       or (reason_of(r) and r.text) for _, r in out.reports)
        check_invariants(eng, totals)


# ------------------------------------------------------------------ topics
@FUZZ
@given(st.one_of(topic_text, st.none(), st.integers(), st.binary(max_size=40),
                 st.lists(any_text, max_size=3), st.text(min_size=250, max_size=400)))
def test_topic_parsers_never_raise_and_only_return_rebuildable_names(topic):
    broker = topics.broker_from_orders_topic(topic)
    if broker is not None:
        assert topics.valid_broker(broker) and topics.orders(broker) == topic
    who = topics.broker_from_presence_topic(topic)
    if who is not None:
        assert topics.valid_broker(who) and topics.presence(who) == topic
    md = topics.parse_md_topic(topic)
    if md is not None:
        assert topics.md(*md) == topic and md[1] in topics.MD_CHANNELS


name = st.from_regex(topics.NAME_PATTERN, fullmatch=True)


@FUZZ
@given(name, st.sampled_from(topics.MD_CHANNELS))
def test_topics_round_trip_for_valid_names(n, channel):
    assert topics.broker_from_orders_topic(topics.orders(n)) == n
    assert topics.broker_from_presence_topic(topics.presence(n)) == n
    assert topics.parse_md_topic(topics.md(n, channel)) == (n, channel)
    assert topics.broker_from_orders_topic(topics.exec_reports(n)) is None


@FUZZ
@given(st.one_of(any_text, st.none(), st.integers(), st.sampled_from(
    ["", "+", "#", "a/b", "$SYS", "a" * 65, "al pha", "a\u0000", "\u202e"])))
def test_topic_builders_refuse_bad_names_with_value_error_only(n):
    if topics.valid_name(n):
        assert topics.orders(n).endswith("/" + n)
        return
    builders = [topics.orders, topics.exec_reports, topics.presence, topics.md_trades]
    if n is not None:
        builders.append(topics.md_wildcard)            # md_wildcard(None) is every symbol
    for build in builders:
        with pytest.raises(ValueError):
            build(n)


# ------------------------------------------------------------------ wire round trip
decimal_str = st.from_regex(DECIMAL_PATTERN, fullmatch=True)
cl_id = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                max_size=MAX_ID_LEN)
pos63 = st.integers(1, 2**63 - 1)
valid_messages = st.one_of(
    st.builds(NewOrderSingle, cl_id, pos63, name, st.sampled_from(["buy", "sell"]), decimal_str,
              ord_type=st.sampled_from(["limit", "market"]), price=st.none() | decimal_str,
              time_in_force=st.sampled_from(["day", "gtc", "ioc", "fok", "gtd"]),
              expire_time=st.none() | pos63, post_only=st.booleans(),
              min_qty=st.none() | decimal_str,
              stp=st.sampled_from(["none", "cancel_resting", "cancel_incoming", "cancel_both",
                                   "decrement_and_cancel"])),
    st.builds(OrderCancelRequest, cl_id, cl_id, name),
    st.builds(OrderCancelReplaceRequest, cl_id, cl_id, name, decimal_str, decimal_str),
)


@FUZZ
@given(valid_messages)
def test_every_valid_message_round_trips_through_the_wire_codec(msg):
    raw = encode(msg)
    assert len(raw) <= MAX_MESSAGE_BYTES
    assert decode_order_message(raw) == msg
    assert decode_order_message(raw.decode()) == msg          # str payloads too
    doc = json.loads(raw)
    assert doc["msg"] in ("new_order", "cancel", "replace")
    # Field order and whitespace do not matter.
    shuffled = json.dumps(dict(reversed(list(doc.items()))), indent=1).encode()
    assert decode_order_message(shuffled) == msg


@pytest.mark.parametrize("field, value", [("stp", "bogus"), ("side", "up"),
                                          ("time_in_force", "forever"), ("ord_type", "stop")])
def test_engine_submit_refuses_a_value_outside_the_fix_set(field, value):
    """msgspec checks Literal fields only when decoding; a direct API caller can pass any
    string, and the engine must reject it before reserving anything."""
    eng = fresh_engine()
    before, totals = frozen(eng), eng.ledger.totals()
    args = {"time_in_force": "gtc", "stp": "none", "ord_type": "limit", "price": "99.270"}
    side = "buy"
    if field == "side":
        side = value
    else:
        args[field] = value
    out = eng.submit("alpha", NewOrderSingle("bad-enum", 1, "TB3M", side, "1", **args))
    [(to, r)] = out.reports
    assert to == "alpha" and r.exec_type == "rejected" and r.ord_rej_reason == "INVALID_FIELD"
    assert frozen(eng, ("alpha", "bad-enum")) == before       # its ClOrdID is used now
    check_invariants(eng, totals)

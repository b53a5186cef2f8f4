"""JSON wire codec of the MQTT gateway: strict order entry in, reports and market data out.

Every wire message is a ``msgspec.Struct`` encoded as JSON (``msgspec.json``). Field names
are FIX's in snake case; the FIX tag is in a comment next to each field. Prices,
quantities and amounts are decimal strings, never JSON numbers, so no float ever touches
a price; times are FIX UTCTimestamp strings in UTC with nanoseconds
(``2026-12-02T18:00:00.123456789Z``, ``matching.messages.utc_timestamp``), since a
19-digit integer is past what JavaScript and jq hold exactly: only sequence numbers are
integers. The order-entry and report structs are the engine's own types
(``matching/messages.py``, ``TradePrint`` in ``matching/outputs.py``), re-exported here so
``feeds.codec`` is the one place that says what goes on the wire:

    order entry (tagged by ``msg``)  NewOrderSingle "new_order" (35=D),
                                     OrderCancelRequest "cancel" (35=F),
                                     OrderCancelReplaceRequest "replace" (35=G)
    to one broker                    ExecutionReport "exec_report" (35=8),
                                     OrderCancelReject "cancel_reject" (35=9)
    market data                      MdTrade (TradePrint + epoch), DepthUpdate,
                                     DepthSnapshot, BBO
    engine                           EngineStatus, TradingStatus (per instrument)
    operator                         AdminCommand in, AdminReply out

FIX tags used: 1 Account, 6 AvgPx, 11 ClOrdID, 14 CumQty, 17 ExecID, 18 ExecInst
(post-only), 31 LastPx, 32 LastQty, 37 OrderID, 38 OrderQty, 39 OrdStatus, 40 OrdType,
41 OrigClOrdID, 43 PossDupFlag, 44 Price, 54 Side, 55 Symbol, 58 Text, 59 TimeInForce,
60 TransactTime, 97 PossResend, 102 CxlRejReason, 103 OrdRejReason, 110 MinQty,
119 SettlAmount, 126 ExpireTime, 150 ExecType, 151 LeavesQty, 159 AccruedInterest,
236 Yield, 434 CxlRejResponseTo.

``expire_time`` (126 ExpireTime, GTD orders) travels as a UTCTimestamp string like
``transact_time`` (``"2026-12-02T18:00:00.123456789Z"``): ``encode`` writes it so and the
decoder reads it (``WireNewOrderSingle``) into the engine's int of nanoseconds. An integer
of nanoseconds since the epoch is still accepted, for clients written before (deprecated:
past 2**53 JavaScript cannot hold it exactly); a string that is not a UTCTimestamp is
refused ``INVALID_FIELD`` at ``$.expire_time`` with why.

``decode_order_message`` never raises: any input gives either a typed order message or a
``DecodeError`` with a reason code, a human-readable text and, when the bytes reveal them,
the ClOrdID and symbol so the gateway can send the sender a Rejected report.
"""
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Literal

import msgspec

from matching.errors import DecodeReject
from matching.messages import (
    ExecutionReport,
    NewOrderSingle,
    OrderCancelReject,
    OrderCancelReplaceRequest,
    OrderCancelRequest,
    OrderMessage,
    parse_utc_timestamp,
    utc_timestamp,
)
from matching.outputs import TradePrint
from matching.session import TradingStateName

__all__ = [
    "NewOrderSingle", "OrderCancelRequest", "OrderCancelReplaceRequest", "OrderMessage",
    "ExecutionReport", "OrderCancelReject", "TradePrint", "MdTrade", "DepthUpdate",
    "DepthSnapshot", "BBO", "EngineStatus", "utc_timestamp",
    "DecodeError", "decode_order_message", "TradingStatus", "AdminCommand", "AdminReply",
    "decode_admin_command", "BalancesRequest", "decode_balances_request", "encode",
    "valid_decimal", "valid_cl_ord_id",
    "DECODE_REASONS", "MAX_MESSAGE_BYTES", "MAX_ID_LEN", "DECIMAL_PATTERN",
]

log = logging.getLogger("tokenbook.codec")

#: Largest order-entry payload accepted; a real order is ~250 bytes.
MAX_MESSAGE_BYTES = 4096
#: ClOrdID / OrigClOrdID: 1-64 printable ASCII characters, no spaces.
MAX_ID_LEN = 64
#: Plain decimal: 1-15 integer digits, optionally a dot and 1-12 fraction digits. No sign,
#: exponent, NaN, Infinity, spaces or separators: a value the engine can scale exactly.
DECIMAL_PATTERN = r"[0-9]{1,15}(?:\.[0-9]{1,12})?"
_DECIMAL = re.compile(DECIMAL_PATTERN)
_CL_ORD_ID = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_ID_LEN)  # noqa: UP031 - regex braces
_SYMBOL = re.compile(r"[A-Za-z0-9_.-]{1,64}")          # == feeds.topics.NAME_PATTERN
_INT63 = 2**63

#: Reason codes a DecodeError can carry (they become the Rejected report's OrdRejReason).
DECODE_REASONS = tuple(code.value for code in DecodeReject)

# The codes as plain strings (matching.errors.DecodeReject; docs/engine-rules.md).
_MESSAGE_TOO_LARGE = DecodeReject.MESSAGE_TOO_LARGE.value
_MALFORMED_JSON = DecodeReject.MALFORMED_JSON.value
_INVALID_FIELD = DecodeReject.INVALID_FIELD.value
_DECODER_FAULT = DecodeReject.DECODER_FAULT.value



class WireNewOrderSingle(NewOrderSingle, forbid_unknown_fields=True, gc=False):
    """NewOrderSingle as it travels: ``expire_time`` a UTCTimestamp string (an int of ns
    from older clients is still taken); the decoder hands the engine a NewOrderSingle
    with the int of nanoseconds (``_engine_order``)."""
    expire_time: str | int | None = None     # type: ignore[assignment]  # 126 ExpireTime


_decoder = msgspec.json.Decoder(WireNewOrderSingle | OrderCancelRequest
                                | OrderCancelReplaceRequest)
_encoder = msgspec.json.Encoder()
_ASDICT = msgspec.structs.asdict


def valid_decimal(value: object) -> bool:
    """True for a plain decimal string like ``"99.125"`` (see ``DECIMAL_PATTERN``)."""
    return isinstance(value, str) and _DECIMAL.fullmatch(value) is not None


def valid_cl_ord_id(value: object) -> bool:
    """True for 1-64 printable ASCII characters without spaces."""
    return isinstance(value, str) and _CL_ORD_ID.fullmatch(value) is not None


class DecodeError(msgspec.Struct, frozen=True):
    """Why a payload is not a valid order message.

    ``reason`` is one of ``DECODE_REASONS``; ``text`` says why in words; ``field`` is the
    offending JSON path (``$.price``) when known; ``cl_ord_id`` and ``symbol`` are set only
    when the payload carried well-formed ones, so a Rejected report can name the order.
    """
    reason: str
    text: str
    cl_ord_id: str | None = None
    symbol: str | None = None
    field: str | None = None


# ---------------------------------------------------------------------- market data
SideName = Literal["buy", "sell"]


class DepthUpdate(msgspec.Struct):
    """L2 increments of one publishing cycle, ``seq`` = previous + 1 per symbol.

    ``levels`` are ``[side, price, qty, count]``; qty ``"0"`` (count 0) means the level is
    gone. A subscriber that sees a gap in ``seq`` resyncs from the retained snapshot.
    ``epoch`` (on every market-data message): the venue's start (``matching.datadir``);
    a higher one means the venue restarted: resync from that epoch's snapshot. ``seq``
    never goes backwards, across restarts too.
    """
    symbol: str
    seq: int
    levels: list[tuple[SideName, str, str, int]]
    epoch: int = 0


class DepthSnapshot(msgspec.Struct):
    """The whole L2 book, valid at depth sequence ``seq``: ``[price, qty, count]`` best first."""
    symbol: str
    seq: int
    bids: list[tuple[str, str, int]]
    asks: list[tuple[str, str, int]]
    epoch: int = 0


class BBO(msgspec.Struct):
    """Best bid and offer (retained), at depth sequence ``seq``; None for an empty side."""
    symbol: str
    seq: int
    bid: str | None = None
    bid_qty: str | None = None
    ask: str | None = None
    ask_qty: str | None = None
    epoch: int = 0


EngineStatusName = Literal["online", "offline", "not_accepting"]


class MdTrade(TradePrint, frozen=True, gc=False):
    """A trade print as published on ``md/{symbol}/trades``: the engine's TradePrint and
    the venue's ``epoch``."""
    epoch: int = 0


class EngineStatus(msgspec.Struct):
    """Retained engine status; ``offline`` is also the engine connection's last will.

    The fields after ``time`` say which engine wrote it (``feeds.guard``: one engine per
    venue): a random id per start, its host, pid and start time; it republishes the
    status every ``heartbeat`` s while connected (``time`` is then the last heartbeat)."""
    status: EngineStatusName
    text: str = ""
    time: str = ""                # UTCTimestamp (utc_timestamp); empty in the last will
    instance: str = ""            # random id of this engine start ("" before identities)
    host: str = ""
    pid: int = 0
    started: str = ""             # UTCTimestamp of the engine's start; "" unknown
    heartbeat: float = 0.0        # s between republished statuses while connected
    keepalive: int = 0            # s, its MQTT keepalive


class TradingStatus(msgspec.Struct):
    """Retained trading state of one instrument (FIX TradingSessionStatus in spirit):
    ``continuous`` takes orders; ``pre_open``, ``halted`` and ``closed`` reject them."""
    symbol: str
    state: TradingStateName
    reason: str = ""
    seq: int = 0                  # engine sequence of the input that set it (0: start)
    epoch: int = 0                # the venue's start that published it


class AdminCommand(msgspec.Struct, forbid_unknown_fields=True):
    """An operator's session command (``symbol`` empty: every instrument), or a lifecycle
    step of one instrument (``record``, ``pay_coupon``, ``mature``, ``redeem``;
    ``coupon_date``: the coupon's payment date, ISO, default the next one due).

    ``request_id`` comes back in the reply so the operator can match them."""
    action: Literal["pre_open", "open", "halt", "resume", "close",
                    "record", "pay_coupon", "mature", "redeem",
                    "open_account", "close_account", "whitelist", "unwhitelist", "deposit",
                    "withdraw", "freeze", "unfreeze", "forced_transfer", "recover", "pause",
                    "unpause", "set_reference", "transfer_out", "transfer_in", "set_compliance"]
    symbol: str = ""
    reason: str = ""
    request_id: str = ""
    coupon_date: str = ""
    # The account inputs and transfer-agent controls (matching.accounts_admin): amounts
    # are decimal strings in units of ``asset`` (the cash token or a symbol).
    account: int = 0
    broker: str = ""
    eligibility: str = ""
    country: str = ""
    asset: str = ""
    amount: str = ""
    to_account: int = 0
    #: ``set_reference``: the static band's new reference price (a decimal string).
    price: str = ""
    #: A cash transfer leg between shards (matching.transfers), sent on a shard's own
    #: admin topic: its idempotent id and the other shard.
    transfer_id: str = ""
    shard: str = ""
    #: ``set_compliance``: the instrument's new rules (matching.compliance_admin).
    compliance: dict[str, str | int | list[str]] = {}


class AdminReply(msgspec.Struct):
    """The engine's answer to one operator command: accepted with the input's sequence
    number, or refused with why (nothing was journaled)."""
    request_id: str
    accepted: bool
    text: str
    action: str = ""
    symbol: str = ""
    seq: int = 0
    shard: str = ""          # on a sharded venue: the shard that answered


class BalancesRequest(msgspec.Struct, tag_field="msg", tag="balances",
                      forbid_unknown_fields=True):
    """A broker's balances query on its order-entry topic (answered on its exec topic
    with ``matching.messages.Balances``): every account of its own, or ``account``."""
    request_id: str = ""
    account: int | None = None


_balances_decoder = msgspec.json.Decoder(BalancesRequest)


class _MsgTag(msgspec.Struct):
    """The ``msg`` member alone: a lone tagged Struct decodes even without its tag, and a
    query must name itself (``{}`` is a malformed order, not a balances query)."""
    msg: str


_tag_decoder = msgspec.json.Decoder(_MsgTag)


def decode_balances_request(payload: object) -> BalancesRequest | None:
    """The balances query in ``payload``, or None if it is not one; never raises. Tried
    only on what did not decode as an order, so order entry pays nothing for it."""
    if not isinstance(payload, (bytes, bytearray)) or len(payload) > MAX_MESSAGE_BYTES:
        return None
    try:
        if _tag_decoder.decode(payload).msg != "balances":
            return None
        req = _balances_decoder.decode(payload)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if len(req.request_id) > MAX_ID_LEN or not (req.account is None
                                                 or 0 < req.account < _INT63):
        return None
    return req


_admin_decoder = msgspec.json.Decoder(AdminCommand)
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")


def decode_admin_command(payload: object) -> AdminCommand | AdminReply:
    """An operator command, or the refusal to send back; never raises."""
    request_id = ""
    try:
        if not isinstance(payload, (bytes, bytearray)) or len(payload) > MAX_MESSAGE_BYTES:
            raise ValueError(f"an admin command is JSON of at most {MAX_MESSAGE_BYTES} bytes")
        try:
            peek = msgspec.json.decode(payload)
            if isinstance(peek, dict) and isinstance(peek.get("request_id"), str):
                request_id = peek["request_id"][:MAX_ID_LEN]
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            pass
        cmd = _admin_decoder.decode(payload)
        if cmd.symbol and not _SYMBOL.fullmatch(cmd.symbol):
            raise ValueError("symbol must be 1-64 of letters, digits, '_', '.', '-'")
        if cmd.coupon_date and not _ISO_DATE.fullmatch(cmd.coupon_date):
            raise ValueError("coupon_date must be an ISO date like 2026-12-15")
        if max(len(cmd.broker), len(cmd.eligibility), len(cmd.country), len(cmd.asset),
               len(cmd.amount)) > 64 or not (0 <= cmd.account < _INT63
                                              and 0 <= cmd.to_account < _INT63):
            raise ValueError("account fields: names of at most 64 characters, accounts "
                             "63-bit numbers")
        if max(len(cmd.transfer_id), len(cmd.shard)) > 64:
            raise ValueError("transfer_id and shard are at most 64 characters")
        if len(cmd.reason) > 200 or len(cmd.request_id) > MAX_ID_LEN:
            raise ValueError(f"reason is at most 200 characters, request_id {MAX_ID_LEN}")
        return cmd
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, ValueError) as exc:
        return AdminReply(request_id, False, f"refused: {str(exc)[:200]}")


def encode(obj: Any) -> bytes:
    """JSON bytes of any wire struct (or plain JSON value); a NewOrderSingle's
    ``expire_time`` as a UTCTimestamp."""
    if type(obj) is NewOrderSingle and type(obj.expire_time) is int:
        fields = _ASDICT(obj)
        fields["expire_time"] = utc_timestamp(obj.expire_time)
        obj = WireNewOrderSingle(**fields)
    return _encoder.encode(obj)


# ---------------------------------------------------------------------- order decoding
class _Peek(msgspec.Struct):
    """Lenient view used only after a strict decode failed: other fields are skipped.
    Raw, not Any: a symbol like 1e400 must not fail the peek as an out-of-range float."""
    cl_ord_id: msgspec.Raw = msgspec.Raw(b"null")
    symbol: msgspec.Raw = msgspec.Raw(b"null")


_peek_decoder = msgspec.json.Decoder(_Peek)
_PATH = re.compile(r" - at `(\$[^`]{0,80})`$")


def _peek(payload: bytes | bytearray | memoryview) -> tuple[str | None, str | None]:
    """Best-effort ClOrdID and symbol of a payload that failed strict decoding."""
    found: Mapping[str, str | None]
    try:
        p = _peek_decoder.decode(payload)
        found = {"cl_ord_id": _raw_str(p.cl_ord_id), "symbol": _raw_str(p.symbol)}
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None, None
    except RecursionError:
        # msgspec recurses even to skip a deeply nested member; scan the top level instead.
        found = _top_level_strings(bytes(payload), ("cl_ord_id", "symbol"))
    cl, sym = found.get("cl_ord_id"), found.get("symbol")
    cl = cl if valid_cl_ord_id(cl) else None
    sym = sym if isinstance(sym, str) and _SYMBOL.fullmatch(sym) else None
    return cl, sym


def _raw_str(raw: msgspec.Raw) -> str | None:
    """A Raw JSON member as a str if it is a JSON string, else None."""
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    return value if isinstance(value, str) else None


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def _top_level_strings(payload: bytes, wanted: tuple[str, ...]) -> dict[str, str]:
    """String members named in ``wanted`` of a top-level JSON object, found by one
    iterative scan (no recursion, so nesting depth cannot defeat it). Best effort: used
    only to name the order in a rejection of a payload that failed strict decoding."""
    out: dict[str, str] = {}
    depth, i, n = 0, 0, len(payload)
    expect, key = "", None              # at depth 1: key, colon, value or comma next
    while i < n:
        c = payload[i]
        if c == 0x22:                   # a string token: a key or a value
            m = _JSON_STRING.match(payload, i)
            if m is None:
                break
            i = m.end()
            if depth == 1:
                try:
                    text = msgspec.json.decode(m.group(0))
                except (msgspec.DecodeError, UnicodeDecodeError):
                    text = None
                if expect == "key":
                    key, expect = text, "colon"
                elif expect == "value":
                    if key in wanted and isinstance(text, str):
                        out.setdefault(key, text)
                    expect = "comma"
            continue
        if c in (0x7B, 0x5B):           # { [
            depth += 1
            if depth == 1:
                if c != 0x7B:
                    break               # not an object at the top
                expect = "key"
        elif c in (0x7D, 0x5D):         # } ]
            depth -= 1
            if depth == 1:
                expect = "comma"
            elif depth <= 0:
                break
        elif depth == 1 and c == 0x3A:  # :
            expect = "value"
        elif depth == 1 and c == 0x2C:  # ,
            expect = "key"
        elif depth == 1 and expect == "value" and c not in b" \t\r\n":
            expect = "comma"            # a number or a literal
        i += 1
    return out


def decode_order_message(payload: object) -> OrderMessage | DecodeError:
    """Strictly decode one order-entry message; never raises, whatever ``payload`` is."""
    try:
        return _decode(payload)
    except Exception as exc:                            # a bug here must not stop the gateway
        log.exception("order decoder fault")
        return DecodeError(_DECODER_FAULT, f"internal decoder error: {type(exc).__name__}")


def _decode(payload: object) -> OrderMessage | DecodeError:
    if isinstance(payload, str):
        payload = payload.encode("utf-8", "surrogatepass")
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        return DecodeError(_MALFORMED_JSON, f"payload must be bytes, not {type(payload).__name__}")
    if len(payload) > MAX_MESSAGE_BYTES:
        return DecodeError(_MESSAGE_TOO_LARGE, f"{len(payload)} bytes > {MAX_MESSAGE_BYTES}")
    try:
        msg = _decoder.decode(payload)
    except msgspec.ValidationError as exc:
        cl, sym = _peek(payload)
        text = str(exc)
        path = _PATH.search(text)
        return DecodeError(_INVALID_FIELD, text[:200], cl, sym, path.group(1) if path else None)
    except msgspec.DecodeError as exc:
        return DecodeError(_MALFORMED_JSON, str(exc)[:200])
    except UnicodeDecodeError as exc:
        # msgspec raises this (not DecodeError) for invalid UTF-8 inside a JSON string.
        return DecodeError(_MALFORMED_JSON, f"invalid UTF-8 in a string: {exc.reason}")
    except RecursionError:
        return DecodeError(_MALFORMED_JSON, "JSON nested too deeply")
    if isinstance(msg, WireNewOrderSingle):
        order = _engine_order(msg)
        if isinstance(order, DecodeError):
            return order
        msg = order
    problem = _check(msg)
    if problem is not None:
        field, text = problem
        return DecodeError(
            _INVALID_FIELD, text,
            msg.cl_ord_id if valid_cl_ord_id(msg.cl_ord_id) else None,
            msg.symbol if _SYMBOL.fullmatch(msg.symbol) else None, f"$.{field}")
    return msg


def _engine_order(wire: WireNewOrderSingle) -> NewOrderSingle | DecodeError:
    """The engine's NewOrderSingle of a wire one (``expire_time`` in nanoseconds), or
    why its ``expire_time`` string is not a UTCTimestamp."""
    fields = _ASDICT(wire)
    expire = wire.expire_time
    if type(expire) is str:
        try:
            fields["expire_time"] = parse_utc_timestamp(expire)
        except ValueError:
            return DecodeError(
                _INVALID_FIELD, "expire_time must be a UTC timestamp like "
                f"2026-12-02T18:00:00.123456789Z, got {expire[:40]!r}",
                wire.cl_ord_id if valid_cl_ord_id(wire.cl_ord_id) else None,
                wire.symbol if _SYMBOL.fullmatch(wire.symbol) else None, "$.expire_time")
    return NewOrderSingle(**fields)


def _check(msg: OrderMessage) -> tuple[str, str] | None:
    """Rules JSON types cannot say: identifier charsets and lengths, decimal strings, ranges.

    Returns ``(field, why)`` for the first broken rule. Business rules (known symbol, price
    present for a limit order, qty above the minimum, ...) are the engine's.
    """
    if not valid_cl_ord_id(msg.cl_ord_id):
        return "cl_ord_id", f"cl_ord_id must be 1-{MAX_ID_LEN} printable ASCII characters"
    if not _SYMBOL.fullmatch(msg.symbol):
        return "symbol", "symbol must be 1-64 of letters, digits, '_', '.', '-'"
    if isinstance(msg, (OrderCancelRequest, OrderCancelReplaceRequest)):
        if not valid_cl_ord_id(msg.orig_cl_ord_id):
            return ("orig_cl_ord_id",
                    f"orig_cl_ord_id must be 1-{MAX_ID_LEN} printable ASCII characters")
    if isinstance(msg, NewOrderSingle):
        if not 0 < msg.account < _INT63:
            return "account", "account must be a positive 63-bit integer"
        if msg.expire_time is not None and not 0 < msg.expire_time < _INT63:
            return "expire_time", ("expire_time must be a UTC timestamp after 1970 and "
                                   "before 2262, like 2026-12-02T18:00:00.123456789Z (or, "
                                   "deprecated, that many nanoseconds since 1970)")
        decimals: tuple[tuple[str, str | None], ...]
        decimals = (("qty", msg.qty), ("price", msg.price), ("min_qty", msg.min_qty))
    elif isinstance(msg, OrderCancelReplaceRequest):
        decimals = (("qty", msg.qty), ("price", msg.price))
    else:
        decimals = ()
    for name, value in decimals:
        if value is not None and not _DECIMAL.fullmatch(value):
            return name, (f"{name} must be a plain decimal string like '99.125' (at most 15 "
                          f"integer and 12 fraction digits), got {value[:40]!r}")
    return None

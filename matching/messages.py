"""Order entry and execution reports with FIX semantics: the engine's inputs and outputs.

Field names are FIX's in snake case (FIX tag in the comment), so a broker recognises
them; prices and quantities travel as decimal strings, never floats, and times as FIX
UTCTimestamp strings in UTC with nanoseconds (``utc_timestamp``): a 19-digit integer is
past what JavaScript and jq hold exactly. Only sequence numbers are integers. The same
structs are the JSON wire format of the MQTT gateway (feeds/codec.py).
"""
from __future__ import annotations

import calendar
import re
import time
from typing import Literal

import msgspec

__all__ = [
    "NewOrderSingle", "OrderCancelRequest", "OrderCancelReplaceRequest", "OrderMessage",
    "ExecutionReport", "OrderCancelReject", "EngineReport", "Admin", "JournalEntry",
    "Lifecycle", "CorporateAction", "LIFECYCLE_ACTIONS", "AccountInput",
    "ACCOUNT_ACTIONS", "AGENT_ACTIONS", "Balances", "AccountBalances", "AssetBalance",
    "OrderStatusRequest", "MassCancelRequest", "MassCancelReport", "MassCancelResponse",
    "SideName", "OrdTypeName", "TifName", "StpName", "ExecTypeName", "OrdStatusName",
    "CxlRejResponseTo", "utc_timestamp", "parse_utc_timestamp",
    "AuctionInput", "AUCTION_ACTIONS", "AuctionBidStatus", "AuctionAward", "AuctionResult",
]

SideName = Literal["buy", "sell"]                                    # FIX 54
OrdTypeName = Literal["limit", "market"]                             # FIX 40
TifName = Literal["day", "gtc", "ioc", "fok", "gtd", "gfa"]          # FIX 59 (gfa: 59=B)
StpName = Literal["none", "cancel_resting", "cancel_incoming", "cancel_both",
                  "decrement_and_cancel"]                            # FIX 2964-like
ExecTypeName = Literal["new", "trade", "canceled", "replaced", "rejected", "expired",
                       "restated", "order_status"]                   # FIX 150 (150=I)
OrdStatusName = Literal["new", "partially_filled", "filled", "canceled", "replaced",
                        "rejected", "expired"]                       # FIX 39
CxlRejResponseTo = Literal["cancel", "replace"]                      # FIX 434

_NS = 10**9
# The last second formatted and its prefix, one tuple so a reader never pairs a second
# with another second's prefix.
_stamp_cache: tuple[int, str] = (-1, "")


def utc_timestamp(ns: int) -> str:
    """FIX UTCTimestamp of ``ns`` nanoseconds since the epoch, in UTC with nanoseconds:
    ``2026-12-02T18:00:00.123456789Z``. The second's prefix is cached: the engine's inputs
    come in time order, so it is formatted about once a second (one string per input)."""
    global _stamp_cache
    second, nanos = divmod(ns, _NS)
    cached, prefix = _stamp_cache
    if second != cached:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
        _stamp_cache = (second, prefix)
    return f"{prefix}{nanos:09d}Z"


_UTC_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z")


def parse_utc_timestamp(text: str) -> int:
    """Nanoseconds since the epoch of a FIX UTCTimestamp (``utc_timestamp``'s format; 0 to
    9 fraction digits); ValueError if ``text`` is not one."""
    m = _UTC_TIMESTAMP.fullmatch(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"not a UTC timestamp like 2026-12-02T18:00:00.123456789Z: {text!r}")
    seconds = calendar.timegm(time.strptime(m[1], "%Y-%m-%dT%H:%M:%S"))
    return seconds * _NS + int((m[2] or "").ljust(9, "0"))


def _zero() -> str:
    # A factory, not a default: omit_defaults leaves a default value off the wire, and a
    # Rejected report must carry CumQty, LeavesQty and AvgPx (FIX) even when they are 0.
    return "0"


class NewOrderSingle(msgspec.Struct, tag_field="msg", tag="new_order", forbid_unknown_fields=True,
                     gc=False):
    """FIX 35=D. ``price`` is required for limit orders and ignored for market orders."""
    cl_ord_id: str                       # 11
    account: int                         # 1
    symbol: str                          # 55
    side: SideName                       # 54
    qty: str                             # 38, in tokens (decimal string)
    ord_type: OrdTypeName = "limit"      # 40
    price: str | None = None             # 44, per 100 face for bills and bonds
    time_in_force: TifName = "day"       # 59
    expire_time: int | None = None       # 126, ns since the epoch (GTD); on the wire a
    #                                      UTCTimestamp (feeds.codec.WireNewOrderSingle)
    post_only: bool = False              # 18=6 (participate, don't initiate)
    min_qty: str | None = None           # 110
    stp: StpName = "cancel_incoming"     # self-trade prevention mode
    poss_dup: bool = False               # 43 PossDupFlag: possibly sent before (a retry)


class OrderCancelRequest(msgspec.Struct, tag_field="msg", tag="cancel", forbid_unknown_fields=True,
                         gc=False):
    """FIX 35=F."""
    cl_ord_id: str                       # 11
    orig_cl_ord_id: str                  # 41
    symbol: str                          # 55
    poss_dup: bool = False               # 43 PossDupFlag


class OrderCancelReplaceRequest(msgspec.Struct, tag_field="msg", tag="replace",
                                forbid_unknown_fields=True, gc=False):
    """FIX 35=G. ``qty`` is the new total order quantity (FIX OrderQty), filled part included."""
    cl_ord_id: str                       # 11
    orig_cl_ord_id: str                  # 41
    symbol: str                          # 55
    price: str                           # 44
    qty: str                             # 38
    poss_dup: bool = False               # 43 PossDupFlag


OrderMessage = NewOrderSingle | OrderCancelRequest | OrderCancelReplaceRequest


class ExecutionReport(msgspec.Struct, tag_field="msg", tag="exec_report", omit_defaults=True,
                      gc=False):
    """FIX 35=8: one state change of one order, sent to the broker that owns it.
    ``gc=False``: only strings and ints inside, so no cycles; the engine keeps many for
    resends, and tracking them made each full GC pass stall the loop (~200 ms at 100k)."""
    exec_id: str                         # 17
    exec_type: ExecTypeName              # 150
    ord_status: OrdStatusName            # 39
    cl_ord_id: str                       # 11
    symbol: str                          # 55
    seq: int                             # engine sequence of the input that caused it
    transact_time: str                   # 60, UTCTimestamp (utc_timestamp)
    order_id: str = ""                   # 37 (empty when rejected before an id was given)
    orig_cl_ord_id: str | None = None    # 41
    account: int | None = None           # 1
    side: SideName | None = None         # 54
    price: str | None = None             # 44
    order_qty: str | None = None         # 38
    last_px: str | None = None           # 31
    last_qty: str | None = None          # 32
    # CumQty, LeavesQty and AvgPx are on every report (FIX), 0 with the instrument's
    # decimals when there is nothing (a plain "0" for an instrument that is not listed).
    cum_qty: str = msgspec.field(default_factory=_zero)      # 14
    leaves_qty: str = msgspec.field(default_factory=_zero)   # 151
    avg_px: str = msgspec.field(default_factory=_zero)       # 6, price decimals at least
    accrued_interest: str | None = None      # 159, cash of this fill
    settl_amount: str | None = None          # 119, cash of this fill incl. accrued
    yield_pct: str | None = None             # 236, the fill's yield in percent
    trade_id: str | None = None              # 1003
    liquidity: Literal["maker", "taker"] | None = None      # 851
    ord_rej_reason: str | None = None        # 103 (reason code name)
    text: str | None = None                  # 58, why, in words
    poss_resend: bool = False                # 97: a replay of an earlier outcome
    match_type: Literal["auction"] | None = None     # 574=7: a fill of a call auction
    commission: str | None = None            # 12, this fill's fee in the cash token
    comm_type: Literal["3"] | None = None    # 13, 3 = absolute (a cash amount)
    ord_status_req_id: str | None = None     # 790: the OrderStatusRequest answered (150=I)


class OrderCancelReject(msgspec.Struct, tag_field="msg", tag="cancel_reject",
                        omit_defaults=True, gc=False):
    """FIX 35=9: a cancel or replace the venue refused, sent to its sender; the order (if
    there is one) is as it was. ``ord_status`` is the order's status now (``rejected`` when
    no order of the sender's has that OrigClOrdID); ``cxl_rej_reason`` is a
    ``matching.errors.CancelReject`` code and ``text`` says why in words (for ``OTHER``,
    it starts with the rule's code, e.g. ``OUTSIDE_PRICE_BAND: ...``)."""
    cl_ord_id: str                       # 11, the cancel's or replace's own
    orig_cl_ord_id: str                  # 41
    symbol: str                          # 55
    ord_status: OrdStatusName            # 39, the order's current status
    cxl_rej_response_to: CxlRejResponseTo    # 434
    cxl_rej_reason: str                  # 102 (CancelReject code name)
    text: str                            # 58
    seq: int                             # engine sequence of the input that caused it
    transact_time: str                   # 60, UTCTimestamp
    order_id: str | None = None          # 37, when the order is known
    account: int | None = None           # 1, when the order is known
    poss_resend: bool = False            # 97: a replay of an earlier outcome


class CorporateAction(msgspec.Struct, tag_field="msg", tag="corporate_action",
                      omit_defaults=True, gc=False):
    """A coupon paid, or a redemption, to one account, sent to the account's broker.
    ``qty``: the tokens it was for (held at the record date for a coupon, burned for a
    redemption); ``amount``: the cash paid, in the cash token (a redemption's is
    ``principal`` + ``coupon``, the final coupon to the holder of record)."""
    action: Literal["coupon", "redemption"]
    symbol: str                          # 55
    account: int                         # 1
    qty: str
    amount: str
    record_date: str                     # ISO date (empty: a bill's redemption)
    payment_date: str                    # ISO date
    seq: int                             # engine sequence of the input that paid it
    transact_time: str                   # 60, UTCTimestamp
    principal: str | None = None
    coupon: str | None = None
    poss_resend: bool = False            # 97: a replay of an earlier outcome


class AssetBalance(msgspec.Struct, gc=False):
    """One asset of one account, in the asset's units: ``available`` = balance - reserved
    - frozen (what an order may reserve or a withdrawal take)."""
    asset: str                           # the cash token (USDC) or a symbol
    balance: str
    reserved: str
    frozen: str
    available: str


class AccountBalances(msgspec.Struct):
    """An account's assets, and the transfer agent's freezes on it (``frozen``: "*" for
    the whole account, else the symbols)."""
    account: int                         # 1
    assets: list[AssetBalance]
    frozen: list[str] = msgspec.field(default_factory=list)


class Balances(msgspec.Struct, tag_field="msg", tag="balances", omit_defaults=True):
    """The answer to a broker's balances query (its own accounts only), as of the state
    after input ``seq``; ``text`` says why none were given (an account not its own)."""
    request_id: str
    seq: int
    accounts: list[AccountBalances]
    text: str | None = None
    shard: str | None = None             # on a sharded venue: whose allocations these are


class OrderStatusRequest(msgspec.Struct, tag_field="msg", tag="order_status",
                         forbid_unknown_fields=True):
    """FIX 35=H: a broker asks the status of one of its orders, named by ClOrdID (any
    ClOrdID of its chain today) or OrderID. A query, not an input: answered with an
    ExecType=I report (``matching.order_status``), nothing journaled."""
    cl_ord_id: str = ""                  # 11
    order_id: str = ""                   # 37
    symbol: str = ""                     # 55, optional: must match the order's if given
    ord_status_req_id: str = ""          # 790, echoed on the answer


#: FIX 531 MassCancelResponse: what a mass cancel did (0 = Cancel Request Rejected; the
#: accepted ones name their scope: 1 by security, 7 all orders; "by account" is tokenbook's).
MassCancelResponse = Literal["rejected", "by_symbol", "by_account", "by_account_symbol",
                             "all_orders"]


class MassCancelRequest(msgspec.Struct, tag_field="msg", tag="mass_cancel",
                        forbid_unknown_fields=True, omit_defaults=True):
    """FIX 35=q: cancel every live order of the sending broker, narrowed to one
    ``account`` (1) and/or one ``symbol`` (55); 0 / "" widen. Journaled like an order
    (``matching.mass_cancel``); answered with a ``MassCancelReport`` and, per order, a
    canceled report with text MASS_CANCEL."""
    cl_ord_id: str                       # 11, the request's own, unique today
    account: int = 0                     # 1
    symbol: str = ""                     # 55
    poss_dup: bool = False               # 43 PossDupFlag


class MassCancelReport(msgspec.Struct, tag_field="msg", tag="mass_cancel_report",
                       omit_defaults=True, gc=False):
    """FIX 35=r: the answer to a MassCancelRequest. ``total_affected_orders`` (533) counts
    the orders it cancelled; a refused one has ``mass_cancel_response`` rejected and says
    why in ``mass_cancel_reject_reason`` (532, an ``EngineReject`` code) and ``text``."""
    cl_ord_id: str                       # 11
    mass_cancel_response: MassCancelResponse     # 531
    total_affected_orders: int           # 533
    seq: int                             # engine sequence of the input (0 refused: none)
    transact_time: str                   # 60
    account: int | None = None           # 1
    symbol: str | None = None            # 55
    mass_cancel_reject_reason: str | None = None    # 532
    text: str | None = None              # 58
    poss_resend: bool = False            # 97: a replay of an earlier outcome


#: What the engine sends one broker (``Outcome.reports``).
EngineReport = ExecutionReport | OrderCancelReject | CorporateAction | Balances | MassCancelReport


class Admin(msgspec.Struct, tag_field="msg", tag="admin", forbid_unknown_fields=True):
    """An operator input, journaled like orders: ``action`` in pre_open, open, halt, resume,
    close, expire, cancel_broker (every live order of ``broker``: cancel-on-disconnect),
    set_reference (``price``: the static band's new reference) or end_call (the timer's
    end of the calls that are due)."""
    action: str
    symbol: str = ""
    reason: str = ""
    broker: str = ""
    price: str = ""


#: The inputs of a security's life (matching.corporate), in the order a day applies them.
LIFECYCLE_ACTIONS = ("record", "pay_coupon", "mature", "redeem")


class Lifecycle(msgspec.Struct, tag_field="msg", tag="lifecycle", forbid_unknown_fields=True):
    """A lifecycle input of one instrument, journaled like a session action: ``record``
    (fix the holders of record of the coupon paid on ``coupon_date``), ``pay_coupon``,
    ``mature`` (end trading for good), ``redeem`` (burn every token, pay face and the
    final coupon). ``coupon_date``: an ISO date, the coupon's payment date."""
    action: str
    symbol: str
    coupon_date: str = ""
    reason: str = ""


#: The operator's account inputs and the transfer agent's controls (matching.accounts_admin).
ACCOUNT_ACTIONS = ("open_account", "close_account", "whitelist", "unwhitelist", "deposit",
                   "withdraw", "set_compliance")
AGENT_ACTIONS = ("freeze", "unfreeze", "forced_transfer", "recover", "pause", "unpause")


class AccountInput(msgspec.Struct, tag_field="msg", tag="account", forbid_unknown_fields=True,
                   omit_defaults=True):
    """An operator's account input or a transfer agent's control, journaled like a session
    action (``matching.accounts_admin`` says which fields each action takes). ``amount``:
    a decimal string in units of ``asset`` (the cash token, or a token's symbol), never
    a float; ``to_account``: the recipient of a forced transfer, the new account of a
    recovery; ``transfer_id``/``shard``: a cash transfer's leg (matching.transfers)."""
    action: str
    account: int = 0
    broker: str = ""
    eligibility: str = ""
    country: str = ""
    symbol: str = ""
    asset: str = ""
    amount: str = ""
    to_account: int = 0
    reason: str = ""
    #: A cash transfer between shards (matching.transfers): its idempotent id and the
    #: other shard (the payee of ``transfer_out``, the payer of ``transfer_in``).
    transfer_id: str = ""
    shard: str = ""
    #: ``set_compliance``: the instrument's new rules, the instruments TOML's keys
    #: (matching.compliance_rules; dates as ISO strings); empty: every rule off.
    compliance: dict[str, str | int | list[str]] = {}


class JournalEntry(msgspec.Struct, array_like=True):
    """What the journal keeps of one accepted input: enough to replay it exactly."""
    seq: int
    time: int
    broker: str
    msg: (NewOrderSingle | OrderCancelRequest | OrderCancelReplaceRequest | Admin | Lifecycle
          | AccountInput | AuctionInput | MassCancelRequest)


# ---------------------------------------------------------------------- primary market
#: The inputs of an issuance auction (matching.issuance), in the order an auction takes them.
AUCTION_ACTIONS = ("announce", "bid", "cancel_bid", "close", "issue")


class AuctionInput(msgspec.Struct, tag_field="msg", tag="auction", forbid_unknown_fields=True,
                   omit_defaults=True):
    """An issuance auction input, journaled (matching.issuance says which fields each
    action takes). The issuer/operator ``announce``s, ``close``s and ``issue``s; a broker
    ``bid``s and ``cancel_bid``s (``broker`` is set by the engine's caller from the
    authenticated sender, never from the payload). Amounts are face value in cash
    units and rates decimal strings (a yield in percent, a price per 100)."""
    action: str
    auction_id: str
    symbol: str = ""
    broker: str = ""
    account: int = 0
    bid_id: str = ""                      # the bidder's own id of its bid (like a ClOrdID)
    amount: str = ""                      # face value bid (bid) or offered (announce)
    rate: str = ""                        # competitive: yield % or price; "" for NC
    net_long: str = ""                    # the bidder's reported net long position (face)
    close_time: int = 0                   # ns since the epoch: bids stop at this time
    issue_date: str = ""                  # ISO date: the tokens are minted then
    method: str = "uniform"               # uniform (US single price) | multiple (SBP)
    basis: str = "yield"                  # yield | price (per 100 of face)
    competitive_accounts: list[int] = msgspec.field(default_factory=list)   # []: anyone
    nc_max: str = ""                      # NC cap per investor (face); "": no NC bids
    max_award_pct: str = "35"             # of the offering, less the reported net long
    limit: str = ""                       # acceptance limit: the worst rate taken
    nc_overflow: str = "pro_rata"         # NC above the offering: pro_rata | smallest_first
    nc_price: str = "100"                 # the price an NC bid's cash is reserved at
    issuer_account: int = 0               # receives the cash (0: the instrument's)
    reject_all: bool = False              # close: the issuer takes nothing (SBP)
    reason: str = ""
    # announce of a new issue: its [[instrument]] terms (instruments.toml's fields, dates
    # and decimals as strings); None: ``symbol`` is listed already (a reopening).
    instrument: dict[str, str | int | bool | list[str]] | None = None


class AuctionBidStatus(msgspec.Struct, tag_field="msg", tag="auction_bid", omit_defaults=True):
    """A bid's acknowledgement to its own broker only (bids are sealed): ``status``
    accepted, cancelled, rejected (``reason`` an EngineReject code) or released (its
    reservation given back at the close, ``reason`` an EngineCancel code)."""
    auction_id: str
    bid_id: str
    status: Literal["accepted", "cancelled", "rejected", "released"]
    seq: int
    transact_time: str
    symbol: str = ""                      # 55, the auction's instrument (when known)
    account: int | None = None
    amount: str | None = None
    rate: str | None = None
    reserved: str | None = None           # cash held for the bid
    reason: str | None = None
    text: str | None = None
    poss_resend: bool = False


class AuctionAward(msgspec.Struct, tag_field="msg", tag="auction_award", omit_defaults=True):
    """What one bid was awarded at the close, to its broker: ``amount`` face, ``price``
    per 100 (and its yield), ``cash`` due on ``issue_date`` (minted then)."""
    auction_id: str
    bid_id: str
    symbol: str
    account: int
    amount_bid: str
    amount: str
    price: str
    cash: str
    issue_date: str
    seq: int
    transact_time: str
    yield_pct: str | None = None
    poss_resend: bool = False


class AuctionResult(msgspec.Struct, tag_field="msg", tag="auction_result", omit_defaults=True):
    """The published result of an auction (retained on ``md/{symbol}/auction_result``):
    amounts face, rates in the bid basis, ``allotted_at_high`` in percent."""
    auction_id: str
    symbol: str
    method: str
    basis: str
    offering: str
    tendered_competitive: str
    tendered_noncompetitive: str
    accepted_competitive: str
    accepted_noncompetitive: str
    bid_to_cover: str
    issue_date: str
    seq: int
    status: Literal["closed", "issued", "rejected"]     # always on the wire
    high_rate: str | None = None
    low_rate: str | None = None
    median_rate: str | None = None
    high_price: str | None = None
    low_price: str | None = None
    median_price: str | None = None
    nc_price: str | None = None
    allotted_at_high: str | None = None
    interest_rate: str | None = None      # a new note's or bond's coupon, percent (356.20(b))

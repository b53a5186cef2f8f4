"""Every reject and cancel code the venue sends, one StrEnum per layer, each code with a
number in its layer's range and the text a broker reads.

A code's value is its wire name (``ord_rej_reason``, a cancel report's ``text``, or an
OrderCancelReject's ``cxl_rej_reason``); its ``number`` places it in a layer: 1-99 the
book's rejects (the core's own codes), 101-199 the book's cancel reasons (100 + the core's
code), 201-299 the engine's pre-trade and input rejects, 301-399 the wire decoder's,
400-499 the reasons of an OrderCancelReject (400 + FIX CxlRejReason), 501-599 the
cancels the engine makes itself. A name used by two layers (INVALID_QUANTITY in the book
and the engine, INVALID_FIELD in the engine and the codec, UNKNOWN_ORDER in the book and a
cancel reject) means the same rule broken, caught where it is first checkable. Number 217
(the engine's UNKNOWN_ORDER before cancel rejects were OrderCancelRejects) is retired.
``docs/engine-rules.md`` lists them all.
"""
from __future__ import annotations

from enum import StrEnum

__all__ = ["BookReject", "BookCancel", "EngineReject", "DecodeReject", "CancelReject",
           "EngineCancel", "EngineFault", "Rejection", "book_reject", "book_cancel", "LAYERS"]


class _Code(StrEnum):
    """A wire code: ``value`` is the name on the wire, ``number`` its place, ``text`` why."""
    number: int
    text: str

    def __new__(cls, name: str, number: int, text: str) -> _Code:
        member = str.__new__(cls, name)
        member._value_ = name
        member.number = number
        member.text = text
        return member


class BookReject(_Code):
    """A command the book refused whole (numbers are ``matching.constants.RejectReason``)."""
    UNKNOWN_ORDER = "UNKNOWN_ORDER", 1, "no live order with that id on the book"
    DUPLICATE_ORDER_ID = "DUPLICATE_ORDER_ID", 2, "the order id is already on the book"
    INVALID_ORDER_ID = "INVALID_ORDER_ID", 3, "the order id is not a positive 63-bit number"
    INVALID_QUANTITY = "INVALID_QUANTITY", 4, "the quantity is not a positive lot count"
    PRICE_OUT_OF_RANGE = "PRICE_OUT_OF_RANGE", 5, "the price is off the book's tick ladder"
    INVALID_SIDE = "INVALID_SIDE", 6, "the side is neither buy nor sell"
    INVALID_ORDER_TYPE = "INVALID_ORDER_TYPE", 7, "the order type is not limit or market"
    INVALID_TIME_IN_FORCE = "INVALID_TIME_IN_FORCE", 8, "the time in force is not known"
    INVALID_EXPIRE_TIME = "INVALID_EXPIRE_TIME", 9, "a GTD order needs a positive expiry"
    POST_ONLY_WOULD_TAKE = "POST_ONLY_WOULD_TAKE", 10, "a post-only order would have traded"
    INVALID_POST_ONLY = "INVALID_POST_ONLY", 11, "post-only needs a resting limit order"
    INVALID_MIN_QTY = "INVALID_MIN_QTY", 12, "min_qty is above the quantity"
    INVALID_STP_MODE = "INVALID_STP_MODE", 13, "the self-trade prevention mode is not known"
    INVALID_ACCOUNT = "INVALID_ACCOUNT", 14, "the account is not a 63-bit number"
    UNKNOWN_COMMAND = "UNKNOWN_COMMAND", 15, "the book has no such command"
    BOOK_FULL = "BOOK_FULL", 16, "the book's order pool is full"
    IMMEDIATE_IN_CALL = ("IMMEDIATE_IN_CALL", 17,
                         "IOC, FOK and min_qty need an execution now: a call only collects")
    POST_ONLY_IN_CALL = ("POST_ONLY_IN_CALL", 18,
                         "post-only needs continuous trading: a call has no maker or taker")
    AUCTION_ONLY = "AUCTION_ONLY", 19, "a good-for-auction order enters only during a call"
    NOT_IN_CALL = "NOT_IN_CALL", 20, "an uncross needs the book in a call"


class BookCancel(_Code):
    """Why the book took (part of) a live order off (numbers: 100 + ``CancelReason``)."""
    USER = "USER", 101, "cancelled at the owner's request"
    IOC_REMAINDER = "IOC_REMAINDER", 102, "the part of an IOC order that did not trade"
    FOK_NOT_FILLED = "FOK_NOT_FILLED", 103, "a FOK order that could not trade in full"
    MIN_QTY_NOT_MET = "MIN_QTY_NOT_MET", 104, "less than min_qty could trade at once"
    MARKET_REMAINDER = "MARKET_REMAINDER", 105, "the part of a market order left at the band"
    SELF_TRADE = "SELF_TRADE", 106, "it would have traded with its own account"
    EXPIRED = "EXPIRED", 107, "its time in force ran out (DAY at the close, GTD at expiry)"
    AUCTION_REMAINDER = ("AUCTION_REMAINDER", 108,
                         "a market or good-for-auction order left over after the uncross")


class EngineReject(_Code):
    """An input the engine refused before the book saw it (docs/engine-rules.md: the
    checks in the order they run)."""
    DUPLICATE_ORDER = ("DUPLICATE_ORDER", 201,
                       "the ClOrdID was already used today by this broker (FIX: Duplicate Order)")
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL", 202, "the instrument is not listed"
    MARKET_NOT_OPEN = ("MARKET_NOT_OPEN", 203,
                       "the instrument is not in continuous trading or a call")
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT", 204, "the account does not belong to the broker"
    NOT_WHITELISTED = "NOT_WHITELISTED", 205, "the account may not hold this token (KYC)"
    NOT_ELIGIBLE = "NOT_ELIGIBLE", 206, "the instrument is not for this investor class"
    INVALID_FIELD = "INVALID_FIELD", 207, "a field has a value FIX does not allow here"
    INVALID_QUANTITY = "INVALID_QUANTITY", 208, "the quantity is not a whole number of lots"
    BELOW_MIN_QTY = "BELOW_MIN_QTY", 209, "the quantity is below the instrument's minimum"
    INVALID_MIN_QTY = "INVALID_MIN_QTY", 210, "min_qty is not a lot count up to the quantity"
    MISSING_PRICE = "MISSING_PRICE", 211, "a limit order needs a price"
    INVALID_PRICE = "INVALID_PRICE", 212, "the price is not on the instrument's tick"
    OUTSIDE_PRICE_BAND = "OUTSIDE_PRICE_BAND", 213, "the price is outside the static band"
    INVALID_EXPIRE_TIME = "INVALID_EXPIRE_TIME", 214, "GTD needs an expiry in the future"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS", 215, "not enough available cash to reserve"
    INSUFFICIENT_TOKENS = "INSUFFICIENT_TOKENS", 216, "not enough available tokens to reserve"
    NOT_REPLACEABLE = "NOT_REPLACEABLE", 218, "only resting limit orders can be replaced"
    JOURNAL_UNAVAILABLE = ("JOURNAL_UNAVAILABLE", 219,
                           "the engine cannot persist inputs, so it takes none")
    ILLEGAL_TRANSITION = ("ILLEGAL_TRANSITION", 220,
                          "the trading-state table does not allow that session action now")
    INSTRUMENT_MATURED = ("INSTRUMENT_MATURED", 221,
                          "the instrument's last trading date has passed: it takes no orders")
    NOT_YET_ISSUED = ("NOT_YET_ISSUED", 222,
                      "a trade today would settle before the instrument's issue date")
    ENGINE_FAULT = ("ENGINE_FAULT", 223,
                    "an input failed inside the engine (a venue bug): it takes no more")
    LIFECYCLE_REFUSED = ("LIFECYCLE_REFUSED", 224,
                         "a lifecycle input (record, coupon, maturity, redemption) is not "
                         "due, already done, or not funded")
    VOLATILITY_INTERRUPTION = ("VOLATILITY_INTERRUPTION", 225,
                               "a FOK order would fill outside the dynamic or static band")
    ACCOUNT_FROZEN = ("ACCOUNT_FROZEN", 226,
                      "the transfer agent froze the account, or its dealings in this token")
    DUPLICATE_ACCOUNT = "DUPLICATE_ACCOUNT", 227, "an account with that id is open already"
    INVALID_AMOUNT = ("INVALID_AMOUNT", 228,
                      "an amount is not positive, or finer than the asset's smallest unit")
    ACCOUNT_NOT_EMPTY = ("ACCOUNT_NOT_EMPTY", 229,
                         "the account still holds, reserves or has frozen something")
    NOT_FROZEN = "NOT_FROZEN", 230, "less is frozen than the unfreeze names"
    ORDER_NOT_FOUND = ("ORDER_NOT_FOUND", 231,
                       "the broker has no order with that ClOrdID or OrderID today")
    DUPLICATE_REQUEST = ("DUPLICATE_REQUEST", 232,
                         "a mass cancel's ClOrdID was already used today by this broker")
    # The primary market (matching.issuance): 240-254.
    UNKNOWN_AUCTION = "UNKNOWN_AUCTION", 240, "no issuance auction has that id"
    AUCTION_EXISTS = ("AUCTION_EXISTS", 241,
                      "that auction id is taken, or the instrument has an auction pending")
    INVALID_AUCTION_TERMS = ("INVALID_AUCTION_TERMS", 242,
                             "an announcement's term is missing or out of range")
    AUCTION_CLOSED = "AUCTION_CLOSED", 243, "the auction's bidding close time has passed"
    AUCTION_NOT_DUE = ("AUCTION_NOT_DUE", 244,
                       "the close before the close time, or the issue before the issue date")
    AUCTION_STATE = ("AUCTION_STATE", 245,
                     "the auction is not in the state that input needs (closed, issued)")
    NOT_COMPETITIVE_BIDDER = ("NOT_COMPETITIVE_BIDDER", 246,
                              "the account may not bid competitively in this auction")
    ABOVE_NC_CAP = ("ABOVE_NC_CAP", 247,
                    "a non-competitive bid above the announced cap per investor")
    DUPLICATE_NC_BID = ("DUPLICATE_NC_BID", 248,
                        "the investor already has a non-competitive bid in this auction")
    DUPLICATE_BID = "DUPLICATE_BID", 249, "the broker already used that bid id in this auction"
    INVALID_BID = ("INVALID_BID", 250,
                   "the amount is not whole lots, or the rate is missing or off its unit")
    UNKNOWN_BID = "UNKNOWN_BID", 251, "the broker has no live bid with that id in the auction"
    AUCTION_UNFUNDED = ("AUCTION_UNFUNDED", 252,
                        "an award would cost more than its bid reserved and the bidder has")
    # 255-269: compliance rules and retail limits (matching.compliance).
    MAX_BALANCE = ("MAX_BALANCE", 255,
                   "a buy would take the account's tokens held plus open buys above the "
                   "instrument's maximum balance")
    MAX_HOLDERS = ("MAX_HOLDERS", 256,
                   "a buy from a non-holder would take the instrument past its maximum "
                   "number of holders")
    COUNTRY_NOT_ALLOWED = ("COUNTRY_NOT_ALLOWED", 257,
                           "the account's country may not buy this instrument (allow or "
                           "deny list, or no country on file)")
    LOCKED_UP = "LOCKED_UP", 258, "the instrument is in its lock-up: no sell before the date"
    MAX_ORDER_NOTIONAL = ("MAX_ORDER_NOTIONAL", 259,
                          "a retail order's notional is above the instrument's retail maximum")
    MAX_POSITION = ("MAX_POSITION", 260,
                    "a retail buy would take tokens held plus open buys above the retail "
                    "maximum position")
    DAILY_BUY_LIMIT = ("DAILY_BUY_LIMIT", 261,
                       "a retail buy would take today's bought plus open buy notional above "
                       "the daily buy limit")
    INVALID_ISSUE_TERMS = ("INVALID_ISSUE_TERMS", 253,
                           "a new issue's instrument terms are missing, unknown or out of range")
    SYMBOL_LISTED = ("SYMBOL_LISTED", 254,
                     "a new issue's symbol or ISIN is listed or announced already")
    # 275-284: shards (matching.transfers, feeds.shard).
    DUPLICATE_TRANSFER = ("DUPLICATE_TRANSFER", 275,
                          "this leg of the cash transfer is applied already (idempotent)")
    TRANSFER_CONFLICT = ("TRANSFER_CONFLICT", 276,
                         "the transfer id was used with another account, amount or shard")
    INVALID_TRANSFER = ("INVALID_TRANSFER", 277,
                        "a cash transfer needs a transfer id, cash and another shard")
    WRONG_SHARD = ("WRONG_SHARD", 278,
                   "no shard of this venue serves the symbol of the v2 order topic")
    # 270-274: call auctions (matching/auction.py, matching/call_end.py).
    INVALID_REFERENCE = ("INVALID_REFERENCE", 270,
                         "set_reference needs one listed, tradable instrument and a price "
                         "on its tick grid and ladder")
    CALL_NOT_DUE = ("CALL_NOT_DUE", 271,
                    "end_call: no call of the instrument(s) has reached its timed end")


class DecodeReject(_Code):
    """A message that never became an input: it did not decode (feeds/codec.py)."""
    MESSAGE_TOO_LARGE = "MESSAGE_TOO_LARGE", 301, "the payload is over the size limit"
    MALFORMED_JSON = "MALFORMED_JSON", 302, "the payload is not a JSON object"
    INVALID_FIELD = "INVALID_FIELD", 303, "a field is missing, unknown or of the wrong type"
    DECODER_FAULT = "DECODER_FAULT", 304, "the decoder failed on this payload (a venue bug)"
    # Broker queries over MQTT 5 request/response (feeds.requests).
    NO_RESPONSE_TOPIC = ("NO_RESPONSE_TOPIC", 305,
                         "a request needs an MQTT 5 Response Topic to be answered on")
    RESPONSE_TOPIC_NOT_OWN = ("RESPONSE_TOPIC_NOT_OWN", 306,
                              "a request's Response Topic must be under "
                              "tokenbook/v1/replies/{broker}/ (the sender's own)")
    NOT_A_QUERY = ("NOT_A_QUERY", 307,
                   "the requests topic takes queries (balances, order_status); orders and "
                   "mass cancels go on the orders topic")


class CancelReject(_Code):
    """Why a cancel or replace was refused: an OrderCancelReject's ``cxl_rej_reason``
    (numbers: 400 + FIX CxlRejReason, tag 102)."""
    TOO_LATE_TO_CANCEL = ("TOO_LATE_TO_CANCEL", 400,
                          "the order is already done (filled, canceled, expired or rejected)")
    UNKNOWN_ORDER = ("UNKNOWN_ORDER", 401,
                     "the sender has no order with that OrigClOrdID on that symbol today")
    DUPLICATE_CL_ORD_ID = ("DUPLICATE_CL_ORD_ID", 406,
                           "the request's ClOrdID was already used today by this broker")
    OTHER = ("OTHER", 499,
             "a replace broke a rule of its own: the text starts with that rule's code")


class EngineCancel(_Code):
    """Why the engine itself took a live order off (a canceled report's ``text``)."""
    CANCEL_ON_DISCONNECT = ("CANCEL_ON_DISCONNECT", 501,
                            "its broker's connection dropped (cancel-on-disconnect)")
    MATURED = "MATURED", 502, "its instrument matured (the mature input expires every order)"
    FROZEN = "FROZEN", 503, "the transfer agent froze its account (or its dealings in the token)"
    RECOVERED = ("RECOVERED", 504,
                 "the transfer agent recovered its account into another (a lost account)")
    MASS_CANCEL = ("MASS_CANCEL", 505,
                   "its broker's mass cancel (FIX 35=q) named it")
    # The primary market (matching.issuance): 510-514.
    BID_NOT_ACCEPTED = ("BID_NOT_ACCEPTED", 510,
                        "an auction bid got nothing (past the stop-out or the limit)")
    AUCTION_REJECTED = ("AUCTION_REJECTED", 511,
                        "the issuer took no bid of the auction (SBP: a tenor rejected whole)")


#: Every layer, with its number range.
LAYERS: tuple[tuple[type[_Code], range], ...] = (
    (BookReject, range(1, 100)), (BookCancel, range(101, 200)),
    (EngineReject, range(201, 300)), (DecodeReject, range(301, 400)),
    (CancelReject, range(400, 500)), (EngineCancel, range(501, 600)),
)

_BOOK_REJECTS = {m.number: m for m in BookReject}
_BOOK_CANCELS = {m.number - 100: m for m in BookCancel}


def book_reject(code: int) -> BookReject:
    """The wire code of a core reject code (``RejectReason``); KeyError for an unknown one."""
    return _BOOK_REJECTS[code]


def book_cancel(code: int) -> BookCancel:
    """The wire code of a core cancel reason (``CancelReason``); KeyError for an unknown one."""
    return _BOOK_CANCELS[code]


class Rejection(Exception):
    """An input refused before the book: ``reason`` is its code, ``text`` the why in words."""

    def __init__(self, reason: str, text: str):
        super().__init__(text)
        self.reason = reason
        self.text = text



class EngineFault(RuntimeError):
    """An input raised inside the engine after it was journaled: a venue bug, never a
    business reject. The engine takes no more inputs (``ENGINE_FAULT``); tests fail on it
    and the gateway stops accepting with the reason."""

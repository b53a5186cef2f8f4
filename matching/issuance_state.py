"""The state of an issuance auction (``matching.issuance``): the auction as announced and
its live bids, snapshotted as plain arrays and part of the engine's state hash."""
from __future__ import annotations

import msgspec

from matching.messages import AuctionResult

__all__ = ["AuctionState", "BidState"]


class BidState(msgspec.Struct, array_like=True):
    """One live bid: ``ref`` its ledger reservation (negative: never an order id)."""
    ref: int
    broker: str
    account: int
    bid_id: str
    lots: int
    rate: int | None
    net_long: int
    reserved: int
    awarded: int = 0            # lots, after the close
    cash: int = 0               # due at the issue, after the close


class AuctionState(msgspec.Struct, array_like=True):
    """One auction as announced, with its bids; ``status`` open, closed, issued, rejected."""
    auction_id: str
    symbol: str
    offering: int
    method: str
    basis: str
    close_time: int
    issue_date: str
    competitive: list[int]
    nc_max: int
    max_award_bp: int
    limit: int | None
    nc_overflow: str
    nc_price: str
    issuer: int
    status: str = "open"
    bids: list[BidState] = msgspec.field(default_factory=list)
    result: AuctionResult | None = None

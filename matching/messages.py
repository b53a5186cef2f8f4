"""Order entry and execution reports with FIX semantics: the engine's inputs and outputs.

Field names are FIX's in snake case (FIX tag in the comment), so a broker recognises
them; prices and quantities travel as decimal strings, never floats. The same structs
are the JSON wire format of the MQTT gateway (feeds/codec.py).
"""
from __future__ import annotations

from typing import Literal

import msgspec

__all__ = [
    "NewOrderSingle", "OrderCancelRequest", "OrderCancelReplaceRequest", "OrderMessage",
    "ExecutionReport", "Admin", "JournalEntry", "SideName", "OrdTypeName", "TifName", "StpName",
    "ExecTypeName", "OrdStatusName",
]

SideName = Literal["buy", "sell"]                                    # FIX 54
OrdTypeName = Literal["limit", "market"]                             # FIX 40
TifName = Literal["day", "gtc", "ioc", "fok", "gtd"]                 # FIX 59
StpName = Literal["none", "cancel_resting", "cancel_incoming", "cancel_both",
                  "decrement_and_cancel"]                            # FIX 2964-like
ExecTypeName = Literal["new", "trade", "canceled", "replaced", "rejected", "expired",
                       "restated"]                                   # FIX 150
OrdStatusName = Literal["new", "partially_filled", "filled", "canceled", "replaced",
                        "rejected", "expired"]                       # FIX 39


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
    expire_time: int | None = None       # 126, ns since the epoch (GTD)
    post_only: bool = False              # 18=6 (participate, don't initiate)
    min_qty: str | None = None           # 110
    stp: StpName = "cancel_incoming"     # self-trade prevention mode


class OrderCancelRequest(msgspec.Struct, tag_field="msg", tag="cancel", forbid_unknown_fields=True,
                         gc=False):
    """FIX 35=F."""
    cl_ord_id: str                       # 11
    orig_cl_ord_id: str                  # 41
    symbol: str                          # 55


class OrderCancelReplaceRequest(msgspec.Struct, tag_field="msg", tag="replace",
                                forbid_unknown_fields=True, gc=False):
    """FIX 35=G. ``qty`` is the new total order quantity (FIX OrderQty), filled part included."""
    cl_ord_id: str                       # 11
    orig_cl_ord_id: str                  # 41
    symbol: str                          # 55
    price: str                           # 44
    qty: str                             # 38


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
    transact_time: int                   # 60, ns since the epoch
    order_id: str = ""                   # 37 (empty when rejected before an id was given)
    orig_cl_ord_id: str | None = None    # 41
    account: int | None = None           # 1
    side: SideName | None = None         # 54
    price: str | None = None             # 44
    order_qty: str | None = None         # 38
    last_px: str | None = None           # 31
    last_qty: str | None = None          # 32
    cum_qty: str = "0"                   # 14
    leaves_qty: str = "0"                # 151
    avg_px: str | None = None            # 6
    accrued_interest: str | None = None      # 159, cash of this fill
    settl_amount: str | None = None          # 119, cash of this fill incl. accrued
    yield_pct: str | None = None             # 236, the fill's yield in percent
    trade_id: str | None = None              # 1003
    liquidity: Literal["maker", "taker"] | None = None      # 851
    ord_rej_reason: str | None = None        # 103 (reason code name)
    text: str | None = None                  # 58, why, in words
    poss_resend: bool = False                # 97: a replay of an earlier outcome


class Admin(msgspec.Struct, tag_field="msg", tag="admin", forbid_unknown_fields=True):
    """An operator input, journaled like orders: ``action`` in pre_open, open, halt, resume,
    close, expire, or cancel_broker (every live order of ``broker``: cancel-on-disconnect)."""
    action: str
    symbol: str = ""
    reason: str = ""
    broker: str = ""


class JournalEntry(msgspec.Struct, array_like=True):
    """What the journal keeps of one accepted input: enough to replay it exactly."""
    seq: int
    time: int
    broker: str
    msg: NewOrderSingle | OrderCancelRequest | OrderCancelReplaceRequest | Admin

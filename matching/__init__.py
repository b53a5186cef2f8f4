"""tokenbook: price-time-priority matching for tokenized sovereign debt.

The compiled book is ``matching._core.Book``; its plain-Python twin is
``matching.reference.ReferenceBook``; both keep docs/matching-rules.md.
"""
from matching.constants import (
    AmendPriority,
    CancelReason,
    EventType,
    Op,
    OrdType,
    RejectReason,
    Side,
    StpMode,
    TimeInForce,
)
from matching.records import COMMAND_DTYPE, EVENT_DTYPE, Event

__all__ = [
    "AmendPriority", "CancelReason", "EventType", "Op", "OrdType", "RejectReason", "Side",
    "StpMode", "TimeInForce", "COMMAND_DTYPE", "EVENT_DTYPE", "Event",
]
#: The one version number: pyproject.toml reads it (dynamic version); see CHANGELOG.md.
__version__ = "0.1.0"

"""ClOrdID memory: which ClOrdIDs a broker used today, and what each input told its sender.

FIX makes a ClOrdID unique per broker and trading day. ``orders`` maps every used
``(broker, ClOrdID)`` to the order it named (an order keeps all its ClOrdIDs: the first,
each cancel's and each replace's), so a second use is refused DUPLICATE_CL_ORD_ID.
``outcomes`` keeps, for the last ``window`` inputs, the reports their sender got: a resend
of one of them (a client retry) is answered with those reports again, never entered
twice. Keys and reports are untracked tuples (``matching._gc``), so the collector never
walks them however many are kept.
"""
from __future__ import annotations

from matching._gc import untracked

__all__ = ["ClOrdIdMemory"]


class ClOrdIdMemory:
    """The ClOrdIDs of one trading day and the resend outcomes of the last ``window`` inputs."""

    def __init__(self, window: int):
        self.window = window
        self.orders: dict[tuple[str, str], int] = {}
        self.outcomes: dict[tuple[str, str], tuple] = {}
        # Remembered keys by input number, oldest first: a dict of untracked tuples is
        # out of the collector's walk (a deque would be walked whole by every full one).
        self._order: dict[int, tuple[str, str]] = {}
        self._first = 0
        self._next = 0

    def told(self, broker: str, cl_ord_id: str):
        """What the input ``(broker, cl_ord_id)`` told its sender, or None if not kept."""
        return self.outcomes.get((broker, cl_ord_id))

    def used(self, broker: str, cl_ord_id: str) -> bool:
        """Whether ``broker`` already used ``cl_ord_id`` today for an order it named."""
        return (broker, cl_ord_id) in self.orders

    def order_of(self, broker: str, cl_ord_id: str):
        """The order id ``(broker, cl_ord_id)`` named, or None."""
        return self.orders.get((broker, cl_ord_id))

    def bind(self, broker: str, cl_ord_id: str, order_id: int) -> None:
        """``cl_ord_id`` now names ``order_id`` (a new order, or its cancel or replace)."""
        self.orders[untracked((broker, cl_ord_id))] = order_id

    def remember(self, broker: str, cl_ord_id: str, reports: tuple) -> None:
        """Keep an input's outcome for resends, forgetting the oldest past the window
        (by input count, so a replay forgets exactly what the live run forgot)."""
        key = untracked((broker, cl_ord_id))
        self.outcomes[key] = untracked(reports)
        order = self._order
        order[self._next] = key
        self._next += 1
        while len(order) > self.window:
            del self.outcomes[order.pop(self._first)]
            self._first += 1

    def end_of_day(self, live) -> None:
        """The trading day ended: forget the ClOrdIDs of orders not in ``live`` (a broker
        may use them again tomorrow) with their outcomes; a live GTC/GTD order keeps its
        ClOrdIDs (tomorrow's cancel or replace names them) and their outcomes."""
        self.orders = {k: oid for k, oid in self.orders.items() if oid in live}
        kept = self.orders
        self.outcomes = {k: v for k, v in self.outcomes.items() if k in kept}
        self._reorder()

    def _reorder(self) -> None:
        """The remembered keys' order from ``outcomes`` (its insertion order is theirs)."""
        self._order = dict(enumerate(self.outcomes))
        self._first, self._next = 0, len(self._order)

    def snapshot(self) -> tuple[list, list]:
        """``(orders, outcomes)`` as rows, oldest outcome first."""
        return ([[b, c, oid] for (b, c), oid in self.orders.items()],
                [[b, c, rs] for (b, c), rs in self.outcomes.items()])

    def restore(self, orders: list, outcomes: list, convert) -> None:
        """From ``snapshot()`` rows; ``convert`` turns a stored report list back into
        ExecutionReports."""
        self.orders = {untracked((b, c)): oid for b, c, oid in orders}
        self.outcomes = {untracked((b, c)): untracked(tuple(convert(rs)))
                         for b, c, rs in outcomes}
        self._reorder()

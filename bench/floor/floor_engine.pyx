# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""An experiment, not product code: how fast can an engine be that still makes the
outputs issue 4 asks for (a FIX ExecutionReport struct per report, level changes, trade
prints, an Outcome per input, resend memory, the journal) when everything else is C?

It keeps orders and balances as C records and does only what the benchmark flow needs:
no trading-state, ownership, whitelist, eligibility or minimum checks, no AvgPx, no
reservation resizing, one instrument, limit GTC/IOC orders and cancels. Whatever it
costs, the real engine with its checks costs more: its figure is a floor, not a goal.
Run it with ``python -m bench.floor``.
"""
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from collections import deque

from matching.engine import _JOURNAL_ENCODER, JournalEntry, LevelChange, Outcome, TradePrint
from matching.messages import ExecutionReport, NewOrderSingle

from matching.constants import EventType, OrdType, TimeInForce

# The project's codes, as C values.
cdef int64_t EV_ACCEPTED = EventType.ACCEPTED
cdef int64_t EV_TRADE = EventType.TRADE
cdef int64_t EV_LEVEL = EventType.LEVEL
cdef int64_t ORD_LIMIT = OrdType.LIMIT
cdef int64_t TIF_GTC = TimeInForce.GTC
cdef int64_t TIF_IOC = TimeInForce.IOC


cdef struct Ord:
    int64_t account
    int64_t side
    int64_t price
    int64_t qty
    int64_t cum
    int64_t leaves


cdef class FloorEngine:
    cdef Ord* orders
    cdef int64_t* cash
    cdef int64_t* cash_held
    cdef int64_t* tokens
    cdef int64_t* tokens_held
    cdef Py_ssize_t n_accounts
    cdef dict by_clordid, outcomes, lots, ticks, qty_str
    cdef list cl_ord_ids, brokers, id_strs, reports, levels, trades
    cdef object remembered, journal, economics, conv, symbol
    cdef public object book
    cdef int64_t band_lo, band_hi, wa, wb, wd, now, next_exec_id, next_trade_id
    cdef public int64_t seq, next_order_id
    cdef bint records

    def __cinit__(self, book, journal, economics, conv, str symbol, Py_ssize_t n_orders,
                  Py_ssize_t n_accounts, int64_t band_lo, int64_t band_hi, int64_t now,
                  bint records=False):
        self.orders = <Ord*>malloc((n_orders + 1) * sizeof(Ord))
        self.cash = <int64_t*>malloc((n_accounts + 1) * sizeof(int64_t))
        self.cash_held = <int64_t*>malloc((n_accounts + 1) * sizeof(int64_t))
        self.tokens = <int64_t*>malloc((n_accounts + 1) * sizeof(int64_t))
        self.tokens_held = <int64_t*>malloc((n_accounts + 1) * sizeof(int64_t))
        if not (self.orders and self.cash and self.cash_held and self.tokens
                and self.tokens_held):
            raise MemoryError()
        self.n_accounts = n_accounts
        for a in range(n_accounts + 1):
            self.cash[a] = 10**16
            self.tokens[a] = 10**12
            self.cash_held[a] = self.tokens_held[a] = 0
        self.by_clordid, self.outcomes = {}, {}
        self.lots, self.ticks, self.qty_str = {}, {}, {}
        self.cl_ord_ids = [None] * (n_orders + 1)
        self.brokers = [None] * (n_orders + 1)
        self.id_strs = [None] * (n_orders + 1)
        self.remembered = deque()
        self.book, self.journal, self.economics, self.conv = book, journal, economics, conv
        self.symbol = symbol
        self.band_lo, self.band_hi = band_lo, band_hi
        self.wa, self.wb, self.wd = economics._wc
        self.now = now
        # records: reports, levels and trades as plain tuples of ints, as if FIX strings
        # and structs were made only at the gateway's edge (the other contract).
        self.records = records
        self.seq = 0
        self.next_order_id = self.next_exec_id = self.next_trade_id = 1

    def __dealloc__(self):
        free(self.orders)
        free(self.cash)
        free(self.cash_held)
        free(self.tokens)
        free(self.tokens_held)

    def balances(self):
        """(cash, tokens) summed over accounts: trading must conserve both."""
        return (sum(self.cash[a] for a in range(self.n_accounts + 1)),
                sum(self.tokens[a] for a in range(self.n_accounts + 1)))

    def submit(self, str broker, m):
        key = (broker, m.cl_ord_id)
        if key in self.outcomes:
            return None
        self.seq += 1
        if self.journal is not None:
            self.journal.append(self.seq, _JOURNAL_ENCODER.encode(
                JournalEntry(self.seq, self.now, broker, m)))
        out = Outcome(self.seq, [], [], [], False)
        self.reports, self.levels, self.trades = out.reports, out.levels, out.trades
        if type(m) is NewOrderSingle:
            self._new(broker, m, key)
        else:
            self._cancel(broker, m, key)
        self.outcomes[key] = tuple([r for b, r in self.reports if b == broker])
        self.remembered.append(key)
        return out

    cdef str _qty(self, int64_t lots):
        s = self.qty_str.get(lots)
        if s is None:
            s = self.qty_str[lots] = self.conv.qty(lots)
        return s

    cdef _report(self, int64_t oid, str exec_type, str status, last_px, last_qty):
        cdef Ord* o = &self.orders[oid]
        eid = self.next_exec_id
        self.next_exec_id += 1
        if self.records:
            self.reports.append((self.brokers[oid], (eid, exec_type, status, oid, o.cum,
                                                     o.leaves, last_px, last_qty)))
            return
        self.reports.append((self.brokers[oid], ExecutionReport(
            f"E{eid}", exec_type, status, self.cl_ord_ids[oid], self.symbol, self.seq,
            self.now, self.id_strs[oid], None, o.account, "buy" if o.side == 1 else "sell",
            self.conv.price(o.price), self._qty(o.qty), last_px, last_qty, self._qty(o.cum),
            self._qty(o.leaves), None, None, None, None, None, None, None, None)))

    cdef _new(self, str broker, m, key):
        cdef int64_t lots, ticks, side, oid, account, need
        if key in self.by_clordid:
            return
        account = m.account
        lots = self.lots.get(m.qty, -1)
        if lots < 0:
            lots = self.lots[m.qty] = self.conv.to_lots(m.qty)
        ticks = self.ticks.get(m.price, -1)
        if ticks < 0:
            ticks = self.ticks[m.price] = self.conv.to_ticks(m.price)
        if not self.band_lo <= ticks <= self.band_hi:
            return
        side = 1 if m.side == "buy" else 2
        if side == 1:
            # Economics.worst_case_cash, in C: ceil(lots * ((A*t + B)/D + 1/2)).
            need = -(-(lots * (2 * (self.wa * ticks + self.wb) + self.wd)) // (2 * self.wd))
            if need > self.cash[account] - self.cash_held[account]:
                return
            self.cash_held[account] += need
        else:
            need = lots
            if need > self.tokens[account] - self.tokens_held[account]:
                return
            self.tokens_held[account] += need
        oid = self.next_order_id
        self.next_order_id += 1
        cdef Ord* o = &self.orders[oid]
        o.account, o.side, o.price, o.qty, o.cum, o.leaves = account, side, ticks, lots, 0, lots
        self.cl_ord_ids[oid] = m.cl_ord_id
        self.brokers[oid] = broker
        self.id_strs[oid] = str(oid)
        self.by_clordid[key] = oid
        self.book.new_order(oid, side, ticks, lots, ORD_LIMIT,
                            TIF_GTC if m.time_in_force == "gtc" else TIF_IOC,
                            account, 0, False, 0, 0)
        self._handle(self.book.take_event_rows())

    cdef _cancel(self, str broker, m, key):
        oid = self.by_clordid.get((broker, m.orig_cl_ord_id))
        if oid is None or self.orders[<int64_t>oid].leaves == 0:
            eid = self.next_exec_id
            self.next_exec_id += 1
            self.reports.append((broker, ExecutionReport(
                f"E{eid}", "rejected", "rejected", m.cl_ord_id, self.symbol, self.seq,
                self.now, "", m.orig_cl_ord_id, None, None, None, None, None, None, "0", "0",
                None, None, None, None, None, None, "UNKNOWN_ORDER",
                f"no live order {m.orig_cl_ord_id!r} on {m.symbol}")))
            return
        self.by_clordid[key] = oid
        self.cl_ord_ids[oid] = m.cl_ord_id
        self.book.cancel(oid)
        self._handle(self.book.take_event_rows())

    cdef _handle(self, list events):
        cdef int64_t t, oid, other, px, q, amount
        cdef Ord* o
        cdef Ord* maker
        cdef Ord* buyer
        cdef Ord* seller
        for e in events:
            t = e[1]
            if t == EV_LEVEL:
                px, q = e[6], e[7]
                if self.records:
                    self.levels.append((e[2], px, q, e[8]))
                    continue
                self.levels.append(LevelChange(self.symbol, "buy" if e[2] == 1 else "sell",
                                               self.conv.price(px), self._qty(q), e[8], px, q))
                continue
            oid = e[4]
            o = &self.orders[oid]
            if t == EV_ACCEPTED:
                self._report(oid, "new", "new", None, None)
            elif t == EV_TRADE:
                other, px, q = e[5], e[6], e[7]
                maker = &self.orders[other]
                fill = self.economics.fill_parts(px, q, self.now)
                amount = fill[5]
                buyer, seller = (o, maker) if o.side == 1 else (maker, o)
                # DvP in one step: cash buyer -> seller, tokens seller -> buyer.
                self.cash[buyer.account] -= amount
                self.cash_held[buyer.account] -= amount
                self.cash[seller.account] += amount
                self.tokens[seller.account] -= q
                self.tokens_held[seller.account] -= q
                self.tokens[buyer.account] += q
                o.cum += q
                o.leaves -= q
                maker.cum += q
                maker.leaves -= q
                self._report(other, "trade", "filled" if maker.leaves == 0 else
                             "partially_filled", fill[0], fill[1])
                self._report(oid, "trade", "filled" if o.leaves == 0 else "partially_filled",
                             fill[0], fill[1])
                if self.records:
                    self.trades.append((self.next_trade_id, px, q, o.side, fill))
                else:
                    self.trades.append(TradePrint(
                        self.symbol, f"T{self.next_trade_id}", self.seq, self.now, fill[0],
                        fill[1], px, q, "buy" if o.side == 1 else "sell", fill[6]))
                self.next_trade_id += 1
            else:
                o.leaves = 0
                self._report(oid, "canceled", "canceled", None, None)

"""The gateway's cycle, sans-I/O: a batch of inbound MQTT messages in, what may be published out.

``GatewayCycle.process(batch, now_ns)`` decodes every message (order entry, operator
commands, presence) and hands it to the engine in arrival order, adds the timetable's
boundaries and the GTD expiry due at ``now_ns``, group-commits the journal once, and only
then stages the cycle's execution reports, trades, coalesced depth, operator replies and
new trading states in the outbox; it returns what may be published now. Nothing is
dropped: a message that does not decode gets a Rejected report on its sender's exec topic;
one whose topic names no broker is counted and logged. A refused cancel or replace is an
OrderCancelReject on the same topic (counted with the rejects, by its CxlRejReason).

A journal that cannot be written stops the engine taking orders: the retained status says
``not_accepting`` with the reason, and every order is answered Rejected
JOURNAL_UNAVAILABLE instead of being acknowledged.

Market data survives restarts: the cycle's depth books start from the engine's books (as
recovered), every md message carries the engine's ``epoch`` (its start of the venue), and
the per-symbol depth sequence starts above anything an earlier epoch published
(``feeds.depth.start_seq``), so the first connect's retained snapshots, BBOs and states
replace the previous run's and a subscriber sees a restart, not a stale or backward feed.

No MQTT library is imported here: the transport (``feeds.gateway``) moves the bytes and
tells the cycle when it (re)connected.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import msgspec

from feeds import topics
from feeds.broker_services import decode_service_request, dropcopy_of, is_query_answer
from feeds.codec import (
    DecodeError,
    EngineStatus,
    EngineStatusName,
    MdTrade,
    TradingStatus,
    decode_balances_request,
    decode_order_message,
    encode,
    utc_timestamp,
)
from feeds.config import GatewayConfig
from feeds.depth import DepthBook, start_seq
from feeds.issuance_wire import decode_auction_input
from feeds.operator_desk import OperatorDesk
from feeds.operator_inputs import STATELESS_COMMANDS
from feeds.outbox import Outbox, Publish
from feeds.reference_md import reference_of
from feeds.requests import RequestDesk
from feeds.shard import refuse_unserved, shard_exec_id, shard_trade_id
from matching.engine import Engine
from matching.errors import EngineFault
from matching.journal import JournalError
from matching.messages import (
    AuctionAward,
    AuctionBidStatus,
    CorporateAction,
    MassCancelReport,
    MassCancelRequest,
    OrderCancelReject,
    OrderMessage,
)
from matching.messages import ExecutionReport as _ExecutionReport
from matching.outputs import LevelChange, Outcome
from matching.timetable import Due, Timetable

#: ``md/{symbol}/auction`` during a call: at most one update per instrument this often
#: (the last one always goes out: a later cycle publishes what was held back).
AUCTION_MD_INTERVAL_NS = 250_000_000

log = logging.getLogger("tokenbook.gateway")

__all__ = ["GatewayCycle", "GatewayStats", "Inbound"]

#: One inbound MQTT PUBLISH: (topic, payload), (topic, payload, retained), or with its
#: MQTT 5 request properties (topic, payload, retained, response topic, correlation data).
#: ``retained``: the broker delivered a stored retained message (a new subscription).
Inbound = (tuple[str, bytes] | tuple[str, bytes, bool]
           | tuple[str, bytes, bool, str | None, bytes | None])
_PRESENCE = topics.PRESENCE_WILDCARD[:-1]
_CLOSING = ("filled", "canceled", "expired")


@dataclass
class GatewayStats:
    """Counters of one gateway; quantities are integers (lots, cash minor units)."""
    received: int = 0
    decode_rejects: int = 0
    unattributable: int = 0
    cycles: int = 0
    published: int = 0
    reports: int = 0              # execution reports sent (cancel rejects not included)
    trades: int = 0
    # Rejects by OrdRejReason, and cancel rejects by CxlRejReason (for OTHER: the code of
    # the rule the replace broke, which starts its text).
    reject_reasons: dict[str, int] = field(default_factory=dict)
    cancel_rejects: int = 0       # OrderCancelRejects (refused cancels and replaces)
    acks: int = 0                 # New reports: orders the engine took
    book_rejects: int = 0         # orders given an id that the book refused (e.g. IOC in a call)
    closed: int = 0               # reports that ended an order (filled, canceled, expired)
    reconnects: int = 0           # connections lost and tried again
    resent: int = 0               # recent exec reports sent again after a reconnect
    admin_commands: int = 0       # operator commands taken (journaled)
    admin_refused: int = 0        # operator commands refused (bad, or journal down)
    requests: int = 0             # answers sent on a query's Response Topic (feeds.requests)
    trades_by_symbol: dict[str, int] = field(default_factory=dict)
    volume_lots: dict[str, int] = field(default_factory=dict)     # lots traded
    settled_cash: dict[str, int] = field(default_factory=dict)    # minor units buyers paid
    # The life of the securities: cash minor units paid as coupons and as redemptions
    # (principal and final coupon), and lots burned, per instrument.
    corporate_actions: int = 0    # corporate_action reports sent (one per account paid)
    coupons_paid: dict[str, int] = field(default_factory=dict)
    redeemed_cash: dict[str, int] = field(default_factory=dict)
    burned_lots: dict[str, int] = field(default_factory=dict)
    lifecycle: list[str] = field(default_factory=list)   # lifecycle steps taken, in order


#: An issuance auction's reports to a bidder (not execution reports: no ExecType).
_AUCTION_REPORTS = (AuctionAward, AuctionBidStatus)


def _due_now(due: dict[str, None], last: dict[str, int], interval_s: float, now_ns: int,
             only: str | None) -> list[str]:
    """The symbols of ``due`` (or just ``only``) whose last publish (``last``, venue ns)
    is at least ``interval_s`` old: taken off ``due`` and stamped ``now_ns``."""
    interval_ns = int(interval_s * 1e9)
    out = []
    for symbol in (only,) if only is not None else list(due):
        at = last.get(symbol)
        if at is None or now_ns - at >= interval_ns:
            del due[symbol]
            last[symbol] = now_ns
            out.append(symbol)
    return out


def _bytes(payload) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, (bytearray, memoryview)):
        return bytes(payload)
    return b"" if payload is None else str(payload).encode("utf-8")


class GatewayCycle:
    """The engine behind the gateway, one cycle at a time; see the module docstring.

    ``recovered``: after a crash, the outcomes of the last inputs replayed from the
    journal. Their reports may never have left (the process died between commit and
    publish), so they go out first, marked PossResend; clients drop the copies they
    already have by ExecID.
    """

    def __init__(self, engine: Engine, config: GatewayConfig | None = None, *,
                 recovered: Iterable[Outcome] = ()):
        self.engine = engine
        self.config = config or GatewayConfig()
        self.stats = GatewayStats()
        # Market data starts from the engine's books as they stand (recovered ones after a
        # restart), in this start's epoch, at a sequence above any published before.
        self.epoch = engine.epoch
        md_seq = start_seq(engine.seq, self.epoch)
        self.depth = {s: DepthBook.of(s, engine.depth_levels(s), md_seq, self.epoch)
                      for s in engine.symbols}
        self.outbox = Outbox(self.config.resend_window, self.config.resend_max)
        self.accepting = True
        self.status_text = ""
        self._snapshot_seq = engine.durable_seq
        # Depth snapshots owed (symbols whose book changed since their last one, in order)
        # and when each was last published (venue ns): see _stage_snapshots.
        self._snapshots_due: dict[str, None] = {}
        self._snapshot_at: dict[str, int] = {}
        # Likewise the retained day statistics of symbols that traded (_stage_stats).
        self._stats_due: dict[str, None] = {}
        self._stats_at: dict[str, int] = {}
        # How a periodic snapshot is written (a transport may take it off its loop).
        self.write_snapshot = engine.write_snapshot
        # Operator, agent, issuer and timetable inputs; their replies wait for the commit.
        self.desk = OperatorDesk(engine, self.config, lambda: self.stats)
        # Broker queries on requests/{broker}, answered on their Response Topics.
        self.requests = RequestDesk(engine, self._on_wire, lambda: self.config)
        # A shard's own operator topic (feeds.shard_admin); None on a one-shard venue.
        self._shard_admin = topics.shard_admin(self.config.shard) if self.config.shard \
            else None
        # This cycle's resends answered from memory: id(outcome) -> (broker, message).
        self._resent: dict[int, tuple[str, OrderMessage]] = {}
        # The time up to which timetable boundaries were applied (None: first cycle).
        self._schedule_mark: int | None = None
        # The lifecycle steps of the instruments since the venue started, and when a
        # refused one (an issuer not funded yet) may be tried again (wall-clock ns).
        self.timetable = Timetable(engine.instruments.values(), engine.corporate.since)
        self._lifecycle_retry: dict[Due, int] = {}
        # md/{symbol}/auction: instruments in a call changed since their last update, and
        # when each was last published (throttle).
        self._auction_dirty: set[str] = set()
        self._auction_at: dict[str, int] = {}
        self._now_ns = 0
        self._topics: dict[tuple[str, str], str] = {}   # (broker or symbol, channel) -> topic
        self._brokers: dict[str, str] = {}                # valid orders topic -> its broker
        for out in recovered:
            for broker, report in out.reports:
                if broker:
                    payload = encode(msgspec.structs.replace(self._on_wire(report),
                                                             poss_resend=True))
                    self.outbox.put(Publish(topics.exec_reports(broker), payload, False,
                                            "exec", broker))
                    if self.config.copies_reports(broker):
                        self.outbox.put(dropcopy_of(broker, payload))

    # ------------------------------------------------------------------ the cycle
    def process(self, batch: Sequence[Inbound], now_ns: int) -> list[Publish]:
        """Hand ``batch`` to the engine, commit the journal once, return what may now be
        published (in order; held brokers' reports stay in the outbox)."""
        engine = self.engine
        self._now_ns = now_ns
        # The first cycle's timetable catch-up starts at the last input before it.
        resumed_at = engine.now if self._schedule_mark is None else 0
        outcomes: list[Outcome] = []
        self._resent.clear()
        for inbound in batch:
            try:
                out = self._handle(*inbound)
            except EngineFault as exc:
                self._engine_fault(exc, now_ns)
                continue
            if out is not None:
                outcomes.append(out)
        try:
            self._timed_inputs(outcomes, now_ns, resumed_at)
        except EngineFault as exc:
            self._engine_fault(exc, now_ns)
        if not outcomes:
            self._stage_admin(durable=True)           # refusals only: nothing to commit
            self._stage_replies()
            self._stage_auctions(())
            self._stage_throttled(now_ns)
            return self.outbox.take()
        try:
            durable = engine.commit()                 # durable before anything is acknowledged
        except JournalError as exc:
            if self.accepting:
                log.error("journal failed, refusing orders: %s", exc)
                self.accepting = False
                self.status_text = f"journal unavailable: {exc}"
                self.outbox.put(self.status("not_accepting", self.status_text, now_ns))
            # Inputs of this batch are not durable, so not acknowledged (brokers retry the
            # same ClOrdIDs later); answers that persist nothing still go out.
            self._stage([a for o in outcomes if not o.sequenced
                         if (a := self._unpersisted_answer(o)) is not None])
            self._stage_admin(durable=False)
            self._stage_replies()
            return self.outbox.take()
        self._stage(outcomes)
        self._stage_admin(durable=True)
        self._stage_replies()
        self._stage_auctions(outcomes)
        self._stage_throttled(now_ns)
        self.stats.cycles += 1
        self._maybe_snapshot(durable)
        return self.outbox.take()

    def _timed_inputs(self, outcomes: list[Outcome], now_ns: int, resumed_at: int) -> None:
        """The inputs time makes: the trading day's boundaries, the lifecycle steps due
        (``matching.timetable``), the GTD expiry."""
        engine = self.engine
        if self.config.schedule is not None:
            for at, action in self._session_due(now_ns, resumed_at):
                outcomes.append(self.desk.session_input(
                    action, "", f"scheduled {action} at "
                    f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime(at // 10**9))} UTC",
                    "schedule"))
        self._lifecycle_due(outcomes, now_ns)
        expiry = engine.next_expiry()
        if expiry is not None and expiry <= now_ns:
            outcomes.append(engine.admin("expire"))
        call_end = engine.next_call_end()          # minimum duration, random end
        if call_end is not None and call_end <= now_ns:
            # Journaled like a scheduled boundary; its reply republishes the states.
            outcomes.append(self.desk.session_input("end_call", "", "timed end of a call",
                                                "schedule"))

    #: Wall-clock seconds before a refused lifecycle step is tried again.
    LIFECYCLE_RETRY_S = 60

    def _lifecycle_due(self, outcomes: list[Outcome], now_ns: int) -> None:
        """Send the lifecycle steps due on the engine's clock, journaled, in due order;
        a refused one (reported to the admin replies) is tried again later."""
        engine = self.engine
        corporate = engine.corporate
        due = self.timetable.due(engine.clock(), lambda d: corporate.done(
            d.action, d.symbol, d.coupon_date))
        retry = self._lifecycle_retry
        for step in due:
            if retry.get(step, 0) > now_ns:
                continue
            out = self.desk.lifecycle_input(step.action, step.symbol, step.coupon_date, "",
                                        "timetable")
            if out.sequenced:
                retry.pop(step, None)
            else:
                retry[step] = now_ns + self.LIFECYCLE_RETRY_S * 10**9
            outcomes.append(out)

    def _engine_fault(self, exc: EngineFault, now_ns: int) -> None:
        """An input failed inside the engine (a venue bug): the gateway stays up but stops
        accepting, saying why; the engine answers every later input ENGINE_FAULT."""
        log.critical("engine fault, refusing orders: %s", exc, exc_info=exc)
        if self.accepting:
            self.accepting = False
            self.status_text = f"engine fault: {exc}"
            self.outbox.put(self.status("not_accepting", self.status_text, now_ns))

    def _maybe_snapshot(self, durable: int) -> None:
        """Every ``snapshot_every`` inputs a snapshot, so recovery replays a short journal."""
        cfg = self.config
        if cfg.snapshot_dir and durable - self._snapshot_seq >= cfg.snapshot_every:
            self._snapshot_seq = durable
            try:
                self.write_snapshot(cfg.snapshot_dir)
            except (OSError, JournalError) as exc:    # recovery replays a longer journal
                log.error("snapshot at sequence %d failed: %s", durable, exc)

    def _unpersisted_answer(self, out: Outcome) -> Outcome | None:
        """After a journal failure: a resend whose original input never became durable is
        refused like a new order rather than answered from memory."""
        durable = self.engine.durable_seq
        if not out.replayed or all(r.seq <= durable for _, r in out.reports):
            return out
        if not out.reports:
            return None
        broker, msg = self._resent[id(out)]
        return self.engine.refuse_unpersisted(broker, msg)

    # ------------------------------------------------------------------ inbound messages
    def _handle(self, topic: str, payload, retained: bool = False,
                response_topic: str | None = None, correlation: bytes | None = None
                ) -> Outcome | None:
        """One inbound message to the engine: its Outcome, or None if it made no input."""
        if topic.startswith(_PRESENCE):
            return self._presence(topic.rsplit("/", 1)[-1], payload, retained)
        if topic == topics.ADMIN:
            return self.desk.command(_bytes(payload), venue_wide=bool(self.config.shard))
        if topic == topics.AGENT:
            return self.desk.command(_bytes(payload), agent=True,
                                     venue_wide=bool(self.config.shard))
        if topic == self._shard_admin:
            return self.desk.command(_bytes(payload))
        self.stats.received += 1
        broker = self._brokers.get(topic) if type(topic) is str else None
        if broker is None:
            broker = topics.broker_from_orders_topic(topic)
            if broker is not None:
                if len(self._brokers) >= 10_000:
                    self._brokers.clear()
                self._brokers[topic] = broker
        if broker is None and (asker := topics.broker_from_requests_topic(topic)):
            if asker in self.outbox.held:
                self.outbox.release(asker)
            return self.requests.handle(asker, _bytes(payload), response_topic, correlation)
        if broker is None and self.config.shard:          # a shard's v2 order topic
            v2 = topics.parse_orders_v2_topic(topic)
            broker = v2[0] if v2 is not None and v2[1] in self.engine.instruments else None
            if broker is None and v2 is not None and self.config.answers_unserved:
                return refuse_unserved(self.config.shard_directory, self.engine, topic,
                                       _bytes(payload))
        if broker is None:
            self.stats.unattributable += 1
            log.warning("dropped a message on %r: no broker in the topic", topic)
            return None
        if broker in self.outbox.held:
            self.outbox.release(broker)       # it is sending, so it is connected again
        msg = decode_order_message(_bytes(payload))
        if isinstance(msg, DecodeError):
            bid = decode_auction_input(_bytes(payload), issuer=False)
            if bid is not None:               # a sealed bid (matching.issuance)
                return self.engine.auction_input(bid, broker=broker)
            req = decode_balances_request(_bytes(payload))
            if req is not None:               # a query, not an order: nothing journaled
                return self.engine.balances(broker, req.request_id, req.account)
            service = decode_service_request(_bytes(payload))
            if isinstance(service, MassCancelRequest):       # 35=q: an input
                return self.engine.mass_cancel(broker, service)
            if service is not None:           # 35=H: a query, nothing journaled
                return self.engine.order_status(broker, service)
            self.stats.decode_rejects += 1
            return self.engine.refuse(broker, msg.reason, msg.text, msg.cl_ord_id, msg.symbol)
        out = self.engine.submit(broker, msg)
        if out.replayed:                  # answered from memory: refused if not durable
            self._resent[id(out)] = (broker, msg)
        return out

    def _presence(self, broker: str, payload, retained: bool = False) -> Outcome | None:
        """Cancel-on-disconnect: a broker's presence went offline (its last will fired).

        A retained presence (delivered because the gateway subscribed) is the last one the
        broker stored, maybe from before this gateway started: it never cancels; a
        retained ``online`` still releases held reports (the client is connected now)."""
        state = _bytes(payload).strip()
        if state == b"online":
            self.outbox.release(broker)       # it is subscribed again: send what was held
        if retained or not (state == b"offline" and self.config.cancels_on_disconnect(broker)
                            and topics.valid_name(broker)):
            return None
        if not self.engine.has_live_orders(broker):
            return None
        log.warning("broker %s disconnected: cancelling its live orders", broker)
        return self.engine.admin("cancel_broker", broker=broker, reason="disconnected")

    def _session_due(self, now_ns: int, resumed_at: int) -> list[tuple[int, str]]:
        """Timetable boundaries to apply now. The first cycle catches up from the last
        journaled input (a close missed while down still expires DAY orders); a new venue
        takes the state its timetable says for now."""
        schedule = self.config.schedule
        assert schedule is not None, "only called with a timetable"
        mark, self._schedule_mark = self._schedule_mark, now_ns
        if mark is not None:
            return schedule.boundaries(mark, now_ns)
        if resumed_at == 0:                   # no input ever: a new venue
            current = schedule.current(now_ns)
            return [current] if current is not None else []
        return schedule.catch_up(resumed_at, now_ns)

    # ------------------------------------------------------------------ outbound
    def _stage_replies(self) -> None:
        """The answers to this cycle's queries, on their Response Topics."""
        answers = self.requests.take()
        if answers:
            self.stats.requests += len(answers)
            for publish in answers:
                self.outbox.put(publish)

    def _stage_admin(self, durable: bool) -> None:
        """Operator replies of the cycle, and the new trading states they made."""
        replies = self.desk.take_replies()
        if self.config.shard:                 # say which shard answered
            replies = [msgspec.structs.replace(r, shard=self.config.shard) for r in replies]
        changed: dict[str, None] = {}
        for reply in replies:
            if reply.accepted and not durable:
                reply = msgspec.structs.replace(
                    reply, accepted=False, seq=0,
                    text=f"not confirmed: the journal failed ({self.engine.journal_failure})")
            if reply.accepted:
                self.stats.admin_commands += 1
                if reply.action not in STATELESS_COMMANDS:
                    changed.update(dict.fromkeys([reply.symbol] if reply.symbol
                                                 else self.engine.symbols))
            else:
                self.stats.admin_refused += 1
            self.outbox.put(Publish(topics.ADMIN_REPLIES, encode(reply), False, "admin"))
            if reply.accepted and reply.action in ("auction_close", "auction_issue"):
                self._market_data_for_new_issue(reply.symbol)
                self._publish_auction_result(reply.symbol)
        for symbol in changed:
            if symbol not in self.engine.instruments:
                continue                  # a new issue announced: listed at its close
            self.outbox.put(Publish(topics.md(symbol, "state"),
                                    encode(self.trading_status(symbol)), True, "md"))
            self.outbox.put(self.reference(symbol))
            self.outbox.put(self.day_stats(symbol))     # a new session starts from nothing
            self._publish_auction(symbol)          # a call began or ended: at once

    def _stage_auctions(self, outcomes) -> None:
        """The throttled ``md/{symbol}/auction`` of every instrument in a call that this
        cycle's inputs touched, and of those held back earlier whose interval passed."""
        engine = self.engine
        books, dirty, set_by = engine.books, self._auction_dirty, engine.session.seq
        for out in outcomes:
            # Only a sequenced input can change a book (not a query, resend or refusal).
            symbol = out.levels[0].symbol if out.levels else (
                out.reports[0][1].symbol if out.reports and out.sequenced else None)
            if symbol in books and books[symbol].in_call:
                dirty.add(symbol)
                if set_by[symbol] == out.seq and out.reports and out.reports[0][0]:
                    # An order's input set the state: a volatility interruption began.
                    self.outbox.put(Publish(topics.md(symbol, "state"),
                                            encode(self.trading_status(symbol)), True, "md"))
                    self._publish_auction(symbol)
        if not dirty:
            return
        now = self._now_ns
        for symbol in sorted(dirty):
            if now - self._auction_at.get(symbol, -AUCTION_MD_INTERVAL_NS) \
                    >= AUCTION_MD_INTERVAL_NS:
                self._publish_auction(symbol)

    def _market_data_for_new_issue(self, symbol: str) -> None:
        """A new issue that an auction's close listed gets its depth book (retained
        snapshot and BBO at once) and its lifecycle steps, as a configured one has."""
        engine = self.engine
        if symbol in self.depth or symbol not in engine.instruments:
            return
        book = self.depth[symbol] = DepthBook.of(symbol, engine.depth_levels(symbol),
                                                 start_seq(engine.seq, self.epoch), self.epoch)
        self.outbox.put(Publish(topics.md(symbol, "snapshot"), encode(book.snapshot()), True,
                                "md"))
        self.outbox.put(Publish(topics.md(symbol, "bbo"), encode(book.bbo()), True, "md"))
        self.timetable.add(engine.instruments[symbol], engine.clock())

    def _publish_auction_result(self, symbol: str) -> None:
        """The retained ``md/{symbol}/auction_result`` of an issuance auction."""
        result = self.engine.auction_result(symbol)
        if result is not None:
            self.outbox.put(Publish(topics.md(symbol, "auction_result"), encode(result),
                                    True, "md"))

    def _publish_auction(self, symbol: str) -> None:
        self._auction_dirty.discard(symbol)
        view = self.engine.auction_view(symbol)
        if view is not None:
            self._auction_at[symbol] = self._now_ns
            self.outbox.put(Publish(topics.md(symbol, "auction"), encode(view), True, "md"))

    def _on_wire(self, report):
        """A shard's exec report names its shard in ExecID and TradeID (``feeds.shard``),
        so ids are unique across the venue; a one-shard venue's go out as they are."""
        shard = self.config.shard
        if not shard or type(report) is not _ExecutionReport:
            return report
        trade = report.trade_id
        return msgspec.structs.replace(
            report, exec_id=shard_exec_id(shard, report.exec_id),
            trade_id=None if trade is None else shard_trade_id(shard, trade))

    def _topic(self, name: str, channel: str) -> str:
        """``topics.exec_reports(name)`` ("exec") or ``topics.md(name, channel)``, built
        (and checked) once per name: the hot path asks for several per order."""
        topic = self._topics.get((name, channel))
        if topic is None:
            topic = topics.exec_reports(name) if channel == "exec" else topics.md(name, channel)
            if len(self._topics) >= 10_000:
                self._topics.clear()
            self._topics[(name, channel)] = topic
        return topic

    def _stage(self, outcomes: list[Outcome]) -> None:
        """Reports and trades in engine order; depth coalesced per symbol for the cycle."""
        put, stats, epoch, topic = self.outbox.put, self.stats, self.epoch, self._topic
        copies = self.config.copies_reports
        on_wire = self._on_wire if self.config.shard else None
        levels: dict[str, list[LevelChange]] = {}
        for out in outcomes:
            for broker, report in out.reports:
                payload = encode(report if on_wire is None else on_wire(report))
                put(Publish(topic(broker, "exec"), payload, False, "exec", broker))
                plain = type(report) is _ExecutionReport      # the usual one: fewer checks
                if (report.exec_type == "order_status") if plain else is_query_answer(report):
                    continue
                if copies(broker):
                    put(dropcopy_of(broker, payload))     # its risk user's copy
                if not plain:
                    if type(report) is CorporateAction:
                        self._count_corporate(report)
                        continue
                    if type(report) is MassCancelReport or type(report) in _AUCTION_REPORTS:
                        continue
                    if type(report) is OrderCancelReject:
                        stats.cancel_rejects += 1
                        reason = report.cxl_rej_reason
                        if reason == "OTHER":               # the rule the replace broke
                            reason = report.text.split(":", 1)[0]
                        stats.reject_reasons[reason] = stats.reject_reasons.get(reason, 0) + 1
                        continue
                stats.reports += 1
                exec_type = report.exec_type
                if exec_type == "new":
                    stats.acks += 1
                elif report.ord_status in _CLOSING and exec_type != "replaced":
                    stats.closed += 1
                if exec_type == "rejected":
                    if report.order_id:
                        stats.book_rejects += 1
                    reason = report.ord_rej_reason or "?"
                    stats.reject_reasons[reason] = stats.reject_reasons.get(reason, 0) + 1
            if out.trades:
                tb, vol = stats.trades_by_symbol, stats.volume_lots
                for trade in out.trades:
                    # TradePrint's fields, then the epoch (mypy cannot count a *tuple).
                    tick = MdTrade(*msgspec.structs.astuple(trade), epoch)  # type: ignore[call-arg]
                    if self.config.shard:
                        tick = msgspec.structs.replace(tick, trade_id=shard_trade_id(
                            self.config.shard, tick.trade_id))
                    put(Publish(topic(trade.symbol, "trades"), encode(tick), False,
                                "trade"))
                    stats.trades += 1
                    tb[trade.symbol] = tb.get(trade.symbol, 0) + 1
                    vol[trade.symbol] = vol.get(trade.symbol, 0) + trade.qty_lots
                # An input's fills are all in its one instrument.
                symbol, st = out.trades[0].symbol, stats.settled_cash
                st[symbol] = st.get(symbol, 0) + out.settled_cash
            for change in out.levels:
                levels.setdefault(change.symbol, []).append(change)
        for symbol in {o.trades[0].symbol: None for o in outcomes if o.trades}:
            self._stats_due[symbol] = None            # after the cycle's fills: retained
            self._stage_stats(self._now_ns, symbol)
        for symbol, changes in levels.items():
            book = self.depth[symbol]
            update = book.apply(changes)
            if update is not None:
                put(Publish(topic(symbol, "depth"), encode(update), False, "md"))
                self._snapshots_due[symbol] = None
                self._stage_snapshots(self._now_ns, symbol)
                put(Publish(topic(symbol, "bbo"), encode(book.bbo()), True, "md"))

    def _stage_throttled(self, now_ns: int) -> None:
        """The held-back retained snapshots and statistics whose interval has passed."""
        if self._snapshots_due:
            self._stage_snapshots(now_ns)
        if self._stats_due:
            self._stage_stats(now_ns)

    def _stage_snapshots(self, now_ns: int, only: str | None = None) -> None:
        """The retained depth snapshots of books that changed, each at most every
        ``depth_snapshot_interval`` (also from idle cycles, so the last change of a quiet
        book is in one within an interval). The snapshot is the recovery channel, as CME
        MDP 3.0's snapshot loop: a subscriber that joins between two applies increments
        past the one it got (seq contiguous) or waits for the next (``feeds.watch``)."""
        for symbol in _due_now(self._snapshots_due, self._snapshot_at,
                               self.config.depth_snapshot_interval, now_ns, only):
            self.outbox.put(Publish(self._topic(symbol, "snapshot"),
                                    encode(self.depth[symbol].snapshot()), True, "md"))

    def _stage_stats(self, now_ns: int, only: str | None = None) -> None:
        """The retained day statistics of symbols that traded, each at most every
        ``stats_interval`` and after its last fill (from idle cycles too): a retained
        figure, so a subscriber needs the latest, not every one (one per cycle cost the
        gateway and the broker a publish per cycle)."""
        for symbol in _due_now(self._stats_due, self._stats_at, self.config.stats_interval,
                               now_ns, only):
            self.outbox.put(self.day_stats(symbol))

    def _count_corporate(self, report: CorporateAction) -> None:
        stats, inst = self.stats, self.engine.instruments[report.symbol]
        stats.corporate_actions += 1
        cash = int(Decimal(report.amount).scaleb(inst.cash_decimals))
        into = stats.coupons_paid if report.action == "coupon" else stats.redeemed_cash
        into[report.symbol] = into.get(report.symbol, 0) + cash
        if report.action == "redemption":
            lots = inst.qty_to_lots(report.qty)
            stats.burned_lots[report.symbol] = stats.burned_lots.get(report.symbol, 0) + lots

    # ------------------------------------------------------------------ connection events
    def connected(self, now: float, lost_at: float) -> None:
        """The transport (re)connected at ``now`` (monotonic s) after losing the previous
        connection at ``lost_at``: recent reports go again, and reports for brokers that
        have live orders or waiting reports are held until their presence says
        ``online`` (a restarted broker forgot every subscription) or ``hold_reports``."""
        self.stats.resent += self.outbox.reconnected(lost_at)
        hold = self.config.hold_reports
        if hold > 0:
            brokers = self.outbox.brokers_waiting()
            brokers.update(self.engine.brokers_with_live_orders())
            brokers.update(self.outbox.held)
            self.outbox.hold(brokers, now + hold)

    def retained(self, now_ns: int) -> list[Publish]:
        """The retained state a (re)connect publishes first: the engine status, then every
        instrument's depth snapshot, BBO and trading state. On a gateway's first connect
        after a restart this replaces what the previous epoch retained: the books as
        recovered, at a higher sequence, with the new epoch."""
        out = [self.status("online" if self.accepting else "not_accepting",
                           self.status_text, now_ns)]
        self._snapshots_due.clear()           # every book's current snapshot goes here
        self._stats_due.clear()               # and its statistics
        for symbol, book in self.depth.items():
            self._snapshot_at[symbol] = self._stats_at[symbol] = now_ns
            out += (Publish(topics.md(symbol, "snapshot"), encode(book.snapshot()), True, "md"),
                    Publish(topics.md(symbol, "bbo"), encode(book.bbo()), True, "md"),
                    Publish(topics.md(symbol, "state"), encode(self.trading_status(symbol)),
                            True, "md"),
                    self.reference(symbol), self.day_stats(symbol))
            result = self.engine.auction_result(symbol)
            if result is not None:                # the last issuance auction's results
                out.append(Publish(topics.md(symbol, "auction_result"), encode(result),
                                   True, "md"))
        return out

    def day_stats(self, symbol: str) -> Publish:
        """The retained ``md/{symbol}/stats`` now (``matching.day_stats``)."""
        engine = self.engine
        return Publish(topics.md(symbol, "stats"), encode(engine.day_stats.view(
            symbol, engine.conv[symbol], engine.economics[symbol], engine.seq, self.epoch)),
            True, "md")

    def reference(self, symbol: str) -> Publish:
        """The retained ``md/{symbol}/reference`` now (``feeds.reference_md``)."""
        engine = self.engine
        return Publish(topics.md(symbol, "reference"), encode(reference_of(
            engine.instruments[symbol], engine.session.state[symbol].value, engine.seq,
            self.epoch)), True, "md")

    def status(self, status: EngineStatusName, text: str = "", now_ns: int = 0) -> Publish:
        """The retained engine status (online, not_accepting, offline) as a Publish, with
        this engine's identity (``GatewayConfig.identity``)."""
        stamp = utc_timestamp(now_ns) if now_ns else ""       # none in the last will
        return Publish(self.config.status_topic, encode(EngineStatus(
            status, text, stamp, **self.config.identity())), True, "status")

    def trading_status(self, symbol: str) -> TradingStatus:
        s = self.engine.trading_status(symbol)
        return TradingStatus(s.symbol, s.state, s.reason, s.seq, self.epoch)

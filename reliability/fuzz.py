"""A longer randomized bad-input campaign against the decoder, the engine and the topics.

    .venv/bin/python -m reliability.fuzz --seconds 30 [--seed 0] [--json]

Inputs come from ``testkit/fuzzgen.py`` (the categories of
``tests/reliability/test_fuzz.py``) and go the gateway's way: ``decode_order_message``,
then ``Engine.refuse`` or ``Engine.submit``.
After each input it checks what the tests check: no exception; exactly one
acknowledgement to the sender (a Rejected or an OrderCancelReject with a reason and a
text, or the New / Canceled / Replaced asked for); a rejected input changed nothing but
the counters and its ClOrdID's use; an exact resend replayed the original outcome; the
ledger's totals are conserved and its reservations equal the live orders'. Rule-breaking
orders run on an engine of their own that only ever sees them: it must end as it started
(their ClOrdIDs aside), and each must get its reason.
Also: well-typed messages with bad content straight into ``Engine.submit`` (the API, not
the gateway), and the topic parsers. Returns (and prints) the figures.
"""
from __future__ import annotations

import argparse
import json
import random
import time
import traceback

import msgspec

from feeds import topics
from feeds.codec import DECODE_REASONS, DecodeError, decode_order_message
from matching.messages import NewOrderSingle, OrderCancelReplaceRequest, OrderCancelRequest
from testkit import fuzzgen
from testkit.fuzzgen import frozen, kind_of, reason_of

__all__ = ["campaign"]

ACK = {NewOrderSingle: "new", OrderCancelRequest: "canceled",
       OrderCancelReplaceRequest: "replaced"}
REBUILD_EVERY = 2000          # inputs on one engine before a fresh one (bounded state)
MAX_EXAMPLES = 5              # crash / violation examples kept


def invariants(eng, totals) -> list[str]:
    led, bad = eng.ledger, []
    if led.totals() != totals:
        bad.append("ledger totals changed")
    if any(not 0 < h <= led.balance(*k) for k, h in led.held.items()):
        bad.append("a reservation exceeds its balance")
    if {ref: a for ref, (_, _, a) in led.reservations.items()} != {
            o.order_id: o.reserved for o in eng.orders.values() if o.reserved}:
        bad.append("reservations differ from the live orders'")
    if {oid: lv for b in eng.books.values() for oid, _, _, lv, *_ in b.resting_orders()} != {
            o.order_id: o.leaves for o in eng.orders.values()}:
        bad.append("books differ from the live orders")
    return bad


def step(eng, broker: str, payload) -> tuple[str, str | None, list[str], bool]:
    """One input the gateway's way; ``(kind, reject reason, violations, unchanged-checked)``."""
    before, totals = frozen(eng), eng.ledger.totals()
    seq, exec_id, order_id = eng.seq, eng.reports.next_exec_id, eng.next_order_id
    bad: list[str] = []
    msg = decode_order_message(payload)
    if isinstance(msg, DecodeError):
        if msg.reason not in DECODE_REASONS or not msg.text:
            bad.append(f"bad DecodeError {msg!r}")
        if msg.reason == "DECODER_FAULT":
            bad.append(f"decoder fault: {msg.text}")
        out = eng.refuse(broker, msg.reason, msg.text, msg.cl_ord_id, msg.symbol)
        if len(out.reports) != 1 or out.reports[0][0] != broker or \
                out.reports[0][1].exec_type != "rejected" or not out.reports[0][1].text:
            bad.append("refused payload without exactly one Rejected report")
        if (eng.seq, eng.reports.next_exec_id, eng.next_order_id) != (seq, exec_id, order_id):
            bad.append("a refused payload moved the counters")
        if frozen(eng) != before:
            bad.append("a refused payload changed the state")
        return "refused", msg.reason, bad + invariants(eng, totals), True
    key = (broker, msg.cl_ord_id)
    before_but_key = frozen(eng, key)
    resend = eng.clordids.resend(broker, msg)
    out = eng.submit(broker, msg)
    if not out.reports:
        bad.append("an input without a report")
    if resend is not None:
        want = [(broker, msgspec.structs.replace(r, poss_resend=True)) for r in resend]
        if not out.replayed or out.reports != want:
            bad.append("a resend did not replay the original outcome")
        if eng.seq != seq or frozen(eng) != before:
            bad.append("a resend changed the state")
        return "replayed", None, bad + invariants(eng, totals), True
    mine = [r for to, r in out.reports if to == broker and r.cl_ord_id == msg.cl_ord_id
            and kind_of(r) in ("rejected", "cancel_reject", ACK[type(msg)])]
    if len(mine) != 1:
        bad.append(f"{len(mine)} acknowledgements for one input")
        return "accepted", None, bad + invariants(eng, totals), False
    r = mine[0]
    if kind_of(r) not in ("rejected", "cancel_reject"):
        return "accepted", None, bad + invariants(eng, totals), False
    reason = reason_of(r)
    if not (reason and r.text):
        bad.append("a Rejected report without reason or text")
    if len(out.reports) != 1 or out.trades or out.levels:
        bad.append("a rejected input produced more than its Rejected report")
    given = kind_of(r) == "rejected" and bool(r.order_id)
    if eng.next_order_id != order_id + (1 if given else 0):
        bad.append("order id counter moved for a pre-trade reject")
    if frozen(eng, key) != before_but_key:                  # its ClOrdID is used now
        bad.append(f"a rejected input ({reason}) changed the state")
    return "rejected", reason, bad + invariants(eng, totals), True


def _short(x, n: int = 320) -> str:
    s = repr(x)
    return s if len(s) <= n else s[:n] + f"...({len(s)} chars)"


def campaign(seconds: float = 30, seed: int = 0) -> dict:
    """Run the bad-input campaign for ``seconds``; returns its figures (see module doc)."""
    r = random.Random(seed)
    tried: dict[str, int] = {}
    outcomes: dict[str, int] = {}
    reasons: dict[str, int] = {}
    crashes: dict[str, int] = {}
    crash_examples: list[dict] = []
    violations: dict[str, int] = {}
    violation_examples: list[dict] = []
    unchanged = {"passed": 0, "failed": 0}
    rule_mismatch = 0
    sent: list[tuple[str, object]] = []        # recent decodable payloads, for resends

    def count(d, k, n=1):
        d[k] = d.get(k, 0) + n

    def crashed(category, what, exc):
        count(crashes, category)
        if len(crash_examples) < MAX_EXAMPLES:
            crash_examples.append({"category": category, "input": _short(what),
                                   "error": f"{type(exc).__name__}: {exc}",
                                   "where": traceback.format_exc(limit=-2).splitlines()[-3:]})

    def violated(category, what, problems):
        for p in problems:
            count(violations, p)
        if len(violation_examples) < MAX_EXAMPLES:
            violation_examples.append({"category": category, "input": _short(what),
                                       "problems": problems})

    eng, rule_eng, api_eng = fuzzgen.build_engine(), fuzzgen.build_engine(), \
        fuzzgen.build_engine()
    on_eng = 0
    names = list(fuzzgen.CATEGORIES)
    t0 = time.perf_counter()
    deadline = t0 + seconds
    n = 0
    while time.perf_counter() < deadline:
        n += 1
        k = r.random()
        if k < 0.70 or (k < 0.75 and not sent):
            category = r.choice(names)
            broker, payload = fuzzgen.CATEGORIES[category](r)
            target = eng
        elif k < 0.75:
            category = "resend"
            broker, payload = r.choice(sent)
            target = eng
        elif k < 0.87:
            broker, payload, want, rule = fuzzgen.rule_breaking(r, cl=f"rule-{n}")
            category = "rule_breaking"
            count(tried, f"rule:{rule}")
            target = rule_eng
        elif k < 0.95:
            category = "engine_direct"
            broker, msg = fuzzgen.engine_direct(r)
            count(tried, category)
            totals, before = api_eng.ledger.totals(), frozen(api_eng, (broker, msg.cl_ord_id))
            exec_id = api_eng.reports.next_exec_id
            resend = api_eng.clordids.resend(broker, msg) is not None
            try:
                out = api_eng.submit(broker, msg)
            except Exception as exc:                      # noqa: BLE001 - counted
                crashed(category, msg, exc)
                api_eng = fuzzgen.build_engine()          # its state is no longer trusted
                continue
            problems = invariants(api_eng, totals)
            if not resend:
                mine = [x for to, x in out.reports if to == broker and x.cl_ord_id == msg.cl_ord_id
                        and kind_of(x) in ("rejected", "cancel_reject", ACK[type(msg)])]
                if len(mine) != 1:
                    problems.append(f"{len(mine)} acknowledgements for one input")
                elif kind_of(mine[0]) in ("rejected", "cancel_reject"):
                    count(reasons, reason_of(mine[0]) or "?")
                    count(outcomes, "rejected")
                    ok = frozen(api_eng, (broker, msg.cl_ord_id)) == before
                    unchanged["passed" if ok else "failed"] += 1
                    if not ok:
                        problems.append("a rejected API input changed the state")
                    took = 1 if kind_of(mine[0]) == "rejected" else 0    # 35=9: no ExecID
                    if api_eng.reports.next_exec_id != exec_id + took:
                        problems.append("exec id moved by more than one for a reject")
                else:
                    count(outcomes, "accepted")
            if problems:
                violated(category, msg, problems)
            if len(api_eng.orders) > 500:
                api_eng = fuzzgen.build_engine()
            continue
        else:
            category = "topic"
            t = fuzzgen.topic(r)
            count(tried, category)
            try:
                b = topics.broker_from_orders_topic(t)
                p = topics.broker_from_presence_topic(t)
                m = topics.parse_md_topic(t)
                problems = []
                if b is not None and topics.orders(b) != t:
                    problems.append("orders topic does not rebuild")
                if p is not None and topics.presence(p) != t:
                    problems.append("presence topic does not rebuild")
                if m is not None and topics.md(*m) != t:
                    problems.append("md topic does not rebuild")
            except Exception as exc:                      # noqa: BLE001 - counted
                crashed(category, t, exc)
                continue
            if problems:
                violated(category, t, problems)
            continue
        if category != "rule_breaking":
            count(tried, category)
        try:
            kind, reason, problems, checked = step(target, broker, payload)
        except Exception as exc:                          # noqa: BLE001 - counted
            crashed(category, payload, exc)
            if target is eng:
                eng, on_eng = fuzzgen.build_engine(), 0
            else:
                rule_eng = fuzzgen.build_engine()
            continue
        count(outcomes, kind)
        if reason:
            count(reasons, reason)
        if checked:
            unchanged["passed" if not any("changed" in p or "moved" in p for p in problems)
                      else "failed"] += 1
        if category == "rule_breaking" and (kind, reason) != ("rejected", want):
            rule_mismatch += 1
            problems = [*problems, f"rule {rule}: expected {want}, got {kind} {reason}"]
        if problems:
            violated(category, payload, problems)
        if target is eng:
            on_eng += 1
            if kind in ("accepted", "rejected") and len(sent) < 200:
                sent.append((broker, payload))
            elif kind in ("accepted", "rejected"):
                sent[r.randrange(len(sent))] = (broker, payload)
            if on_eng >= REBUILD_EVERY:
                eng, on_eng, sent = fuzzgen.build_engine(), 0, []
    elapsed = time.perf_counter() - t0
    # Only rejects went to the rule engine: all but its counters and the ClOrdIDs they used
    # (naming no order: 0) is as built.
    rule_frozen = frozen(rule_eng)
    rule_frozen = (*rule_frozen[:4], [kv for kv in rule_frozen[4] if kv[1]], *rule_frozen[5:])
    rule_engine_unchanged = rule_frozen == frozen(fuzzgen.build_engine())
    return {
        "seconds": round(elapsed, 1),
        "seed": seed,
        "inputs": n,
        "inputs_per_s": round(n / elapsed) if elapsed else 0,
        "inputs_by_category": dict(sorted(tried.items())),
        "outcomes": dict(sorted(outcomes.items())),
        "crashes": sum(crashes.values()),
        "crashes_by_category": crashes,
        # Through decode -> refuse/submit, what the gateway does (engine_direct is the API).
        "crashes_gateway_path": sum(v for k, v in crashes.items() if k != "engine_direct"),
        "crash_examples": crash_examples,
        "violations": sum(violations.values()),
        "violations_by_kind": violations,
        "violation_examples": violation_examples,
        "rejections_by_reason": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "state_unchanged_checks": unchanged,
        "rule_breaking_reason_mismatches": rule_mismatch,
        "rule_engine_unchanged_after_campaign": rule_engine_unchanged,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reliability.fuzz",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    import logging
    logging.disable(logging.CRITICAL)         # the decoder logs its faults; we count them
    res = campaign(args.seconds, args.seed)
    if args.json:
        print(json.dumps(res, indent=1, default=str))
        return 0
    print(f"fuzz campaign: {res['inputs']} inputs in {res['seconds']} s "
          f"({res['inputs_per_s']}/s), seed {res['seed']}")
    print("inputs by category:")
    for k, v in res["inputs_by_category"].items():
        print(f"  {k:34s} {v:8d}")
    print("outcomes:", ", ".join(f"{k} {v}" for k, v in res["outcomes"].items()))
    print("rejections by reason:")
    for k, v in res["rejections_by_reason"].items():
        print(f"  {k:34s} {v:8d}")
    u = res["state_unchanged_checks"]
    print(f"state-unchanged checks: {u['passed']} passed, {u['failed']} failed")
    print(f"rule-breaking reason mismatches: {res['rule_breaking_reason_mismatches']}; "
          "rule engine unchanged after the campaign: "
          f"{res['rule_engine_unchanged_after_campaign']}")
    print(f"crashes: {res['crashes']} {res['crashes_by_category'] or ''} "
          f"(gateway path: {res['crashes_gateway_path']})")
    for ex in res["crash_examples"]:
        print(f"  [{ex['category']}] {ex['error']}\n    input: {ex['input']}")
        for line in ex["where"]:
            print(f"    {line}")
    print(f"property violations: {res['violations']} {res['violations_by_kind'] or ''}")
    for ex in res["violation_examples"]:
        print(f"  [{ex['category']}] {ex['problems']}\n    input: {ex['input']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Reliability report: faults injected and survived, bad inputs tried, nothing lost.

    python -m reliability [--quick] [--out reliability/results/reliability.md]

Runs the fault harness (``reliability/faults.py``: kill -9 of the engine under load, broker
killed and restarted on the same port, a stalled market-data subscriber, a journal on a
full disk), the venue-integrity checks (``reliability/integrity.py``: retained market data
after a kill -9 and restart, a second engine refused, a 10,000-order burst on a stock
mosquitto), then ``reliability/fuzz.py``'s ``campaign()`` and ``reliability/soak.py``'s
``soak()`` when those modules exist, and writes the figures as Markdown. Exit status 0 only if every
check held. ``--quick`` takes about 90 s.
"""
from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json
import logging
import platform
import sys
import time
from pathlib import Path

from reliability import faults, integrity

OUT = Path(__file__).resolve().parent / "results" / "reliability.md"


def _optional(module: str, func: str, seconds: float) -> dict | None:
    """``reliability.<module>.<func>(seconds=...)`` if that module exists, else None."""
    try:
        mod = importlib.import_module(f"reliability.{module}")
    except ModuleNotFoundError as exc:
        if exc.name == f"reliability.{module}":
            return None
        raise
    fn = getattr(mod, func, None)
    if fn is None:
        return None
    kwargs = {"seconds": seconds} if "seconds" in inspect.signature(fn).parameters else {}
    res = fn(**kwargs)
    if inspect.isawaitable(res):
        res = asyncio.run(res)
    return res


def run_all(quick: bool) -> dict:
    plan = {
        "kills": {"kills": 3 if quick else 10, "rate": 300, "seed": 1},
        "broker": {"restarts": 1, "seconds": 4.0, "rate": 300, "seed": 2} if quick else
        {"restarts": 3, "seconds": 12.0, "rate": 300, "seed": 2},
        "slow": {"orders": 600} if quick else {"orders": 2000},
        "disk": {"before": 100, "after": 50} if quick else {"before": 400, "after": 200},
    }
    res: dict = {"quick": quick}
    t = time.monotonic()
    res["kills"] = asyncio.run(faults.kills_under_load(**plan["kills"]))
    res["broker"] = asyncio.run(faults.broker_restart(**plan["broker"]))
    res["slow"] = asyncio.run(faults.slow_subscriber(**plan["slow"]))
    res["disk"] = asyncio.run(faults.disk_full(**plan["disk"]))
    res["disk_real"] = asyncio.run(faults.disk_full_real())
    res["faults_seconds"] = round(time.monotonic() - t, 1)
    t = time.monotonic()
    res["restart_md"] = asyncio.run(integrity.restart_md())
    res["second_writer"] = asyncio.run(integrity.second_writer())
    res["burst"] = asyncio.run(integrity.burst(10_000))
    res["integrity_seconds"] = round(time.monotonic() - t, 1)
    res["fuzz"] = _optional("fuzz", "campaign", 10 if quick else 60)
    res["soak"] = _optional("soak", "soak", 15 if quick else 120)
    return res


def _ok(part: dict | None) -> bool | None:
    if part is None:
        return None
    if "ok" in part:
        return None if part["ok"] is None else bool(part["ok"])   # None: could not run here
    bad = [part.get(k) for k in ("crashes", "violations", "lost", "duplicated")
           if isinstance(part.get(k), int)]
    return not any(bad) if bad else None


def _verdict(part: dict) -> str:
    ok = _ok(part)
    return "**not run**" if ok is None else ("held" if ok else "**FAILED**")


def integrity_rows(res: dict) -> list[str]:
    """The report's rows of the venue-integrity checks (``reliability/integrity.py``)."""
    r, w, b = res.get("restart_md"), res.get("second_writer"), res.get("burst")
    rows = []
    if r is not None:
        rows.append(
            f"| restart-md: kill -9 + restart, retained md == recovered book "
            f"({_verdict(r)}) | {r['symbols']} instruments, {r['orders_resting']} resting "
            f"orders on {r['levels_recovered']} levels: retained snapshot == recovered book "
            f"{r['snapshot_equals_recovered']}, seq not backwards {r['seq_forward']}, epoch "
            f"{r['epochs'][0]} -> {r['epochs'][1]}, watcher across the restart in sync "
            f"{r['watcher_in_sync']}; **time to republish {r['republish_s']} s** after the "
            f"restart (online {r['online_s']} s) |")
    if w is not None:
        rows.append(
            f"| second-writer: a second `tokenbook serve` while one serves "
            f"({_verdict(w)}) | same --data: exit {w['exit_code_same_data']} in "
            f"**{w['refusal_s_same_data']} s**, same broker: exit "
            f"{w['exit_code_same_broker']} in **{w['refusal_s_same_broker']} s**; "
            f"**{w['acked_during_attempts']} orders acknowledged** by the first during the "
            f"attempts ({w['orders_sent']} sent, {w['unanswered']} unanswered, {w['lost']} "
            f"lost), its status unchanged {w['status_instance_unchanged']}, reconnected "
            f"{w['first_reconnected']} |")
    if b is not None:
        figures = (f"**{b['arrived']} / {b['sent']} arrived** ({b['acked']} acknowledged) in "
                   f"**{b['seconds']} s** ({b['orders_per_s']} orders/s), "
                   f"`{b['publisher']}` on `{b['broker']}`, {b['transport']} gateway"
                   if "arrived" in b else b.get("not_run") or b.get("error"))
        rows.append(f"| burst: 10,000 orders on a stock mosquitto ({_verdict(b)}) | "
                    f"{figures} |")
    return rows


def render(res: dict) -> str:
    k, b, s, d = res["kills"], res["broker"], res["slow"], res["disk"]
    fz, sk = res.get("fuzz"), res.get("soak")
    dr = res.get("disk_real") or {"ok": None, "not_run": "not tried"}
    ran_real = dr.get("ok") is not None
    lost_orders = (k["lost_acks"] + b["lost_acks"] + d["lost_after_restart"]
                   + (dr["lost_after_restart"] if ran_real else 0))
    lost_fills = k["fills_lost"] + b["fills_lost"]
    dup = k["duplicated"] + b["duplicated"]
    faults_n = k["kills"] + b["broker_restarts"] + 1 + 1 + ran_real
    survived = sum(bool(x['ok']) * n for x, n in (
        (k, k['kills']), (b, b['broker_restarts']), (s, 1), (d, 1), (dr, ran_real)))
    lines = [
        "# Reliability: faults survived, nothing lost",
        "",
        f"`python -m reliability{' --quick' if res['quick'] else ''}`, "
        f"{time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()} {platform.system()}, "
        f"Python {platform.python_version()}; fault harness {res['faults_seconds']} s, "
        f"integrity checks {res.get('integrity_seconds', '-')} s. "
        "Harness: `reliability/faults.py`; checks compare what clients received with a fresh "
        "replay of the engine's journal from its first snapshot.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| faults injected / survived | {faults_n} / "
        f"{survived} |",
        f"| **acknowledged orders lost** | **{lost_orders}** |",
        f"| **fills lost / duplicated** | **{lost_fills} / {dup}** |",
        f"| kill -9 of `tokenbook serve` under load | {k['kills']} kills, load held "
        f"{k['load_orders_per_s']} orders/s answered (target {k['target_orders_per_s']}, "
        f"downtime included), restart to online {k['downtime_s_mean']} s mean / "
        f"{k['downtime_s_max']} s max |",
        f"| acknowledged orders checked after kills | {k['acked_checked']} of "
        f"{k['orders_sent']} sent ({k['unanswered']} unanswered), {k['fills_seen']} fills "
        f"seen by clients, {k['trades']} trades in the journal |",
        f"| recovered state == fresh replay from first snapshot | kills "
        f"{k['state_hash_equal']}, broker {b['state_hash_equal']}, disk "
        f"{d['state_hash_equal']} ({k['snapshots']} snapshots) |",
        f"| ledger == initial + replayed fills, conserved | {k['ledger_mismatches'] == 0} "
        f"/ {k['ledger_conserved']} |",
        f"| resent ClOrdIDs after restart answered with the original (PossResend) | "
        f"{k['resends_original']} / {k['resends_checked']} |",
        f"| reports made but never seen by a client after kill -9 | {k['reports_unseen']} "
        f"({k['unseen_fills']} passive fills; state has them: see below) |",
        f"| broker (mosquitto) SIGKILL + restart on the same port | "
        f"{b['broker_restarts']}, {b['orders_sent']} orders, {b['unanswered']} without an "
        f"outcome, {b['reports_unseen']} of {b['reports_engine']} reports not seen by their "
        f"broker, {b['load_orders_per_s']} orders/s |",
        f"| stalled QoS 1 md subscriber (never reads) | {s['stalled_orders_per_s']} vs "
        f"{s['baseline_orders_per_s']} orders/s without it (x{s['ratio']}); mosquitto "
        f"dropped {s['broker_dropped_for_stalled']} messages for it (max_queued "
        f"{s['broker_max_queued']}) |",
        f"| journal ENOSPC | {d['acked_after_failure']} acknowledged after the failure, "
        f"{d['refused_journal_unavailable']}/{d['sent_after_failure']} refused "
        f"JOURNAL_UNAVAILABLE, status `{d['status']}`, "
        f"{d['lost_after_restart']} of {d['acked_before_failure']} lost after restart |",
        (f"| journal on a really full file system ({dr['tmpfs_kb']} kB tmpfs) | full after "
         f"{dr['orders_until_full']} orders ({dr['journal_bytes']} journal bytes), "
         f"{dr['acked_after_full']} acknowledged after, "
         f"{dr['refused_journal_unavailable']}/{dr['sent_after_full']} refused "
         f"JOURNAL_UNAVAILABLE, status `{dr['status']}`; moved and restarted: torn tail "
         f"kept aside {dr['torn_tail_kept'] or 'none'}, {dr['lost_after_restart']} of "
         f"{dr['acknowledged']} lost, state == fresh replay {dr['state_hash_equal']} |"
         if ran_real else
         f"| journal on a really full file system | not run: {dr.get('not_run')} |"),
    ]
    lines += integrity_rows(res)
    if fz is not None:
        lines.append(f"| bad inputs tried (reliability/fuzz.py) | {fz.get('inputs')} in "
                     f"{fz.get('seconds')} s, crashes {fz.get('crashes')}, violations "
                     f"{fz.get('violations')} |")
    else:
        lines.append("| bad inputs tried | reliability/fuzz.py not present |")
    if sk is not None:
        summary = ", ".join(f"{key} {val}" for key, val in sk.items()
                            if isinstance(val, (int, float, str, bool)))[:400]
        lines.append(f"| soak (reliability/soak.py) | {summary} |")
    else:
        lines.append("| soak | reliability/soak.py not present |")
    lines += [
        "",
        "Passive fills across a kill -9: a cycle may die between its journal commit and its "
        "publish, and the resting side of a fill sends no resend of its own. At restart "
        "`tokenbook serve` republishes (PossResend) the reports of the last "
        "`matching.recovery.RESEND_TAIL` replayed inputs, so the row above counts them; clients "
        "drop the ones they already saw by ExecID.",
        "",
        "<details><summary>all figures (JSON)</summary>",
        "",
        "```json",
        json.dumps(res, indent=1, default=str),
        "```",
        "</details>",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reliability",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small runs, about 90 s")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.CRITICAL)
    res = run_all(args.quick)
    text = render(res)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    parts = {"kills": res["kills"], "broker": res["broker"], "slow": res["slow"],
             "disk": res["disk"], "disk_real": res.get("disk_real"),
             "restart_md": res.get("restart_md"), "second_writer": res.get("second_writer"),
             "burst": res.get("burst"), "fuzz": res.get("fuzz"), "soak": res.get("soak")}
    verdict = {name: _ok(p) for name, p in parts.items()}
    print(text.split("\nPassive fills across")[0])
    print("checks:", verdict)
    return 0 if all(v is not False for v in verdict.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

"""What a venue's data directory was founded with, and the check that a start agrees.

``tokenbook serve --data DIR`` founds a venue once (the accounts of ``--accounts``, or the
demo accounts; the instruments of the default programme plus ``--instruments``) and
recovers it on every later start, from the journal and snapshots. The accounts file is
read only at the founding, and replay needs every instrument the books hold, defined as
they were. So the first start records ``DIR/venue.json`` (accounts, instrument
definitions, where they came from), and every start compares its configuration with it
before recovering anything (``check``): an accounts file that adds, lacks or changes an
account, an instrument the venue holds that this start does not define, or a definition
that changed under the books, is refused with one line saying what differs and how to
proceed (``VenueMismatch``). New instruments may join (they are recorded); a moved
reference price or band, or a new name, is reported, not refused (operators move them);
changed call-auction terms (``call_auction``) are refused like any other definition:
replay must run the calls as they ran.

A data directory from before ``venue.json`` is checked against its latest snapshot
(symbols and accounts; definitions are recorded from then on).

An instrument listed by an issuance announcement (a new issue, ``matching.issuance_new``)
is the journal's, not the configuration's: a start need not define it, and one that
defines it too is refused (its replay would list it twice).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import msgspec

from matching.call_terms import CallTerms
from matching.instruments import Instrument, Registry
from matching.journal import latest_snapshot
from matching.ledger import Ledger

__all__ = ["VENUE_FILE", "VenueMismatch", "Recorded", "Plan", "check", "record",
           "read_recorded", "id_ranges", "DEMO"]

VENUE_FILE = "venue.json"
#: ``accounts_source`` of a venue founded with the demo accounts.
DEMO = "demo"
#: Fields an operator may change between starts (reported, not refused).
MOVABLE = frozenset({"name", "reference_price", "band_pct"})


class VenueMismatch(Exception):
    """This start's configuration disagrees with the venue in the data directory."""


Account = tuple[int, str, str]          # id, broker, eligibility


@dataclass
class Recorded:
    """What the data directory says the venue is (``venue.json``, or a legacy snapshot)."""
    accounts: list[Account]
    instruments: dict[str, dict[str, str]]      # symbol -> definition (None: legacy)
    accounts_source: str = ""                   # "demo", a file path, or "" (unknown)
    instruments_sources: list[str] = field(default_factory=list)
    founded: str = ""
    legacy: bool = False                        # from a snapshot: no definitions known


@dataclass
class Plan:
    """What a start that agrees with its data directory will do (for the banner)."""
    recorded: Recorded | None                   # None: a new venue
    added_instruments: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)   # "TB3M reference_price 99 -> 99.1"
    accounts_match_file: bool = False


def definition(inst: Instrument) -> dict[str, str]:
    """An instrument's definition as strings, decimals normalized (``"0.0010"`` is
    ``"0.001"``), so that equal definitions compare equal."""
    out = {}
    for f in dataclasses.fields(inst):
        if not f.init:
            continue
        value = getattr(inst, f.name)
        if isinstance(value, Decimal):
            text = format(value.normalize(), "f")
        elif isinstance(value, frozenset):
            text = ",".join(sorted(value))
        elif isinstance(value, CallTerms):
            text = value.definition()          # "" for the defaults (older venues)
        else:
            text = "" if value is None else str(value)
        out[f.name] = text
    return out


def id_ranges(ids, limit: int = 8) -> str:
    """``1001-1003, 2001, 9001-9002`` (runs of consecutive ids), at most ``limit`` runs."""
    runs: list[list[int]] = []
    for i in sorted(ids):
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    text = [f"{a}" if a == b else f"{a}-{b}" for a, b in runs]
    more = f" and {len(text) - limit} more runs" if len(text) > limit else ""
    return ", ".join(text[:limit]) + more


def _names(items, limit: int = 8) -> str:
    items = list(items)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def read_recorded(data: str | os.PathLike) -> Recorded | None:
    """The venue in ``data`` (None if there is none yet). ValueError if unreadable."""
    data = Path(data)
    path = data / VENUE_FILE
    if path.exists():
        try:
            doc = json.loads(path.read_text("utf-8"))
            return Recorded(accounts=[(int(a), str(b), str(e)) for a, b, e in doc["accounts"]],
                            instruments={s: {k: str(v) for k, v in d.items()}
                                         for s, d in doc["instruments"].items()},
                            accounts_source=str(doc.get("accounts_source", "")),
                            instruments_sources=list(doc.get("instruments_sources", [])),
                            founded=str(doc.get("founded", "")))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path} is unreadable ({exc}): restore it, or move it away "
                             f"to check against the latest snapshot instead") from None
    found = latest_snapshot(data / "snapshots")
    if found is None:
        return None
    try:
        snap = msgspec.msgpack.decode(found[1])
        accounts = [(int(a), str(b), str(e)) for a, b, e, *_ in snap["ledger"]["accounts"]]
        symbols = list(snap["books"])
    except (msgspec.DecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"the latest snapshot in {data / 'snapshots'} is unreadable: "
                         f"{exc}") from None
    listed = listed_by_announcement(data)
    return Recorded(accounts=accounts, instruments={s: {} for s in symbols if s not in listed},
                    legacy=True)


def listed_by_announcement(data: str | os.PathLike) -> set[str]:
    """The new issues the latest snapshot in ``data`` holds as listed by their auction's
    close (``Issuance.snapshot``'s third part), by symbol; none without a snapshot."""
    found = latest_snapshot(Path(data) / "snapshots")
    if found is None:
        return set()
    try:
        issuance = msgspec.msgpack.decode(found[1]).get("issuance") or []
        return {row[1] for row in (issuance[2] if len(issuance) > 2 else []) if row[4]}
    except (msgspec.DecodeError, AttributeError, IndexError, TypeError) as exc:
        raise ValueError(f"the latest snapshot in {Path(data) / 'snapshots'} is "
                         f"unreadable: {exc}") from None


def check(data: str | os.PathLike, registry: Registry, accounts: Ledger | None, *,
          accounts_file: str | None = None, instruments_file: str | None = None) -> Plan:
    """Compare this start's configuration with the venue in ``data``; VenueMismatch (one
    line: what differs, how to proceed) if they disagree. ``accounts``: the ledger of
    ``--accounts`` (None without it)."""
    where = str(data)
    rec = read_recorded(data)
    if rec is None:
        return Plan(None)
    plan = Plan(rec)
    # --- instruments: every one the venue holds must be defined, as it was; none it
    # listed from an issuance announcement may be defined again.
    defined = {inst.symbol: inst for inst in registry}
    twice = sorted(listed_by_announcement(data) & set(defined))
    if twice:
        raise VenueMismatch(
            f"{where} listed {_names(twice)} from an issuance announcement (its journal "
            f"defines it): remove it from --instruments")
    missing = [s for s in rec.instruments if s not in defined]
    if missing:
        source = f"the default programme + {instruments_file}" if instruments_file else \
            "the default programme only"
        before = f"; the venue was founded with --instruments " \
                 f"{_names(rec.instruments_sources)}" if rec.instruments_sources else ""
        raise VenueMismatch(
            f"{where} holds instruments {_names(missing)}, which this start does not define "
            f"({source}{before}): start with the --instruments file that defines them")
    changed: list[str] = []
    moved: list[str] = []
    for symbol, was in rec.instruments.items():
        if not was:
            continue                             # legacy: no definition recorded
        now = definition(defined[symbol])
        for key in sorted(set(was) | set(now)):
            if was.get(key, "") != now.get(key, ""):
                text = f"{symbol} {key} {was.get(key, '') or '(none)'} -> " \
                       f"{now.get(key, '') or '(none)'}"
                (moved if key in MOVABLE else changed).append(text)
    if changed:
        raise VenueMismatch(
            f"{where} was founded with other definitions of its instruments "
            f"({_names(changed, 4)}): a definition cannot change under live books and a "
            f"journal; restore it, or start a new venue with --data NEWDIR")
    plan.moved = moved
    plan.added_instruments = [s for s in defined if s not in rec.instruments]
    # --- accounts: the file is read only when a venue is founded.
    if accounts is not None:
        held = {a: (b, e) for a, b, e in rec.accounts}
        given = {a.account_id: (a.broker, a.eligibility) for a in accounts.accounts.values()}
        adds = [a for a in given if a not in held]
        lacks = [a for a in held if a not in given]
        owner = [f"{a} ({held[a][0]}/{held[a][1]} -> {given[a][0]}/{given[a][1]})"
                 for a in sorted(set(held) & set(given)) if held[a] != given[a]]
        if adds or lacks or owner:
            what = "; ".join(part for part in (
                f"adds {id_ranges(adds)}" if adds else "",
                f"lacks {id_ranges(lacks)}" if lacks else "",
                f"changes {_names(owner, 4)}" if owner else "") if part)
            demo = " (the demo accounts)" if rec.accounts_source == DEMO else ""
            raise VenueMismatch(
                f"{where} holds accounts {id_ranges(held)}{demo}; --accounts "
                f"{accounts_file} {what}: an accounts file is read only when a venue is "
                f"founded. Apply account changes with `tokenbook admin` (not yet "
                f"available), or found a new venue with --data NEWDIR --accounts "
                f"{accounts_file}")
        plan.accounts_match_file = True
    return plan


def record(data: str | os.PathLike, registry: Registry, ledger: Ledger, *,
           accounts_source: str, instruments_file: str | None,
           previous: Recorded | None) -> None:
    """Write ``data/venue.json`` for the venue being served (atomically): its accounts,
    every instrument's definition, and where they came from. A venue recorded before
    keeps its founding date and sources; instruments that joined are added."""
    sources = list(previous.instruments_sources) if previous and not previous.legacy else []
    if instruments_file and str(Path(instruments_file).resolve()) not in sources:
        sources.append(str(Path(instruments_file).resolve()))
    doc = {
        "format": 1,
        "founded": previous.founded if previous and previous.founded else
        datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accounts_source": previous.accounts_source if previous and previous.accounts_source
        else accounts_source,
        "accounts": [[a.account_id, a.broker, a.eligibility]
                     for _, a in sorted(ledger.accounts.items())],
        "instruments": {inst.symbol: definition(inst) for inst in registry},
        "instruments_sources": sources,
    }
    path = Path(data) / VENUE_FILE
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)

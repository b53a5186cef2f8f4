"""Listing an instrument at run time: the new bill or bond an issuance announcement defines
(``matching.issuance``) gets its book and every per-instrument part of the engine, the
same way live, in replay and in recovery (the announcement and close are journaled).

The terms are an ``[[instrument]]`` table of instruments.toml (strings for decimals and
dates), checked by the same loader, so a new issue needs no ``--instruments`` edit.
"""
from __future__ import annotations

from matching.auction import Auctions
from matching.book import make_book
from matching.day_stats import DayStats
from matching.economics import Economics
from matching.fees import open_fee_accounts
from matching.instruments import DEBT_FIELDS, Instrument, InstrumentError, parse_instrument
from matching.risk import PreTradeRisk
from matching.session import TradingSession

__all__ = ["TERM_KEYS", "instrument_of_terms", "list_instrument"]

#: The fields an announcement may define a new issue with (instruments.toml's, less the
#: symbol, which is the announcement's, the venue's cash token, and fees, which a listing
#: does not set).
TERM_KEYS = DEBT_FIELDS - {"symbol", "fees", "cash_token", "cash_decimals"}


def instrument_of_terms(symbol: str, terms: dict, cash_token: str, cash_decimals: int
                        ) -> Instrument:
    """The bill or bond ``terms`` define as ``symbol``, checked as instruments.toml is;
    InstrumentError (its reason) if a term is missing, unknown or wrong."""
    extra = set(terms) - TERM_KEYS
    if extra:
        raise InstrumentError(f"term {sorted(extra)[0]} may not be set by an announcement")
    if terms.get("kind") not in ("tbill", "bond"):
        raise InstrumentError(f"kind must be tbill or bond, got {terms.get('kind')!r}")
    return parse_instrument({**terms, "symbol": symbol},
                            {"token": cash_token, "decimals": cash_decimals})


def _merge(into, fresh, symbol: str) -> None:
    """Copy ``symbol``'s entry of every per-instrument dict of ``fresh`` (a part built for
    the one new instrument) into the same dict of ``into``, nested parts too."""
    for name, value in vars(fresh).items():
        mine = getattr(into, name)
        if isinstance(value, dict):
            if symbol in value:
                mine[symbol] = value[symbol]
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            _merge(mine, value, symbol)


def list_instrument(engine, inst: Instrument) -> None:
    """Give ``engine`` the new instrument ``inst``: its book (empty, continuous trading),
    economics, risk conversions and band, call-auction and session-statistics state."""
    s = inst.symbol
    if s in engine.instruments:
        raise InstrumentError(f"{s} is listed already")
    one = {s: inst}
    engine.instruments[s] = inst                # the risk's dict is the same object
    econ = Economics(inst)
    engine.economics[s] = econ
    lo, n = inst.ladder()
    engine.books[s] = make_book(engine.book_engine, lo, n)
    session = TradingSession(one)
    for part in ("state", "reason", "seq"):
        getattr(engine.session, part)[s] = getattr(session, part)[s]
    risk = PreTradeRisk(one, {s: econ}, engine.ledger, session, engine.clordids)
    engine.risk.bands[s] = risk.bands[s]
    engine.conv[s] = risk.conv[s]               # engine.conv is the risk's
    if s in risk.life:
        engine.risk.life[s] = risk.life[s]
    if s in risk.fees:
        engine.risk.fees[s] = risk.fees[s]
    _merge(engine.auctions, Auctions(one), s)
    _merge(engine.day_stats, DayStats(one), s)
    open_fee_accounts(engine.ledger, [inst])

"""Call-auction settings as instrument terms (matching/call_terms.py): the instruments
TOML's ``call_auction`` table sets an instrument's volatility bands, minimum call
duration, random end, market-pressure limit and closing VWAP window; the defaults are
the engine's former figures; bad values are refused in one line; replay needs them."""
from __future__ import annotations

import tomllib
from decimal import Decimal
from importlib import resources

import pytest
from test_auctions import REG, T0, Clock, make_ledger

from matching.call_end import VOLATILITY_CALL_NS
from matching.call_terms import DEFAULT_CALL_TERMS, CallTerms, parse_call_terms
from matching.engine import Engine
from matching.instruments import InstrumentError, Registry
from matching.journal import Journal, read_journal
from matching.messages import NewOrderSingle

S = 10**9
SHIPPED = resources.files("matching").joinpath("instruments.toml").read_text("utf-8")


def registry_with(terms: dict[str, str]) -> Registry:
    """The shipped programme as a TOML file whose instruments named in ``terms`` carry
    that ``call_auction = {...}`` line."""
    text = SHIPPED
    for symbol, table in terms.items():
        line = f'symbol = "{symbol}"\n'
        assert line in text
        text = text.replace(line, f"{line}call_auction = {{ {table} }}\n")
    reg = Registry()
    reg.add_toml(tomllib.loads(text), "custom.toml")
    return reg


def engine(reg: Registry, book_engine: str = "core", journal=None) -> Engine:
    return Engine(reg, make_ledger(), clock=Clock(), book_engine=book_engine, journal=journal)


def bd(cl, acct, side, qty, price=None, **kw):
    return NewOrderSingle(cl, acct, "BD5Y", side, qty, price=price, **kw)


def tb(cl, acct, side, qty, price=None, **kw):
    return NewOrderSingle(cl, acct, "TB3M", side, qty, price=price, **kw)


def volatile(eng: Engine):
    """BD5Y: last trade 100.000, asks 100.000 x1, 100.500 x1, 103.000 x5; then a buy of
    7 at 104 (the issue's example). Returns that buy's outcome."""
    eng.submit("beta", bd("s0", 2, "sell", "1", "100.000"))
    eng.submit("alpha", bd("b0", 1, "buy", "1", "100.000"))
    for cl, price, qty in (("s1", "100.000", "1"), ("s2", "100.500", "1"),
                           ("s3", "103.000", "5")):
        eng.submit("beta", bd(cl, 2, "sell", qty, price))
    return eng.submit("alpha", bd("big", 1, "buy", "7", "104.000"))


@pytest.fixture(params=["core", "reference"])
def book_engine(request):
    return request.param


# ---------------------------------------------------------------------- parsing
def test_an_instrument_without_a_call_auction_table_keeps_the_former_settings():
    assert all(inst.call_auction == DEFAULT_CALL_TERMS for inst in REG)
    eng = engine(REG)
    assert eng.auctions.bands["BD5Y"] == (Decimal("2"), Decimal("5"))
    assert eng.auctions.extended_pct["BD5Y"] == Decimal("10")
    assert eng.auctions.pressure_pct["BD5Y"] == Decimal("1")
    assert eng.auctions.timer.min_call_ns["BD5Y"] == VOLATILITY_CALL_NS == 120 * S
    assert eng.auctions.timer.random_end_ns["BD5Y"] == 0
    assert eng.auctions.vwap_window_ns["BD5Y"] == 300 * S


def test_the_call_auction_table_sets_every_term_of_its_instrument_only():
    reg = registry_with({"BD5Y": 'dynamic_band_pct = "3.5", static_band_pct = "6", '
                                 'extended_band_pct = "12", pressure_limit_pct = "0.5", '
                                 'min_call_seconds = 30, random_end_seconds = 10, '
                                 'closing_vwap_seconds = 60'})
    assert reg["BD5Y"].call_auction == CallTerms(
        Decimal("3.5"), Decimal("6"), Decimal("12"), Decimal("0.5"), 30, 10, 60)
    assert reg["TB3M"].call_auction == DEFAULT_CALL_TERMS
    eng = engine(reg)
    assert eng.auctions.bands["BD5Y"] == (Decimal("3.5"), Decimal("6"))
    assert eng.auctions.timer.random_end_ns == {**dict.fromkeys(reg_symbols(reg), 0),
                                                "BD5Y": 10 * S}


def reg_symbols(reg: Registry) -> list[str]:
    return [inst.symbol for inst in reg]


@pytest.mark.parametrize("table, needle", [
    ('dynamic_band_pct = 2.5', "dynamic_band_pct: must be a decimal string"),      # a TOML float
    ('static_band_pct = "0"', "static_band_pct: a percentage from above 0"),
    ('extended_band_pct = "100"', "extended_band_pct: a percentage"),
    ('pressure_limit_pct = "-1"', "pressure_limit_pct: a percentage from 0"),
    ('pressure_limit_pct = "lots"', "pressure_limit_pct: not a decimal"),
    ('min_call_seconds = -5', "min_call_seconds: whole seconds in 0..86400"),
    ('random_end_seconds = "30"', "random_end_seconds: whole seconds"),
    ('closing_vwap_seconds = 0', "closing_vwap_seconds: whole seconds in 1..86400"),
    ('min_call_seconds = true', "min_call_seconds: whole seconds"),
    ('static_band_pct = "12"', "extended_band_pct: the wider band must be at least"),
    ('volatility = "2"', "unknown key 'volatility'"),
])
def test_a_bad_call_auction_term_is_refused_in_one_line_naming_it(table, needle):
    with pytest.raises(InstrumentError) as exc:
        registry_with({"BD5Y": table})
    text = str(exc.value)
    assert "\n" not in text and needle in text
    assert text.startswith("custom.toml: instrument 4 (BD5Y): field call_auction: ")


def test_call_auction_must_be_a_table():
    with pytest.raises(ValueError, match="call_auction must be a table"):
        parse_call_terms("2%")


# ---------------------------------------------------------------------- behaviour
def test_a_wider_dynamic_band_lets_the_big_buy_fill_whole(book_engine):
    """Default 2% around 100: the buy fills 2 and waits in a call; with 5% (static 6%)
    the asks up to 103 lie inside both bands and it fills all 7 in continuous trading."""
    default = volatile(engine(REG, book_engine))
    assert len(default.trades) == 2
    eng = engine(registry_with({"BD5Y": 'dynamic_band_pct = "5", static_band_pct = "6"'}),
                 book_engine)
    out = volatile(eng)
    assert [t.price for t in out.trades] == ["100.000", "100.500", "103.000"]
    assert eng.trading_status("BD5Y").state == "continuous"


def test_a_narrower_dynamic_band_interrupts_sooner(book_engine):
    """0.4% around 100: 100.500 is already outside 99.600..100.400, so one fill only."""
    eng = engine(registry_with({"BD5Y": 'dynamic_band_pct = "0.4"'}), book_engine)
    out = volatile(eng)
    assert [t.price for t in out.trades] == ["100.000"]
    assert "dynamic band 99.600..100.400" in eng.trading_status("BD5Y").reason


def test_the_minimum_call_duration_is_the_instruments(book_engine):
    eng = engine(registry_with({"BD5Y": "min_call_seconds = 30"}), book_engine)
    volatile(eng)
    start = eng.now
    assert eng.next_call_end() == start + 30 * S
    early = eng.admin("end_call", now=start + 30 * S - 1)
    assert early.refused.startswith("CALL_NOT_DUE")
    eng.admin("end_call", now=start + 30 * S)
    assert eng.trading_status("BD5Y").state == "continuous"


def test_a_narrower_extended_band_keeps_the_volatility_call_for_the_operator(book_engine):
    """The rest of the big buy (5 at 104 against 5 at 103) uncrosses at 103, 2.8% above
    the static reference 100.190: inside the default 10% band, outside a 2.5% one."""
    eng = engine(registry_with({"BD5Y": 'static_band_pct = "2.5", dynamic_band_pct = "2", '
                                        'extended_band_pct = "2.5"'}), book_engine)
    volatile(eng)
    eng.admin("end_call", now=eng.now + VOLATILITY_CALL_NS)
    status = eng.trading_status("BD5Y")
    assert status.state == "pre_open" and "extended" in status.reason
    assert eng.next_call_end() is None


def test_a_random_end_term_keeps_the_opening_call_after_open(book_engine):
    eng = engine(registry_with({"TB3M": "random_end_seconds = 30"}), book_engine)
    eng.admin("pre_open", "", "opening call")
    eng.submit("alpha", tb("b1", 1, "buy", "2", "99.020"))
    eng.submit("beta", tb("s1", 2, "sell", "1", "99.000"))
    out = eng.admin("open", "")
    assert not out.trades                              # TB3M waits for its random end
    assert eng.trading_status("TB3M").state == "pre_open"
    assert eng.trading_status("BD5Y").state == "continuous"   # no random end: opened
    ends = eng.next_call_end()
    assert ends is not None and ends - eng.now <= 30 * S
    done = eng.admin("end_call", now=ends)
    assert {t.price for t in done.trades} == {"99.020"}


def test_the_pressure_limit_is_the_instruments(book_engine):
    """Opening call of TB3M, reference 99.270: buy 10 at 99.500, sell 5 at 99.000; every
    candidate has the same volume and a buy surplus. The default 1% cap (100.262) lies
    above them all: the highest, 99.500. A 0.1% cap (99.369) lies between: the cap."""
    prices = {}
    for pct in ("1", "0.1"):
        eng = engine(registry_with({"TB3M": f'pressure_limit_pct = "{pct}"'}), book_engine)
        eng.admin("pre_open", "TB3M", "opening call")
        eng.submit("alpha", tb("b1", 1, "buy", "10", "99.500"))
        eng.submit("beta", tb("s1", 2, "sell", "5", "99.000"))
        prices[pct] = {t.price for t in eng.admin("open", "TB3M").trades}
    assert prices == {"1": {"99.500"}, "0.1": {"99.369"}}


def test_the_closing_vwap_window_is_the_instruments(book_engine):
    """Trades at 99.000 then, 90 s later, at 99.100, and no closing auction: a 60 s
    window averages the last trade only, the default 5 minutes both."""
    closes = {}
    for seconds in (300, 60):
        eng = engine(registry_with({"TB3M": f"closing_vwap_seconds = {seconds}"}),
                     book_engine)
        t = T0
        eng.submit("beta", tb("s1", 2, "sell", "1", "99.000"), now=t + S)
        eng.submit("alpha", tb("b1", 1, "buy", "1", "99.000"), now=t + S)
        eng.submit("beta", tb("s2", 2, "sell", "1", "99.100"), now=t + 91 * S)
        eng.submit("alpha", tb("b2", 1, "buy", "1", "99.100"), now=t + 91 * S)
        eng.admin("close", "TB3M", now=t + 100 * S)
        closes[seconds] = eng.closing_price("TB3M")
    assert closes[60].method == closes[300].method == "vwap"
    assert (closes[60].price_ticks, closes[300].price_ticks) == (99_100, 99_050)


# ---------------------------------------------------------------------- replay
def test_replay_with_the_same_terms_reproduces_the_calls_and_other_terms_do_not(tmp_path):
    custom = registry_with({"BD5Y": 'dynamic_band_pct = "0.4", min_call_seconds = 30, '
                                    'random_end_seconds = 5'})
    for book_engine in ("core", "reference"):
        path = tmp_path / f"{book_engine}.journal"
        eng = engine(custom, book_engine, journal=Journal(path, fsync="none"))
        volatile(eng)
        end = eng.next_call_end()
        assert end is not None
        eng.admin("end_call", now=end)                 # past the minimum: the random end
        drawn = eng.next_call_end()
        if drawn is not None:
            eng.admin("end_call", now=drawn)
        assert eng.trading_status("BD5Y").state == "continuous"
        eng.commit()
        replayed = engine(custom, book_engine)
        replayed.replay(read_journal(path))
        assert replayed.state_hash() == eng.state_hash()
        # Replayed under the default terms the same inputs trade otherwise (why a venue
        # refuses a restart with changed terms: feeds/venue.py).
        other = engine(REG, book_engine)
        other.replay(read_journal(path))
        assert other.state_hash() != eng.state_hash()
        eng.close()


# ---------------------------------------------------------------------- resume
def extended(eng: Engine):
    """BD5Y's volatility call extended: a 2.5% extended band around 100.190, the
    indicative price 103.000 outside it."""
    volatile(eng)
    eng.admin("end_call", now=eng.now + VOLATILITY_CALL_NS)
    assert "extended" in eng.trading_status("BD5Y").reason


EXTENDED = {"BD5Y": 'static_band_pct = "2.5", extended_band_pct = "2.5"'}


def test_resume_ends_an_extended_volatility_call_with_the_uncross(book_engine):
    eng = engine(registry_with(EXTENDED), book_engine)
    extended(eng)
    assert "(resume or open)" in eng.trading_status("BD5Y").reason
    out = eng.admin("resume", "BD5Y", "supervision checked the price")
    assert out.sequenced and {t.price for t in out.trades} == {"103.000"}
    assert all(r.match_type == "auction" for _, r in out.reports if r.exec_type == "trade")
    status = eng.trading_status("BD5Y")
    assert (status.state, status.reason, status.seq) == (
        "continuous", "supervision checked the price", out.seq)
    assert not eng.books["BD5Y"].in_call and not eng.auctions.extended
    # Continuous again: a resume now is the legal no-op of a continuous book.
    again = eng.admin("resume", "BD5Y")
    assert again.sequenced and not again.trades


def test_a_venue_wide_resume_ends_the_extended_call_too(book_engine):
    eng = engine(registry_with(EXTENDED), book_engine)
    extended(eng)
    out = eng.admin("resume", "")
    assert {t.price for t in out.trades} == {"103.000"}
    assert eng.trading_status("BD5Y").state == "continuous"


def test_resume_still_refuses_a_call_that_is_not_extended(book_engine):
    """A volatility call in its minimum duration, or an opening call, is no halt: the
    operator ends it with open (resume refused, nothing journaled)."""
    eng = engine(REG, book_engine)
    volatile(eng)
    seq = eng.seq
    out = eng.admin("resume", "BD5Y")
    assert not out.sequenced and "resume needs" in out.refused and eng.seq == seq
    eng.admin("pre_open", "TB3M", "opening call")
    assert not eng.admin("resume", "TB3M").sequenced


def test_a_halt_of_an_extended_call_resumes_through_the_call_once(book_engine):
    eng = engine(registry_with(EXTENDED), book_engine)
    extended(eng)
    eng.admin("halt", "BD5Y", "news")
    out = eng.admin("resume", "BD5Y")
    assert [t.price for t in out.trades] == ["103.000"]       # one uncross, not two
    assert eng.auctions.uncrossed["BD5Y"][0] == out.seq


def test_replay_and_a_snapshot_in_an_extended_call_reproduce_the_resume(tmp_path):
    reg = registry_with(EXTENDED)
    for book_engine in ("core", "reference"):
        path = tmp_path / f"{book_engine}.journal"
        eng = engine(reg, book_engine, journal=Journal(path, fsync="none"))
        extended(eng)
        payload, snap_seq = eng.snapshot(), eng.seq
        eng.admin("resume", "BD5Y")
        eng.commit()
        replayed = engine(reg, book_engine)
        replayed.replay(read_journal(path))
        assert replayed.state_hash() == eng.state_hash()
        restored = Engine.from_snapshot(reg, payload, clock=Clock(), book_engine=book_engine)
        assert restored.auctions.extended == {"BD5Y"}
        restored.replay(read_journal(path, after_seq=snap_seq))
        assert restored.state_hash() == eng.state_hash()
        eng.close()

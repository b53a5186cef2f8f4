"""The instrument registry: the shipped programme, exact ticks and lots, clear rejections."""
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matching.instruments import (
    InstrumentError, OffLotError, OffTickError, Registry, isin_is_valid,
)


@pytest.fixture(scope="module")
def reg():
    return Registry.load_default()


def test_default_programme_has_bills_bonds_and_gold(reg):
    kinds = {i.symbol: i.kind for i in reg}
    assert kinds == {"TB3M": "tbill", "TB6M": "tbill", "TB12M": "tbill", "BD3Y": "bond",
                     "BD5Y": "bond", "BD10Y": "bond", "GOLD": "commodity"}
    assert all(reg[s].coupon_frequency == 2 for s in ("BD3Y", "BD5Y", "BD10Y"))
    assert reg.by_isin("XS000BD5Y267") is reg["BD5Y"]


def test_isin_check_digit():
    assert isin_is_valid("US0378331005")           # Apple Inc., a published ISIN
    assert not isin_is_valid("US0378331006")
    assert not isin_is_valid("US03783310")


def test_off_tick_price_is_rejected_not_rounded(reg):
    with pytest.raises(OffTickError, match="not a multiple of tick 0.001 for TB3M"):
        reg["TB3M"].price_to_ticks("99.0155")
    assert reg["TB3M"].price_to_ticks("99.015") == 99015


def test_off_lot_quantity_is_rejected_not_rounded(reg):
    with pytest.raises(OffLotError, match="finer than the lot 0.0001"):
        reg["BD3Y"].qty_to_lots("1.00005")
    assert reg["BD3Y"].qty_to_lots("1.0001") == 10001


def test_floats_never_become_prices(reg):
    with pytest.raises(TypeError, match="not a float"):
        reg["TB3M"].price_to_ticks(99.015)


def test_garbage_prices_are_rejected_with_a_reason(reg):
    for bad in ("abc", "NaN", "Infinity", "-1"):
        with pytest.raises(InstrumentError):
            reg["GOLD"].price_to_ticks(bad)


def test_band_is_around_the_reference_and_inside_the_ladder(reg):
    for inst in reg:
        ref = inst.reference_ticks()
        lo, hi = inst.band_ticks(ref)
        start, n = inst.ladder()
        assert start <= lo < ref < hi < start + n


def test_duplicate_symbol_in_a_user_file_is_rejected(tmp_path, reg):
    f = tmp_path / "more.toml"
    f.write_text('[[instrument]]\nsymbol = "GOLD"\nisin = "US0378331005"\nkind = "commodity"\n'
                 'token_decimals = 2\ntick_size = "0.01"\nband_pct = "5"\n'
                 'reference_price = "1.00"\neligibility = ["retail"]\n')
    with pytest.raises(InstrumentError, match="more.toml: instrument 0 .*duplicate symbol"):
        Registry.load_default(f)


def test_bad_isin_names_file_and_field(tmp_path):
    f = tmp_path / "bad.toml"
    f.write_text('[[instrument]]\nsymbol = "X"\nisin = "XS0000000000"\nkind = "commodity"\n'
                 'token_decimals = 2\ntick_size = "0.01"\nband_pct = "5"\n'
                 'reference_price = "1.00"\neligibility = ["retail"]\n')
    reg = Registry()
    with pytest.raises(InstrumentError, match="bad.toml: instrument 0 \\(X\\): ISIN"):
        reg.load(f)


@given(st.integers(0, 10**9))
def test_ticks_and_prices_round_trip(ticks):
    inst = Registry.load_default()["BD10Y"]
    assert inst.price_to_ticks(inst.ticks_to_price(ticks)) == ticks
    assert inst.qty_to_lots(inst.lots_to_qty(ticks)) == ticks

"""The instrument registry: the shipped programme, exact ticks and lots, clear rejections."""
from datetime import date
from decimal import Decimal as D

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from matching import fixed_income as fi
from matching.instruments import (
    InstrumentError,
    OffLotError,
    OffTickError,
    Registry,
    isin_is_valid,
)

REG = Registry.load_default()
TODAY = date(2026, 11, 25)

GOOD_BILL = """
[[instrument]]
symbol = "TB1M"
isin = "US0378331005"
kind = "tbill"
face_value = "100"
token_decimals = 2
tick_size = "0.005"
issue_date = 2026-11-24
maturity = 2026-12-22
band_pct = "1"
reference_price = "99.700"
eligibility = ["retail"]
"""


def write(tmp_path, text, name="user.toml"):
    f = tmp_path / name
    f.write_text(text)
    return f


# ---------------------------------------------------------------- the default programme
def test_default_programme_is_three_bills_three_bonds_and_gold():
    assert {i.symbol: i.kind for i in REG} == {
        "TB3M": "tbill", "TB6M": "tbill", "TB12M": "tbill",
        "BD3Y": "bond", "BD5Y": "bond", "BD10Y": "bond", "GOLD": "commodity"}
    tenors = {s: (REG[s].maturity - REG[s].issue_date).days for s in ("TB3M", "TB6M", "TB12M")}
    assert tenors == {"TB3M": 91, "TB6M": 182, "TB12M": 364}
    for sym, years in (("BD3Y", 3), ("BD5Y", 5), ("BD10Y", 10)):
        b = REG[sym]
        assert b.coupon_frequency == 2 and b.day_count == "ACT/ACT ICMA"
        assert fi.add_months(b.issue_date, 12 * years) == b.maturity
    for inst in REG:
        assert inst.settlement_lag == 0 and (inst.cash_token, inst.cash_decimals) == ("USDC", 6)
        if inst.kind != "commodity":
            assert inst.issue_date.year == 2026 and inst.face_value == 1000


def test_reference_prices_sit_on_an_upward_sloping_curve_today():
    yields = [fi.instrument_yield(REG[s], REG[s].reference_ticks(), TODAY)
              for s in ("TB3M", "TB6M", "TB12M", "BD3Y", "BD5Y", "BD10Y")]
    assert yields == sorted(yields)
    assert D("0.035") < yields[0] and yields[-1] < D("0.05")


def test_every_default_isin_passes_its_check_digit_and_is_found():
    for inst in REG:
        assert isin_is_valid(inst.isin)
        assert REG.by_isin(inst.isin) is inst and REG.lookup(inst.isin) is inst
    assert REG.lookup("BD5Y") is REG["BD5Y"]
    with pytest.raises(KeyError, match="no instrument"):
        REG.lookup("XS0000000000")


def test_isin_check_digit_matches_published_isins():
    # Worked examples of ISO 6166 (Wikipedia, "International Securities Identification
    # Number"): Apple US0378331005, Treasury Corporation of Victoria AU0000XVGZA3,
    # BAE Systems GB0002634946.
    for isin in ("US0378331005", "AU0000XVGZA3", "GB0002634946"):
        assert isin_is_valid(isin)
    for bad in ("US0378331006", "US03783310", "us0378331005", "ÄÄ0378331005", None):
        assert not isin_is_valid(bad)


def test_lot_is_fixed_by_the_token_decimals():
    inst = REG["TB3M"]
    assert inst.token_decimals == 4 and inst.lot == D("0.0001")
    assert inst.qty_to_lots("0.0001") == 1 and inst.qty_to_lots(2000) == 20_000_000


def test_minimum_order_is_a_whole_number_of_lots():
    assert REG["TB3M"].min_order_lots == 100            # 0.01 token
    assert REG["BD10Y"].min_order_lots == 10_000        # 1 token, institutional only
    assert REG["BD10Y"].eligibility == frozenset({"institutional"})


def test_one_tick_on_one_lot_is_exactly_one_cash_minor_unit():
    for inst in REG:
        move = inst.lots_to_qty(1) * inst.tick_size * (inst.face_value or 100) / 100
        assert move == D(1).scaleb(-inst.cash_decimals)


# ---------------------------------------------------------------- ticks and lots
def test_off_tick_price_is_rejected_not_rounded():
    with pytest.raises(OffTickError) as err:
        REG["TB3M"].price_to_ticks("99.1234")
    assert str(err.value) == "price 99.1234 is not a multiple of tick 0.001 for TB3M"
    assert isinstance(err.value, InstrumentError) and isinstance(err.value, ValueError)
    assert REG["TB3M"].price_to_ticks("99.123") == 99123


def test_a_price_off_tick_in_the_thirtieth_decimal_is_still_rejected():
    with pytest.raises(OffTickError):
        REG["TB3M"].price_to_ticks("99.0000000000000000000000000000001")
    assert REG["TB3M"].price_to_ticks("99.000000000000000000000000000000") == 99000


def test_off_lot_quantity_is_rejected_not_rounded():
    with pytest.raises(OffLotError,
                       match=r"quantity 1\.00005 is finer than the lot 0\.0001 of BD3Y"):
        REG["BD3Y"].qty_to_lots("1.00005")
    assert REG["BD3Y"].qty_to_lots("1.0001") == 10001


def test_floats_never_become_prices_or_quantities():
    inst = REG["TB3M"]
    for call, arg in ((inst.price_to_ticks, 99.015), (inst.qty_to_lots, 1.5),
                      (inst.ticks_to_price, 99015.0), (inst.lots_to_qty, 2.0),
                      (inst.price_to_ticks, True)):
        with pytest.raises(TypeError):
            call(arg)


def test_garbage_negative_and_absurd_numbers_are_rejected_with_a_reason():
    inst = REG["GOLD"]
    for bad, why in (("abc", "not a decimal"), ("NaN", "not a decimal"),
                     ("Infinity", "not a decimal"), ("1_000", "not a decimal"),
                     (" 1", "not a decimal"), ("-1", "negative"), ("1e100", "out of range")):
        with pytest.raises(InstrumentError, match=why):
            inst.price_to_ticks(bad)
    with pytest.raises(InstrumentError, match="quantity -1 is negative"):
        inst.qty_to_lots("-1")


def test_decimals_keep_the_tick_and_lot_scale():
    inst = REG["TB3M"]
    assert str(inst.ticks_to_price(99000)) == "99.000"
    assert str(inst.lots_to_qty(25_000)) == "2.5000"
    assert inst.ticks_to_price(np.int64(99270)) == D("99.270")   # numpy ints from the core
    assert inst.price_to_ticks(D("99.27")) == inst.price_to_ticks("99.270") == 99270


def test_band_is_reference_plus_minus_percent_rounded_down_to_ticks():
    # TB3M: reference 99.270 = 99270 ticks, 2 % = 1985.4 ticks -> 1985 either side.
    inst = REG["TB3M"]
    assert inst.band_ticks(99270) == (97285, 101255)
    # ladder: three band widths each side: 99270 - 5955 = 93315, 11911 levels
    assert inst.ladder() == (93315, 11911)


def test_band_is_around_the_reference_and_inside_the_ladder():
    for inst in REG:
        ref = inst.reference_ticks()
        lo, hi = inst.band_ticks(ref)
        start, n = inst.ladder()
        assert start <= lo < ref < hi < start + n and start >= 0


# ---------------------------------------------------------------- user files
def test_user_file_adds_instruments_with_their_own_cash_leg(tmp_path):
    f = write(tmp_path, '[cash]\ntoken = "USDX"\ndecimals = 2\n' + GOOD_BILL)
    reg = Registry.load_default(f)
    assert len(reg) == len(REG) + 1 and "TB1M" in reg
    bill = reg.lookup("US0378331005")
    assert (bill.cash_token, bill.cash_decimals, bill.lot, bill.min_order_lots) == (
        "USDX", 2, D("0.01"), 1)
    assert bill.day_count == "ACT/365F" and bill.yield_convention == "money_market"
    assert reg["TB3M"].cash_token == "USDC"             # the shipped file keeps its cash


def test_duplicate_symbol_in_a_user_file_is_rejected(tmp_path):
    f = write(tmp_path, GOOD_BILL.replace('"TB1M"', '"GOLD"'), "more.toml")
    with pytest.raises(InstrumentError, match=r"more.toml: instrument 0 \(GOLD\): "
                                              r"field symbol: duplicate symbol GOLD"):
        Registry.load_default(f)


def test_duplicate_isin_is_rejected_naming_the_holder(tmp_path):
    f = write(tmp_path, GOOD_BILL.replace("US0378331005", "XS000BD5Y267"))
    with pytest.raises(InstrumentError, match="field isin: duplicate ISIN XS000BD5Y267 "
                                              r"\(already BD5Y\)"):
        Registry.load_default(f)


def test_a_bad_file_adds_nothing(tmp_path):
    reg = Registry.load_default()
    second = GOOD_BILL.replace('"TB1M"', '"TB2M"').replace("US0378331005", "AU0000XVGZA3")
    f = write(tmp_path, GOOD_BILL + second.replace('tick_size = "0.005"', 'tick_size = "0"'))
    with pytest.raises(InstrumentError, match=r"instrument 1 \(TB2M\): field tick_size"):
        reg.load(f)
    assert "TB1M" not in reg and len(reg) == len(REG)


@pytest.mark.parametrize("change, message", [
    (('tick_size = "0.005"', 'tick = "0.005"'), "field tick is unknown"),
    (('tick_size = "0.005"', ""), "missing field tick_size"),
    (('tick_size = "0.005"', "tick_size = 0.005"), "field tick_size: must be a decimal string"),
    (("US0378331005", "US0378331006"), "field isin: 'US0378331006' is malformed or fails"),
    (('kind = "tbill"', 'kind = "note"'), "field kind: must be one of"),
    (('face_value = "100"', 'face_value = "0"'), "field face_value: must be positive"),
    (("maturity = 2026-12-22", "maturity = 2026-11-01"), "field maturity: 2026-11-01 must be "
                                                         "after issue_date"),
    (('band_pct = "1"', 'band_pct = "1"\ncoupon_rate = "0.04"'),
     "field coupon_rate does not apply to a tbill"),
    (('band_pct = "1"', 'band_pct = "1"\nday_count = "30/360"'), "field day_count: a bill's"),
    (('band_pct = "1"', 'band_pct = "1"\nday_count = "ACT/364"'),
     "field day_count: unknown day-count convention"),
    (('band_pct = "1"', 'band_pct = "1"\nyield_convention = "street"'),
     "field yield_convention: must be one of"),
    (('reference_price = "99.700"', 'reference_price = "99.701"'),
     "field reference_price: price 99.701 is not a multiple of tick 0.005"),
    (('eligibility = ["retail"]', 'eligibility = ["everyone"]'), "field eligibility"),
    (("token_decimals = 2", "token_decimals = 2.5"), "field token_decimals: must be an integer"),
    (('band_pct = "1"', 'band_pct = "100"'), "field band_pct: must be below 100"),
    (('band_pct = "1"', 'band_pct = "1"\nmin_order_qty = "0.001"'),
     "field min_order_qty: quantity 0.001 is finer than the lot 0.01"),
    (('symbol = "TB1M"', 'symbol = "tb1m"'), "field symbol: must be 1-12 capital"),
    (("issue_date = 2026-11-24", "issue_date = 2026-11-24T10:00:00"),
     "field issue_date: must be a date"),
])
def test_invalid_definition_names_file_instrument_and_field(tmp_path, change, message):
    old, new = change
    assert old in GOOD_BILL
    f = write(tmp_path, GOOD_BILL.replace(old, new), "bad.toml")
    with pytest.raises(InstrumentError) as err:
        Registry().load(f)
    assert str(err.value).startswith(f"{f}: instrument 0 (")
    assert message in str(err.value)


def test_bond_coupon_given_in_percent_is_refused(tmp_path):
    bond = GOOD_BILL.replace('kind = "tbill"', 'kind = "bond"').replace(
        'band_pct = "1"', 'band_pct = "1"\ncoupon_rate = "4.5"\ncoupon_frequency = 2')
    with pytest.raises(InstrumentError, match=r"field coupon_rate: a fraction \(0.045 for 4.5%\)"):
        Registry().load(write(tmp_path, bond))
    ok = Registry()
    ok.load(write(tmp_path, bond.replace('"4.5"', '"0.045"'), "ok.toml"))
    assert ok["TB1M"].day_count == "ACT/ACT ICMA" and ok["TB1M"].yield_convention == "street"


def test_unknown_table_and_invalid_toml_name_the_file(tmp_path):
    with pytest.raises(InstrumentError, match=r"x.toml: unknown table\(s\) \['instruments'\]"):
        Registry().load(write(tmp_path, GOOD_BILL.replace("[[instrument]]", "[[instruments]]"),
                              "x.toml"))
    with pytest.raises(InstrumentError, match=r"y\.toml: not valid TOML"):
        Registry().load(write(tmp_path, "symbol = ", "y.toml"))


# ---------------------------------------------------------------- properties
@given(st.sampled_from(list(REG)), st.integers(0, 10**12))
def test_ticks_and_lots_round_trip_through_decimals(inst, n):
    assert inst.price_to_ticks(inst.ticks_to_price(n)) == n
    assert inst.price_to_ticks(str(inst.ticks_to_price(n))) == n
    assert inst.qty_to_lots(inst.lots_to_qty(n)) == n


@given(st.sampled_from(list(REG)), st.integers(0, 10**9), st.integers(1, 9))
def test_any_price_between_two_ticks_is_rejected(inst, ticks, tenth):
    between = inst.ticks_to_price(ticks) + inst.tick_size * tenth / 10
    with pytest.raises(OffTickError):
        inst.price_to_ticks(between)


@given(st.sampled_from(list(REG)), st.integers(0, 10**9), st.integers(1, 9))
def test_any_quantity_between_two_lots_is_rejected(inst, lots, tenth):
    between = inst.lots_to_qty(lots) + inst.lot * tenth / 10
    with pytest.raises(OffLotError):
        inst.qty_to_lots(between)

"""Per-instrument market conventions: day count, calendar, schedule, yields, rounding."""
from datetime import UTC, date, datetime
from decimal import Decimal as D
from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import fixed_income as fi
from matching.economics import Economics
from matching.instruments import InstrumentError, Registry

BOND = {"symbol": "UST5Y", "isin": "US0378331005", "kind": "bond", "face_value": "1000",
        "token_decimals": 4, "tick_size": "0.001", "issue_date": date(1990, 12, 3),
        "maturity": date(1996, 2, 15), "coupon_rate": "0.07875", "coupon_frequency": 2,
        "min_order_qty": "0.0001", "band_pct": "20", "reference_price": "100.000",
        "eligibility": ["retail"]}


def load(**fields):
    reg = Registry()
    row = {**BOND, **fields}
    reg.add_toml({"instrument": [{k: v for k, v in row.items() if v is not None}]},
                 "conv.toml")
    return reg[row["symbol"]]


def test_the_ambiguous_day_count_is_refused_with_one_line():
    with pytest.raises(InstrumentError) as err:
        load(day_count="ACT/ACT")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("conv.toml: instrument 0 (UST5Y): field day_count: day count "
                          "'ACT/ACT' is ambiguous")
    assert "'ACT/ACT ICMA'" in msg and "'ACT/ACT ISDA'" in msg


@pytest.mark.parametrize("name", ["ACT/ACT ISDA", "30/360 US", "30E/360", "30E/360 ISDA",
                                  "ACT/365L", "ACT/ACT ICMA"])
def test_every_explicit_day_count_loads(name):
    assert load(day_count=name).day_count == name


def test_long_first_coupon_instrument_accrues_across_quasi_periods():
    # 31 CFR 356 App. B I.A.4's note as an instrument: the first coupon is $55.21 on
    # $1,000, and accrued interest at the first coupon's eve is most of it.
    inst = load(first_coupon=date(1991, 8, 15))
    first = fi.coupon_schedule(inst)[0]
    assert first.amount_per_100 == F(7875, 1000) * (F(74, 368) + F(1, 2))
    assert not first.regular
    eve = fi.instrument_accrued(inst, date(1991, 8, 14))
    assert eve == F(7875, 1000) * (F(74, 368) + F(180, 362))
    # without first_coupon the same bond would have paid a short coupon on 15 Feb 1991
    assert fi.coupon_schedule(load())[0].accrual_end == date(1991, 2, 15)


def test_off_cycle_schedule_dates_are_refused_naming_the_field():
    with pytest.raises(InstrumentError, match="field first_coupon: first_coupon 1991-09-01 "
                                              "is not a whole number of 6-month periods"):
        load(first_coupon=date(1991, 9, 1), penultimate_coupon=date(1995, 8, 15))
    with pytest.raises(InstrumentError, match="field penultimate_coupon: "):
        load(penultimate_coupon=date(1996, 2, 15))
    with pytest.raises(InstrumentError, match="field end_of_month: must be true or false"):
        load(end_of_month="yes")


def test_unknown_convention_values_are_refused():
    with pytest.raises(InstrumentError, match="field calendar: unknown calendar 'MARS'"):
        load(calendar="MARS")
    with pytest.raises(InstrumentError, match="field rounding: must be one of"):
        load(rounding="banker")
    with pytest.raises(InstrumentError, match="field business_day_rule: must be one of"):
        load(business_day_rule="nearest")
    with pytest.raises(InstrumentError, match="field last_period_yield: must be one of"):
        load(last_period_yield="money_market")


def test_coupon_schedule_gives_payment_and_record_dates_in_business_days():
    # BD10Y-like 4.5 % bond paying 15 May / 15 Nov: 15 Nov 2026 is a Sunday, so on the US
    # calendar with modified following it pays Monday 16 Nov; a 7-business-day record lag
    # (gilt style) fixes holders on 4 Nov (Veterans Day, 11 Nov, is closed).
    inst = load(symbol="BD10Y", issue_date=date(2026, 5, 15), maturity=date(2036, 5, 15),
                coupon_rate="0.045", calendar="US", business_day_rule="modified_following")
    first = fi.coupon_schedule(inst, record_lag=7)[0]
    assert (first.accrual_start, first.accrual_end) == (date(2026, 5, 15), date(2026, 11, 15))
    assert first.payment_date == date(2026, 11, 16)
    assert first.record_date == date(2026, 11, 4)
    assert first.amount_per_100 == F(9, 4)
    # accrual is unadjusted: the next period still starts on the Sunday
    assert fi.coupon_schedule(inst)[1].accrual_start == date(2026, 11, 15)


def test_bd3y_pays_20_usdc_per_token_per_coupon_and_par_at_maturity():
    # issue 17: 4 % semi-annual on 1000 face is 20.000000 USDC per token per coupon
    bd3y = Registry.load_default()["BD3Y"]
    coupons = fi.coupon_schedule(bd3y)
    assert len(coupons) == 6 and all(c.regular for c in coupons)
    assert {fi.coupon_cash(bd3y, 10_000, c.amount_per_100) for c in coupons} == {20_000_000}
    assert fi.coupon_cash(bd3y, 1, coupons[0].amount_per_100) == 2_000      # 0.0001 token
    assert fi.redemption_cash(bd3y, 10_000) == 1_000_000_000
    assert coupons[-1].payment_date == bd3y.maturity == date(2029, 6, 15)


def test_a_four_week_bill_bought_at_auction_redeems_at_par():
    # issue 17's example: a 4-week (28-day) bill issued at 99.924556, a 0.970 % discount
    # (31 CFR 356 App. B VI.C); one token of 1000 face costs 999.245560 and pays
    # 1000.000000 at maturity.
    bill = load(symbol="UST4W", kind="tbill", issue_date=date(2026, 11, 3),
                maturity=date(2026, 12, 1), tick_size="0.000001",
                reference_price="99.924556", day_count="ACT/360",
                yield_convention="discount", coupon_rate=None, coupon_frequency=None)
    cost = fi.trade_economics(bill, bill.price_to_ticks("99.924556"), 10_000, date(2026, 11, 3))
    assert cost.settlement_amount == 999_245_560
    assert (cost.yield_ * 100).quantize(D("0.001")) == D("0.970")
    assert fi.redemption_cash(bill, 10_000) == 1_000_000_000


def test_interest_to_next_coupon_is_the_rest_of_the_period():
    # BD3Y on 2026-11-25: 20 of the 183 days to 15 Dec remain; with the accrued 163 they
    # make the whole coupon of 2 per 100.
    bd3y = Registry.load_default()["BD3Y"]
    rest = fi.interest_to_next_coupon(bd3y, date(2026, 11, 25))
    assert rest == F(2 * 20, 183)
    assert rest + fi.instrument_accrued(bd3y, date(2026, 11, 25)) == 2


def test_settlement_lag_counts_business_days_of_the_instrument_calendar():
    inst = load(issue_date=date(2026, 1, 15), maturity=date(2031, 1, 15), calendar="US",
                settlement_lag=1)
    econ = Economics(inst)
    noon = int(datetime(2026, 7, 2, 12, tzinfo=UTC).timestamp()) * 10**9
    fill = econ.of_fill(inst.price_to_ticks("100.000"), 10_000, noon)
    assert fill.settle_date == date(2026, 7, 6)        # 3 July is a US holiday
    assert fill == Economics(inst).of_fill(inst.price_to_ticks("100.000"), 10_000, noon)


# ---------------------------------------------------------------- rounding
def test_rounding_modes_on_a_tie_and_off_it():
    # 0.125 cents: half-even 0.12, half-up ("normal rounding") 0.13, truncation 0.12
    for mode, want in (("half_even", 12), ("half_up", 13), ("truncate", 12)):
        assert fi.settlement_amount(D("0.125"), None, D(1), D(0), 2, mode) == want
    assert fi.settlement_amount(D("0.135"), None, D(1), D(0), 2, "truncate") == 13
    with pytest.raises(ValueError, match="rounding mode must be one of"):
        fi.round_cash(F(1, 2), "up")


def test_rounding_modes_reproduce_the_treasury_examples():
    # 31 CFR 356 App. B I.B.3: Ref CPI 154.633333333 "truncated to six decimal places,
    # then rounded to five": 154.633333 -> 154.63333. I.D.6 example (1): accrued
    # $16.874999996 -> $16.87500 per $1,000 by normal rounding; I.A.3: $828.39674008 ->
    # $828.40.
    assert fi.round_cash(F("154.633333333") * 10**6, "truncate") == 154_633_333
    assert fi.round_cash(F(154_633_333, 10), "half_up") == 15_463_333
    assert fi.round_cash(F("16.874999996") * 10**5, "half_up") == 1_687_500
    assert fi.round_cash(F("828.39674008") * 100, "half_up") == 82_840


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["half_even", "half_up", "truncate"]), st.integers(-2000, 2000),
       st.integers(1, 10**9), st.integers(0, 1500))
def test_fill_cash_fast_path_equals_the_exact_rule_in_every_mode(mode, dticks, lots, day):
    inst = load(issue_date=date(2026, 6, 15), maturity=date(2031, 2, 28), rounding=mode,
                first_coupon=date(2027, 2, 28), coupon_rate="0.0437", tick_size="0.0001",
                reference_price="100.0000", day_count="30/360 US")
    ticks = inst.reference_ticks() + dticks
    trade = date.fromordinal(date(2026, 6, 15).toordinal() + day)
    now = int(datetime(trade.year, trade.month, trade.day, 9, tzinfo=UTC).timestamp()) * 10**9
    fill = Economics(inst).of_fill(ticks, lots, now)
    want = fi.trade_economics(inst, ticks, lots, trade)
    assert fill.settlement_amount == want.settlement_amount
    exact = (F(inst.lots_to_qty(lots)) * F(inst.face_value)
             * (F(inst.ticks_to_price(ticks)) + fi.instrument_accrued(inst, trade)) / 100
             * 10**6)
    assert fill.settlement_amount == fi.round_cash(exact, mode)
    assert abs(fill.settlement_amount - exact) < 1
    assert Economics(inst).worst_case_cash(ticks, lots) >= fill.settlement_amount


def test_worst_case_covers_a_long_first_coupon():
    # the accrued interest of a long first period grows past one regular coupon
    inst = load(first_coupon=date(1991, 8, 15))
    eve = fi.trade_economics(inst, inst.price_to_ticks("100.000"), 10_000,
                             date(1991, 8, 14))
    assert eve.accrued_per_100 > D("3.9375")          # more than 100 c / f
    assert Economics(inst).worst_case_cash(inst.price_to_ticks("100.000"), 10_000) \
        >= eve.settlement_amount


def test_a_simple_last_period_instrument_reports_the_excel_oddlyield():
    # the ODDLYIELD example as an instrument: 30/360 US, penultimate coupon 24 Dec 2007,
    # simple yield in the last period: 99.875 on 20 Apr 2008 yields 4.5192 %.
    inst = load(issue_date=date(2007, 6, 24), maturity=date(2008, 6, 15),
                coupon_rate="0.0375", penultimate_coupon=date(2007, 12, 24),
                day_count="30/360 US", last_period_yield="simple", reference_price="99.875")
    y = fi.instrument_yield(inst, inst.price_to_ticks("99.875"), date(2008, 4, 20))
    assert (y * 100).quantize(D("0.0001")) == D("4.5192")
    back = fi.instrument_clean_price(inst, y, date(2008, 4, 20))
    assert abs(back - D("99.875")) < D("1e-9")
    assert Economics(inst).yield_pct(inst.price_to_ticks("99.875"), date(2008, 4, 20)) \
        == "4.5192"

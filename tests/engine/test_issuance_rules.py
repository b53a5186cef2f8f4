"""The award arithmetic of issuance auctions (matching.issuance_rules), on lots and rate
integers: 31 CFR 356.20 proration at the stop-out, 356.22's award limit, the acceptance
limit, NC first, and the SBP multiple-price variant with NC at the weighted average;
356.22(a)'s bid limit at one yield and 356.20(b)'s coupon from the high yield."""
from __future__ import annotations

from matching.issuance_rules import (
    BP_ONE,
    Tender,
    Terms,
    award,
    award_limit,
    bid_limit,
    interest_rate_of,
)

# Lots of $100 face (the US minimum and multiple); yields in 1e-4 percent.
BN = 10_000_000          # $1bn in $100 lots


def y(text: str) -> int:
    whole, _, frac = text.partition(".")
    return int(whole) * 10_000 + int(frac.ljust(4, "0"))


def test_the_35_percent_rule_published_example_10bn_offering_1bn_net_long_caps_at_2_5bn():
    """31 CFR 356.22(b) / Appendix A: $10bn offered, a $1bn reported net long: $2.5bn at most."""
    assert award_limit(10 * BN, 3_500, 1 * BN) == 25 * BN // 10
    assert award_limit(10 * BN, 3_500, 4 * BN) == 0


def test_a_capped_bidders_excess_goes_to_the_next_best_bid():
    terms = Terms(offering=10 * BN)
    res = award(terms, [Tender(1, 7, 6 * BN, y("1.000"), net_long=1 * BN),
                        Tender(2, 8, 3 * BN, y("1.100")), Tender(3, 9, 3 * BN, y("1.200")),
                        Tender(4, 10, 3 * BN, y("1.300"))])
    got = {a.bidder: a.lots for a in res.awards}
    # Uncapped, bidder 7 would take 6bn and the stop-out would be 1.200 %.
    assert got == {7: 25 * BN // 10, 8: 3 * BN, 9: 3 * BN, 10: 15 * BN // 10}
    assert res.stop_rate == y("1.300") and res.allotted_at_stop_bp == 5_000


def test_proration_at_the_stop_out_is_rounded_up_to_the_next_hundredth_of_a_percent():
    # 600 lots left for 1800 bid at the stop: 33.333...% rounds UP to 33.34 %, not 33.33.
    res = award(Terms(offering=1000, max_award_bp=BP_ONE),
                [Tender(1, 1, 400, y("2.0")), Tender(2, 2, 900, y("2.1")),
                 Tender(3, 3, 900, y("2.1"))])
    assert res.allotted_at_stop_bp == 3_334
    assert [a.lots for a in res.awards] == [400, 300, 300]     # 900 x 33.34 % floored


def test_nothing_past_the_acceptance_limit_is_taken():
    res = award(Terms(offering=100, limit=y("3.0"), max_award_bp=BP_ONE),
                [Tender(1, 1, 40, y("2.9")), Tender(2, 2, 100, y("3.1"))])
    assert [a.lots for a in res.awards] == [40, 0]
    assert res.stop_rate == y("2.9") and res.allotted_at_stop_bp == 10_000


def test_noncompetitive_above_the_offering_is_cut_pro_rata_or_smallest_first():
    nc = [Tender(1, 1, 60), Tender(2, 2, 90)]
    pro = award(Terms(offering=100, max_award_bp=BP_ONE), nc)
    assert [a.lots for a in pro.awards] == [40, 60]
    small = award(Terms(offering=100, nc_overflow="smallest_first", max_award_bp=BP_ONE), nc)
    assert [a.lots for a in small.awards] == [60, 40]


def test_multiple_price_awards_pay_their_own_rate_and_nc_the_weighted_average():
    res = award(Terms(offering=1000, method="multiple", max_award_bp=BP_ONE),
                [Tender(1, 1, 200), Tender(2, 2, 400, y("4.00")),
                 Tender(3, 3, 400, y("4.10")), Tender(4, 4, 400, y("4.20"))])
    rates = {a.ref: (a.lots, a.rate) for a in res.awards}
    assert rates == {1: (200, y("4.05")), 2: (400, y("4.00")), 3: (400, y("4.10")),
                     4: (0, None)}


def test_uniform_awards_all_pay_the_stop_out_rate_on_a_price_basis():
    res = award(Terms(offering=100, basis="price", max_award_bp=BP_ONE),
                [Tender(1, 1, 60, 99_500_000), Tender(2, 2, 60, 99_400_000),
                 Tender(3, 3, 60, 99_300_000)])
    assert [(a.lots, a.rate) for a in res.awards] == [(60, 99_400_000), (40, 99_400_000),
                                                      (0, None)]
    assert res.low_rate == 99_500_000 and res.allotted_at_stop_bp == 6_667


def test_a_bidders_tenders_at_one_yield_are_recognised_up_to_35_percent_of_the_offering():
    """31 CFR 356.22(a): of one bidder's $5bn at a single yield in a $10bn offering only
    $3.5bn is recognised; its award limit (356.22(b), no net long) is also $3.5bn, so the
    rest of the offering goes to the next yield up rather than to it."""
    assert bid_limit(10 * BN, 3_500) == 35 * BN // 10
    res = award(Terms(offering=10 * BN, max_award_bp=3_500),
                [Tender(1, 7, 3 * BN, y("1.000")), Tender(2, 7, 2 * BN, y("1.000")),
                 Tender(3, 8, 3 * BN, y("1.100")), Tender(4, 9, 3 * BN, y("1.200")),
                 Tender(5, 10, 3 * BN, y("1.300"))])
    got = {a.ref: a.lots for a in res.awards}
    assert got[1] + got[2] == 35 * BN // 10 and got[2] == 5 * BN // 10
    # $0.5bn left for $3bn at the stop: 16.67 % (rounded up, 356.20(a)(2)).
    assert got[3] == got[4] == 3 * BN and got[5] == 3 * BN * 1_667 // BP_ONE
    assert res.stop_rate == y("1.300") and res.allotted_at_stop_bp == 1_667


def test_the_bid_limit_counts_per_yield_so_a_bidder_may_be_recognised_at_several():
    """356.22(a) limits what is recognised at a single yield; with a 100 % award limit a
    bidder's 40 % at each of two yields is recognised as 35 % at each."""
    res = award(Terms(offering=1000, max_award_bp=3_500),
                [Tender(1, 7, 400, y("2.00")), Tender(2, 7, 400, y("2.10")),
                 Tender(3, 8, 400, y("2.20"))])
    # Bidder 7's award limit (356.22(b)) still caps it at 350 across both yields.
    got = {a.ref: a.lots for a in res.awards}
    assert got == {1: 350, 2: 0, 3: 350}
    limited = award(Terms(offering=1000, max_award_bp=3_500),
                    [Tender(1, 7, 400, y("2.00")), Tender(2, 8, 400, y("2.10")),
                     Tender(3, 8, 100, y("2.10")), Tender(4, 9, 900, y("2.20"))])
    # Bidder 8's 500 at 2.10 counts as 350; bidder 9 gets what is left at 2.20.
    got = {a.ref: a.lots for a in limited.awards}
    assert got[1] == 350 and got[2] + got[3] == 350 and got[4] == 300


def test_a_new_notes_coupon_is_the_high_yield_rounded_down_to_an_eighth_of_a_percent():
    """31 CFR 356.20(b): the 2011-02-09 10-year note's high yield 3.665 % set its interest
    rate at 3 5/8 % (published result); a yield on an eighth keeps it; below 0.125 %: 1/8."""
    assert interest_rate_of(y("3.665")) == y("3.625")
    assert interest_rate_of(y("3.625")) == y("3.625")
    assert interest_rate_of(y("3.7499")) == y("3.625")
    assert interest_rate_of(y("0.080")) == y("0.125")

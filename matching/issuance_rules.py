"""The award arithmetic of an issuance auction, sans I/O: who gets how much at what rate.

Implements the US Treasury's rules (31 CFR 356.20 "How does the Treasury determine
auction awards?", 356.22 award limits) and the State Bank of Pakistan's multiple-price
variant, on integers only: amounts in lots of the token, rates as integers in the bid
basis's unit (``RATE_UNIT``: a yield in 1e-4 percent, a price per 100 in 1e-6).

1. Non-competitive (NC) tenders first, in full (each already within the NC cap); if they
   exceed the offering: ``pro_rata`` or ``smallest_first`` (per the announcement).
2. Competitive tenders from the best rate for the issuer (lowest yield, highest price)
   up, each bidder's tenders at one rate recognised up to 35 % of the offering (the bid
   limit, 356.22(a)) and its awards within its award limit (35 % of the offering less
   its reported net long position, 356.22(b)), none past the acceptance limit.
3. At the stop-out (high) rate, tenders are prorated: remaining / amount at that rate,
   rounded UP to the next hundredth of a percent (356.20(a)(2)); each award floored to a
   lot, so the total may exceed the offering by that rounding, as published results do.
4. ``uniform``: every award pays the stop-out rate (356.20(c)); ``multiple``: each
   competitive award pays its own rate, NC the amount-weighted average accepted rate.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Tender", "Terms", "Award", "AwardResult", "award", "award_limit", "bid_limit",
           "interest_rate_of", "METHODS", "BASES", "NC_OVERFLOWS", "RATE_PLACES", "BP_ONE",
           "EIGHTH"]

METHODS = ("uniform", "multiple")
BASES = ("yield", "price")
NC_OVERFLOWS = ("pro_rata", "smallest_first")
#: Decimal places of a rate's integer: yields in percent to 1e-4, prices per 100 to 1e-6.
RATE_PLACES = {"yield": 4, "price": 6}
#: 100 % in hundredths of a percent (the proration's unit).
BP_ONE = 10_000
#: 1/8 of one percent as a yield integer (1e-4 percent): a note's coupon step.
EIGHTH = 1_250


@dataclass(frozen=True)
class Tender:
    """One sealed bid: ``rate`` None for a non-competitive tender; ``net_long`` the
    bidder's reported net long position in lots (356.13), counted against its limit."""
    ref: int            # unique, in arrival order (ties at one rate keep it)
    bidder: int         # the account
    lots: int
    rate: int | None = None
    net_long: int = 0


@dataclass(frozen=True)
class Terms:
    """The announced rules of one auction (amounts in lots)."""
    offering: int
    method: str = "uniform"
    basis: str = "yield"
    max_award_bp: int = 3_500            # 35.00 % of the offering (356.22(b))
    limit: int | None = None             # acceptance limit: worst rate the issuer takes
    nc_overflow: str = "pro_rata"


@dataclass(frozen=True)
class Award:
    """What one tender got: ``rate`` is the rate it pays (its price is the caller's)."""
    ref: int
    bidder: int
    lots: int
    rate: int | None


@dataclass(frozen=True)
class AwardResult:
    """The awards (every tender, 0 lots for an unsuccessful one) and the aggregates a
    results announcement publishes."""
    awards: tuple[Award, ...]
    stop_rate: int | None               # the high yield (low price); None: none accepted
    allotted_at_stop_bp: int            # hundredths of a percent (5881 = 58.81 %)
    nc_rate: int | None                 # the rate NC tenders pay
    tendered_competitive: int
    tendered_noncompetitive: int
    accepted_competitive: int
    accepted_noncompetitive: int
    low_rate: int | None                # best accepted competitive rate
    median_rate: int | None             # 50 % of the accepted amount at or better


def award_limit(offering: int, max_award_bp: int, net_long: int) -> int:
    """The most one bidder may be awarded, in lots: ``max_award_bp`` of the offering less
    its reported net long position, never below 0 (31 CFR 356.22(b); Appendix A's
    example: $10bn offered, $1bn net long: at most $2.5bn)."""
    return max(0, offering * max_award_bp // BP_ONE - net_long)


def bid_limit(offering: int, max_award_bp: int) -> int:
    """The most of one bidder's tenders at a single rate that is recognised, in lots:
    ``max_award_bp`` (35 %) of the offering (31 CFR 356.22(a): "The maximum recognized bid
    at a single yield ... will be 35 percent of the offering amount"); the rest of its
    tenders at that rate is not counted for the award."""
    return offering * max_award_bp // BP_ONE


def interest_rate_of(high_yield: int) -> int:
    """The interest (coupon) rate of a new note or bond from its auction's high yield, both
    in 1e-4 percent: the high yield rounded down to the nearest 1/8 of one percent, and
    1/8 % when the high yield is below 0.125 % (31 CFR 356.20(b) and its 2011 minimum
    interest rate amendment, 76 FR 11079); the 2011-02-09 10-year note: 3.665 % -> 3 5/8 %."""
    return max(EIGHTH, high_yield // EIGHTH * EIGHTH)


def _better_first(basis: str):
    # The issuer's preference: lowest yield first, or highest price first; then arrival.
    if basis == "yield":
        return lambda t: (t.rate, t.ref)
    return lambda t: (-t.rate, t.ref)


def _within_limit(basis: str, rate: int, limit: int | None) -> bool:
    if limit is None:
        return True
    return rate <= limit if basis == "yield" else rate >= limit


def _nc_accepted(offering: int, nc: list[Tender], overflow: str) -> dict[int, int]:
    """NC awards by ref: in full, or cut to the offering (pro rata, floored to a lot, or
    smallest tenders first)."""
    total = sum(t.lots for t in nc)
    if total <= offering:
        return {t.ref: t.lots for t in nc}
    out: dict[int, int] = {}
    if overflow == "pro_rata":
        for t in nc:
            out[t.ref] = t.lots * offering // total
        return out
    left = offering
    for t in sorted(nc, key=lambda t: (t.lots, t.ref)):
        take = min(t.lots, left)
        out[t.ref] = take
        left -= take
    return out


def _weighted_rate(pairs: list[tuple[int, int]]) -> int | None:
    """Amount-weighted average of (lots, rate), rounded half to even to the rate unit."""
    lots = sum(n for n, _ in pairs)
    if not lots:
        return None
    num = sum(n * r for n, r in pairs)
    q, rem = divmod(num, lots)
    if 2 * rem > lots or (2 * rem == lots and q % 2):
        q += 1
    return q


def award(terms: Terms, tenders: list[Tender]) -> AwardResult:
    """Allot ``terms.offering`` among ``tenders`` (module docstring: steps 1-4)."""
    basis = terms.basis
    nc = [t for t in tenders if t.rate is None]
    comp = sorted((t for t in tenders if t.rate is not None), key=_better_first(basis))
    got = _nc_accepted(terms.offering, nc, terms.nc_overflow)
    nc_total = sum(got.values())
    remaining = terms.offering - nc_total
    # The award limit of each bidder, less what it got non-competitively.
    net_long: dict[int, int] = {}
    for t in tenders:
        net_long[t.bidder] = max(net_long.get(t.bidder, 0), t.net_long)
    room = {b: award_limit(terms.offering, terms.max_award_bp, n) for b, n in net_long.items()}
    for t in nc:
        room[t.bidder] = max(0, room[t.bidder] - got[t.ref])
    stop, allotted = None, 0
    i = 0
    while i < len(comp) and remaining > 0:
        rate = comp[i].rate
        assert rate is not None
        if not _within_limit(basis, rate, terms.limit):
            break
        group = []
        while i < len(comp) and comp[i].rate == rate:
            group.append(comp[i])
            i += 1
        # Each tender counts only up to what its bidder may bid at one rate (356.22(a))
        # and may still be awarded (356.22(b)).
        eligible = []
        at_one_rate: dict[int, int] = {}
        for t in group:
            used = at_one_rate.get(t.bidder, 0)
            n = min(t.lots, room[t.bidder], bid_limit(terms.offering, terms.max_award_bp) - used)
            at_one_rate[t.bidder] = used + n
            room[t.bidder] -= n
            eligible.append((t, n))
        at_rate = sum(n for _, n in eligible)
        if not at_rate:
            continue
        stop = rate
        if at_rate <= remaining:
            for t, n in eligible:
                got[t.ref] = n
            remaining -= at_rate
            allotted = BP_ONE
            continue
        # The stop-out: remaining / amount at this rate, UP to the next 0.01 % (356.20).
        allotted = -(-remaining * BP_ONE // at_rate)
        for t, n in eligible:
            got[t.ref] = n * allotted // BP_ONE
        remaining = 0
    comp_awards = [(got[t.ref], t.rate) for t in comp if got.get(t.ref)]
    accepted_comp = sum(n for n, _ in comp_awards)
    if terms.method == "uniform":
        nc_rate = stop
    else:
        nc_rate = _weighted_rate([(n, r) for n, r in comp_awards if r is not None])
    awards = []
    for t in tenders:
        n = got.get(t.ref, 0)
        if t.rate is None:
            rate = nc_rate
        else:
            rate = stop if terms.method == "uniform" else t.rate
        awards.append(Award(t.ref, t.bidder, n, rate if n else None))
    low = comp_awards[0][1] if comp_awards else None
    median = None
    if comp_awards:
        seen = 0
        for n, r in comp_awards:
            seen += n
            if 2 * seen >= accepted_comp:
                median = r
                break
    return AwardResult(
        awards=tuple(awards), stop_rate=stop, allotted_at_stop_bp=allotted if stop else 0,
        nc_rate=nc_rate if nc_total else None,
        tendered_competitive=sum(t.lots for t in comp),
        tendered_noncompetitive=sum(t.lots for t in nc),
        accepted_competitive=accepted_comp, accepted_noncompetitive=nc_total,
        low_rate=low, median_rate=median)

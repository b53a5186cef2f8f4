"""The demo's primary market: a new 13-week bill (``DEMO_BILL``) is auctioned before trading.

The operator announces it, its terms in the announcement (no instruments file defines
it: the close lists it, ``matching.issuance_new``), uniform price on yields (31 CFR
356.20), and whitelists the bidders for it; the simulated brokers bid from the accounts
the demo opened and funded (the primary dealers ``mm`` and ``gamma`` competitively, the
retail brokers non-competitively), the close awards and lists the bill, the issue mints
its tokens against cash, and the secondary market then trades the minted tokens.
``announce_input``, ``whitelist_inputs`` and ``demo_bids`` are plain inputs, so the flow
runs the same on the engine alone (tests) and through the gateway (``run_issuance``).
"""
from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from feeds.codec import AdminCommand
from matching.economics import trade_date
from matching.instruments import Instrument
from matching.issuance_results import price_of_rate
from matching.messages import AuctionInput, AuctionResult

__all__ = ["DEMO_BILL", "DEMO_AUCTION", "DemoBid", "IssuanceRecord", "bill_terms",
           "announce_input", "whitelist_inputs", "demo_bids", "run_issuance", "result_line"]

#: The bill the demo issues: new (no supply before its auction), 91 days to maturity.
DEMO_BILL, DEMO_AUCTION, BILL_TENOR_DAYS = "TB13W", "DEMO-TB13W", 91
#: The offering (face, USDC), the NC cap per investor, the primary dealers' accounts.
OFFERING, NC_MAX, DEALERS = "500000", "5000", (9001, 9002, 3001)
#: Real seconds the bidding lasts (the demo's engine clock runs fast).
BIDDING_SECONDS = 1.0


@dataclass(frozen=True)
class DemoBid:
    """One simulated broker's sealed bid: ``rate`` "" is non-competitive."""
    broker: str
    account: int
    bid_id: str
    amount: str
    rate: str = ""

    def input(self) -> AuctionInput:
        return AuctionInput("bid", DEMO_AUCTION, broker=self.broker, account=self.account,
                            bid_id=self.bid_id, amount=self.amount, rate=self.rate)


def bill_terms(template: Instrument, issue: date, issuer: int) -> dict:
    """The new bill's terms (an instruments.toml table), shaped like ``template`` (a bill
    of the programme), issued on ``issue`` for BILL_TENOR_DAYS, its band centred on the
    3.95 % the dealers bid around."""
    maturity = issue + timedelta(days=BILL_TENOR_DAYS)
    shaped = dataclasses.replace(template, symbol=DEMO_BILL, issue_date=issue,
                                 maturity=maturity)
    ref = price_of_rate(shaped, 39_500, "yield", issue).quantize(template.tick_size)
    return {"kind": "tbill", "isin": "XS0TB13W0003",
            "name": f"13-week Treasury bill {maturity:%d-%b-%Y}",
            "face_value": str(template.face_value), "token_decimals": template.token_decimals,
            "tick_size": str(template.tick_size), "maturity": maturity.isoformat(),
            "day_count": template.day_count, "yield_convention": template.yield_convention or
            "money_market", "min_order_qty": str(template.min_order_qty),
            "reference_price": str(ref), "band_pct": str(template.band_pct),
            "eligibility": sorted(template.eligibility), "issuer_account": issuer}


def announce_input(now: int, speed: float, issuer: int, template: Instrument) -> AuctionInput:
    """The operator's announcement at engine time ``now``: the new bill's terms, bids
    closing BIDDING_SECONDS of real time later (``speed`` engine ns per real ns), the
    bill issued on the close's day."""
    close = now + int(BIDDING_SECONDS * 1e9 * speed)
    issue = trade_date(close)
    return AuctionInput("announce", DEMO_AUCTION, symbol=DEMO_BILL, amount=OFFERING,
                        close_time=close, issue_date=issue.isoformat(),
                        method="uniform", basis="yield", competitive_accounts=list(DEALERS),
                        nc_max=NC_MAX, issuer_account=issuer,
                        instrument=bill_terms(template, issue, issuer))


def whitelist_inputs(accounts) -> list[AdminCommand]:
    """The operator's KYC of ``accounts`` for the new bill, after its announcement."""
    return [AdminCommand("whitelist", DEMO_BILL, account=a, request_id=f"kyc-{a}")
            for a in accounts]


def demo_bids() -> list[DemoBid]:
    """The simulated brokers' bids: dealers on a ladder of yields around 3.95 %, retail
    savers non-competitive (every bidding account was opened and funded by the demo)."""
    bids = [DemoBid("mm", 9001, "mm-1", "100000", "3.9000"),
            DemoBid("mm", 9001, "mm-2", "150000", "3.9500"),
            DemoBid("mm", 9002, "mm-3", "150000", "3.9800"),
            DemoBid("gamma", 3001, "g-1", "60000", "3.9200"),
            DemoBid("gamma", 3001, "g-2", "80000", "3.9800"),
            DemoBid("gamma", 3001, "g-3", "50000", "4.0500")]
    bids += [DemoBid("alpha", a, f"nc-{a}", "2500") for a in (1001, 1002, 1003)]
    bids += [DemoBid("beta", a, f"nc-{a}", "5000") for a in (2001, 2002)]
    return bids


@dataclass
class IssuanceRecord:
    """What the demo's auction did: the operator's replies, bids acknowledged, the result."""
    replies: list[str] = field(default_factory=list)
    bids_accepted: int = 0
    bids_refused: list[str] = field(default_factory=list)
    inputs: int = 0                      # journaled inputs (announce, bids, close, issue)
    result: AuctionResult | None = None
    minted_lots: int = 0

    def minted_qty(self, inst: Instrument | None) -> Decimal:
        """The tokens the issue minted (0 if the bill was never listed)."""
        return Decimal(0) if inst is None else inst.lots_to_qty(self.minted_lots)

    @property
    def ok(self) -> bool:
        return (self.result is not None and self.result.status == "issued"
                and not self.bids_refused and self.minted_lots > 0
                and all(r.startswith("accepted") for r in self.replies))


async def run_issuance(host: str, port: int, engine, issuer: int, speed: float,
                       template: Instrument) -> IssuanceRecord:
    """The demo's auction through the gateway: announce, KYC, close and issue on the
    admin topic, each simulated broker bidding on its own orders topic."""
    from feeds.client import BrokerClient
    from feeds.issuance_wire import send_auction
    from feeds.operator import send
    rec = IssuanceRecord()

    async def issuer_says(msg: AuctionInput) -> None:
        reply = await send_auction(host, port, msg)
        rec.replies.append(f"{'accepted' if reply.accepted else 'REFUSED'} {reply.text}")
        rec.inputs += reply.accepted

    announce = announce_input(engine.clock(), speed, issuer, template)
    await issuer_says(announce)
    bids = demo_bids()
    kyc = await asyncio.gather(*(send(host, port, cmd) for cmd in
                                 whitelist_inputs(sorted({d.account for d in bids}))))
    rec.inputs += sum(r.accepted for r in kyc)
    rec.replies += [f"REFUSED {r.text}" for r in kyc if not r.accepted]
    clients = {b: BrokerClient(b, host, port) for b in sorted({d.broker for d in bids})}
    for c in clients.values():
        await c.__aenter__()
    try:
        for d in bids:
            st = await clients[d.broker].bid(DEMO_AUCTION, d.account, d.bid_id, d.amount,
                                             rate=d.rate)
            if st.status == "accepted":
                rec.bids_accepted += 1
                rec.inputs += 1
            else:
                rec.bids_refused.append(f"{d.bid_id} {st.reason}: {st.text}")
    finally:
        for c in clients.values():
            await c.__aexit__(None, None, None)
    # The close is due at its time: wait out the rest of it in real seconds.
    await asyncio.sleep(max(0.0, (announce.close_time - engine.clock()) / speed / 1e9) + 0.02)
    await issuer_says(AuctionInput("close", DEMO_AUCTION))
    await issuer_says(AuctionInput("issue", DEMO_AUCTION))
    rec.result = engine.auction_result(DEMO_BILL)
    rec.minted_lots = engine.ledger.supply(DEMO_BILL)       # a new issue: nothing before
    return rec


def result_line(rec: IssuanceRecord, inst: Instrument | None) -> str:
    """The summary's line: the published result and what the issue minted."""
    r = rec.result
    if r is None or inst is None:
        return "primary market: no result (" + "; ".join(rec.replies + rec.bids_refused) + ")"
    return (f"primary market: {r.symbol} auction {r.auction_id} {r.status}: offering "
            f"{r.offering}, high yield {r.high_rate}% (price {r.high_price}), allotted at "
            f"high {r.allotted_at_high}%, bid-to-cover {r.bid_to_cover}, accepted "
            f"competitive {r.accepted_competitive} + NC {r.accepted_noncompetitive} at "
            f"{r.nc_price}; {rec.bids_accepted} bids, "
            f"{rec.minted_qty(inst)} tokens minted")

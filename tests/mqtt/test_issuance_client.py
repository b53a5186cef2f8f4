"""A broker bids in an issuance auction over a real (private, loopback) broker:
``BrokerClient.bid`` gets its own acknowledgement, a refusal names its reason, and
``cancel_bid`` gives the cash back."""
from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from feeds.broker import EmbeddedBroker
from feeds.client import BrokerClient
from feeds.config import GatewayConfig
from feeds.transports import make_gateway
from matching.ledger import CASH
from matching.messages import AuctionInput
from testkit.mqtt import two_broker_engine

pytestmark = pytest.mark.network
ID = "TB3M-reopen-net"
NOW = int(datetime(2026, 12, 4, 9, tzinfo=UTC).timestamp()) * 10**9


@pytest.fixture(scope="module")
def mqtt():
    with EmbeddedBroker() as broker:
        yield broker


def test_a_broker_client_bids_sealed_and_cancels_its_bid(mqtt):
    engine = two_broker_engine(clock=lambda: NOW)      # the venue's day, not the test's
    announced = engine.auction_input(AuctionInput(
        "announce", ID, symbol="TB3M", amount="100000",
        close_time=NOW + 3600 * 10**9, issue_date="2026-12-07",
        nc_max="1000", issuer_account=2))
    assert announced.sequenced, announced.refused

    async def body():
        gw = make_gateway(engine, "127.0.0.1", mqtt.port,
                          GatewayConfig(client_id=f"engine-{time.time_ns()}"))
        stop = asyncio.Event()
        task = asyncio.create_task(gw.run(stop))
        try:
            async with asyncio.timeout(20):
                await gw.ready.wait()
                async with BrokerClient("alpha", "127.0.0.1", mqtt.port,
                                        client_id=f"alpha-{time.time_ns()}") as c:
                    ok = await c.bid(ID, 1, "a1", "50000", rate="3.95")
                    held = engine.ledger.reserved(1, CASH)
                    too_big = await c.bid(ID, 1, "a2", "2000")
                    gone = await c.cancel_bid(ID, "a1")
                    return ok, held, too_big, gone
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    ok, held, too_big, gone = asyncio.run(body())
    assert (ok.status, ok.account, ok.symbol) == ("accepted", 1, "TB3M") and held > 0
    assert (too_big.status, too_big.reason) == ("rejected", "ABOVE_NC_CAP")
    assert gone.status == "cancelled" and engine.ledger.reserved(1, CASH) == 0

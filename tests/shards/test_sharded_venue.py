"""Two shards behind one private mosquitto (loopback, bounded in time): each engine serves
only its symbols on the v2 order topic, writes its own retained status (so the two pass
each other's single-writer guard), and names its shard in ExecID and TradeID."""
from __future__ import annotations

import asyncio
import json
import sys
import time

import pytest

from feeds import topics
from feeds.broker import EmbeddedBroker
from feeds.client import BrokerClient
from feeds.config import GatewayConfig
from feeds.shard import ShardDirectory
from feeds.transports import make_gateway
from matching.engine import Engine
from matching.ledger import CASH
from matching.messages import NewOrderSingle
from testkit.mqtt import connect, next_message, two_broker_engine

pytestmark = pytest.mark.network
SHARDS = {"s1": ("TB3M",), "s2": ("TB6M",)}


@pytest.fixture(scope="module")
def mqtt():
    with EmbeddedBroker() as broker:
        yield broker


def shard_engine(symbols) -> Engine:
    """One shard's engine: only its instruments; alpha (1) and beta (2) funded in them."""
    return two_broker_engine(symbols=symbols)


async def with_shards(mqtt, body, transport, directory=None):
    stop = asyncio.Event()
    gws = {sid: make_gateway(shard_engine(symbols), "127.0.0.1", mqtt.port,
                             GatewayConfig(shard=sid, shard_symbols=symbols,
                                           shard_directory=directory,
                                           client_id=f"tokenbook-engine-{sid}-"
                                                     f"{time.time_ns()}"),
                             transport=transport)
           for sid, symbols in SHARDS.items()}
    tasks = [asyncio.create_task(gw.run(stop)) for gw in gws.values()]
    try:
        async with asyncio.timeout(30):
            for gw in gws.values():
                await gw.ready.wait()
            return await body(gws)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)


@pytest.mark.parametrize("transport", ["link", "aiomqtt"])
def test_each_shard_fills_its_own_symbol_with_shard_named_exec_and_trade_ids(mqtt, transport):
    async def body(gws):
        async with BrokerClient("alpha", "127.0.0.1", mqtt.port, order_topic="v2",
                                client_id=f"alpha-{time.time_ns()}") as alpha, \
                BrokerClient("beta", "127.0.0.1", mqtt.port, order_topic="v2",
                             client_id=f"beta-{time.time_ns()}") as beta:
            acks = {}
            for sym in ("TB3M", "TB6M"):
                acks[sym] = await alpha.submit(NewOrderSingle(
                    f"b-{sym}", 1, sym, "buy", "1", price="99", time_in_force="gtc"))
                await beta.submit(NewOrderSingle(
                    f"s-{sym}", 2, sym, "sell", "1", price="99", time_in_force="ioc"))
            trades: list = []
            async with asyncio.timeout(10):
                while len(trades) < 2:
                    trades += [r for r in beta.pending_reports()
                               if getattr(r, "exec_type", "") == "trade"]
                    await asyncio.sleep(0.05)
            for r in trades:
                acks[f"fill-{r.symbol}"] = r
            async with connect(mqtt) as probe:
                await probe.subscribe(f"{topics.STATUS}/+", qos=1)
                statuses = {}
                while len(statuses) < 2:
                    m = await next_message(probe)
                    statuses[m.topic.value] = json.loads(m.payload)["status"]
            return acks, statuses, {s: gw.engine.seq for s, gw in gws.items()}

    acks, statuses, seqs = asyncio.run(with_shards(mqtt, body, transport))
    assert acks["TB3M"].exec_id.startswith("s1-") and acks["TB6M"].exec_id.startswith("s2-")
    assert acks["fill-TB3M"].exec_type == "trade" and acks["fill-TB6M"].exec_type == "trade"
    assert acks["fill-TB3M"].trade_id.startswith("s1-")
    assert acks["fill-TB6M"].trade_id.startswith("s2-")
    # Both shards online at once on their own status topics: no guard collision.
    assert statuses == {f"{topics.STATUS}/s1": "online", f"{topics.STATUS}/s2": "online"}
    # Each shard sequenced only its own symbol's two orders.
    assert seqs == {"s1": 2, "s2": 2}


def test_a_shard_ignores_v1_orders_and_other_shards_symbols(mqtt):
    async def body(gws):
        async with connect(mqtt) as c:
            order = {"msg": "new_order", "cl_ord_id": "x1", "account": 1, "side": "buy",
                     "qty": "1", "price": "99"}
            await c.publish(topics.orders("alpha"), json.dumps(
                {**order, "symbol": "TB3M"}).encode(), qos=1)
            await c.publish(topics.orders_v2("alpha", "TB6M"), json.dumps(
                {**order, "symbol": "TB6M", "cl_ord_id": "x2"}).encode(), qos=1)
            await asyncio.sleep(0.5)
        return {s: gw.engine.seq for s, gw in gws.items()}

    assert asyncio.run(with_shards(mqtt, body, "link")) == {"s1": 0, "s2": 1}


@pytest.mark.parametrize("transport", ["link", "aiomqtt"])
def test_an_order_for_a_symbol_no_shard_serves_is_rejected_once_by_the_answering_shard(
        mqtt, transport):
    async def body(gws):
        async with connect(mqtt) as c:
            await c.subscribe(topics.exec_reports("alpha"), qos=1)
            order = {"msg": "new_order", "account": 1, "side": "buy", "qty": "1",
                     "price": "99", "time_in_force": "gtc"}
            await c.publish(topics.orders_v2("alpha", "BD9Y"), json.dumps(
                {**order, "symbol": "BD9Y", "cl_ord_id": "u1"}).encode(), qos=1)
            await c.publish(topics.orders_v2("alpha", "TB6M"), json.dumps(
                {**order, "symbol": "TB6M", "cl_ord_id": "m1"}).encode(), qos=1)
            reports = [json.loads((await next_message(c)).payload) for _ in range(2)]
            try:                                      # a duplicate answer would come now
                reports.append(json.loads((await next_message(c, 1.0)).payload))
            except TimeoutError:
                pass
        return reports, {s: gw.engine.seq for s, gw in gws.items()}

    directory = ShardDirectory.from_mapping(SHARDS)
    reports, seqs = asyncio.run(with_shards(mqtt, body, transport, directory))
    by_cl = {r["cl_ord_id"]: r for r in reports}
    assert len(reports) == 2 and set(by_cl) == {"u1", "m1"}      # each answered once
    assert (by_cl["u1"]["exec_type"], by_cl["u1"]["ord_rej_reason"]) == ("rejected",
                                                                         "WRONG_SHARD")
    assert by_cl["u1"]["exec_id"].startswith("s1-")     # the answering shard: the first
    assert by_cl["m1"]["exec_type"] == "new" and by_cl["m1"]["exec_id"].startswith("s2-")
    assert seqs == {"s1": 0, "s2": 1}                   # the refusal journaled nothing


def test_transfer_cash_moves_an_accounts_cash_between_two_running_shards(mqtt):
    async def admin(*argv: str) -> tuple[int, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "feeds.cli", "admin", *argv, "--broker", mqtt.url,
            "--timeout", "10", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        return proc.returncode, (out + err).decode()

    async def body(gws):
        before = {s: gw.engine.ledger.balance(1, CASH) for s, gw in gws.items()}
        moved = await admin("transfer-cash", "t-1", "1", "250", "s1", "s2")
        again = await admin("transfer-cash", "t-1", "1", "250", "s1", "s2")
        deposit = await admin("deposit", "1", "USDC", "5")         # venue-wide: refused
        after = {s: gw.engine.ledger.balance(1, CASH) for s, gw in gws.items()}
        return before, moved, again, deposit, after

    before, moved, again, deposit, after = asyncio.run(
        with_shards(mqtt, body, "link", ShardDirectory.from_mapping(SHARDS)))
    assert moved[0] == 0 and moved[1].startswith("accepted: transfer t-1: 250 from s1 to s2")
    assert again[0] == 0, again[1]                  # idempotent: both legs already applied
    assert deposit[0] != 0 and "applies on one shard" in deposit[1]
    assert after == {"s1": before["s1"] - 250 * 10**6, "s2": before["s2"] + 250 * 10**6}


@pytest.mark.parametrize("transport", ["link", "aiomqtt"])
def test_a_broker_gets_each_shards_balances_and_its_orders_status_from_its_shard(
        mqtt, transport):
    async def body(gws):
        async with BrokerClient("alpha", "127.0.0.1", mqtt.port, order_topic="v2",
                                client_id=f"alpha-{time.time_ns()}") as alpha:
            ack = await alpha.submit(NewOrderSingle("q1", 1, "TB6M", "buy", "1", price="99",
                                                    time_in_force="gtc"))
            return (ack, await alpha.shard_balances(2),
                    await alpha.order_status(cl_ord_id="q1", symbol="TB6M"))

    directory = ShardDirectory.from_mapping(SHARDS)
    ack, by_shard, status = asyncio.run(with_shards(mqtt, body, transport, directory))
    assert sorted(by_shard) == ["s1", "s2"]
    reserved = {s: next(x.reserved for x in b.accounts[0].assets if x.asset == "USDC")
                for s, b in by_shard.items()}
    assert reserved["s1"] == "0.000000" and reserved["s2"] != "0.000000"   # s2's order
    assert (status.exec_type, status.ord_status, status.order_id) == (
        "order_status", "new", ack.order_id)

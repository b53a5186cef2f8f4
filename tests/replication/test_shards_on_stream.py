"""Shards on the replicated journal (issue 21): ``serve --journal ... --shard ID --symbols``
gives each shard its own stream and snapshot bucket, so each is its own sequencer with its
own primary/standby pair. Two shards behind one private mosquitto on a private 3-node
JetStream cluster: each fills its own symbol; kill -9 of one shard's primary lets that
shard's standby take over while the other shard's primary keeps its epoch."""
import asyncio
import time

import pytest

from feeds.broker import EmbeddedBroker
from feeds.client import BrokerClient
from feeds.serve_replicated import stream_of
from matching.messages import NewOrderSingle
from testkit.nats import ServeProcess, read_stream, unique_names

pytestmark = [pytest.mark.replication, pytest.mark.network]
SHARDS = {"a": "TB3M", "b": "TB6M"}


def test_a_shard_stream_name_is_the_venue_and_shard_and_a_bad_one_is_refused():
    assert stream_of("venue", "a").stream == "TB_venue-a"
    assert stream_of("venue", "").stream == "TB_venue"
    with pytest.raises(ValueError, match="stream name"):
        stream_of("venue", "a.b")           # a topic-safe shard id, not a stream-safe one


async def _cross(port: int, symbol: str, n: int):
    """alpha rests a buy, beta sells into it: alpha's ack and beta's fill report."""
    async with BrokerClient("alpha", "127.0.0.1", port, order_topic="v2", timeout=5.0,
                            retries=6, client_id=f"alpha-{time.time_ns()}") as alpha, \
            BrokerClient("beta", "127.0.0.1", port, order_topic="v2", timeout=5.0,
                         retries=6, client_id=f"beta-{time.time_ns()}") as beta:
        ack = await alpha.submit(NewOrderSingle(f"b{n}-{symbol}", 1001, symbol, "buy", "1",
                                                price="99", time_in_force="gtc"))
        first = await beta.submit(NewOrderSingle(f"s{n}-{symbol}", 2001, symbol, "sell",
                                                 "1", price="99", time_in_force="ioc"))
        seen = [first]
        async with asyncio.timeout(10):
            while not any(getattr(r, "exec_type", "") == "trade" for r in seen):
                await asyncio.sleep(0.05)
                seen += beta.pending_reports()
        return ack, next(r for r in seen if getattr(r, "exec_type", "") == "trade")


def test_each_shard_has_its_own_stream_and_its_standby_takes_over_alone(
        nats_cluster, nats_link, tmp_path):
    venue = unique_names("sh").venue
    procs: list[ServeProcess] = []

    def start(label: str, shard: str, standby: bool) -> ServeProcess:
        p = ServeProcess(tmp_path, label, nats_cluster.urls, broker.url, venue, standby,
                         ("--shard", shard, "--symbols", SHARDS[shard]))
        procs.append(p)
        return p

    with EmbeddedBroker() as broker:
        try:
            primaries = {s: start(f"p-{s}", s, False) for s in SHARDS}
            for p in primaries.values():
                p.wait_for("  primary      epoch 1", 60)
            standby = start("s-a", "a", True)
            standby.wait_for("serve (standby, shard a)", 60)
            for shard, symbol in SHARDS.items():
                ack, fill = asyncio.run(_cross(broker.port, symbol, 1))
                assert (ack.exec_type, fill.exec_type) == ("new", "trade"), (ack, fill)
                assert ack.exec_id.startswith(f"{shard}-") and fill.trade_id.startswith(
                    f"{shard}-")
            primaries["a"].proc.kill()                        # kill -9 of shard a's primary
            standby.wait_for("  primary      epoch 2", 60)
            ack, fill = asyncio.run(_cross(broker.port, "TB3M", 2))
            assert fill.exec_type == "trade" and fill.exec_id.startswith("a-")
            ack, fill = asyncio.run(_cross(broker.port, "TB6M", 2))
            assert fill.exec_type == "trade"
            assert primaries["b"].proc.poll() is None and primaries["b"].primary
            assert "epoch 2" not in primaries["b"].text()   # shard b never changed hands
        finally:
            for p in procs:
                p.stop()
    streams = {s: read_stream(nats_link, stream_of(venue, s)) for s in SHARDS}
    for shard, contents in streams.items():
        seqs = [seq for seq, _ in contents.records]
        assert seqs == list(range(1, len(seqs) + 1)), shard    # one sequencer per shard
        # Each shard journaled only its own symbol's four orders (two crosses).
        assert sum(SHARDS[shard].encode() in payload for _, payload in contents.records) == 4
        assert not any(SHARDS[other].encode() in payload for other in SHARDS if other != shard
                       for _, payload in contents.records)

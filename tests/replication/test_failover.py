"""Done-when of issue 21: a primary and a warm standby on a 3-node JetStream cluster behind
a private mosquitto, orders through BrokerClient, and three faults: kill -9 of the primary,
SIGSTOP then SIGCONT of the primary (fenced: it exits, it never writes again), and kill of
the NATS node leading the stream. Afterwards every acknowledged ClOrdID is journaled
exactly once with contiguous engine seqs, a fresh replay of the stream equals the last
primary's state, the ledger is conserved, no order is overfilled and no exec id was
published with two contents."""
import asyncio
import itertools
import json
import signal
import sys
import time
from decimal import Decimal

import msgspec
import pytest

from feeds.broker import EmbeddedBroker
from feeds.client import BrokerClient, RequestTimeout
from feeds.exits import EXIT_FENCED
from feeds.serve import demo_ledger
from matching.engine import Engine
from matching.instruments import Registry
from matching.messages import JournalEntry, NewOrderSingle
from testkit.mqtt import connect
from testkit.nats import ServeProcess, read_stream, unique_names

pytestmark = [pytest.mark.replication, pytest.mark.network]


class Flow:
    """Two brokers trading TB3M with each other; every report published, as seen."""

    def __init__(self, broker):
        self.broker = broker
        self.acked: dict[str, str] = {}               # ClOrdID -> ExecType of its answer
        self.unanswered: list[str] = []
        self.published: dict[str, set[bytes]] = {}    # exec id -> contents (PossResend aside)
        self.reports: list[dict] = []
        self.ack_times: list[float] = []
        self.running = True

    async def monitor(self, ready: asyncio.Event) -> None:
        async with connect(self.broker) as c:
            await c.subscribe("tokenbook/v1/exec/+", qos=1)
            ready.set()
            async for m in c.messages:
                doc = json.loads(m.payload)
                if doc.get("msg") != "exec_report":
                    continue
                doc.pop("poss_resend", None)
                self.reports.append(doc)
                self.published.setdefault(doc["exec_id"], set()).add(
                    json.dumps(doc, sort_keys=True).encode())

    async def trader(self, name: str, account: int) -> None:
        async with BrokerClient(name, "127.0.0.1", self.broker.port, timeout=3.0,
                                retries=6) as c:
            i = 0
            while self.running:
                i += 1
                side = "buy" if (i + (name == "beta")) % 2 else "sell"
                price = "99.020" if side == "buy" else "99.010"
                cl = f"{name}-{i}"
                try:
                    ack = await c.submit(NewOrderSingle(cl, account, "TB3M", side, "1",
                                                        price=price))
                except RequestTimeout:
                    self.unanswered.append(cl)
                    continue
                self.acked[cl] = ack.exec_type
                self.ack_times.append(time.monotonic())
                await asyncio.sleep(0.01)


def _leader(link, names) -> str:
    info = link.call(link.retrying(lambda: link.js.stream_info(names.stream), "info"), 30)
    return info.cluster.leader


def test_failovers_keep_every_acknowledged_order_once_and_the_state_exact(
        nats_cluster, nats_link, tmp_path):
    names = unique_names("venue")
    stream = names.venue
    procs: list[ServeProcess] = []
    faults: dict[str, float] = {}

    def start(label, standby):
        p = ServeProcess(tmp_path, label, nats_cluster.urls, broker.url, stream, standby)
        procs.append(p)
        return p

    with EmbeddedBroker() as broker:
        try:
            primary = start("p1", False)
            primary.wait_for("  primary      epoch 1", 30)
            standby = start("s1", True)
            standby.wait_for("serve (standby)", 30)
            flow = Flow(broker)

            async def load():
                ready = asyncio.Event()
                mon = asyncio.create_task(flow.monitor(ready))
                await asyncio.wait_for(ready.wait(), 10)
                traders = [asyncio.create_task(flow.trader("alpha", 1001)),
                           asyncio.create_task(flow.trader("beta", 2001))]
                nonlocal primary, standby

                async def acks_resume(after: float, timeout: float = 30) -> None:
                    deadline = time.monotonic() + timeout
                    while not any(t > after for t in flow.ack_times[-5:]):
                        assert time.monotonic() < deadline, "no ack after the fault"
                        await asyncio.sleep(0.05)

                async def taken_over(p: ServeProcess, timeout: float = 20) -> None:
                    deadline = time.monotonic() + timeout
                    while not p.primary:
                        assert time.monotonic() < deadline, f"{p.label} did not take over"
                        await asyncio.sleep(0.05)

                await asyncio.sleep(2)
                # 1. kill -9 of the primary: the standby takes over.
                faults["kill"] = time.monotonic()
                primary.proc.kill()
                await taken_over(standby)
                primary, standby = standby, start("s2", True)
                await acks_resume(faults["kill"])
                await asyncio.to_thread(standby.wait_for, "serve (standby)", 30)
                await asyncio.sleep(1)
                # 2. SIGSTOP of the primary: replaced; SIGCONT: fenced by its next append.
                faults["stop"] = time.monotonic()
                paused = primary
                paused.proc.send_signal(signal.SIGSTOP)
                await taken_over(standby)
                primary, standby = standby, start("s3", True)
                await acks_resume(faults["stop"])
                paused.proc.send_signal(signal.SIGCONT)
                rc = await asyncio.to_thread(paused.proc.wait, 15)
                assert rc == EXIT_FENCED, paused.err.read_text()[-800:]
                assert "fenced" in paused.err.read_text()
                await asyncio.to_thread(standby.wait_for, "serve (standby)", 30)
                await asyncio.sleep(1)
                # 3. kill of the NATS node leading the stream: a new leader, trading goes on.
                leader = await asyncio.to_thread(_leader, nats_link, names)
                faults["nats"] = time.monotonic()
                await asyncio.to_thread(nats_cluster.kill, leader)
                await acks_resume(faults["nats"], 40)
                await asyncio.sleep(1)
                flow.running = False
                await asyncio.wait_for(asyncio.gather(*traders), 40)
                await asyncio.sleep(0.5)
                mon.cancel()
            asyncio.run(asyncio.wait_for(load(), 150))
            live = [p for p in procs if p.proc.poll() is None]
            assert [p for p in live if p.primary], "no primary at the end"
        finally:
            for p in procs:
                p.stop()
    final = [p for p in procs if "served " in p.text()]
    assert len(final) == 1, [(p.label, p.proc.returncode, p.text()[-300:]) for p in procs]
    state_line = final[0].text().rsplit("state ", 1)[1].split()
    final_hash, final_seq = state_line[0], int(state_line[-1])

    contents = read_stream(nats_link, names)
    seqs = [s for s, _ in contents.records]
    assert seqs == list(range(1, len(seqs) + 1)) and seqs[-1] == final_seq
    entries = [msgspec.msgpack.decode(p, type=JournalEntry) for _, p in contents.records]
    new_orders: dict[tuple[str, str], int] = {}
    for e in entries:
        if isinstance(e.msg, NewOrderSingle):
            key = (e.broker, e.msg.cl_ord_id)
            new_orders[key] = new_orders.get(key, 0) + 1
    assert flow.acked, "no order was acknowledged"
    for cl in flow.acked:
        assert new_orders.get((cl.split("-")[0], cl)) == 1, cl
    assert all(n == 1 for n in new_orders.values())
    # A fresh replay of the whole stream is the last primary's state.
    registry = Registry.load_default()
    fresh = Engine(registry, demo_ledger(registry), clock=time.time_ns)
    fresh.replay(contents.records)
    assert fresh.state_hash()[:16] == final_hash
    assert fresh.ledger.totals() == demo_ledger(registry).totals()
    assert all(Decimal(r["cum_qty"]) <= Decimal("1") for r in flow.reports)
    assert {k: v for k, v in flow.published.items() if len(v) > 1} == {}
    assert [e.epoch for e in contents.epochs] == list(range(1, len(contents.epochs) + 1))
    assert len(contents.epochs) >= 3            # founded, and two takeovers at least
    def longest_gap(at: float) -> float:
        around = sorted(t for t in flow.ack_times if at - 0.5 < t < at + 15)
        return round(max((b - a for a, b in itertools.pairwise(around)), default=0.0), 2)
    gaps = {k: longest_gap(at) for k, at in faults.items()}
    print(f"ack gaps {gaps} s; acked {len(flow.acked)}, unanswered {len(flow.unanswered)}, journal "
          f"{len(seqs)} inputs in {contents.groups} groups, epochs {len(contents.epochs)}",
          file=sys.stderr)

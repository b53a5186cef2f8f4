"""The link's durability gate (``feeds.durable``): a cycle's output leaves only once the
journal group it depends on is durable, in cycle order, the fdatasync off the loop."""
from __future__ import annotations

import asyncio

from feeds.durable import DurableGate
from feeds.outbox import Publish
from matching.journal import Journal


def _pub(n: int) -> Publish:
    return Publish(f"t/{n}", b"x", False, "exec", "b")


def _gate(journal, released):
    return DurableGate(journal, lambda p, a: released.append(([x.topic for x in p], a)),
                       lambda: None, lambda exc: None)


def test_output_that_wrote_nothing_waits_behind_an_earlier_group_still_syncing(tmp_path):
    async def body():
        j, released = Journal(tmp_path / "j.log"), []
        gate = _gate(j, released)
        gate.start(asyncio.get_running_loop())
        j.append(1, b"a")
        j.commit()                                   # written, not yet durable
        gate.send([_pub(1)], [11])
        gate.send([_pub(2)], [12])                   # a cycle with no journal record
        assert released == [] and len(gate) == 2
        for _ in range(500):
            if len(released) == 2:
                break
            await asyncio.sleep(0.005)
        assert released == [(["t/1"], [11]), (["t/2"], [12])] and j.durable_seq == 1
        gate.send([_pub(3)], [])                     # nothing unsynced: out at once
        assert released[-1] == (["t/3"], [])
        gate.stop()
        j.close()
    asyncio.run(body())


def test_settle_makes_everything_written_durable_even_with_nothing_held(tmp_path):
    """A connect's retained books and the outbox's restored reports come from inputs that
    were written but maybe not synced: settle syncs them before anything is published."""
    async def body():
        j = Journal(tmp_path / "j.log")
        gate = _gate(j, [])
        gate.start(asyncio.get_running_loop())
        j.append(1, b"a")
        j.commit()
        assert (j.written_seq, j.durable_seq) == (1, 0)
        gate.settle()
        assert j.durable_seq == 1
        gate.stop()
        assert j.defer_sync is False
        j.close()
    asyncio.run(body())

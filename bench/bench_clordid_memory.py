"""Memory a day of ClOrdIDs costs: RSS growth per order of the engine's ClOrdID memory.

    .venv/bin/python -m bench.bench_clordid_memory [--orders 1000000]

Binds ``orders`` ClOrdIDs (one broker, 12-character ids, as the soak's) to sequential
order ids and marks each done (an IOC's fill or a cancel), as the engine does for every
new order; prints one line: the RSS grown per order. Run it on two checkouts to compare.
"""
from __future__ import annotations

import argparse
import gc

from matching.clordid import ClOrdIdMemory
from reliability.soak import rss_kb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_clordid_memory")
    ap.add_argument("--orders", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    mem = ClOrdIdMemory(100)
    gc.collect()
    before = rss_kb()
    for oid in range(1, args.orders + 1):
        mem.bind("soak", f"S{oid:011d}", oid)      # a fresh str, as each message's
        mem.finish(oid, "2")
    gc.collect()
    grown = (rss_kb() - before) * 1024
    assert mem.used("soak", f"S{args.orders:011d}") and mem.order_of("soak", "S00000000001") == 1
    print(f"ClOrdID memory: {args.orders:,} orders, RSS +{grown / 2**20:.1f} MB, "
          f"{grown / args.orders:.0f} bytes per order")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

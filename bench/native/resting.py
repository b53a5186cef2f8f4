"""The gateway's cost per order against the size of its resting book, interleaved.

    python -m bench.native.resting [--resting 3000 100000] [--reps 2] [-n 15000]
                                   [--transport link|aiomqtt]

For each size, a fresh ``gateway_proc`` (serve's start-up, fdatasync journal, that many
orders resting) on one private mosquitto, then ``mqtt_rt drive`` in order mode (100 in
flight, 500 unmeasured first), ``reps`` times with the sizes interleaved (3k, 100k, 3k,
100k ...). Prints one JSON line per run (orders/s, gateway and broker CPU us per order
from /proc) and the medians per size: the issue's "no growth of the cost per order from
3k to 100k resting" is the ratio of the medians.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from bench.native import EXECS, ORDERS, _Children, _drive
from bench.native.build import NotRun, tool

CLK = os.sysconf("SC_CLK_TCK")


def one(binary: Path, port: int, broker_pid: int, kids: _Children, work: Path, resting: int,
        n: int, transport: str, tag: str) -> dict:
    gw = kids.start(f"gw-{tag}", [sys.executable, "-m", "bench.native.gateway_proc", "--port",
                                  str(port), "--data", str(work / tag), "--resting",
                                  str(resting), "--transport", transport], 300)
    try:
        _drive(binary, port, ORDERS, EXECS, 2000, 500, 100, mode="order", prefix=f"w{tag}",
               pids=(broker_pid, gw.pid))
        f = _drive(binary, port, ORDERS, EXECS, n, 500, 100, mode="order", prefix=f"p{tag}",
                   pids=(broker_pid, gw.pid))
    finally:
        kids.end(gw)
    ticks = f["cpu_ticks"]
    return {"resting": resting, "per_s": round(f["per_s"]),
            "gateway_cpu_us": round(ticks[str(gw.pid)] / CLK / f["n"] * 1e6, 1),
            "broker_cpu_us": round(ticks[str(broker_pid)] / CLK / f["n"] * 1e6, 1),
            "others_cores": f["others_cores"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.native.resting",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--resting", type=int, nargs="+", default=[3000, 100_000])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("-n", type=int, default=15_000, help="measured orders per run")
    ap.add_argument("--transport", default="link")
    args = ap.parse_args(argv)
    try:
        binary = tool("gcc", ())
    except NotRun as exc:
        print(json.dumps({"not_run": str(exc)}))
        return 0
    from feeds.broker import EmbeddedBroker
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="tokenbook-resting-") as tmp, \
            _Children(Path(tmp)) as kids, EmbeddedBroker(fallback=False) as b:
        assert b.pid is not None
        for rep in range(args.reps):
            for size in args.resting:
                r = one(binary, b.port, b.pid, kids, Path(tmp), size, args.n, args.transport,
                        f"{rep}-{size}")
                runs.append(r)
                print(json.dumps(r), flush=True)
    med = {size: {k: statistics.median(r[k] for r in runs if r["resting"] == size)
                  for k in ("per_s", "gateway_cpu_us", "broker_cpu_us")}
           for size in args.resting}
    lo, hi = args.resting[0], args.resting[-1]
    print(json.dumps({"medians": med, "gateway_cpu_ratio":
                      round(med[hi]["gateway_cpu_us"] / med[lo]["gateway_cpu_us"], 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

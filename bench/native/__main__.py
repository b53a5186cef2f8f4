"""``python -m bench.native``: the gateway against the native MQTT ceiling, as a Markdown table.

    python -m bench.native [--quick] [--transport aiomqtt|link] [--reps N] [--out DIR]
                           [--json FILE]

Prints the table (or "not run: why"); with ``--out`` also writes the two plots there.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from bench.native import FULL, QUICK, TRANSPORTS, markdown, measure, write_plots


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.native", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes, under a minute")
    ap.add_argument("--transport", choices=TRANSPORTS, default="link",
                    help="the gateway's MQTT transport (default link, as tokenbook serve)")
    ap.add_argument("--reps", type=int, help="interleaved repetitions (default 5; quick 2)")
    ap.add_argument("--out", help="folder for the plots (not written without it)")
    ap.add_argument("--json", help="write every figure, latencies included, to this file")
    args = ap.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    if args.reps:
        sizes = dataclasses.replace(sizes, reps=args.reps)
    R = measure(sizes, args.transport, log=lambda m: print(f"... {m}", file=sys.stderr,
                                                             flush=True))
    lines = markdown(R, heading="#")
    if args.out and not R.get("not_run"):
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        lines += [f"![{p}]({p})" for p in write_plots(R, out)] + [""]
    if args.json:
        Path(args.json).write_text(json.dumps(R))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Turn the figures of ``python -m bench`` into report.md and PNG plots."""
from __future__ import annotations

from pathlib import Path

__all__ = ["write_report", "write_plots"]


def _fmt(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.1f}"


def write_plots(R: dict, out: Path) -> list[str]:
    """Latency CDFs, cost vs book depth and vs instruments; returns the file names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    lat = R.get("latencies", {})
    if lat:
        fig, ax = plt.subplots(figsize=(6, 4))
        for key, label in (("raw_half", "raw MQTT round trip"),
                           ("half", "order -> ack through the gateway")):
            xs = sorted(lat.get(key, []))
            if xs:
                ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], label=label)
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("fraction of messages")
        ax.set_title("Latency CDF at half the gateway's peak rate")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        fig.savefig(out / "latency_cdf.png", dpi=110)
        plt.close(fig)
        files.append("latency_cdf.png")
    for key, xlabel, name, title in (
            ("scaling_orders", "resting orders", "cost_vs_depth.png",
             "Core cost per command vs resting orders (1,000 levels)"),
            ("scaling_levels", "price levels per side", "cost_vs_levels.png",
             "Core cost per command vs price levels"),
            ("scaling_instruments", "instruments (books)", "cost_vs_instruments.png",
             "Core cost per command vs number of instruments")):
        pts = R.get(key)
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("ns per command")
        ax.set_ylim(bottom=0)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        fig.tight_layout()
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        files.append(name)
    if R.get("mqtt_native"):
        from bench.native import write_plots as native_plots
        files += native_plots(R["mqtt_native"], out)
    return files


def write_report(R: dict, out: Path, plots: list[str]) -> Path:
    m = R["machine"]
    lines = [
        "# tokenbook benchmark report", "",
        f"Command: `{R['command']}` · {m['date']} · {m['cpu']}, {m['cores']} cores · "
        f"Python {m['python']} · {m['platform']}", "",
        "Each figure is a median of several runs in this sitting; ratios compare runs made "
        "here and now. The machine is shared: absolute numbers move between sittings.", "",
        "## Matching core", "",
        "| what | commands/s | ns/command |", "|---|---|---|",
    ]
    f = R["flow"]
    for key, label in (("core_batch", "core, batch path"),
                       ("core_per_command", "core, per-command Python API")):
        lines.append(f"| {label} ({f['commands']:,} commands) | {_fmt(R[key]['commands_per_s'])} "
                     f"| {R[key]['ns_per_command']:.0f} |")
    ref = R["reference"]
    lines += [
        f"| reference, plain Python ({ref['commands']:,} commands) | "
        f"{_fmt(ref['commands_per_s'])} | {1e9 / ref['commands_per_s']:.0f} |", "",
        f"Core / reference on the same {ref['commands']:,} commands: **{ref['ratio']:.0f}x**. "
        f"Digest of the flow: trades={f['digest'][0]} traded_qty={f['digest'][1]} "
        f"resting={f['resting']} digest={f['digest'][2]}.", "",
        f"Memory per resting order (pool slot + id index, {R['memory']['resting']:,} resting): "
        f"**{R['memory']['bytes_per_order']:.1f} bytes**.", "",
        "## Scaling", "",
        "| resting orders | ns/command |", "|---|---|",
        *[f"| {n:,} | {ns:.0f} |" for n, ns in R["scaling_orders"]], "",
        "| price levels per side | ns/command |", "|---|---|",
        *[f"| {n:,} | {ns:.0f} |" for n, ns in R["scaling_levels"]], "",
        "| instruments | ns/command |", "|---|---|",
        *[f"| {n} | {ns:.0f} |" for n, ns in R["scaling_instruments"]], "",
        f"Growth of the cost per command over the resting-order range: "
        f"{R['scaling_growth']:.1f}x — "
        + ("**flagged: worse than O(log n)**" if R["scaling_flag"] else
           "within a log factor (cache misses, not an algorithmic term)") + ".", "",
        "## Engine (risk, ledger, FIX reports, journal with group commit)", "",
        "| what | figure |", "|---|---|",
        f"| engine inputs/s ({R['engine']['inputs']:,} inputs) "
        f"| {_fmt(R['engine']['inputs_per_s'])} |",
        f"| same engine without a journal | {_fmt(R['engine'].get('no_journal_per_s', 0))} |",
        f"| journal keeps (with / without) | {R['engine'].get('journal_keeps', 0):.3f} |",
        f"| bare core, same orders, per-command | {_fmt(R['engine']['core_per_s'])} |",
        f"| engine / core | {R['engine']['ratio']:.3f} (target 0.25) |",
        f"| per input: core call / journal alone / the engine's own work (risk, ledger, "
        f"reports, dedup) | {R['engine'].get('core_us', 0):.2f} / "
        f"{R['engine'].get('journal_us', 0):.2f} / {R['engine'].get('engine_own_us', 0):.2f} us |",
        f"| what 0.25 leaves for the engine's own work | "
        f"{R['engine'].get('target_leaves_us', 0):.2f} us per input |",
        f"| recovery of {R['recovery']['inputs']:,} journaled inputs | "
        f"{R['recovery']['seconds']:.2f} s ({_fmt(R['recovery']['inputs_per_s'])} inputs/s), "
        f"state hash equal: {R['recovery']['hash_equal']} |", "",
        "## Gateway over MQTT (private mosquitto on loopback, QoS 1)", "",
        "| what | figure |", "|---|---|",
    ]
    g = R["gateway"]
    lines += [
        f"| raw round trips/s (publish -> echo -> back) | {g['raw_round_trips_per_s']:,} |",
        f"| gateway orders/s (order -> New report) | {g['gateway_orders_per_s']:,} |",
        f"| gateway / raw ceiling | {g['gateway_over_raw']:.2f} (target 0.5) |",
        f"| order-to-ack at half peak, p50 / p99 / p99.9 | {g['half_p50_ms']} / {g['half_p99_ms']}"
        f" / {g['half_p999_ms']} ms (target p99 < 5 ms) |",
        f"| raw round trip at the same rate, p50 / p99 | {g['raw_at_same_rate_p50_ms']} / "
        f"{g['raw_at_same_rate_p99_ms']} ms |", "",
    ]
    rest = R.get("gateway_resting")
    if rest:
        lines += ["## Gateway over a resting book (GTD and DAY orders far from the touch)", "",
                  f"Load generator in its own process; it drives "
                  f"{rest['generator_ceiling_per_s'] or 0:,} round trips/s through a bare echo.",
                  "", "| resting orders | orders/s | p50 / p99 at peak | one empty cycle |",
                  "|---:|---:|---|---:|"]
        lines += [f"| {r['resting']:,} | {r['orders_per_s']:,} | {r['p50_ms']} / {r['p99_ms']} "
                  f"ms | {r['empty_cycle_ms']} ms |" for r in rest["runs"]]
        lines += ["", f"Largest over smallest book: {rest['largest_over_smallest']:.2f} "
                  "(target: no slower, >= 1 within noise).", ""]
    if R.get("mqtt_native"):
        from bench.native import markdown as native_markdown
        lines += native_markdown(R["mqtt_native"])
    if plots:
        lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path

"""MQTT against the native ceiling: the gateway measured with C clients, beside C clients alone.

    python -m bench.native [--quick] [--transport aiomqtt|link] [--reps N] [--out DIR]

One sitting on one private mosquitto (loopback, the broker config every tokenbook test
uses; it announces Receive Maximum 1000, ``feeds.security.BROKER_RECEIVE_MAXIMUM``, to
every client), every client a small C
program on libmosquitto (``mqtt_rt.c``, compiled with gcc into ``.cache/native/``),
MQTT 5, QoS 1, TCP_NODELAY, each in its own process:

1. the native ceiling: ``mqtt_rt drive`` publishes, ``mqtt_rt echo`` publishes each
   message back, K = 100 unanswered at once: round trips/s, and the CPU per round trip
   of the broker, the echo and the driver;
2. the load generator's own ceiling: the same driver sending NewOrderSingle JSON (the
   gateway's load) to a C echo and matching the answers by ClOrdID, as it does against
   the gateway;
3. the gateway: ``gateway_proc`` (``tokenbook serve``'s start-up: journal with fdatasync
   group commit, serve's GatewayConfig) in its own process, 100,000 GTD and DAY orders
   resting far from the touch, the transport a parameter (``--transport``); the C
   generator sends orders on ``tokenbook/v1/orders/bench`` with K in flight (two GTC
   buys resting, then a sell IOC crossing them: a third of the orders trade) and times
   order -> first execution report on ``tokenbook/v1/exec/bench``;

1-3 are repeated ``reps`` times, interleaved (1, 2, 3, 1, 2, 3, ...); then, at half the
gateway's median peak, order-to-ack latency (paced, open loop, from the scheduled send
time) interleaved with the native round trip at the same rate; then offered load from a
quarter to 1.5 times the peak. CPU is ``utime + stime`` from ``/proc/<pid>/stat`` (the
generator: getrusage) at both ends of each measured window. Figures are medians with
their range over the repetitions. Without gcc, ``mosquitto.h`` or mosquitto the result
is ``{"not_run": why}``; without the asked-for transport the gateway rows say so.
"""
from __future__ import annotations

import json
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.native.build import NotRun, mosquitto, tool

__all__ = ["Sizes", "QUICK", "FULL", "TINY", "measure", "markdown", "write_plots", "NotRun",
           "TRANSPORTS"]

#: The gateway's transports (``gateway_proc --transport``).
TRANSPORTS = ("aiomqtt", "link")
#: gateway_proc's exit status when the asked-for transport is not in this tree.
NOT_AVAILABLE = 4
ROOT = Path(__file__).resolve().parents[2]
ORDERS = "tokenbook/v1/orders/bench"
EXECS = "tokenbook/v1/exec/bench"


@dataclass(frozen=True)
class Sizes:
    reps: int                   # repetitions of each interleaved measurement
    native_n: int               # round trips per native-ceiling run
    generator_n: int            # orders per generator-ceiling run
    gateway_n: int              # orders per gateway peak run
    half_n: int                 # orders per half-peak latency run
    warmup: int                 # unmeasured messages before each run
    window: int = 100           # K: unanswered at once (peak runs)
    resting: int = 100_000      # orders resting in the gateway's book
    sweep: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)   # x the gateway's peak
    sweep_seconds: float = 3.0  # of offered load per sweep point


FULL = Sizes(reps=5, native_n=100_000, generator_n=50_000, gateway_n=15_000, half_n=8_000,
             warmup=1_000)
QUICK = Sizes(reps=2, native_n=20_000, generator_n=20_000, gateway_n=3_000, half_n=1_500,
              warmup=300, sweep=(0.25, 0.5, 1.0, 1.5), sweep_seconds=1.5)
TINY = Sizes(reps=1, native_n=300, generator_n=300, gateway_n=150, half_n=60, warmup=20,
             resting=300, sweep=(0.5,), sweep_seconds=0.3)


def _stat(xs: Sequence[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "runs": list(xs)}


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """The child's next stdout line within ``timeout`` s ("" if it ended or was silent)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().decode().strip() if ready else ""


class _Children:
    """Processes started for one sitting; each is ended (TERM, then KILL) on exit."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.procs: list[subprocess.Popen] = []

    def start(self, name: str, cmd: list[str], ready_timeout: float) -> subprocess.Popen:
        err = open(self.workdir / f"{name}.stderr", "wb")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL, cwd=ROOT)
        err.close()
        self.procs.append(proc)
        line = _read_line(proc, ready_timeout)
        if line != "ready":
            try:
                code = proc.wait(2) if not line else proc.poll()    # "": it closed stdout
            except subprocess.TimeoutExpired:
                code = None
            self.end(proc)
            raise _ChildFailed(name, code, self.stderr(name), line)
        return proc

    def stderr(self, name: str) -> str:
        try:
            return (self.workdir / f"{name}.stderr").read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def end(self, proc: subprocess.Popen, timeout: float = 20.0) -> str:
        """Stop ``proc`` (SIGTERM, bounded, then SIGKILL); returns its remaining stdout."""
        out = b""
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate(timeout=5)
        if proc in self.procs:
            self.procs.remove(proc)
        return (out or b"").decode(errors="replace")

    def __enter__(self) -> _Children:
        return self

    def __exit__(self, *exc) -> None:
        for proc in list(self.procs):
            self.end(proc, timeout=5)


class _ChildFailed(RuntimeError):
    def __init__(self, name: str, code: int | None, stderr: str, line: str):
        super().__init__(f"{name} did not start (exit {code}): "
                         f"{(stderr.strip().splitlines() or [line or 'no output'])[-1]}")
        self.name, self.code = name, code


def _drive(binary: Path, port: int, t_in: str, t_out: str, n: int, warmup: int,
           window: int, *, rate: float = 0.0, mode: str = "raw", prefix: str = "o",
           pids: Sequence[int] = (), latencies: Path | None = None,
           timeout: float | None = None) -> dict:
    """One ``mqtt_rt drive`` run in its own process; its JSON figures. Each phase gives up
    after ``timeout`` s (default: 300 s closed loop, three times the paced duration)."""
    expected = timeout or (300.0 if not rate else max(30.0, 3 * (n + warmup) / rate))
    cmd = [str(binary), "drive", "-n", str(n), "-W", str(warmup), "-w", str(window),
           "-r", str(rate), "-m", mode, "-x", prefix, "-T", str(expected)]
    for pid in pids:
        cmd += ["-c", str(pid)]
    if latencies is not None:
        cmd += ["-L", str(latencies)]
    cmd += ["127.0.0.1", str(port), t_in, t_out]
    wall0 = time.time()
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=2 * expected + 30,
                         stdin=subprocess.DEVNULL)
    lines = run.stdout.strip().splitlines()
    figures = json.loads(lines[-1]) if lines else {}
    if run.returncode or "error" in figures:
        raise RuntimeError(f"mqtt_rt drive failed (exit {run.returncode}): "
                           f"{figures or run.stderr.strip()[-500:]}")
    figures["wall"] = [wall0, time.time()]
    figures["others_cores"] = _others(figures)
    return figures


def _others(fig: dict) -> float:
    """Cores busy with processes other than the broker, the peer and this driver during the
    measured window (the host's busy ticks minus theirs), over its length."""
    theirs = [t for t in fig["cpu_ticks"].values() if t >= 0]
    busy = fig.get("host_busy_ticks", -1)
    if busy < 0 or len(theirs) < len(fig["cpu_ticks"]) or fig["elapsed_s"] <= 0:
        return float("nan")
    ours = sum(theirs) + fig["self_cpu_s"] * fig["clk_tck"]
    return max(0.0, (busy - ours) / fig["clk_tck"] / fig["elapsed_s"])


def _pauses(events: list, wall: Sequence[float]) -> dict:
    """What paused the gateway's loop between ``wall[0]`` and ``wall[1]`` (gateway_proc's
    ``--events``): stalls of 20 ms or more, full collections, snapshots written."""
    inside = [e for e in events if wall[0] <= e[1] <= wall[1]]
    stalls = [e[2] for e in inside if e[0] == "stall"]
    gcs = [e[2] for e in inside if e[0] == "gc2"]
    return {"stalls": len(stalls), "stall_max_ms": max(stalls, default=0.0),
            "stall_total_ms": sum(stalls), "gc2": len(gcs), "gc2_max_ms": max(gcs, default=0.0),
            "snapshots": sum(e[0] == "snapshot" for e in inside)}


def _cpu_us(fig: dict, pid: int, n: int) -> float:
    ticks = fig["cpu_ticks"].get(str(pid), -1)
    return float("nan") if ticks < 0 else ticks / fig["clk_tck"] / n * 1e6


def _read_ms(path: Path) -> list[float]:
    with open(path) as f:
        return [float(x) / 1e3 for x in f if x.strip()]


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        text = (out.stdout or out.stderr).strip().splitlines()
        return text[0] if text else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def _fs_type(path: Path) -> str:
    """The file system holding ``path`` (from /proc/mounts), e.g. ext4."""
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 2 and str(path).startswith(parts[1]) and \
                        len(parts[1]) > len(best):
                    best, kind = parts[1], parts[2]
    except OSError:
        pass
    return kind


def _conditions(cc: str, broker: str) -> dict:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")),
                       cpu)
    except OSError:
        pass
    try:
        from importlib.metadata import version
        aiomqtt = version("aiomqtt")
    except Exception:  # noqa: BLE001 - only a label in the report
        aiomqtt = "?"
    return {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu,
            "cores": os.cpu_count(), "python": platform.python_version(), "aiomqtt": aiomqtt,
            "mosquitto": _version([broker, "-h"]).replace("mosquitto version ", ""),
            "gcc": _version([cc, "--version"]), "loadavg_start": os.getloadavg()[0]}


class _Sitting:
    """The running parts of one sitting: the broker, the echoes, the gateway's process."""

    def __init__(self, binary: Path, port: int, broker: int, timeout: float | None):
        self.binary, self.port, self.broker, self.timeout = binary, port, broker, timeout
        self.echo = self.echo_orders = self.gateway = 0

    def native(self, n: int, warmup: int, window: int, rate: float = 0.0,
               latencies: Path | None = None) -> dict:
        """C driver <-> C echo, raw 100-byte payloads."""
        return _drive(self.binary, self.port, "bench/native/in", "bench/native/out", n, warmup,
                      window, rate=rate, pids=(self.broker, self.echo), latencies=latencies,
                      timeout=self.timeout)

    def generator(self, n: int, warmup: int, window: int, prefix: str) -> dict:
        """The C load generator's orders against a C echo (its own ceiling)."""
        return _drive(self.binary, self.port, "bench/native/orders", "bench/native/exec", n,
                      warmup, window, mode="order", prefix=prefix,
                      pids=(self.broker, self.echo_orders), timeout=self.timeout)

    def orders(self, n: int, warmup: int, window: int, prefix: str, rate: float = 0.0,
               latencies: Path | None = None) -> dict:
        """The C load generator's orders through the gateway."""
        return _drive(self.binary, self.port, ORDERS, EXECS, n, warmup, window, rate=rate,
                      mode="order", prefix=prefix, pids=(self.broker, self.gateway),
                      latencies=latencies, timeout=self.timeout)


def measure(sizes: Sizes = FULL, transport: str = "aiomqtt", *, cc: str = "gcc",
            extra_flags: Sequence[str] = (), timeout: float | None = None,
            log: Callable[[str], None] | None = None) -> dict:
    """Everything of the module docstring in one sitting; ``{"not_run": why}`` when the C
    clients or mosquitto are missing here. ``timeout`` bounds each start and each run
    (default: generous, from the sizes)."""
    say = log or (lambda _msg: None)
    try:
        binary = tool(cc, extra_flags)
        broker_bin = mosquitto()
    except NotRun as exc:
        return {"not_run": str(exc), "transport": transport}
    from feeds.broker import EmbeddedBroker
    R: dict = {"not_run": None, "transport": transport, "sizes": asdict(sizes),
               "conditions": _conditions(cc, broker_bin), "gateway_not_run": None}
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tokenbook-nbench-") as tmp, \
            _Children(Path(tmp)) as kids, EmbeddedBroker(fallback=False) as b:
        work = Path(tmp)
        R["conditions"]["journal_fs"] = _fs_type(work.resolve())
        assert b.pid is not None
        run = _Sitting(binary, b.port, b.pid, timeout)
        where = ["127.0.0.1", str(b.port)]
        run.echo = kids.start("echo-raw", [str(binary), "echo", *where, "bench/native/in",
                                           "bench/native/out"], timeout or 15).pid
        run.echo_orders = kids.start("echo-orders", [
            str(binary), "echo", *where, "bench/native/orders", "bench/native/exec"],
            timeout or 15).pid
        say(f"seeding {sizes.resting:,} resting orders; gateway ({transport}) starting")
        gw_proc = None
        try:
            gw_proc = kids.start("gateway", [
                sys.executable, "-m", "bench.native.gateway_proc", "--port", str(b.port),
                "--data", str(work / "data"), "--resting", str(sizes.resting),
                "--transport", transport, "--events", str(work / "events.json")], timeout or 300)
            run.gateway = gw_proc.pid
        except _ChildFailed as exc:
            if exc.code != NOT_AVAILABLE:
                raise
            lines = kids.stderr("gateway").strip().splitlines()
            R["gateway_not_run"] = lines[-1] if lines else f"transport {transport}: not available"
        native, generator, gateway = [], [], []
        for rep in range(sizes.reps):
            say(f"round {rep + 1}/{sizes.reps}: native ceiling, generator ceiling, gateway")
            native.append(run.native(sizes.native_n, sizes.warmup, sizes.window))
            generator.append(run.generator(sizes.generator_n, sizes.warmup, sizes.window,
                                           f"e{rep}"))
            if gw_proc is not None:
                gateway.append(run.orders(sizes.gateway_n, sizes.warmup, sizes.window,
                                          f"p{rep}"))
        R["native"] = _native_figures(native, run)
        R["generator"] = {
            "per_s": _stat([f["per_s"] for f in generator]),
            "cpu_us": _stat([f["self_cpu_s"] / f["n"] * 1e6 for f in generator]),
            "cpu_share": _stat([f["self_cpu_s"] / f["elapsed_s"] for f in generator])}
        if gw_proc is not None:
            R.update(_gateway_figures(gateway, native, R["generator"], run))
            R.update(_latency_and_load(sizes, run, work, R["gateway"]["per_s"]["median"], say))
            tail = kids.end(gw_proc).strip().splitlines()
            R["gateway_process"] = json.loads(tail[-1]) if tail else {}
            events_file = work / "events.json"
            events = json.loads(events_file.read_text()) if events_file.exists() else []
            R["pauses"] = {"peak": [_pauses(events, f["wall"]) for f in gateway],
                           "half": [_pauses(events, w) for w in R["half"].pop("walls")]}
            for point in R["sweep"]:
                point["pauses"] = _pauses(events, point.pop("wall"))

        R["others_cores"] = _stat([f["others_cores"] for f in native + generator + gateway])
    R["conditions"]["loadavg_end"] = os.getloadavg()[0]
    R["seconds"] = time.perf_counter() - t_start
    return R


def _native_figures(native: list[dict], run: _Sitting) -> dict:
    return {"per_s": _stat([f["per_s"] for f in native]),
            "p50_ms": _stat([f["p50_us"] / 1e3 for f in native]),
            "cpu_us": {"broker": _stat([_cpu_us(f, run.broker, f["n"]) for f in native]),
                       "echo": _stat([_cpu_us(f, run.echo, f["n"]) for f in native]),
                       "driver": _stat([f["self_cpu_s"] / f["n"] * 1e6 for f in native])},
            "libmosquitto": native[0].get("libmosquitto", "?")}


def _gateway_figures(gateway: list[dict], native: list[dict], generator: dict,
                     run: _Sitting) -> dict:
    pid = run.gateway
    g = {"per_s": _stat([f["per_s"] for f in gateway]),
         "p50_ms": _stat([f["p50_us"] / 1e3 for f in gateway]),
         "p99_ms": _stat([f["p99_us"] / 1e3 for f in gateway]),
         "cpu_us": {"gateway": _stat([_cpu_us(f, pid, f["n"]) for f in gateway]),
                    "broker": _stat([_cpu_us(f, run.broker, f["n"]) for f in gateway]),
                    "generator": _stat([f["self_cpu_s"] / f["n"] * 1e6 for f in gateway])},
         "gateway_cpu_share": _stat([f["cpu_ticks"][str(pid)] / f["clk_tck"] / f["elapsed_s"]
                                     for f in gateway]),
         "generator_cpu_share": _stat([f["self_cpu_s"] / f["elapsed_s"] for f in gateway]),
         "later_reports_per_order": _stat([f["later_reports"] / f["n"] for f in gateway])}
    peak = g["per_s"]["median"]
    return {"gateway": g,
            "ratio": _stat([a["per_s"] / b["per_s"] for a, b in zip(gateway, native,
                                                                     strict=True)]),
            "ratio_of_medians": peak / statistics.median(f["per_s"] for f in native),
            "generator_over_gateway": generator["per_s"]["median"] / peak}


def _latency_and_load(sizes: Sizes, run: _Sitting, work: Path, peak: float,
                      say: Callable[[str], None]) -> dict:
    """Half-peak latency (gateway and native interleaved), then the offered-load sweep."""
    half = peak / 2
    say(f"half the gateway's peak: {half:,.0f} orders/s, gateway and native interleaved")
    hg, hn, lat_g, lat_n = [], [], [], []
    warm = min(sizes.warmup, max(10, int(half / 2)))
    window = sizes.half_n + warm                  # open loop: never the limit
    for rep in range(sizes.reps):
        fg, fn = work / f"half-gw-{rep}.txt", work / f"half-native-{rep}.txt"
        hg.append(run.orders(sizes.half_n, warm, window, f"h{rep}", rate=half, latencies=fg))
        hn.append(run.native(sizes.half_n, warm, window, rate=half, latencies=fn))
        lat_g += _read_ms(fg)
        lat_n += _read_ms(fn)

    def latency(runs: list[dict]) -> dict:
        return {"achieved_per_s": _stat([f["per_s"] for f in runs]),
                **{f"{k}_ms": _stat([f[f"{k}_us"] / 1e3 for f in runs])
                   for k in ("p50", "p99", "p999", "max")}}
    out = {"half": {"rate": half, "gateway": latency(hg), "native": latency(hn),
                    "walls": [f["wall"] for f in hg],
                    "others_cores": _stat([f["others_cores"] for f in hg + hn])},
           "latencies_ms": {"gateway_half": lat_g, "native_half": lat_n}}
    out["half"]["gateway"]["cpu_us"] = {
        "gateway": _stat([_cpu_us(f, run.gateway, f["n"]) for f in hg]),
        "broker": _stat([_cpu_us(f, run.broker, f["n"]) for f in hg])}
    sweep = []
    for i, frac in enumerate(sizes.sweep):
        rate = frac * peak
        n = max(100, int(rate * sizes.sweep_seconds))
        say(f"offered load {frac:g} x peak: {rate:,.0f} orders/s, {n:,} orders")
        f = run.orders(n, min(50, n // 10), 10 * n, f"s{i}", rate=rate)
        sweep.append({"fraction": frac, "offered_per_s": rate, "achieved_per_s": f["per_s"],
                      "p50_ms": f["p50_us"] / 1e3, "p99_ms": f["p99_us"] / 1e3,
                      "gateway_cpu_us": _cpu_us(f, run.gateway, f["n"]),
                      "others_cores": f["others_cores"], "wall": f["wall"]})
    out["sweep"] = sweep
    return out


# ---------------------------------------------------------------------- presentation
def _n(x: float) -> str:
    return f"{x:,.0f}"


def _rng(s: dict, fmt: Callable[[float], str] = _n) -> str:
    return f"{fmt(s['min'])}-{fmt(s['max'])}"


def _f2(x: float) -> str:
    return f"{x:.2f}"


def _f1(x: float) -> str:
    return f"{x:.1f}"


def _f3(x: float) -> str:
    return f"{x:.3f}"


def _pc(x: float) -> str:
    return f"{x * 100:.0f}%"


def _pauses_text(runs: list[dict]) -> str:
    stalls = sum(r["stalls"] for r in runs)
    longest = max((r["stall_max_ms"] for r in runs), default=0.0)
    gcs = sum(r["gc2"] for r in runs)
    gc_max = max((r["gc2_max_ms"] for r in runs), default=0.0)
    snaps = sum(r["snapshots"] for r in runs)
    return (f"{stalls} ({longest:.0f} ms), {gcs} ({gc_max:.0f} ms), {snaps} "
            f"in {len(runs)} runs")


def markdown(R: dict, heading: str = "##") -> list[str]:
    """The figures of ``measure`` as Markdown lines (a section headed ``heading``)."""
    title = f"{heading} MQTT against the native ceiling"
    if R.get("not_run"):
        return [title, "", f"not run: {R['not_run']}", ""]
    c, s, nat, gen = R["conditions"], R["sizes"], R["native"], R["generator"]
    k = s["window"]
    lines = [
        title, "",
        f"{c['date']} · {c['cpu']}, {c['cores']} cores (shared) · load average "
        f"{c['loadavg_start']:.2f} at the start, {c.get('loadavg_end', 0):.2f} at the end · "
        f"mosquitto {c['mosquitto']} (private, loopback), libmosquitto "
        f"{nat.get('libmosquitto', '?')}, {c['gcc']} -O2 · Python {c['python']}, aiomqtt "
        f"{c['aiomqtt']} · journal on {c.get('journal_fs', '?')} · MQTT 5, QoS 1, TCP_NODELAY, "
        f"every client in its own process · "
        f"medians of {s['reps']} interleaved runs, ranges lowest-highest run. Other processes "
        f"on the host kept {R['others_cores']['median']:.2f} cores busy (median over the "
        f"rounds; {_rng(R['others_cores'], _f2)}).", "",
        "| what | median | range |", "|---|---:|---|",
        f"| native ceiling: C libmosquitto driver -> broker -> C echo -> broker -> driver, "
        f"round trips/s, {k} in flight | **{_n(nat['per_s']['median'])}** | "
        f"{_rng(nat['per_s'])} |",
        f"| native: CPU per round trip, broker / echo / driver (us) | "
        f"{nat['cpu_us']['broker']['median']:.1f} / {nat['cpu_us']['echo']['median']:.1f} / "
        f"{nat['cpu_us']['driver']['median']:.1f} | broker {_rng(nat['cpu_us']['broker'], _f1)}"
        " |",
        f"| load generator (C, NewOrderSingle JSON, matched by ClOrdID) against a C echo, "
        f"orders/s | {_n(gen['per_s']['median'])} | {_rng(gen['per_s'])} |",
    ]
    if R.get("gateway_not_run"):
        return [*lines, "", f"Gateway: not run ({R['gateway_not_run']}).", ""]
    g, h = R["gateway"], R["half"]
    hg, hn = h["gateway"], h["native"]
    proc = R.get("gateway_process", {})
    lines += [
        f"| gateway ({R['transport']}), orders/s: order in -> first execution report out, "
        f"{k} in flight, {s['resting']:,} resting, journal fdatasync group commit | "
        f"**{_n(g['per_s']['median'])}** | {_rng(g['per_s'])} |",
        f"| **gateway / native ceiling** | **{R['ratio_of_medians']:.3f}** | "
        f"{_rng(R['ratio'], _f3)} (per round) |",
        f"| CPU per order, gateway process (us) | **{g['cpu_us']['gateway']['median']:.0f}** | "
        f"{_rng(g['cpu_us']['gateway'])} |",
        f"| CPU per order, broker process, incl. reports and market data out (us) | "
        f"**{g['cpu_us']['broker']['median']:.1f}** | {_rng(g['cpu_us']['broker'], _f1)} |",
        f"| gateway process CPU during its peak (share of one core) | "
        f"{_pc(g['gateway_cpu_share']['median'])} | {_rng(g['gateway_cpu_share'], _pc)} |",
        f"| load generator: its ceiling / the gateway's peak | "
        f"{R['generator_over_gateway']:.1f}x | |",
        f"| load generator CPU during the gateway peak (share of one core) | "
        f"{_pc(g['generator_cpu_share']['median'])} | {_rng(g['generator_cpu_share'], _pc)} "
        f"({g['cpu_us']['generator']['median']:.1f} us/order) |",
        f"| order-to-ack at half the peak ({_n(h['rate'])} orders/s offered), p50 / p99 / "
        f"p99.9 (ms) | **{hg['p50_ms']['median']:.2f} / {hg['p99_ms']['median']:.2f} / "
        f"{hg['p999_ms']['median']:.2f}** | p99 {_rng(hg['p99_ms'], _f2)}, p99.9 "
        f"{_rng(hg['p999_ms'], _f2)} |",
        f"| native round trip at the same rate, p50 / p99 / p99.9 (ms) | "
        f"{hn['p50_ms']['median']:.2f} / {hn['p99_ms']['median']:.2f} / "
        f"{hn['p999_ms']['median']:.2f} | p99 {_rng(hn['p99_ms'], _f2)} |",
        f"| CPU per order at half the peak, gateway / broker (us) | "
        f"{hg['cpu_us']['gateway']['median']:.0f} / {hg['cpu_us']['broker']['median']:.1f} | "
        f"gateway {_rng(hg['cpu_us']['gateway'])} |",
        f"| the gateway's loop in the half-peak runs: blocked >= 20 ms (longest), full "
        f"collections (longest), snapshots written | {_pauses_text(R['pauses']['half'])} | "
        f"other processes {h['others_cores']['median']:.2f} cores |",
        "",
        "| offered orders/s (x peak) | achieved orders/s | p50 ms | p99 ms | gateway CPU "
        "us/order | loop blocked >= 20 ms (longest ms) | other processes, cores |",
        "|---:|---:|---:|---:|---:|---:|---:|",
        *[f"| {_n(p['offered_per_s'])} ({p['fraction']:g}) | {_n(p['achieved_per_s'])} | "
          f"{p['p50_ms']:.2f} | {p['p99_ms']:.2f} | {p['gateway_cpu_us']:.0f} | "
          f"{p['pauses']['stalls']} ({p['pauses']['stall_max_ms']:.0f})"
          f"{' snapshot' if p['pauses']['snapshots'] else ''} | {p['others_cores']:.2f} |"
          for p in R["sweep"]],
        "",
        f"Per round: {s['native_n']:,} native round trips, {s['generator_n']:,} generator "
        f"orders, {s['gateway_n']:,} gateway orders, each after {s['warmup']:,} unmeasured; "
        f"half-peak runs {s['half_n']:,} orders paced open loop (latency from the scheduled "
        f"send time). A third of the orders are IOC sells that trade with the two resting "
        f"buys before them (each order got {g['later_reports_per_order']['median']:.2f} "
        f"later reports on average). Gateway process: {proc.get('received', '?'):,} messages, "
        f"{proc.get('trades', '?'):,} trades, {proc.get('cycles', '?'):,} cycles, rejects "
        f"{proc.get('reject_reasons') or 'none'}; seeding {s['resting']:,} orders took "
        f"{proc.get('seed_s', 0):.1f} s; snapshots every 100,000 inputs, as serve. Its loop in "
        f"the peak runs: blocked >= 20 ms (longest), full collections (longest), snapshots: "
        f"{_pauses_text(R['pauses']['peak'])}. The loop is blocked by a long cycle (a "
        f"large batch when a backlog builds), a collection or a snapshot. Sitting: "
        f"{R['seconds']:.0f} s.", "",
    ]
    return lines


def write_plots(R: dict, out: Path) -> list[str]:
    """Throughput vs offered load and the half-peak latency CDFs; returns the file names."""
    if R.get("not_run") or R.get("gateway_not_run") or not R.get("sweep"):
        return []
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(6, 4))
    offered = [p["offered_per_s"] for p in R["sweep"]]
    ax.plot(offered, [p["achieved_per_s"] for p in R["sweep"]], marker="o",
            label=f"gateway ({R['transport']})")
    top = max(offered) * 1.05
    ax.plot([0, top], [0, top], linestyle=":", color="grey", label="achieved = offered")
    ax.axhline(R["gateway"]["per_s"]["median"], linestyle="--", color="C1",
               label=f"gateway peak, {R['sizes']['window']} in flight")
    ax.set_xlabel("offered orders/s (paced, open loop)")
    ax.set_ylabel("achieved orders/s")
    ax.set_title(f"Gateway throughput vs offered load (native ceiling "
                 f"{R['native']['per_s']['median']:,.0f} rt/s)", fontsize=9)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "native_throughput_vs_offered.png", dpi=110)
    plt.close(fig)
    files.append("native_throughput_vs_offered.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("native_half", "native round trip (C <-> C)"),
                       ("gateway_half", f"order -> ack through the gateway ({R['transport']})")):
        xs = sorted(R["latencies_ms"].get(key, []))
        if xs:
            ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of messages")
    ax.set_title(f"Latency CDF at half the gateway's peak ({R['half']['rate']:,.0f}/s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "native_latency_cdf.png", dpi=110)
    plt.close(fig)
    files.append("native_latency_cdf.png")
    return files

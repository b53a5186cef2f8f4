"""The native MQTT bench: its C clients build and round-trip on a private mosquitto, a tiny
sitting through the gateway gives every figure, and a machine without gcc or
``mosquitto.h`` gets "not run" and why instead of a failure. Loopback only, bounded."""
from __future__ import annotations

import pytest

from bench import native
from bench.native import build
from bench.native.gateway_proc import gateway_class
from bench.report import write_plots, write_report
from feeds.broker import EmbeddedBroker, find_mosquitto


def figures() -> dict:
    """The other sections' figures write_report needs (as in test_bench_report)."""
    return {
        "machine": {"date": "2026-12-03", "cpu": "test cpu", "cores": 2, "python": "3.11",
                    "platform": "linux"},
        "command": "python -m bench --quick", "quick": True,
        "flow": {"commands": 100, "digest": (3, 30, "abcd"), "resting": 7},
        "core_batch": {"commands_per_s": 8e6, "ns_per_command": 125},
        "core_per_command": {"commands_per_s": 2e6, "ns_per_command": 500},
        "reference": {"commands": 100, "commands_per_s": 3e4, "core_commands_per_s": 1e7,
                      "ratio": 333.0},
        "memory": {"resting": 100, "bytes_per_order": 58.7},
        "scaling_orders": [(1000, 60.0)], "scaling_levels": [(10, 80.0)],
        "scaling_instruments": [(1, 60.0)], "scaling_growth": 1.0, "scaling_flag": False,
        "engine": {"inputs": 10, "inputs_per_s": 4e4, "core_per_s": 1e6, "ratio": 0.04},
        "recovery": {"inputs": 10, "seconds": 0.5, "inputs_per_s": 2e4, "hash_equal": True},
        "gateway": {"raw_round_trips_per_s": 2000, "gateway_orders_per_s": 1100,
                    "gateway_over_raw": 0.55, "half_p50_ms": 1.1, "half_p99_ms": 2.0,
                    "half_p999_ms": 3.0, "raw_at_same_rate_p50_ms": 0.6,
                    "raw_at_same_rate_p99_ms": 1.2},
    }


def _tool_or_skip(**kwargs):
    try:
        return build.tool(**kwargs)
    except build.NotRun as exc:
        pytest.skip(f"native bench not buildable here: {exc}")


needs_mosquitto = pytest.mark.skipif(find_mosquitto() is None, reason="no mosquitto binary")


@pytest.fixture(scope="module")
def tiny_sitting():
    _tool_or_skip()
    if find_mosquitto() is None:
        pytest.skip("no mosquitto binary")
    return native.measure(native.TINY, timeout=30)


@pytest.mark.network
@pytest.mark.timeout(60)
@needs_mosquitto
def test_c_clients_build_and_round_trip(tmp_path):
    binary = _tool_or_skip(cache=tmp_path)              # a fresh compile, not the cache
    assert binary.parent == tmp_path and binary.stat().st_size > 0
    with EmbeddedBroker(fallback=False) as b, native._Children(tmp_path) as kids:
        broker = b.pid
        echo = kids.start("echo", [str(binary), "echo", "127.0.0.1", str(b.port), "t/in",
                                   "t/out"], 15)
        raw = native._drive(binary, b.port, "t/in", "t/out", 200, 20, 10,
                            pids=(b.pid, echo.pid), timeout=20)
        orders = native._drive(binary, b.port, "t/in", "t/out", 100, 10, 10, mode="order",
                               prefix="t1", timeout=20)
        paced = native._drive(binary, b.port, "t/in", "t/out", 50, 0, 50, rate=500,
                              latencies=tmp_path / "lat.txt", timeout=20)
    assert raw["answered"] == 200 and raw["per_s"] > 0 and raw["stray"] == 0
    assert set(raw["cpu_ticks"]) == {str(broker), str(echo.pid)}
    assert orders["answered"] == 100 and orders["later_reports"] == 0
    assert paced["offered_per_s"] == 500 and len(native._read_ms(tmp_path / "lat.txt")) == 50


@pytest.mark.network
@pytest.mark.timeout(90)
def test_tiny_sitting_gives_every_figure(tiny_sitting, tmp_path):
    R = tiny_sitting
    assert R["not_run"] is None and R["gateway_not_run"] is None
    proc = R["gateway_process"]
    assert proc["reject_reasons"] == {} and proc["decode_rejects"] == 0
    assert proc["trades"] > 0                    # a third of the orders crossed
    assert proc["resting_at_end"] >= native.TINY.resting
    assert R["gateway"]["per_s"]["median"] > 0 and 0 < R["ratio_of_medians"] < 1
    assert R["native"]["per_s"]["median"] > 0 and R["generator"]["per_s"]["median"] > 0
    assert len(R["latencies_ms"]["gateway_half"]) == native.TINY.half_n
    text = "\n".join(native.markdown(R))
    for expected in ("## MQTT against the native ceiling", "**gateway / native ceiling**",
                     "CPU per order, gateway process", "p50 / p99 / p99.9", " (0.5) |"):
        assert expected in text, expected
    assert native.write_plots(R, tmp_path) == ["native_throughput_vs_offered.png",
                                               "native_latency_cdf.png"]


def test_report_has_the_native_section(tmp_path, tiny_sitting):
    R = figures()
    R["mqtt_native"] = tiny_sitting
    plots = write_plots(R, tmp_path)
    assert "native_throughput_vs_offered.png" in plots
    text = write_report(R, tmp_path, plots).read_text()
    assert "## MQTT against the native ceiling" in text
    assert "![native_latency_cdf.png](native_latency_cdf.png)" in text


def test_not_run_without_the_header(tmp_path):
    bad = ("-nostdinc", "-I/nonexistent/include")       # as if libmosquitto-dev were absent
    with pytest.raises(build.NotRun, match=r"mosquitto\.h not found.*libmosquitto-dev"):
        build.tool(extra_flags=bad, cache=tmp_path)
    R = native.measure(native.TINY, extra_flags=bad)
    assert "mosquitto.h not found" in R["not_run"]
    lines = native.markdown(R)
    assert lines[2].startswith("not run: mosquitto.h not found")
    assert native.write_plots(R, tmp_path) == []
    report = figures()
    report["mqtt_native"] = R
    text = write_report(report, tmp_path, []).read_text()
    assert "## MQTT against the native ceiling\n\nnot run: mosquitto.h" in text
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]      # nothing compiled


def test_not_run_without_a_compiler():
    R = native.measure(native.TINY, cc="/nonexistent/gcc")
    assert R["not_run"] == "no C compiler: /nonexistent/gcc not found"


def test_link_transport_is_found_or_said_missing():
    cls, why = gateway_class("link")
    if cls is None:
        assert why.startswith("not available")
    else:
        assert cls.__name__ == "LinkGateway" and why == ""
    assert gateway_class("aiomqtt")[0].__name__ == "Gateway"
    assert gateway_class("nope")[0] is None


@pytest.mark.network
@pytest.mark.timeout(60)
def test_a_missing_transport_leaves_the_native_rows():
    """A transport this tree lacks is reported "not available"; the native rows stay."""
    _tool_or_skip()
    if find_mosquitto() is None:
        pytest.skip("no mosquitto binary")
    R = native.measure(native.TINY, transport="nope", timeout=30)
    assert R["gateway_not_run"].startswith("transport nope: unknown transport 'nope'")
    assert R["native"]["per_s"]["median"] > 0 and "gateway" not in R
    assert "Gateway: not run (transport nope: unknown transport" in "\n".join(
        native.markdown(R))


@pytest.mark.network
@pytest.mark.timeout(120)
def test_cost_per_order_by_resting_book_gives_every_size_its_runs_and_the_ratio(capsys):
    """``python -m bench.native.resting``: runs interleaved by size, each answering every
    order, and the ratio of the gateway's median CPU per order, largest book / smallest."""
    import json

    from bench.native import resting
    _tool_or_skip()
    if find_mosquitto() is None:
        pytest.skip("no mosquitto binary")
    assert resting.main(["--resting", "50", "400", "--reps", "1", "-n", "200"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    runs, summary = lines[:-1], lines[-1]
    assert [r["resting"] for r in runs] == [50, 400]
    assert all(r["per_s"] > 0 and r["gateway_cpu_us"] > 0 for r in runs)
    assert summary["gateway_cpu_ratio"] == round(
        runs[1]["gateway_cpu_us"] / runs[0]["gateway_cpu_us"], 3)

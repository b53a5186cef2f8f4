"""The benchmark report says what was measured, flags super-logarithmic growth, draws plots."""
from bench.report import write_plots, write_report


def figures(growth_flag=False):
    return {
        "machine": {"date": "2026-11-25", "cpu": "test cpu", "cores": 2, "python": "3.11",
                    "platform": "linux"},
        "command": "python -m bench --quick", "quick": True,
        "flow": {"commands": 100, "digest": (3, 30, "abcd"), "resting": 7},
        "core_batch": {"commands_per_s": 8e6, "ns_per_command": 125},
        "core_per_command": {"commands_per_s": 2e6, "ns_per_command": 500},
        "reference": {"commands": 100, "commands_per_s": 3e4, "core_commands_per_s": 1e7,
                      "ratio": 333.0},
        "memory": {"resting": 100, "bytes_per_order": 58.7},
        "scaling_orders": [(1000, 60.0), (1_000_000, 300.0)],
        "scaling_levels": [(10, 80.0), (1000, 90.0)],
        "scaling_instruments": [(1, 60.0), (64, 100.0)],
        "scaling_growth": 5.0, "scaling_flag": growth_flag,
        "engine": {"inputs": 10, "inputs_per_s": 4e4, "core_per_s": 1e6, "ratio": 0.04},
        "recovery": {"inputs": 10, "seconds": 0.5, "inputs_per_s": 2e4, "hash_equal": True},
        "gateway": {"raw_round_trips_per_s": 2000, "gateway_orders_per_s": 1100,
                    "gateway_over_raw": 0.55, "half_p50_ms": 1.1, "half_p99_ms": 2.0,
                    "half_p999_ms": 3.0, "raw_at_same_rate_p50_ms": 0.6,
                    "raw_at_same_rate_p99_ms": 1.2},
        "latencies": {"raw_half": [0.5, 0.6, 0.7], "half": [1.0, 1.1, 2.0]},
    }


def test_report_holds_the_figures_and_the_command(tmp_path):
    R = figures()
    plots = write_plots(R, tmp_path)
    text = write_report(R, tmp_path, plots).read_text()
    for expected in ("`python -m bench --quick`", "**333x**", "58.7 bytes", "| 1,000,000 | 300 |",
                     "0.040 (target 0.25)", "0.55 (target 0.5)", "1.1 / 2.0 / 3.0 ms",
                     "within a log factor", "![latency_cdf.png](latency_cdf.png)"):
        assert expected in text
    assert sorted(plots) == ["cost_vs_depth.png", "cost_vs_instruments.png",
                             "cost_vs_levels.png", "latency_cdf.png"]
    assert all((tmp_path / p).read_bytes()[:4] == b"\x89PNG" for p in plots)


def test_report_flags_growth_worse_than_log(tmp_path):
    text = write_report(figures(growth_flag=True), tmp_path, []).read_text()
    assert "flagged: worse than O(log n)" in text


def test_report_shows_the_gateway_on_both_resting_books(tmp_path):
    R = figures()
    R["gateway_resting"] = {
        "runs": [{"resting": 3000, "orders_per_s": 1900, "p50_ms": 40.0, "p99_ms": 80.0,
                  "cycles": 9, "empty_cycle_ms": 0.3},
                 {"resting": 100_000, "orders_per_s": 600, "p50_ms": 150.0, "p99_ms": 380.0,
                  "cycles": 9, "empty_cycle_ms": 10.5}],
        "generator": "own process", "generator_ceiling_per_s": 2300,
        "largest_over_smallest": 0.316}
    text = write_report(R, tmp_path, []).read_text()
    for expected in ("| 3,000 | 1,900 |", "| 100,000 | 600 |", "2,300 round trips/s",
                     "Largest over smallest book: 0.32"):
        assert expected in text

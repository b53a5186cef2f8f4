"""The floor experiment (bench/floor) measures something only if it does the engine's
matching work: its reports, trades, level changes and resting book must be the engine's."""
from bench import bench_engine as be


def test_the_floor_engine_makes_the_engines_reports_trades_and_book():
    from bench.floor.__main__ import engine_outputs, run_floor
    flow = be._flow(3000, seed=5)
    floor = engine_outputs(flow, run_floor)
    real = engine_outputs(flow, be.run_engine)
    assert len(real[0]) > len(flow) and len(real[1]) > 100      # the flow trades and cancels
    assert floor == real


def test_the_floor_engine_conserves_cash_and_tokens():
    from bench.floor.__main__ import run_floor
    flow = be._flow(3000, seed=6)
    _, fresh = run_floor(flow[:0])
    _, eng = run_floor(flow)
    assert eng.seq == len(flow) and eng.balances() == fresh.balances()

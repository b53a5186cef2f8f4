"""Shared inputs of the benchmarks: the conformance flows, generated once per session."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from testkit.flow import load_flow

GEN = Path(os.environ.get("TOKENBOOK_GEN",
                         Path(__file__).resolve().parents[2] / "shared/conformance/gen.py"))
CACHE = Path(__file__).resolve().parents[1] / ".cache"


def conformance_flow(n: int, seed: int):
    """The COMMAND_DTYPE array of ``gen.py n seed``, cached in .cache/."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"flow-{n}-{seed}.csv"
    if not path.exists() or path.stat().st_size == 0:
        if not GEN.exists():
            pytest.fail(f"conformance generator missing at {GEN}; set TOKENBOOK_GEN")
        with open(path, "w") as out:
            subprocess.run([sys.executable, str(GEN), str(n), str(seed)], stdout=out, check=True)
    return load_flow(path)


@pytest.fixture(scope="session")
def flow_1m():
    return conformance_flow(1_000_000, 42)


@pytest.fixture(scope="session")
def flow_100k():
    return conformance_flow(100_000, 7)

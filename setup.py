"""Builds the Cython matching core as ``matching._core``, and compiles the engine's
pure-Python modules (matching/engine.py, ledger.py, economics.py, journal.py, each with
its augmenting .pxd) as extensions of the same names: the .py files stay the source and
still run as plain Python when no extension is built.

Modes (environment variable TOKENBOOK_BUILD):
  release (default)  -O3, no bounds/wraparound checks
  debug              -O0 -g, bounds checks and C asserts on (CI runs the tests on it too)
  annotate           release plus HTML annotations of ext/_core.pyx and the engine modules
"""
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

MODE = os.environ.get("TOKENBOOK_BUILD", "release")
DEBUG = MODE == "debug"

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": False,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}
cflags = ["-O0", "-g", "-UNDEBUG"] if DEBUG else ["-O3"]
# cythonize regenerates C only when a source is newer, not when the directives change:
# "build_ext --force" (as .ci/run switches modes) regenerates it too, so a debug build
# really has its checks on.
FORCE = "--force" in sys.argv or "-f" in sys.argv

# ext/ is not a package, so Cython pairs ext/_core.pyx with ext/_core.pxd as module
# "_core"; the C file is then built as matching._core (the init symbol, PyInit__core,
# depends only on the last name component).
cythonize(
    ["ext/_core.pyx", "ext/_frame.pyx", "ext/_gc.pyx"],
    compiler_directives=directives,
    annotate=MODE == "annotate",
    include_path=["ext"],
    force=FORCE,
)

# The engine's modules: pure Python compiled as is. Annotations stay documentation
# (annotation_typing off); the C types come from the .pxd files beside them only.
PURE = ["engine", "ledger", "economics", "journal", "outputs", "orders", "clordid", "session",
        "expiry", "reports", "risk", "executions"]
pure_exts = cythonize(
    [Extension(f"matching.{m}", [f"matching/{m}.py"], extra_compile_args=cflags)
     for m in PURE],
    compiler_directives={**directives, "annotation_typing": False, "binding": True},
    annotate=MODE == "annotate",
    force=FORCE,
)

setup(
    ext_modules=[
        Extension("matching._core", ["ext/_core.c"], extra_compile_args=cflags),
        Extension("matching._frame", ["ext/_frame.c"], extra_compile_args=cflags),
        Extension("matching._gc", ["ext/_gc.c"], extra_compile_args=cflags),
        *pure_exts,
    ]
)

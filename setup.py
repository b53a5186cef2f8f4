"""Builds the Cython matching core as ``matching._core`` (with ``matching._frame`` and
``matching._gc``), and compiles the engine's pure-Python modules (``PURE`` below, each
with its augmenting .pxd) as extensions of the same names: the .py files stay the source
and still run as plain Python when no extension is built.

Modes (environment variable TOKENBOOK_BUILD):
  release (default)  -O3, no bounds/wraparound checks
  debug              -O0 -g, bounds checks and C asserts on (CI runs the tests on it too)
  annotate           release plus HTML annotations of ext/_core.pyx and the engine modules
  pure               release, but only the ext/ extensions: the PURE modules are not
                     compiled and their in-place builds (matching/<module>.*.so) are
                     removed, so Python imports the .py files (CI tests the engine so)
"""
import glob
import os
import sys

from Cython.Build import cythonize
from setuptools import Extension, setup

MODES = ("release", "debug", "annotate", "pure")
MODE = os.environ.get("TOKENBOOK_BUILD", "release")
if MODE not in MODES:
    sys.exit(f"TOKENBOOK_BUILD must be one of {', '.join(MODES)}, got {MODE!r}")
DEBUG = MODE == "debug"

# The engine's modules compiled from pure Python (matching/<name>.py + .pxd): the one list.
PURE = ["engine", "ledger", "economics", "journal", "outputs", "orders", "clordid", "session",
        "expiry", "reports", "risk", "executions"]

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

if MODE == "pure":
    # An extension module next to its .py wins the import: remove the in-place builds.
    here = os.path.dirname(os.path.abspath(__file__))
    for m in PURE:
        for path in glob.glob(os.path.join(here, "matching", f"{m}.*.so")):
            os.remove(path)
            print(f"pure build: removed {os.path.relpath(path, here)}", file=sys.stderr)
    pure_exts = []
else:
    # The engine's modules: pure Python compiled as is. Annotations stay documentation
    # (annotation_typing off); the C types come from the .pxd files beside them only.
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

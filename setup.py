"""Builds the Cython matching core as ``matching._core``.

Modes (environment variable TOKENBOOK_BUILD):
  release (default)  -O3, no bounds/wraparound checks
  debug              -O0 -g, bounds checks and C asserts on (CI runs the tests on it too)
  annotate           release plus an HTML annotation of ext/_core.pyx
"""
import os

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

# ext/ is not a package, so Cython pairs ext/_core.pyx with ext/_core.pxd as module
# "_core"; the C file is then built as matching._core (the init symbol, PyInit__core,
# depends only on the last name component).
cythonize(
    ["ext/_core.pyx"],
    compiler_directives=directives,
    annotate=MODE == "annotate",
    include_path=["ext"],
)

setup(
    ext_modules=[
        Extension("matching._core", ["ext/_core.c"], extra_compile_args=cflags),
    ]
)

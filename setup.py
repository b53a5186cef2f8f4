"""Builds the Cython matching core as ``matching._core``.

Modes (environment variable TOKENBOOK_BUILD):
  release (default)  -O3, no bounds/wraparound checks
  debug              -O0 -g, bounds checks and C asserts on (CI runs the tests on it too)
  annotate           release plus an HTML annotation of ext/core.pyx
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

extensions = [
    Extension(
        "matching._core",
        ["ext/core.pyx"],
        include_dirs=["ext"],
        extra_compile_args=cflags,
    )
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=MODE == "annotate",
        include_path=["ext"],
    )
)

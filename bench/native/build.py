"""Compile ``mqtt_rt.c`` with gcc against libmosquitto, once per source and flags.

``tool()`` returns the binary's path, or raises ``NotRun`` saying why it cannot be built
here (no compiler, no ``mosquitto.h``, a failed compile or link, no mosquitto broker), so
the bench reports "not run: <why>" instead of failing. Binaries are cached in
``.cache/native/`` under a hash of the source, the compiler and the flags.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

__all__ = ["NotRun", "tool", "SOURCE", "CACHE", "CFLAGS", "INSTALL_HINT"]

SOURCE = Path(__file__).with_name("mqtt_rt.c")
CACHE = Path(__file__).resolve().parents[2] / ".cache" / "native"
CFLAGS = ("-O2", "-Wall")
LIBS = ("-lmosquitto",)
INSTALL_HINT = "install libmosquitto-dev (scripts/ensure-libmosquitto, as root)"
TIMEOUT = 60.0


class NotRun(RuntimeError):
    """The native bench cannot run here; ``str()`` says why."""


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines()
             if any(w in ln.lower() for w in ("cannot find", "no such file", "error"))]
    return (lines or [ln.strip() for ln in text.splitlines() if ln.strip()] or ["no output"])[0]


def tool(cc: str = "gcc", extra_flags: Sequence[str] = (), cache: Path = CACHE) -> Path:
    """The compiled ``mqtt_rt`` for ``cc`` with ``extra_flags`` (built if needed)."""
    compiler = shutil.which(cc)
    if compiler is None:
        raise NotRun(f"no C compiler: {cc} not found")
    flags = [*CFLAGS, *extra_flags]
    try:
        probe = subprocess.run([compiler, *extra_flags, "-E", "-x", "c", "-"],
                               input="#include <mosquitto.h>\n", capture_output=True,
                               text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        raise NotRun(f"{cc} did not answer within {TIMEOUT:g} s") from None
    if probe.returncode:
        raise NotRun(f"mosquitto.h not found ({_first_error(probe.stderr)}): {INSTALL_HINT}")
    source = SOURCE.read_bytes()
    key = hashlib.sha256(b"\0".join([source, compiler.encode(), *(f.encode() for f in flags),
                                     *(x.encode() for x in LIBS)])).hexdigest()[:16]
    binary = cache / f"mqtt_rt-{key}"
    if os.access(binary, os.X_OK):
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        out = Path(tmp) / "mqtt_rt"
        try:
            cc_run = subprocess.run([compiler, *flags, "-o", str(out), str(SOURCE), *LIBS],
                                    capture_output=True, text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise NotRun(f"{cc} did not finish within {TIMEOUT:g} s") from None
        if cc_run.returncode:
            raise NotRun(f"compile failed: {_first_error(cc_run.stderr)}")
        os.replace(out, binary)            # atomic: a concurrent build finds a whole file
    return binary


def mosquitto() -> str:
    """The mosquitto binary the private brokers run, or ``NotRun``."""
    from feeds.broker import find_mosquitto
    found = find_mosquitto()
    if found is None:
        raise NotRun("no mosquitto binary (scripts/ensure-mosquitto installs it)")
    return found

"""``tokenbook serve --shard ID --symbols A,B`` as an operator runs it: a bad shard option
is one line on stderr and exit 2 before anything is opened; a good one serves only its
symbols and says so."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from feeds.exits import EXIT_OK, EXIT_USAGE

_SCRIPT = Path(sys.executable).with_name("tokenbook")
TOKENBOOK = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "feeds.cli"]


def tokenbook(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*TOKENBOOK, *argv], capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.mark.parametrize("argv, says", [
    (("--shard", "s1"), "--shard and --symbols go together"),
    (("--symbols", "TB3M"), "--shard and --symbols go together"),
    (("--shard", "s1", "--symbols", "NOPE"), "NOPE not an instrument"),
    (("--shard", "a/b", "--symbols", "TB3M"), "--shard 'a/b'"),
    (("--shard", "s1", "--symbols", "TB3M,TB3M"), "twice"),
    (("--shards", "s1"), "--shards: entries are ID=A,B"),
    (("--shards", "s1=TB3M;s2=TB3M", "--shard", "s1"), "served by both"),
    (("--shards", "s1=TB3M;s2=NOPE", "--shard", "s1"), "NOPE not an instrument"),
    (("--shards", "s1=TB3M", "--shard", "s3"), "--shards needs --shard, one of its shards"),
    (("--shards", "s1=TB3M", "--shard", "s1", "--symbols", "TB6M"), "not an entry of"),
    (("--shard", "s.1", "--symbols", "TB3M", "--journal", "nats://127.0.0.1:1",
      "--broker", "mqtt://127.0.0.1:1"), "stream name must be"),
])
def test_bad_shard_options_are_one_line_and_exit_2_with_nothing_created(tmp_path, argv, says):
    data = tmp_path / "d"
    done = tokenbook("serve", *argv, "--data", str(data))
    assert done.returncode == EXIT_USAGE, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in done.stderr
    assert not data.exists()


def test_a_shard_serves_only_its_symbols_and_names_its_topic(tmp_path):
    done = tokenbook("serve", "--shard", "s1", "--symbols", "TB6M", "--seconds", "1",
                     "--data", str(tmp_path / "s1"))
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    assert "shard s1 (TB6M) on tokenbook/v2/orders/+/SYMBOL" in done.stdout
    assert "instruments  1 (TB6M)" in done.stdout


def test_the_first_shard_of_the_map_serves_its_entry_and_answers_unserved_symbols(tmp_path):
    done = tokenbook("serve", "--shards", "s1=TB3M;s2=TB6M", "--shard", "s1", "--seconds",
                     "1", "--data", str(tmp_path / "s1"))
    assert done.returncode == EXIT_OK, done.stderr[-2000:]
    assert "shard s1 (TB3M)" in done.stdout and "instruments  1 (TB3M)" in done.stdout
    assert "answers orders for symbols no shard serves" in done.stdout
    second = tokenbook("serve", "--shards", "s1=TB3M;s2=TB6M", "--shard", "s2", "--seconds",
                       "1", "--data", str(tmp_path / "s2"))
    assert second.returncode == EXIT_OK, second.stderr[-2000:]
    assert "shard s2 (TB6M)" in second.stdout and "answers" not in second.stdout

"""Call-auction terms from the command line: a bad ``call_auction`` value in an
``--instruments`` file is one line and exit 2; a restart whose terms differ from the
venue's founding ones is refused (exit 5), the same terms start as before."""
from __future__ import annotations

import json

import pytest
from test_cli import EXTRA, found, one_line_error, tokenbook, write

from feeds.exits import EXIT_DATA, EXIT_OK, EXIT_USAGE


def extra(terms: str = "") -> str:
    """The test_cli extra bill, with a ``call_auction`` table when ``terms`` is given."""
    text = EXTRA.format(tick="0.001", ref="99.700")
    return text + (f"call_auction = {{ {terms} }}\n" if terms else "")


def test_a_bad_call_auction_value_is_one_line_and_exit_2(tmp_path):
    bad = write(tmp_path / "bad.toml", extra('dynamic_band_pct = 2.5'))
    line = one_line_error(tokenbook("serve", "--data", str(tmp_path / "d"),
                                    "--instruments", bad), EXIT_USAGE)
    assert "bad.toml" in line and "TB1M" in line and "field call_auction" in line
    assert "dynamic_band_pct: must be a decimal string" in line
    assert not (tmp_path / "d").exists()


@pytest.mark.network
def test_a_restart_with_other_call_auction_terms_is_refused(tmp_path):
    terms = 'dynamic_band_pct = "3", min_call_seconds = 60'
    mine = write(tmp_path / "x.toml", extra(terms))
    data = found(tmp_path, "d", "--instruments", mine)
    recorded = json.loads((data / "venue.json").read_text())["instruments"]
    assert "dynamic_band_pct=3" in recorded["TB1M"]["call_auction"]
    assert recorded["TB3M"]["call_auction"] == ""            # defaults record nothing
    other = write(tmp_path / "y.toml", extra('dynamic_band_pct = "4", min_call_seconds = 60'))
    line = one_line_error(tokenbook("serve", "--data", str(data), "--instruments", other),
                          EXIT_DATA)
    assert "TB1M call_auction" in line and "dynamic_band_pct=4" in line
    none = write(tmp_path / "z.toml", extra())
    line = one_line_error(tokenbook("serve", "--data", str(data), "--instruments", none),
                          EXIT_DATA)
    assert "-> (none)" in line
    ok = tokenbook("serve", "--data", str(data), "--instruments", mine, "--seconds", "0.3")
    assert ok.returncode == EXIT_OK, ok.stderr

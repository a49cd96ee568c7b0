"""Tables read whole at 80 columns and in a pipe: split into parts on a narrow width, whole
rows when written to a file; no number is ever cut to "…"."""

from __future__ import annotations

import io
import json
import os
import re
from collections import Counter
import subprocess
import sys
from pathlib import Path

import pytest
from rich.table import Table

from segmentum.cli.tables import FittingConsole, natural_width, split_table
from tests.workspaces import generated_workspace

EXE = Path(sys.executable).with_name("segmentum")
AS_OF = "2026-11-01"


def _wide_table() -> Table:
    t = Table(title="wide")
    t.add_column("cohort")
    for k in range(30):
        t.add_column(f"period {k}", justify="right")
    for r in range(3):
        t.add_row(f"2024-0{r + 1}", *(f"{1000 * r + k:,}" for k in range(30)))
    t.keep_columns = 1
    return t


def test_a_wide_table_is_split_into_parts_that_fit_and_keep_every_cell():
    console = FittingConsole(file=io.StringIO(), width=80)
    parts = split_table(_wide_table(), 80, console)
    assert len(parts) > 2
    assert all(natural_width(p, console) <= 80 for p in parts)
    assert all(p.columns[0].header == "cohort" for p in parts)  # repeated in every part
    headers = [c.header for p in parts for c in p.columns[1:]]
    assert headers == [f"period {k}" for k in range(30)]


def test_fitting_console_prints_every_number_at_80_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    FittingConsole(file=out, width=80).print(_wide_table())
    text = out.getvalue()
    assert "…" not in text and max(map(len, text.splitlines())) <= 80
    for k in range(30):
        assert f"{2000 + k:,}" in text


def test_in_a_pipe_without_columns_a_table_is_printed_whole(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.StringIO()
    FittingConsole(file=out, width=80).print(_wide_table())
    rows = [line for line in out.getvalue().splitlines() if "2024-03" in line]
    assert len(rows) == 1 and all(f"{2000 + k:,}" in rows[0] for k in range(30))


# -- the real command, piped ------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory):
    ws, _, _ = generated_workspace(tmp_path_factory.mktemp("tables"), contacts=2_000, seed=4)
    path = ws.config.path
    ws.close()
    return path


def run(*args: str, columns: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "SEGMENTUM_WORKSPACE")}
    if columns:
        env["COLUMNS"] = columns
    r = subprocess.run([str(EXE), *args], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return r


def _numbers(text: str) -> list[str]:
    return re.findall(r"\d[\d,]*(?:\.\d+)?%?", text)


@pytest.mark.parametrize("columns", ["80", None])
def test_cohort_grid_has_every_value(demo_ws, columns):
    args = ("cohorts", "-w", str(demo_ws), "--as-of", AS_OF, "--max-periods", "36")
    data = json.loads(run(*args, "--json", columns=None).stdout)
    text = run(*args, columns=columns).stdout
    assert "…" not in text
    if columns:
        assert max(map(len, text.splitlines())) <= 80
    shown = Counter(_numbers(text))
    want = Counter(f"{c['value']:.0%}" for c in data["rows"] if c["value"] is not None)
    assert len(want) > 10
    assert all(shown[v] >= n for v, n in want.items()), want - shown

@pytest.mark.parametrize("columns", ["80", None])
def test_funnel_numbers_are_whole(demo_ws, columns):
    args = ("funnel", "-w", str(demo_ws), "--as-of", AS_OF)
    data = json.loads(run(*args, "--json", columns=None).stdout)
    text = run(*args, columns=columns).stdout
    assert "…" not in text
    shown = set(_numbers(text))
    for stage in data["stages"]:
        assert f"{stage['reached']:,}" in shown and f"{stage['entered']:,}" in shown
        if stage["amount_now"] is not None:
            assert f"{stage['amount_now']:,.0f}" in shown

"""Shared fixtures: a fresh real DuckDB workspace per test, paths to shared data sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmentum import open_workspace
from tests.workspaces import build_workspace

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def ws(tmp_path):
    """An empty workspace in a real DuckDB file."""
    with open_workspace(tmp_path / "ws.duckdb") as w:
        yield w


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data next to the repository (present for developers and CI, not users)."""
    for base in (REPO, *REPO.parents):
        cand = base / "shared" / "data"
        if cand.is_dir():
            return cand
    pytest.skip("../shared/data is not available on this machine")


@pytest.fixture
def make_ws(tmp_path):
    """``make_ws(**tables)``: a fresh workspace in this test's tmp_path, closed afterwards."""
    opened = []

    def build(**tables):
        ws = build_workspace(tmp_path / f"ws{len(opened)}.duckdb", **tables)
        opened.append(ws)
        return ws

    yield build
    for ws in opened:
        ws.close()

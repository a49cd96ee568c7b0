"""Shared fixtures: a fresh real DuckDB workspace per test, paths to shared data sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from segmentum import open_workspace
from tests.workspaces import build_workspace

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# CRM exports in Polish, German and Russian, shipped as examples (the README loads them)
CRM_EXAMPLES = REPO / "examples" / "crm"


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


@pytest.fixture(scope="session")
def spark_workspace(tmp_path_factory):
    """``spark_workspace(database, tables=None)``: a workspace on the test run's one local
    Spark session (Spark keeps one session per process, so they share a warehouse folder and
    differ by database). ``tables`` maps canonical names to existing Parquet folders/files.
    Without Java or pyspark the Spark tests skip - except in CI, where that is a failure."""
    import os
    import shutil

    import yaml

    missing = None
    if shutil.which("java") is None:
        missing = "Spark needs Java 17 on PATH (apt-get install openjdk-17-jre-headless)"
    else:
        try:
            import pyspark  # noqa: F401
        except ImportError:
            missing = "pyspark is not installed (pip install -e '.[test]')"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    root = tmp_path_factory.mktemp("spark")
    opened = []

    def build(database: str, tables: dict[str, str] | None = None):
        cfg = {
            "backend": "spark",
            "spark": {
                "master": "local[2]",
                "database": database,
                "conf": {"spark.sql.warehouse.dir": str(root / "warehouse")},
                "tables": {k: {"path": str(v), "format": "parquet"} for k, v in (tables or {}).items()},
            },
        }
        path = root / f"{database}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        ws = open_workspace(path)
        opened.append(ws)
        return ws

    yield build
    for ws in opened:
        ws.close()

"""An export never overwrites silently the file of a different export (README: a full export,
then an incremental one to the same name, is refused with another name to use)."""

from __future__ import annotations

import pytest

from segmentum.activation.exports import export_segment
from segmentum.errors import UsageError
from segmentum.segments import SegmentEngine
from tests.activation.test_cli_export import run
from tests.activation.test_exports import RULE, T1, contact_rows, order_rows
from tests.workspaces import build_workspace


@pytest.fixture
def ws(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = build_workspace(tmp_path / "segmentum.duckdb", contacts=contact_rows(),
                        orders=order_rows())
    SegmentEngine(w).create("buyers", RULE)
    SegmentEngine(w).refresh(["buyers"], T1)
    yield w
    w.close()


def _exports(ws) -> int:
    return int(ws.table("exports").count().execute())


def test_incremental_over_a_full_export_is_refused_with_another_name(ws, tmp_path):
    export_segment(ws, "buyers", "google", "fans.csv")
    before = (tmp_path / "fans.csv").read_bytes()
    with pytest.raises(UsageError) as info:
        export_segment(ws, "buyers", "google", "fans.csv", changes_since_last=True)
    text = str(info.value)
    assert "Not overwriting fans.csv: it holds the full google export #1 of segment 'buyers'" in text
    assert "--out fans.changes.csv" in text and "--force" in text
    assert (tmp_path / "fans.csv").read_bytes() == before and _exports(ws) == 1
    # the suggested name works, and re-running either export refreshes its own file
    export_segment(ws, "buyers", "google", "fans.changes.csv", changes_since_last=True)
    export_segment(ws, "buyers", "google", "fans.changes.csv", changes_since_last=True)
    export_segment(ws, "buyers", "google", "fans.csv")
    assert _exports(ws) == 4


def test_the_removals_file_and_other_formats_are_guarded_too(ws, tmp_path):
    export_segment(ws, "buyers", "meta", "a.csv", changes_since_last=True)  # + a.removals.csv
    with pytest.raises(UsageError, match="removals of the incremental meta export #1"):
        export_segment(ws, "buyers", "csv", "a.removals.csv")
    with pytest.raises(UsageError, match="incremental meta export #1.*this incremental google"):
        export_segment(ws, "buyers", "google", "a.csv", changes_since_last=True)


def test_a_file_no_export_wrote_is_kept_unless_forced(ws, tmp_path):
    mine = tmp_path / "report.csv"
    mine.write_text("my own data\n")
    with pytest.raises(UsageError, match="a file no export of this workspace wrote"):
        export_segment(ws, "buyers", "csv", mine)
    assert mine.read_text() == "my own data\n"
    r = export_segment(ws, "buyers", "csv", mine, force=True)
    assert mine.read_text().startswith("contact_id") and r.rows == r.audience


def test_the_readme_flow_from_the_command_line(ws, tmp_path):
    ws.close()
    args = ("export", "buyers", "--format", "google", "--out", "fans-google.csv")
    assert run(*args, cwd=tmp_path).returncode == 0
    r = run(*args, "--changes-since-last", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert "Not overwriting fans-google.csv" in r.stderr
    assert "--out fans-google.changes.csv" in r.stderr
    r = run(*args, "--changes-since-last", "--force", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr

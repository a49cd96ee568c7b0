"""`segmentum export` as a user runs it: a real process on a real workspace file."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.activation.test_exports import (
    RULE,
    T1,
    T2,
    audience,
    contact_rows,
    members_at,
    order_rows,
)
from tests.workspaces import build_workspace


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("segmentum")
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SEGMENTUM_WORKSPACE", None)
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


def ok_json(r: subprocess.CompletedProcess) -> dict:
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def rows(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_export_end_to_end(tmp_path):
    build_workspace(tmp_path / "segmentum.duckdb", contacts=contact_rows(),
                    orders=order_rows()).close()
    assert run("segment", "create", "buyers", "--rule", RULE, cwd=tmp_path).returncode == 0
    ok_json(run("segment", "refresh", "buyers", "--as-of", T1.isoformat(), "--json", cwd=tmp_path))

    full = ok_json(run("export", "buyers", "--format", "meta", "--out", "meta.csv", "--json",
                       cwd=tmp_path))
    a1 = audience(members_at(T1))
    assert full["members"] == 8 and full["audience"] == full["rows"] == len(a1) == 4
    assert full["excluded"] == {"unknown_contact": 0, "no_consent": 2, "no_identifier": 2}
    assert full["format"] == "meta" and full["incremental"] is False
    assert full["as_of"].startswith("2024-03-31T00:00:00")
    assert rows(tmp_path / "meta.csv")[0] == ["email", "phone", "fn", "ln", "ct", "country", "zip"]
    assert len(rows(tmp_path / "meta.csv")) == 1 + len(a1)

    first = ok_json(run("export", "buyers", "-f", "google", "-o", "google.csv",
                        "--changes-since-last", "--json", cwd=tmp_path))
    assert (first["added"], first["removed"], first["previous_export_id"]) == (4, 0, None)
    assert first["removals_file"].endswith("google.removals.csv")

    ok_json(run("segment", "refresh", "buyers", "--as-of", T2.isoformat(), "--json", cwd=tmp_path))
    second = ok_json(run("export", "buyers", "-f", "google", "-o", "google.csv",
                         "--changes-since-last", "--json", cwd=tmp_path))
    a2 = audience(members_at(T2))
    assert second["previous_export_id"] == first["export_id"]
    assert second["added"] == len(a2 - a1) == 2 and second["removed"] == len(a1 - a2) == 2
    assert len(rows(tmp_path / "google.csv")) == 1 + 2
    assert len(rows(tmp_path / "google.removals.csv")) == 1 + 2

    human = run("export", "buyers", "--format", "csv", "--out", "plain.csv",
                "--fields", "contact_id,email,city", cwd=tmp_path)
    assert human.returncode == 0, human.stderr
    assert "audience (exported)" in human.stdout and "no consent" in human.stdout
    assert rows(tmp_path / "plain.csv")[0] == ["contact_id", "email", "city"]

    then = ok_json(run("export", "buyers", "-f", "csv", "-o", "then.csv", "--as-of",
                       T1.isoformat(), "--json", cwd=tmp_path))
    assert then["audience"] == len(a1)


def test_export_mistakes_are_one_clear_line_or_one_json_error(tmp_path):
    build_workspace(tmp_path / "segmentum.duckdb", contacts=contact_rows(),
                    orders=order_rows()).close()
    run("segment", "create", "buyers", "--rule", RULE, cwd=tmp_path)
    cases = [
        (("export", "buyer", "-f", "meta", "-o", "x.csv"), 'Did you mean "buyers"'),
        (("export", "buyers", "-f", "meta", "-o", "x.csv"), "segmentum segment refresh buyers"),
    ]
    for args, needle in cases:
        r = run(*args, cwd=tmp_path)
        assert r.returncode == 2 and needle in r.stderr, r.stderr
        assert "Traceback" not in r.stderr + r.stdout
    run("segment", "refresh", "--as-of", T1.isoformat(), cwd=tmp_path)
    r = run("export", "buyers", "-f", "meta", "-o", "x.csv", "--consent-field", "ads", cwd=tmp_path)
    assert r.returncode == 2 and "--consent-field email_opt_in" in r.stderr
    r = run("export", "buyers", "-f", "metaa", "-o", "x.csv", "--json", cwd=tmp_path)
    assert r.returncode == 2 and 'Did you mean "meta"' in json.loads(r.stdout)["error"]["message"]
    assert not (tmp_path / "x.csv").exists()

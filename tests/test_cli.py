"""The `segmentum` command as a user runs it: a real process, a real workspace file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CRM_EXAMPLES, REPO

CRM = CRM_EXAMPLES


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("segmentum")
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("SEGMENTUM_WORKSPACE", None) if env is None else None
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, env=full_env, timeout=300)


def test_load_json_reconciles_and_info_quarantine(tmp_path):
    r = run("load", "contacts", str(CRM / "kontakty.csv"), "--mapping", str(CRM / "kontakty.yaml"), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["input"] == out["accepted"] + out["quarantined"] == 7
    assert (tmp_path / "segmentum.duckdb").exists()  # the default workspace in the current folder

    r = run("load", "orders", str(CRM / "zamowienia.csv"), "-m", str(CRM / "zamowienia.yaml"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "quarantined" in r.stdout and "unknown contact_id" in r.stdout

    info = json.loads(run("info", "--json", cwd=tmp_path).stdout)
    assert info["tables"]["orders"]["rows"] == 2
    assert info["tables"]["contacts"]["custom_columns"] == ["loyalty_card"]
    assert info["loads"] == {"count": 2, "input": 16, "accepted": 5, "quarantined": 11}
    assert info["quarantine"] == {"contacts": 4, "orders": 7}

    q = json.loads(run("quarantine", "--kind", "orders", "--json", cwd=tmp_path).stdout)
    assert q["total"] == 7
    assert {row["line"] for row in q["rows"]} == {3, 4, 5, 6, 7, 8, 10}
    human = run("quarantine", cwd=tmp_path)
    assert human.returncode == 0 and "zamowienia.csv" in human.stdout


def test_workspace_option_and_env(tmp_path):
    target = tmp_path / "shop.duckdb"
    r = run("-w", str(target), "load", "contacts", str(CRM / "kontakty.csv"), "-m", str(CRM / "kontakty.yaml"), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert target.exists() and not (tmp_path / "segmentum.duckdb").exists()
    r = run("info", "--json", cwd=tmp_path, env={"SEGMENTUM_WORKSPACE": str(target)})
    assert json.loads(r.stdout)["tables"]["contacts"]["rows"] == 3


@pytest.mark.parametrize(
    "args,needle",
    [
        (("load", "order", "x.csv"), 'Did you mean "orders"?'),
        (("load", "orders", "missing.csv"), "does not exist"),
        (("load", "orders", str(CRM / "zamowienia.csv")), "has no column for required field(s) contact_id"),
        (("load", "orders", str(CRM / "zamowienia.csv"), "-m", str(CRM / "kontakty.yaml")), "formats: 'created_at' is not a field of orders"),
        (("quarantine", "--kind", "contact"), 'Did you mean "contacts"?'),
    ],
)
def test_user_mistakes_are_one_clear_line(tmp_path, args, needle):
    r = run(*args, cwd=tmp_path)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout


def test_bad_option_is_a_usage_error_not_a_traceback(tmp_path):
    r = run("load", "--nope", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_readme_opens_with_the_two_commands():
    lines = [ln for ln in (REPO / "README.md").read_text().splitlines() if ln.strip()]
    fence = lines.index("```bash")
    assert lines[fence + 1].startswith("make demo") and lines[fence + 2].startswith("make test")
    assert lines[fence + 3] == "```"
    assert "make test" in (REPO / ".ci" / "run").read_text()

"""Opening a workspace: only commands that write data create one; a missing path is a clear
error naming a similar file nearby; a file another process holds names that process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segmentum.errors import WorkspaceBusyError, WorkspaceMissingError
from segmentum.workspace import open_workspace, serve_file

from ..conftest import CRM_EXAMPLES

CRM = CRM_EXAMPLES
EXE = Path(sys.executable).with_name("segmentum")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SEGMENTUM_WORKSPACE", None)
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=120)


def test_a_typo_in_w_is_an_error_naming_the_file_nearby_and_creates_nothing(tmp_path):
    open_workspace(tmp_path / "shop.duckdb").close()
    r = run("info", "-w", "shpo.duckdb", cwd=tmp_path)
    assert r.returncode == 2, r.stdout
    assert "No workspace at shpo.duckdb." in r.stderr
    assert "Did you mean shop.duckdb (an existing file nearby)?" in r.stderr
    assert "segmentum load" in r.stderr and "segmentum demo" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "shpo.duckdb").exists()


def test_read_only_commands_refuse_a_missing_workspace_with_json_too(tmp_path):
    r = run("segment", "list", "--json", cwd=tmp_path)
    assert r.returncode == 2
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "workspace_missing" and err["type"] == "WorkspaceMissingError"
    assert "the default workspace in this folder" in err["message"]
    assert not (tmp_path / "segmentum.duckdb").exists()


def test_load_creates_the_workspace(tmp_path):
    r = run("-w", "new.duckdb", "load", "contacts", str(CRM / "kontakty.csv"),
            "-m", str(CRM / "kontakty.yaml"), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "new.duckdb").exists()


def test_python_api_creates_by_default_and_not_when_asked(tmp_path):
    with pytest.raises(WorkspaceMissingError) as info:
        open_workspace(tmp_path / "nope.duckdb", create=False)
    assert info.value.to_dict()["path"] == str(tmp_path / "nope.duckdb")
    assert not (tmp_path / "nope.duckdb").exists()
    with pytest.raises(WorkspaceMissingError, match="folder .* does not exist"):
        open_workspace(tmp_path / "no-such-folder" / "x.duckdb", create=False)
    open_workspace(tmp_path / "made.duckdb").close()
    open_workspace(tmp_path / "made.duckdb", create=False).close()


@pytest.fixture
def holder(tmp_path):
    """A second real process holding the workspace open (as `segmentum serve` would)."""
    path = tmp_path / "held.duckdb"
    code = (
        "import sys, time\n"
        "from segmentum.workspace import open_workspace\n"
        f"ws = open_workspace({str(path)!r})\n"
        "print('ready', flush=True)\n"
        "time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        yield path, proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_workspace_held_by_another_process_names_its_pid(holder, tmp_path):
    path, pid = holder
    r = run("info", "-w", str(path), cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"is in use by process {pid}" in r.stderr and f"kill {pid}" in r.stderr
    assert "Conflicting lock" not in r.stderr  # DuckDB's own wording is translated
    with pytest.raises(WorkspaceBusyError) as info:
        open_workspace(path)
    assert info.value.to_dict()["pid"] == pid and info.value.code == "workspace_busy"


def test_a_workspace_held_by_segmentum_serve_names_its_url(holder, tmp_path):
    path, pid = holder
    note = serve_file(path)
    assert note.name == "held.duckdb.serve.json"
    note.write_text(json.dumps({"pid": pid, "url": "http://127.0.0.1:8765",
                                "started_at": time.time()}))
    r = run("segment", "list", "-w", str(path), "--json", cwd=tmp_path)
    err = json.loads(r.stdout)["error"]
    assert err["code"] == "workspace_busy" and err["url"] == "http://127.0.0.1:8765"
    assert err["message"].startswith(f"segmentum serve (pid {pid}) at http://127.0.0.1:8765 "
                                     "holds this workspace")
    assert "use the REST API there, or stop it" in err["message"]
    # a note left by an earlier server (another pid) is not believed
    note.write_text(json.dumps({"pid": pid + 100000, "url": "http://old:1"}))
    with pytest.raises(WorkspaceBusyError) as info:
        open_workspace(path)
    assert "http://old:1" not in str(info.value) and f"process {pid}" in str(info.value)

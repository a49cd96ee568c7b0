"""`apply DIR`: a folder of definitions planned (with a diff), applied, and applied again."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from segmentum.activation.apply import apply, plan_apply
from segmentum.activation.campaigns import CampaignStore
from segmentum.activation.control_groups import ControlGroups
from segmentum.errors import CampaignFileError
from segmentum.segments.store import SegmentStore
from segmentum.workspace import open_workspace
from tests.conftest import REPO

EXAMPLES = REPO / "examples" / "campaigns"


@pytest.fixture
def folder(tmp_path):
    dst = tmp_path / "campaigns"
    shutil.copytree(EXAMPLES, dst)
    return dst


def test_plan_then_apply_then_nothing_to_do(ws, folder):
    plan = plan_apply(ws, folder)
    assert [(c.kind, c.name, c.action) for c in plan.changes] == [
        ("segment", "subscribers", "create"),
        ("global_control", "global", "create"),
        ("campaign", "november-newsletter", "create"),
    ]
    assert "+ control_pct: 20.0" in plan.changes[2].diff
    assert CampaignStore(ws).names() == []  # planning writes nothing
    apply(ws, folder)
    assert CampaignStore(ws).require("november-newsletter").control_pct == 20
    assert SegmentStore(ws).require("subscribers").rule == "email_opt_in"
    epoch = ControlGroups(ws).current("2026-11-01")
    assert (epoch.salt, epoch.pct) == ("demo-global-2026", 5.0)
    again = apply(ws, folder)
    assert [c.action for c in again.changes] == ["unchanged"] * 3 and not again.pending


def test_an_edit_shows_as_a_diff(ws, folder):
    apply(ws, folder)
    path = folder / "november-newsletter.yaml"
    path.write_text(path.read_text().replace("control_pct: 20", "control_pct: 15"))
    (folder / "global-control.yaml").write_text("kind: global_control\npct: 7\nstart: 2026-06-01\n")
    plan = plan_apply(ws, folder)
    changed = {c.kind: c for c in plan.pending}
    assert changed["campaign"].diff == ("~ control_pct: 20.0 -> 15.0",)
    assert changed["global_control"].diff == ("~ pct: 5.0 -> 7.0",)  # the salt is kept
    apply(ws, folder)
    assert ControlGroups(ws).current("2026-07-01").salt == "demo-global-2026"
    assert len(ControlGroups(ws).epochs()) == 2


def test_trigger_files_go_to_the_trigger_store(ws, folder):
    from segmentum.activation.triggers import TriggerStore

    (folder / "vip-flag.yaml").write_text(
        "kind: trigger\nname: vip-flag\non: {enter: subscribers}\n"
        "action:\n  set_attribute: {name: subscribed_flag, value: 'yes'}\nreentry: once\n"
    )
    plan = apply(ws, folder)
    assert [c.kind for c in plan.changes] == ["segment", "global_control", "campaign", "trigger"]
    assert TriggerStore(ws).require("vip-flag").on.kind == "enter"
    assert [c.action for c in apply(ws, folder).changes][-1] == "unchanged"


def test_a_bad_file_stops_everything(ws, folder):
    (folder / "zz-broken.yaml").write_text(
        "name: broken\naudience: {segment: subscribers}\ncontent: x\ncontrl_pct: 3\n"
    )
    with pytest.raises(CampaignFileError) as exc:
        apply(ws, folder)
    assert exc.value.details["line"] == 4 and "zz-broken.yaml" in str(exc.value)
    assert CampaignStore(ws).names() == [] and SegmentStore(ws).names() == []


def test_unknown_segment_and_kind(ws, folder):
    path = folder / "november-newsletter.yaml"
    path.write_text(path.read_text().replace("{segment: subscribers}", "{segment: subscriber}"))
    with pytest.raises(CampaignFileError, match="no segment named .subscriber.") as exc:
        plan_apply(ws, folder)
    assert exc.value.hint == 'Did you mean "subscribers"?'
    path.write_text("kind: campain\n")
    with pytest.raises(CampaignFileError, match="unknown kind 'campain'"):
        plan_apply(ws, folder)


def test_cli_apply_json(tmp_path, folder):
    from typer.testing import CliRunner

    from segmentum.cli.app import app

    ws = tmp_path / "cli.duckdb"
    open_workspace(ws).close()
    cmd = [sys.executable, "-m", "segmentum.cli.app", "-w", str(ws), "apply", str(folder), "--json"]
    first = json.loads(
        subprocess.run([*cmd, "--dry-run"], capture_output=True, text=True, check=True).stdout
    )
    assert (first["create"], first["applied"]) == (3, False)
    second = json.loads(CliRunner().invoke(app, cmd[3:]).output)
    assert second["applied"] and second["create"] == 3
    text = CliRunner().invoke(app, cmd[3:-1]).output
    assert "= campaign november-newsletter (unchanged)" in text and "0 definition(s) changed" in text

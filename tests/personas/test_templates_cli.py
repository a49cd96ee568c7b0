"""`segmentum persona list|show|apply|check` as a user runs them: real processes, a real
workspace file, JSON that is one object, mistakes as one red line."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.personas import _templates_shop as shop
from tests.test_cli import run
from tests.workspaces import build_workspace

T = shop.T.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def shop_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("persona_cli")
    build_workspace(root / "shop.duckdb", **shop.rows()).close()
    truth = pd.DataFrame(
        [("A1", "high_value_woman_big_city"), ("B1", "back_in_stock_watcher"),
         ("B5", "back_in_stock_watcher"), ("Q1", "inactive_subscriber")],
        columns=["contact_id", "label"],
    )
    (root / "gen").mkdir()
    truth.to_parquet(root / "gen" / "ground_truth.parquet")
    (root / "gen" / "manifest.json").write_text(json.dumps({"as_of": T}))
    return root


def persona(root, *args):
    return run("-w", str(root / "shop.duckdb"), "persona", *args, cwd=root)


def test_list_and_show(shop_dir):
    r = persona(shop_dir, "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = {t["name"]: t for t in json.loads(r.stdout)["templates"]}
    assert rows["proposal_sent"]["ready"] and rows["high_value_buyer"]["ready"]
    assert not rows["champions"]["ready"]
    assert rows["champions"]["missing"] == [
        {"what": "rfm scores are not computed", "how": "run `segmentum rfm`"}
    ]
    human = persona(shop_dir, "list")
    assert human.returncode == 0 and "rfm scores are not computed" in human.stdout

    r = persona(shop_dir, "show", "high_value_buyer", "-p", "min_spend=250",
                "-p", "cities=[London, \"Frankfurt am Main\"]", "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["rule"] == (
        'gender = "F"\nand city in ("London", "Frankfurt am Main")\n'
        "and sum(orders.total, last 365 days) >= 250\nand count(orders, last 365 days) >= 2"
    )
    values = {p["name"]: p["value"] for p in shown["params"]}
    assert values["cities"] == ["London", "Frankfurt am Main"] and values["min_spend"] == 250
    human = persona(shop_dir, "show", "grown_up_children")
    assert human.returncode == 0, human.stderr
    for needle in ("Suggested actions", "run `segmentum clv fit`", 'rfm.cell = "R1F3M3"',
                   "integer >= 1"):
        assert needle in human.stdout


def test_apply_then_refresh(shop_dir):
    r = persona(shop_dir, "apply", "high_value_buyer", "-p", "min_orders=1", "--as", "vip",
                "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["segment"] == "vip" and out["params"]["min_orders"] == 1
    refresh = run("-w", str(shop_dir / "shop.duckdb"), "segment", "refresh", "vip",
                  "--as-of", T, "--json", cwd=shop_dir)
    assert refresh.returncode == 0, refresh.stderr
    assert json.loads(refresh.stdout)["refreshed"][0]["size"] == len(
        shop.high_value(shop.rows(), min_orders=1)
    )
    listed = {t["name"]: t for t in json.loads(persona(shop_dir, "list", "--json").stdout)[
        "templates"]}
    assert listed["high_value_buyer"]["segments"] == ["vip"]

    hostile = persona(shop_dir, "apply", "proposal_sent", "-p", 'stage=") or true or ("',
                      "--as", "odd")
    assert hostile.returncode == 0, hostile.stderr
    assert 'deal.stage = "\\") or true or (\\""' in hostile.stdout
    again = persona(shop_dir, "apply", "high_value_buyer", "--as", "vip")
    assert again.returncode == 2 and "already exists" in again.stderr


@pytest.mark.parametrize(
    "args,needle",
    [
        (("apply", "champion"), 'No persona template \'champion\'. Did you mean "champions"?'),
        (("apply", "champions"), "needs data this workspace lacks: rfm scores are not computed "
                                 "(run `segmentum rfm`)"),
        (("apply", "new_buyer", "-p", "signed_up_days=soon"), "must be a whole number, got 'soon'"),
        (("apply", "new_buyer", "-p", "days"), "--param takes NAME=VALUE, got 'days'"),
        (("check", "--truth", "nowhere.parquet"), "No ground-truth file nowhere.parquet"),
    ],
)
def test_mistakes_are_one_clear_line(shop_dir, args, needle):
    r = persona(shop_dir, *args)
    assert r.returncode == 2
    assert needle in r.stderr
    assert "Traceback" not in r.stderr + r.stdout


def test_a_mistake_with_json_is_one_json_object(shop_dir):
    r = persona(shop_dir, "apply", "champions", "--json")
    assert r.returncode == 2
    error = json.loads(r.stdout)["error"]
    assert error["type"] == "WorkspaceError" and error["code"] == "workspace"
    assert error["message"] == (
        "Persona template champions needs data this workspace lacks: rfm scores are "
        "not computed (run `segmentum rfm`)."
    )


def test_check_against_ground_truth(shop_dir):
    r = persona(shop_dir, "check", "--truth", str(shop_dir / "gen" / "ground_truth.parquet"),
                "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["as_of"] == shop.T.isoformat()  # from the manifest next to the truth file
    rows = {t["template"]: t for t in out["templates"]}
    assert rows["back_in_stock_watchers"]["precision"] == 1.0
    assert rows["back_in_stock_watchers"]["recall"] == 1.0
    assert rows["inactive_subscribers"]["precision"] == 0.5  # Q1 and Q4 selected, Q1 labelled
    assert rows["proposal_sent"]["status"] == "label not in the ground truth"
    assert rows["champions"]["status"] == "no planted persona"
    human = persona(shop_dir, "check", "--truth", str(shop_dir / "gen" / "ground_truth.parquet"),
                    "--as-of", T)
    assert human.returncode == 0, human.stderr
    assert "below 90%" in human.stdout and "back_in_stock_watchers" in human.stdout

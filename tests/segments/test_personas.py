"""The planted personas: the generator's rules and the persona templates find them
(precision and recall vs. truth).

20,000 generated contacts are loaded into a real workspace, RFM and CLV are computed as of
the generator's end date, and every persona rule (the manifest's, with the issue's own
texts for lapsing_home_garden and baby_food_churned - see ``cli.segment.ISSUE_RULES``) and
every persona template with a planted label (default parameters) is evaluated against
``ground_truth.parquet``.

baby_food_churned's text asks for ``rfm.cell = "R1F3M3"``: the generator plants their last
order 275-340 days back, past the default quantile RFM's R1 edge (~260 days since the last
order with them in the base), so the cell holds them all.
"""

from __future__ import annotations


import pandas as pd
import pytest

from segmentum.analytics.clv import compute_clv
from segmentum.analytics.rfm import compute_rfm
from segmentum.cli.segment import persona_rules
from segmentum.personas.evaluate import check_templates
from segmentum.segments import SegmentEngine
from tests.workspaces import generated_workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("personas")
    ws, manifest, _ = generated_workspace(root, contacts=20_000, seed=0)
    compute_rfm(ws, as_of=manifest["as_of"])
    compute_clv(ws, as_of=manifest["as_of"])
    truth = pd.read_parquet(root / "data" / "ground_truth.parquet")
    yield ws, manifest, truth
    ws.close()


def test_persona_rules_find_the_planted_personas(demo):
    ws, manifest, truth = demo
    res = SegmentEngine(ws).evaluate(persona_rules(manifest), truth, manifest["as_of"])
    res = res.set_index("label")
    print(res[["selected", "actual", "precision", "recall"]].to_string())
    assert set(res.index) == set(manifest["labels"])
    assert (res.precision >= 0.9).all(), res
    assert (res.recall >= 0.9).all(), res


def test_persona_templates_find_the_planted_personas(demo):
    ws, manifest, truth = demo
    report = check_templates(ws, truth, manifest["as_of"])
    rows = report.rows.set_index("template")
    print(rows[["label", "status", "selected", "actual", "precision", "recall"]].to_string())
    planted = rows[rows.label.notna()]
    assert set(planted.label) == set(manifest["labels"])
    assert (planted.status == "evaluated").all(), planted
    assert report.all_passed, planted
    assert (planted.precision >= 0.9).all() and (planted.recall >= 0.9).all()
    assert report.notes == []  # rfm / clv are as of the check's as-of time


def test_persona_segments_refresh_and_explain(demo):
    ws, manifest, truth = demo
    eng = SegmentEngine(ws)
    rules = persona_rules(manifest)
    for label in ("apple_fan", "proposal_sent"):
        eng.create(label, rules[label], replace=True)
    results = {r.segment: r for r in eng.refresh(["apple_fan", "proposal_sent"], manifest["as_of"])}
    apple = set(truth[truth.label == "apple_fan"].contact_id)
    members = set(eng.current_members("apple_fan").to_pandas().contact_id)
    assert results["apple_fan"].entered == len(members)
    assert len(members & apple) / len(apple) >= 0.9
    cid = sorted(members)[0]
    ex = eng.explain("apple_fan", cid, manifest["as_of"])
    assert ex.member and all(ln.result for ln in ex.lines[:3] if ln.role == "condition")

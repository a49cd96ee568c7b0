"""`persona discover` on a real workspace: JSON figures against pandas, determinism, the seeded
sample, saving the tables and segments, the ARI against a truth file, and mistakes.

The shop plants three kinds of buyers - Home & Garden in shops, Fashion with big baskets, Car
care buyers who open most e-mails - and contacts who never bought. The command is added to a
small Typer group holding ``segmentum.cli.persona_discover.app`` and run with Typer's CliRunner.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from segmentum.errors import UsageError, WorkspaceError
from segmentum.personas.features import persona_features
from segmentum.personas.run import _sample, discover_personas, segment_name
from segmentum.segments import SegmentEngine
from segmentum.workspace import open_workspace
from tests.test_cli import run
from tests.workspaces import build_workspace

T = pd.Timestamp("2024-06-30T12:00:00Z")
T_ISO = "2024-06-30T12:00:00Z"
KINDS = {"H": ("home", 24), "F": ("fashion", 20), "K": ("car", 16), "N": ("none", 10)}


def shop_rows(seed: int = 5) -> dict[str, list[dict]]:
    rng = np.random.default_rng(seed)
    products = [
        {"sku": "HG1", "category": "Home & Garden", "price": 25},
        {"sku": "HG2", "category": "Home & Garden", "price": 35},
        {"sku": "FA1", "category": "Fashion", "price": 80},
        {"sku": "CC1", "category": "Car care", "price": 15},
    ]
    contacts, orders, items, events = [], [], [], []
    for prefix, (kind, n) in KINDS.items():
        for i in range(n):
            cid = f"{prefix}{i:02d}"
            created = T - pd.Timedelta(days=int(rng.integers(400, 700)))
            contacts.append({"contact_id": cid, "kind": kind, "created_at": created.isoformat()})
            if kind == "none":
                continue
            n_orders = {"home": 3, "fashion": 2, "car": 2}[kind]
            for j in range(n_orders):
                oid = f"O{cid}{j}"
                when = T - pd.Timedelta(days=int(rng.integers(5, 300)))
                if kind == "home":
                    lines = [("HG1", 1, 25.0), ("HG2", 1, 35.0)]
                elif kind == "fashion":
                    lines = [("FA1", 3, 80.0)]
                else:
                    lines = [("CC1", 1, 15.0)]
                total = sum(q * p for _, q, p in lines)
                orders.append(
                    {
                        "order_id": oid,
                        "contact_id": cid,
                        "ordered_at": when.isoformat(),
                        "total": total,
                        "status": "completed",
                        "channel": "offline" if kind == "home" else "online",
                    }
                )
                items += [
                    {"order_id": oid, "sku": s, "quantity": q, "unit_price": p} for s, q, p in lines
                ]
            opens = 6 if kind == "car" else 1
            for j in range(10):
                t = T - pd.Timedelta(days=7 + 14 * j)
                events.append(
                    {
                        "event_id": f"s{cid}{j}",
                        "contact_id": cid,
                        "type": "email_send",
                        "occurred_at": t.isoformat(),
                    }
                )
                if j < opens:
                    events.append(
                        {
                            "event_id": f"o{cid}{j}",
                            "contact_id": cid,
                            "type": "email_open",
                            "occurred_at": (t + pd.Timedelta(hours=2)).isoformat(),
                        }
                    )
    return {
        "contacts": contacts,
        "products": products,
        "orders": orders,
        "order_items": items,
        "events": events,
    }


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("discover")
    rows = shop_rows()
    build_workspace(root / "shop.duckdb", **rows).close()
    return root, rows


@pytest.fixture
def ws_path(shop, tmp_path):
    """A fresh copy of the shop (tests that save tables and segments get their own)."""
    root, _ = shop
    path = tmp_path / "shop.duckdb"
    path.write_bytes((root / "shop.duckdb").read_bytes())
    return path


def cli() -> typer.Typer:
    from segmentum.cli.persona_discover import app as discover_app

    group = typer.Typer()

    @group.callback()
    def _root() -> None:
        """persona"""

    group.add_typer(discover_app)
    return group


def discover(path, *args: str):
    args = ["discover", "-w", str(path), "--as-of", T_ISO, *args]
    return CliRunner().invoke(cli(), args, env={"COLUMNS": "250"})


def discover_json(path, *args: str) -> dict:
    result = discover(path, *args, "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def kind_of(cid: str) -> str:
    return KINDS[cid[0]][0]


def test_json_figures_match_pandas_and_the_planted_kinds_are_the_clusters(ws_path, shop):
    _, rows = shop
    out = discover_json(ws_path, "--k", "3")
    assert out["k"] == 3 and out["contacts"] == 70 and out["buyers"] == 60
    assert out["sample_size"] == 60 and out["silhouette"] is None
    assert out["categories"] == ["Fashion", "Home & Garden", "Car care"]  # by item value
    clusters = {c["cluster"]: c for c in out["clusters"]}
    assert sorted(clusters) == [0, 1, 2, 3]

    with open_workspace(ws_path) as ws:
        assert "personas" not in ws.tables()  # nothing saved without --save
    # the planted kinds, by cluster number (by size: 24 home, 20 fashion, 16 car)
    orders = pd.DataFrame(rows["orders"])
    by_kind = {"none": 0, "home": 1, "fashion": 2, "car": 3}
    revenue = orders.assign(kind=orders.contact_id.map(kind_of)).groupby("kind").total.sum()
    for kind, c in by_kind.items():
        n = sum(1 for r in rows["contacts"] if r["kind"] == kind)
        assert clusters[c]["contacts"] == n
        assert clusters[c]["share"] == pytest.approx(n / 70)
        got_rev = revenue.get(kind, 0.0)
        assert clusters[c]["revenue"] == pytest.approx(got_rev)
        assert clusters[c]["revenue_share"] == pytest.approx(got_rev / orders.total.sum())
    assert clusters[2]["mean_monetary"] == pytest.approx(revenue["fashion"] / 20)
    assert "buys mostly Home & Garden (100% of spend)" in clusters[1]["description"]
    assert "buys in shops (100% of orders offline)" in clusters[1]["description"]
    assert "buys mostly Fashion" in clusters[2]["description"]
    assert "opens 60% of e-mails" in clusters[3]["description"]
    assert clusters[0]["persona"] == "No purchase yet"


def test_same_seed_same_everything(ws_path):
    a = discover_json(ws_path, "--k", "4", "--seed", "7")
    b = discover_json(ws_path, "--k", "4", "--seed", "7")
    assert a == b


def test_the_seeded_sample_is_drawn_among_buyers_ordered_by_contact_id(ws_path):
    with open_workspace(ws_path) as ws:
        _, features = persona_features(ws, T.to_pydatetime())
        got = _sample(features, 60, 12, seed=3)
        buyers = sorted(r for r in features.filter(features.has_orders).to_pandas().contact_id)
        picks = np.sort(np.random.default_rng(3).choice(60, size=12, replace=False))
        assert list(got.contact_id) == [buyers[i] for i in picks]
        res = discover_personas(ws, T.to_pydatetime(), k=3, seed=3, sample=12)
        again = discover_personas(ws, T.to_pydatetime(), k=3, seed=3, sample=12)
    assert res.sample_size == 12
    assert res.assignments.equals(again.assignments)
    assert res.clusters.equals(again.clusters)


def pair_ari(a: pd.Series, b: pd.Series) -> float:
    """The adjusted Rand index from the contingency table (Hubert & Arabie), in pandas."""
    table = pd.crosstab(a, b)
    comb = lambda x: x * (x - 1) / 2
    index = comb(table.to_numpy()).sum()
    rows, cols = comb(table.sum(axis=1)).sum(), comb(table.sum(axis=0)).sum()
    total = comb(table.to_numpy().sum())
    expected = rows * cols / total
    return float((index - expected) / ((rows + cols) / 2 - expected))


def test_truth_ari_over_the_contacts_in_both(ws_path, shop, tmp_path):
    _, rows = shop
    truth = pd.DataFrame({"contact_id": [r["contact_id"] for r in rows["contacts"]]})
    truth["group"] = truth.contact_id.map(kind_of)
    truth.loc[truth.contact_id.isin(["H00", "H01", "F00", "N03"]), "group"] = "car"  # noise
    extra = pd.DataFrame({"contact_id": ["ZZ1"], "group": ["home"]})  # not in the workspace
    path = tmp_path / "groups.csv"
    pd.concat([truth, extra]).to_csv(path, index=False)
    out = discover_json(ws_path, "--k", "3", "--truth", str(path))
    t = out["truth"]
    assert t["matched"] == 70 and t["truth_contacts"] == 71 and t["groups"] == 4
    ours = pd.DataFrame({"contact_id": [r["contact_id"] for r in rows["contacts"]]})
    number = {"none": 0, "home": 1, "fashion": 2, "car": 3}
    ours["cluster"] = ours.contact_id.map(kind_of).map(number)
    both = ours.merge(truth, on="contact_id")
    assert t["ari"] == pytest.approx(pair_ari(both.group, both.cluster))
    assert 0.5 < t["ari"] < 1.0
    majority = {m["cluster"]: (m["group"], m["contacts"]) for m in t["majority"]}
    assert majority == {0: ("none", 9), 1: ("home", 22), 2: ("fashion", 19), 3: ("car", 16)}

    human = discover(ws_path, "--k", "3", "--truth", str(path))
    assert human.exit_code == 0 and f"{t['ari']:.3f}" in human.stdout


def test_save_tables_rules_and_segments(ws_path):
    out = discover_json(ws_path, "--k", "3", "--save-segments")
    assert out["saved"] is True
    names = {c["cluster"]: c["persona"] for c in out["clusters"]}
    assert out["segments"] == [segment_name(c, names[c]) for c in range(4)]
    assert all(re.fullmatch(r"persona-\d-[a-z0-9-]+", s) for s in out["segments"])
    with open_workspace(ws_path) as ws:
        personas = ws.table("personas").to_pandas()
        assert len(personas) == 70 and personas.contact_id.is_unique
        assert set(personas.as_of) == {T}
        assert (personas.persona == personas.cluster.map(names)).all()
        summary = ws.table("persona_clusters").order_by("cluster").to_pandas()
        assert list(summary.persona) == [names[c] for c in range(4)]
        assert list(summary.contacts) == personas.cluster.value_counts().sort_index().tolist()
        eng = SegmentEngine(ws)
        fashion = set(personas[personas.cluster == 2].contact_id)
        assert eng.preview("persona.cluster = 2", as_of=T.to_pydatetime()).count == len(fashion)
        rule = f'persona.persona = "{names[2]}"'
        assert eng.preview(rule, as_of=T.to_pydatetime()).count == len(fashion)
        seg = segment_name(2, names[2])
        eng.refresh([seg], T.to_pydatetime())
        assert set(eng.current_members(seg).to_pandas().contact_id) == fashion

    # a second run replaces the tables and the segments of the same names
    again = discover_json(ws_path, "--k", "3", "--save-segments")
    assert again["segments"] == out["segments"]


def test_a_persona_rule_before_discovery_says_what_to_run(ws_path):
    from segmentum.segments.errors import SegmentError

    needle = "segmentum persona discover --save"
    with open_workspace(ws_path) as ws, pytest.raises(SegmentError, match=needle):
        SegmentEngine(ws).preview("persona.cluster = 1", as_of=T.to_pydatetime())


def test_auto_reports_the_silhouette_of_every_k(ws_path):
    out = discover_json(ws_path, "--auto")
    scores = {s["k"]: s["score"] for s in out["silhouette"]}
    assert sorted(scores) == list(range(2, 11))
    best = max(scores, key=lambda k: (scores[k], -k))
    assert out["k"] == best and out["auto"] is True
    assert all(-1 <= s <= 1 for s in scores.values() if not math.isnan(s))


def test_human_output(ws_path):
    r = discover(ws_path, "--k", "3", "--save")
    assert r.exit_code == 0, r.output
    assert "buys mostly Home & Garden" in r.stdout and "No purchase yet" in r.stdout
    assert "Saved the persona model persona (70 contacts)" in r.stdout


@pytest.mark.parametrize(
    "args,error,needle",
    [
        (("--k", "3", "--auto"), UsageError, "either --k or --auto"),
        (("--k", "99"), UsageError, "K = 99 is more clusters than there are buyers"),
        (("--k", "1"), UsageError, "K must be a whole number of at least 2"),
        (("--k", "0"), UsageError, "K must be a whole number of at least 2"),
        (("--k", "3", "--truth", "nope.parquet"), UsageError, "does not exist"),
        (("--k", "3", "--sample", "1"), UsageError, "sample size must be"),
    ],
)
def test_mistakes_are_errors_for_people(ws_path, args, error, needle):
    r = discover(ws_path, *args)
    assert isinstance(r.exception, error) and needle in str(r.exception)


def test_with_json_a_mistake_is_one_json_object(ws_path):
    r = discover(ws_path, "--k", "99", "--json")
    assert r.exit_code == 2
    error = json.loads(r.stdout)["error"]
    assert error["type"] == "UsageError" and "K = 99 is more clusters" in error["message"]


def test_too_few_buyers(make_ws):
    ws = make_ws(contacts=[{"contact_id": "A", "created_at": "2024-01-01T00:00:00Z"}])
    with pytest.raises(WorkspaceError, match="too few to discover personas"):
        discover_personas(ws, T.to_pydatetime(), k=2)


def test_a_mistake_is_one_red_line_from_the_real_command(ws_path, tmp_path):
    r = run("-w", str(ws_path), "persona", "discover", "--k", "3", "--auto", cwd=tmp_path)
    assert r.returncode == 2 and "either --k or --auto" in r.stderr
    assert "Traceback" not in r.stderr

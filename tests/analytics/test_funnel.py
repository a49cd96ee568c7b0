"""The deal funnel, checked against an independent pandas computation on hand-built deals.

Edge cases in the data: a deal that skips a stage, one that goes back, a contact with two
deals, rows after the as-of time (a whole deal and single rows), two rows of one deal at
the same instant, a repeated row at the same stage, a deal that jumps from lead to won, a
stage outside the usual funnel, two pipelines. The stage audiences are checked against the
segment engine evaluating the very rules the report prints.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import segmentum.analytics.funnel as funnel_module
from segmentum.analytics.funnel import (
    assemble,
    funnel,
    load_stage_config,
    order_stages,
    stage_rule,
    terminal_kind,
)
from segmentum.errors import UsageError, WorkspaceError
from segmentum.segments import SegmentEngine

T = pd.Timestamp("2024-06-01", tz="UTC")
DAY = pd.Timedelta(days=1)


def _deals() -> list[dict]:
    rows: list[dict] = []

    def deal(did, cid, pipeline, steps, amount=100.0):
        for k, (stage, days) in enumerate(steps):
            rows.append({"deal_id": did, "contact_id": cid, "stage": stage,
                         "updated_at": (T - days * DAY).isoformat(), "pipeline": pipeline,
                         "amount": amount + k})

    deal("D01", "C1", "retail", [("lead", 40), ("qualified", 38), ("proposal_sent", 35),
                                 ("negotiation", 31), ("won", 28)], 1000)
    deal("D02", "C1", "retail", [("lead", 20), ("qualified", 17), ("lost", 2)], 200)  # 2nd deal
    deal("D03", "C2", "b2b", [("lead", 30), ("proposal_sent", 25), ("negotiation", 10)], 300)
    deal("D04", "C3", "retail", [("lead", 50), ("qualified", 45), ("proposal_sent", 40),
                                 ("qualified", 12)], 400)  # went back
    deal("D05", "C4", "b2b", [("lead", 9), ("qualified", 4), ("proposal_sent", -1)], 500)
    deal("D06", "C5", "retail", [("lead", 15), ("qualified", 6), ("proposal_sent", 6)], 600)
    deal("D07", "C6", "b2b", [("lead", 22), ("won", 21.5)], 700)  # jumps to won
    deal("D08", "C7", "retail", [("lead", -3), ("qualified", -1)], 800)  # after as-of
    deal("D09", "C8", "b2b", [("lead", 33), ("lost", 30)], 900)
    deal("D10", "C5", "retail", [("lead", 8), ("lead", 7.5), ("qualified", 3)], 1100)
    deal("D11", "C9", "b2b", [("lead", 26), ("qualified", 24), ("proposal_sent", 22),
                              ("on_hold", 20)], 1200)  # odd stage
    deal("D12", "C2", "b2b", [("lead", 3.25), ("qualified", 3.25)], 1300)  # tie in time
    # two deals of one contact updated at the same instant: deal.stage looks at D14
    deal("D13", "C10", "retail", [("lead", 5), ("qualified", 1)], 1400)
    deal("D14", "C10", "retail", [("lead", 1)], 1500)
    return rows


CONTACTS = [{"contact_id": f"C{i}", "created_at": "2023-01-01T00:00:00Z"} for i in range(1, 11)]


@pytest.fixture
def dws(make_ws):
    return make_ws(contacts=CONTACTS, deals=_deals())


# -- the independent computation -------------------------------------------------------------
class Oracle:
    """Plain pandas / Python, one deal at a time."""

    def __init__(self, rows: list[dict], T: pd.Timestamp, pipeline: str | None = None,
                 won=("won",), lost=("lost",)):
        self.won, self.lost = list(won), list(lost)
        df = pd.DataFrame(rows)
        df["updated_at"] = pd.to_datetime(df["updated_at"], utc=True)
        df = df[df.updated_at <= T]
        self.T = T
        self.all = df
        self.cur_all = {d: g.sort_values(["updated_at", "stage"]).iloc[-1]
                        for d, g in df.groupby("deal_id")}
        keep = [d for d, c in self.cur_all.items() if pipeline is None or c.pipeline == pipeline]
        self.rows = df[df.deal_id.isin(keep)]
        self.cur = {d: self.cur_all[d] for d in keep}
        self.pipeline = pipeline

    def numbers(self) -> dict[str, list[int]]:
        """Each stage's entry numbers: 1, 2, ... by first entry (ties by name) per deal."""
        nums: dict[str, list[int]] = {}
        for _, g in self.rows.groupby("deal_id"):
            first = g.groupby("stage").updated_at.min().reset_index()
            first = first.sort_values(["updated_at", "stage"])
            for n, s in enumerate(first.stage, start=1):
                nums.setdefault(s, []).append(n)
        return nums

    def order(self) -> list[str]:
        nums = self.numbers()
        keys = {s: (float(np.median(v)), float(np.mean(v)), s) for s, v in nums.items()}
        ranked = sorted(keys, key=lambda s: keys[s])
        return [s for s in ranked if s not in self.won + self.lost]

    def table(self, order: list[str]) -> pd.DataFrame:
        WON, LOST = set(self.won), set(self.lost)
        stages = [*order, *self.won, *self.lost]
        entered = {s: set() for s in stages}
        for r in self.rows.itertuples():
            if r.stage in entered:
                entered[r.stage].add(r.deal_id)
        contact = {d: c.contact_id for d, c in self.cur.items()}
        out = []
        first_reached = None
        prev_reached = None
        closed = sum(1 for c in self.cur.values() if c.stage in WON | LOST)
        # visits
        visits: dict[str, list[float]] = {}
        open_visits: dict[str, list[float]] = {}
        for _, g in self.rows.groupby("deal_id"):
            g = g.sort_values(["updated_at", "stage"])
            runs = []
            for r in g.itertuples():
                if not runs or runs[-1][0] != r.stage:
                    runs.append((r.stage, r.updated_at))
            for i, (s, start) in enumerate(runs):
                if i + 1 < len(runs):
                    days = (runs[i + 1][1] - start).total_seconds() / 86400
                    visits.setdefault(s, []).append(days)
                else:
                    open_visits.setdefault(s, []).append((self.T - start).total_seconds() / 86400)
        # audience: every deal, newest per contact
        newest = {}
        for d, c in sorted(self.cur_all.items(), key=lambda kv: (kv[1].updated_at, kv[0])):
            newest[c.contact_id] = c
        for s in stages:
            if s in order:
                later = set(order[order.index(s):]) | WON
                reached = {d for d in self.cur if any(
                    st in later for st in self.rows[self.rows.deal_id == d].stage)}
            else:
                reached = entered[s]
            now = [d for d, c in self.cur.items() if c.stage == s]
            n_reached = len(reached)
            if s == order[0]:
                first_reached = n_reached
            v, ov = visits.get(s, []), open_visits.get(s, [])
            num = self.numbers().get(s, [])
            out.append({
                "stage": s,
                "kind": "won" if s in WON else "lost" if s in LOST else "open",
                "reached": n_reached,
                "entered": len(entered[s]),
                "now": len(now),
                "conv_prev": (n_reached / prev_reached if prev_reached else None)
                if s in order else None,
                "conv_first": n_reached / first_reached,
                "share_of_closed": len(now) / closed if s not in order else None,
                "contacts_reached": len({contact[d] for d in reached}),
                "contacts_now": len({contact[d] for d in now}),
                "amount_now": float(sum(self.cur[d].amount for d in now)) if now else None,
                "audience": sum(1 for c in newest.values() if c.stage == s and (
                    self.pipeline is None or c.pipeline == self.pipeline)),
                "visits": len(v),
                "days_median": float(np.median(v)) if v else None,
                "days_mean": float(np.mean(v)) if v else None,
                "open_days_median": float(np.median(ov)) if ov else None,
                "open_days_mean": float(np.mean(ov)) if ov else None,
                "order_median": float(np.median(num)) if num else None,
                "order_mean": float(np.mean(num)) if num else None,
            })
            if s in order:
                prev_reached = n_reached
        return pd.DataFrame(out)


def _compare(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.stage) == list(want.stage)
    for col in want.columns:
        g, w = list(got[col]), list(want[col])
        for a, b, s in zip(g, w, want.stage):
            if b is None or (isinstance(b, float) and np.isnan(b)):
                assert a is None or pd.isna(a), (col, s, a, b)
            elif isinstance(b, float):
                assert a == pytest.approx(b, rel=1e-9, abs=1e-9), (col, s, a, b)
            else:
                assert a == b, (col, s, a, b)


# -- the report vs. the oracle ---------------------------------------------------------------
def test_inferred_order_and_every_figure(dws):
    f = funnel(dws, T)
    o = Oracle(_deals(), T)
    assert f.order_source == "inferred"
    assert f.order == o.order() == ["lead", "qualified", "proposal_sent", "negotiation", "on_hold"]
    assert f.won == ["won"] and f.lost == ["lost"]
    _compare(f.stages, o.table(f.order))
    # spot checks of the edge cases, by hand
    s = f.stages.set_index("stage")
    assert s.loc["lead", "reached"] == 13  # D08 is all after as-of
    assert s.loc["qualified", "reached"] == 11  # D03 skipped it, D07 jumped to won
    assert s.loc["qualified", "entered"] == 9
    assert s.loc["proposal_sent", "now"] == 0  # D05's row is after as-of; D06 tie -> qualified
    assert s.loc["qualified", "now"] == 6  # D04 went back, D05, D06 (tie), D10, D12 (tie), D13
    assert s.loc["won", "conv_first"] == pytest.approx(2 / 13)
    assert f.totals == {"deals": 13, "contacts": 9, "amount": f.totals["amount"], "open": 9,
                        "won": 2, "lost": 2, "win_rate": 0.5}
    assert f.totals["amount"] == pytest.approx(sum(float(c.amount) for c in o.cur.values()))


@pytest.mark.parametrize("pipeline", ["retail", "b2b"])
def test_pipeline(dws, pipeline):
    order = ["lead", "qualified", "proposal_sent", "negotiation"]
    f = funnel(dws, T, pipeline=pipeline, stages=order)
    o = Oracle(_deals(), T, pipeline)
    _compare(f.stages, o.table(order))
    assert f.pipelines == ["b2b", "retail"]
    assert all(r == stage_rule(s, pipeline) for s, r in zip(f.stages.stage, f.stages.rule))


def test_audiences_are_what_the_printed_rules_select(dws):
    eng = SegmentEngine(dws)
    for pipeline in (None, "b2b"):
        f = funnel(dws, T, pipeline=pipeline)
        for r in f.stages.itertuples():
            assert eng.count(r.rule, T) == r.audience, r.rule
    # the other audience form: stage changed recently (the compiler's stage_changed)
    o = Oracle(_deals(), T)
    newest = {}
    for d, c in sorted(o.cur_all.items(), key=lambda kv: (kv[1].updated_at, kv[0])):
        newest[c.contact_id] = d
    since = {}
    for cid, d in newest.items():
        g = o.all[o.all.deal_id == d].sort_values(["updated_at", "stage"])
        st = list(g.stage)
        k = len(st) - 1
        while k > 0 and st[k - 1] == st[-1]:
            k -= 1
        since[cid] = g.updated_at.iloc[k]
    want = sum(1 for t in since.values() if t > T - 14 * DAY)
    assert eng.count("deal.stage_changed within last 14 days", T) == want


def test_as_of_moves_rows_in_and_out(dws):
    later = T + 5 * DAY
    f = funnel(dws, later)
    o = Oracle(_deals(), later)
    _compare(f.stages, o.table(f.order))
    assert f.stages.set_index("stage").loc["lead", "reached"] == 14  # D08 counts now


def test_given_stages_other_and_missing(dws):
    f = funnel(dws, T, stages="lead,qualified,proposal_sent,negotiation,won,signed")
    o = Oracle(_deals(), T)
    assert f.order == ["lead", "qualified", "proposal_sent", "negotiation", "signed"]
    assert f.won == ["won"] and f.lost == ["lost"] and f.order_source == "given"
    _compare(f.stages[f.stages.stage != "signed"].reset_index(drop=True),
             o.table(["lead", "qualified", "proposal_sent", "negotiation"]))
    signed = f.stages.set_index("stage").loc["signed"]
    # nobody entered it, but the won deals (D01, D07) passed every funnel stage
    assert signed.entered == 0 and signed.reached == 2 and signed.now == 0
    assert signed.conv_prev == pytest.approx(2 / 3)  # negotiation: D01, D03, D07
    assert list(f.other.stage) == ["on_hold"] and f.other.now.tolist() == [1]
    assert any("'signed' has no deal rows" in n for n in f.notes)
    assert any("outside the funnel: on_hold" in n for n in f.notes)


def test_won_lost_options_and_stage_file(dws, tmp_path):
    # on_hold declared lost: it leaves the funnel and joins the terminal stages
    f = funnel(dws, T, lost="lost,on_hold")
    assert f.lost == ["lost", "on_hold"] and "on_hold" not in f.order
    s = f.stages.set_index("stage")
    assert s.loc["on_hold", "kind"] == "lost" and s.loc["on_hold", "now"] == 1
    assert s.loc["lost", "share_of_closed"] == pytest.approx(2 / 5)
    path = tmp_path / "stages.yaml"
    path.write_text(
        "stages: [lead, qualified, proposal_sent, negotiation]\n"
        "lost: [lost, on_hold]\n"
        "pipelines:\n  b2b:\n    stages: [lead, proposal_sent, negotiation]\n"
    )
    fb = funnel(dws, T, pipeline="b2b", stages_file=path)
    assert fb.order_source == "file" and fb.order == ["lead", "proposal_sent", "negotiation"]
    assert fb.lost == ["lost", "on_hold"]  # top-level list, the pipeline has none of its own
    o = Oracle(_deals(), T, "b2b", lost=["lost", "on_hold"])
    _compare(fb.stages, o.table(["lead", "proposal_sent", "negotiation"]))
    assert list(fb.other.stage) == ["qualified"] and fb.other.now.tolist() == [2]
    fr = funnel(dws, T, pipeline="retail", stages_file=path)
    assert fr.order == ["lead", "qualified", "proposal_sent", "negotiation"]


def test_pure_parts():
    assert terminal_kind("closed_won") == "won" and terminal_kind("Lost - no budget") == "lost"
    assert terminal_kind("winter_offer") == "open" and terminal_kind("lead") == "open"
    assert terminal_kind("signed", won=["signed"]) == "won"
    assert terminal_kind("won", won=["signed"]) == "open"  # a given list decides
    assert terminal_kind("lost", won=["signed"]) == "lost"  # lost still by name
    stats = pd.DataFrame({"stage": ["b", "a", "c", "d"], "order_median": [2.0, 2.0, 1.0, 2.0],
                          "order_mean": [2.5, 2.5, 1.2, 2.1]})
    assert order_stages(stats) == ["c", "d", "a", "b"]  # median, mean, then name
    example = Path(funnel_module.__file__).with_name("funnel_stages_example.yaml")
    assert load_stage_config(example).for_pipeline("wholesale").stages == [
        "lead", "proposal_sent", "negotiation"]
    assert stage_rule('odd "name"', "p") == 'deal.stage = "odd \\"name\\"" and deal.pipeline = "p"'
    frames = {
        "entered": pd.DataFrame({"stage": ["a", "b", "x"], "entered": [4, 2, 1],
                                 "order_median": [1.0, 2.0, 2.0], "order_mean": [1.0, 2.0, 2.0]}),
        "reached": pd.DataFrame({"stage": ["a", "b", "w"], "reached": [4, 3, 1],
                                 "contacts_reached": [3, 3, 1]}),
        "now": pd.DataFrame({"stage": ["a", "w", "x"], "now": [1, 1, 1],
                             "contacts_now": [1, 1, 1], "amount_now": [5.0, 6.0, 7.0]}),
    }
    for key, cols in (("visits", ["visits", "days_median", "days_mean", "open_days_median",
                                  "open_days_mean"]), ("audience", ["audience"])):
        frames[key] = pd.DataFrame({"stage": [], **{c: [] for c in cols}})
    table, other = assemble(["a", "b"], {"w": "won"}, frames)
    t = table.set_index("stage")
    assert t.loc["b", "conv_prev"] == 0.75 and t.loc["w", "conv_first"] == 0.25
    assert t.loc["w", "share_of_closed"] == 1.0 and t.loc["b", "now"] == 0
    assert list(other.stage) == ["x"] and other.now.tolist() == [1]


def test_errors(dws, make_ws, tmp_path):
    with pytest.raises(UsageError, match='Did you mean "retail"'):
        funnel(dws, T, pipeline="retial")
    with pytest.raises(UsageError, match="both won and lost"):
        funnel(dws, T, won="won", lost="won")
    with pytest.raises(UsageError, match="twice"):
        funnel(dws, T, stages="lead,lead")
    with pytest.raises(WorkspaceError, match="No deal rows up to 2020-01-01"):
        funnel(dws, "2020-01-01")
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [a]\nwinners: [b]\n")
    with pytest.raises(UsageError, match="winners"):
        load_stage_config(bad)
    empty = make_ws(contacts=CONTACTS)
    with pytest.raises(WorkspaceError, match="segmentum load deals"):
        funnel(empty, T)


# -- the command, as a user runs it ----------------------------------------------------------
def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("segmentum")
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("SEGMENTUM_WORKSPACE", None)
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


def test_cli_json_table_and_error(dws, tmp_path):
    path = str(dws.config.path)
    dws.close()  # the command opens its own connection
    r = _run("funnel", "-w", path, "--as-of", T.isoformat(), "--pipeline", "b2b", "--json",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    want = Oracle(_deals(), T, "b2b").table(out["order"])
    assert [s["stage"] for s in out["stages"]] == list(want.stage)
    for got, w in zip(out["stages"], want.to_dict(orient="records")):
        for key in ("reached", "entered", "now", "contacts_now", "audience", "visits"):
            assert got[key] == w[key], (got["stage"], key)
        if not pd.isna(w["days_median"]):
            assert got["days_median"] == pytest.approx(w["days_median"])
    assert out["pipeline"] == "b2b" and out["as_of"].startswith("2024-06-01")
    r = _run("funnel", "-w", path, "--as-of", T.isoformat(), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'deal.stage = "proposal_sent"' in r.stdout and "won" in r.stdout
    assert "Stage order inferred" in r.stdout
    r = _run("funnel", "-w", path, "--pipeline", "retial", cwd=tmp_path)
    assert r.returncode == 2 and 'Did you mean "retail"' in r.stderr
    assert "Traceback" not in r.stderr

"""How well each persona template finds the personas a ground-truth file labels.

    >>> report = check_templates(ws, pd.read_parquet("ground_truth.parquet"), as_of=T)
    >>> report.rows[["template", "label", "precision", "recall", "passed"]]

Every template that names a ``ground_truth_label`` is evaluated with its default
parameters, all together as of T (:meth:`SegmentEngine.evaluate`): precision = members that
carry the label / members, recall = labelled contacts that are members / labelled contacts.
A template whose data the workspace lacks, or whose label the file does not hold, gets a
status saying so instead of figures; templates without a label are listed as such.
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
from typing import Any

import pandas as pd

from segmentum.clock import to_utc
from segmentum.errors import UsageError
from segmentum.personas.library import Library, load_library
from segmentum.personas.needs import DataCheck
from segmentum.segments import SegmentEngine
from segmentum.segments.catalog import ANALYTICS, Catalog

__all__ = ["CheckReport", "check_templates", "THRESHOLD", "COLUMNS"]

THRESHOLD = 0.9
COLUMNS = [
    "template",
    "label",
    "status",
    "selected",
    "actual",
    "true_positives",
    "precision",
    "recall",
    "passed",
    "missing",
]


@dc.dataclass
class CheckReport:
    """One record per template (keys: COLUMNS), the as-of time, and notes on stale scores."""

    as_of: _dt.datetime
    records: list[dict[str, Any]]
    notes: list[str]
    threshold: float = THRESHOLD

    @property
    def rows(self) -> pd.DataFrame:
        """The records as a frame (counts as nullable integers)."""
        df = pd.DataFrame(self.records, columns=COLUMNS)
        for col in ("selected", "actual", "true_positives"):
            df[col] = df[col].astype("Int64")
        for col in ("precision", "recall"):
            df[col] = df[col].astype("float64")
        return df

    @property
    def evaluated(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r["status"] == "evaluated"]

    @property
    def all_passed(self) -> bool:
        ev = self.evaluated
        return bool(ev) and all(r["passed"] for r in ev)

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of,
            "threshold": self.threshold,
            "templates": self.records,
            "all_passed": self.all_passed,
            "notes": self.notes,
        }


def check_templates(
    ws,
    truth: pd.DataFrame,
    as_of: Any,
    *,
    templates: list[str] | None = None,
    library: Library | None = None,
    threshold: float = THRESHOLD,
) -> CheckReport:
    """Precision and recall of each template (default parameters) against ``truth``
    (columns contact_id, label), evaluated as of ``as_of``."""
    missing_cols = {"contact_id", "label"} - set(truth.columns)
    if missing_cols:
        raise UsageError(
            f"The ground truth needs columns contact_id and label; it lacks "
            f"{', '.join(sorted(missing_cols))} (columns: {', '.join(map(str, truth.columns))})."
        )
    T = to_utc(as_of)
    lib = library or load_library()
    chosen = [lib.get(n) for n in templates] if templates else list(lib)
    labels = set(truth["label"].astype(str))
    data = DataCheck(ws)
    rows: list[dict[str, Any]] = []
    rules, relabelled = {}, []
    for t in chosen:
        row = {c: None for c in COLUMNS}
        row.update(template=t.name, label=t.ground_truth_label, missing=[])
        if t.ground_truth_label is None:
            row["status"] = "no planted persona"
        elif (gaps := data.missing(t)):
            row.update(status="missing data", missing=[str(m) for m in gaps])
        elif t.ground_truth_label not in labels:
            row["status"] = "label not in the ground truth"
        else:
            row["status"] = "evaluated"
            rules[t.name] = t.bind()
            picked = truth.loc[truth["label"] == t.ground_truth_label, ["contact_id"]]
            relabelled.append(picked.assign(label=t.name))
        rows.append(row)
    if rules:
        res = SegmentEngine(ws).evaluate(rules, pd.concat(relabelled, ignore_index=True), T)
        res = res.set_index("label")
        for row in rows:
            if row["template"] in res.index:
                r = res.loc[row["template"]]
                row.update(
                    selected=int(r.selected),
                    actual=int(r.actual),
                    true_positives=int(r.true_positives),
                    precision=float(r.precision),
                    recall=float(r.recall),
                )
                row["passed"] = bool(
                    row["precision"] >= threshold and row["recall"] >= threshold
                )
    notes = _stale_scores(ws, [lib.get(n) for n in rules], T)
    return CheckReport(T, rows, notes, threshold)


def _stale_scores(ws, templates, T: _dt.datetime) -> list[str]:
    """A note for each score table a checked template reads that was computed as of
    another time (a minute or more away from T)."""
    out = []
    used = sorted({ns for t in templates for ns in t.needs.analytics})
    catalog = Catalog(ws)
    for ns in used:
        when = catalog.scores_as_of(ns)
        if when is not None and abs((when - T).total_seconds()) >= 60:
            out.append(
                f"{ns} scores are as of {when:%Y-%m-%d %H:%M:%S} UTC, the check as of "
                f"{T:%Y-%m-%d %H:%M:%S} UTC: run `{ANALYTICS[ns]['command']} --as-of "
                f"{T:%Y-%m-%dT%H:%M:%SZ}` to line them up"
            )
    return out

"""Control groups: stable hash buckets, the global control's epochs and recorded assignments.

A contact's bucket under a salt is ``sha256("{salt}:{contact_id}")`` read as a number (its
first 15 hex digits, 60 bits) modulo 10,000. It depends on the two texts alone, so a
contact's group never changes as the base grows, and Python (:func:`bucket`) and the
warehouse (:func:`bucket_expr`) compute the same number.

* **Global control**: the contacts whose bucket under the epoch's salt is below
  ``pct x 100`` (5 % = buckets 0..499). They get no marketing message at all; transactional
  messages are exempt. An epoch is a (salt, pct) in force from its start time; a new salt
  starts a new epoch, and the assignments of the old one stay recorded for past reports.
* **Campaign control**: among the contacts outside the global control, those whose bucket
  under the campaign's own salt is below the campaign's ``control_pct x 100``.

Tables (created on the first write):

    control_epochs       epoch, salt, pct, started_at, created_at
    control_assignments  scope (the campaign or trigger), epoch (the global control's,
                         0 without one), occurrence (the send run), contact_id,
                         arm ("global_control" / "control"), assigned_at - one row per
                         scope, occurrence and contact: recording a run again adds nothing
"""

from __future__ import annotations

import dataclasses as dc
import datetime as _dt
import hashlib
import secrets

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from segmentum.clock import to_utc
from segmentum.data.schema import F64, I64, STR, TS
from segmentum.errors import UsageError

__all__ = [
    "BUCKETS",
    "Epoch",
    "ControlGroups",
    "bucket",
    "bucket_expr",
    "check_salt",
    "threshold",
    "arm_expr",
    "EPOCHS_SCHEMA",
    "ASSIGNMENTS_SCHEMA",
]

BUCKETS = 10_000
EPOCHS = "control_epochs"
ASSIGNMENTS = "control_assignments"
EPOCHS_SCHEMA = {"epoch": I64, "salt": STR, "pct": F64, "started_at": TS, "created_at": TS}
ASSIGNMENTS_SCHEMA = {
    "scope": STR,
    "epoch": I64,
    "occurrence": STR,
    "contact_id": STR,
    "arm": STR,
    "assigned_at": TS,
}


def check_salt(salt: str) -> str:
    """A salt: 1-200 characters of text without control characters."""
    if not isinstance(salt, str) or not salt.strip() or len(salt) > 200:
        raise UsageError(f"A control group's salt is 1 to 200 characters of text. Got {salt!r}.")
    if any(ord(c) < 32 or ord(c) == 127 for c in salt):
        raise UsageError(f"A control group's salt can't contain control characters. Got {salt!r}.")
    return salt


def bucket(salt: str, contact_id: str) -> int:
    """The contact's bucket in [0, 10000) under ``salt`` (see the module doc)."""
    digest = hashlib.sha256(f"{salt}:{contact_id}".encode()).hexdigest()
    return int(digest[:15], 16) % BUCKETS


def bucket_expr(salt: str, contact_id: ir.StringValue) -> ir.IntegerValue:
    """:func:`bucket` as a warehouse expression over a column of contact ids."""
    digest = (ibis.literal(f"{check_salt(salt)}:", type="string") + contact_id).hexdigest("sha256")
    return (ibis.literal("0x") + digest.substr(0, 15)).cast("int64") % BUCKETS


def threshold(pct: float) -> int:
    """How many of the 10,000 buckets a percentage takes (0.01 % steps)."""
    if not 0 <= pct <= 100:
        raise UsageError(f"A control percentage is between 0 and 100. Got {pct!r} instead.")
    return round(pct * BUCKETS / 100)


def arm_expr(
    contact_id: ir.StringValue,
    epoch: Epoch | None,
    salt: str,
    control_pct: float,
    *,
    transactional: bool = False,
) -> ir.StringValue:
    """Each contact's arm: "global_control", "control" or "treatment".

    Transactional messages know neither control group: every contact is "treatment"."""
    if transactional:
        return ibis.literal("treatment", type="string")
    arm = ibis.cases(
        (bucket_expr(salt, contact_id) < threshold(control_pct), "control"),
        else_="treatment",
    )
    if epoch is not None and epoch.pct > 0:
        in_global = bucket_expr(epoch.salt, contact_id) < threshold(epoch.pct)
        arm = in_global.ifelse("global_control", arm)
    return arm


@dc.dataclass(frozen=True)
class Epoch:
    """A global control setting in force from ``started_at``: its salt and percentage."""

    epoch: int
    salt: str
    pct: float
    started_at: _dt.datetime

    def to_dict(self) -> dict:
        return dc.asdict(self)


class ControlGroups:
    """The global control's epochs and the recorded control assignments of one workspace."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.wh = ws.warehouse

    def _ensure(self) -> None:
        self.wh.create_table(EPOCHS, EPOCHS_SCHEMA)
        self.wh.create_table(ASSIGNMENTS, ASSIGNMENTS_SCHEMA)

    # -- epochs --------------------------------------------------------------------------
    def epochs(self) -> list[Epoch]:
        """Every epoch, oldest first."""
        if not self.wh.has_table(EPOCHS):
            return []
        rows = self.wh.table(EPOCHS).order_by("epoch").to_pyarrow().to_pylist()
        return [Epoch(r["epoch"], r["salt"], r["pct"], to_utc(r["started_at"])) for r in rows]

    def current(self, at=None) -> Epoch | None:
        """The epoch in force at ``at`` (default now), or None before the first one."""
        at = to_utc(at)
        live = [e for e in self.epochs() if e.started_at <= at]
        return live[-1] if live else None

    def start_epoch(self, pct: float, salt: str | None = None, at=None) -> Epoch:
        """Put a global control of ``pct`` % in force from ``at`` (default now).

        Without a salt a new random one is drawn, so the group is drawn anew. The same salt
        and percentage as the epoch in force changes nothing (that epoch comes back)."""
        threshold(pct)
        at = to_utc(at)
        epochs = self.epochs()
        if epochs and at < epochs[-1].started_at:
            raise UsageError(
                f"The global control's epoch {epochs[-1].epoch} started at "
                f"{epochs[-1].started_at:%Y-%m-%d %H:%M:%S} UTC; a new epoch can't start "
                "before it.",
                hint="pass a start time at or after it",
            )
        if salt is not None:
            check_salt(salt)
        if epochs and salt == epochs[-1].salt and pct == epochs[-1].pct:
            return epochs[-1]
        epoch = Epoch(len(epochs) + 1, salt or secrets.token_hex(8), float(pct), at)
        row = {**epoch.to_dict(), "created_at": _dt.datetime.now(_dt.UTC)}
        self._ensure()
        self.wh.insert(EPOCHS, _arrow([row], EPOCHS_SCHEMA))
        return epoch

    # -- assignments ---------------------------------------------------------------------
    def record(self, scope: str, occurrence: str, arms: ir.Table, epoch: int, at) -> int:
        """Record the control arms among ``arms`` (contact_id, arm) for one occurrence of a
        scope; contacts already recorded for it are left alone. Returns the rows added."""
        self._ensure()
        a = self.wh.table(ASSIGNMENTS)
        done = a.filter((a.scope == scope) & (a.occurrence == occurrence)).select("contact_id")
        new = arms.filter(arms.arm.isin(["control", "global_control"])).anti_join(
            done, "contact_id"
        )
        rows = new.select(
            scope=ibis.literal(scope, type="string"),
            epoch=ibis.literal(int(epoch), type="int64"),
            occurrence=ibis.literal(occurrence, type="string"),
            contact_id=new.contact_id,
            arm=new.arm,
            assigned_at=ibis.literal(to_utc(at), type=TS),
        )
        count = int(rows.count().to_pyarrow().as_py())
        if count:
            self.wh.insert(ASSIGNMENTS, rows)
        return count

    def assignments(self, scope: str, occurrence: str | None = None) -> ir.Table:
        """The recorded assignments of a campaign or trigger, of one occurrence or all."""
        if not self.wh.has_table(ASSIGNMENTS):
            return ibis.memtable(_arrow([], ASSIGNMENTS_SCHEMA))
        a = self.wh.table(ASSIGNMENTS)
        a = a.filter(a.scope == scope)
        return a if occurrence is None else a.filter(a.occurrence == occurrence)


def _arrow(rows: list[dict], schema: dict) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=ibis.schema(schema).to_pyarrow())

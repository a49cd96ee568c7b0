"""API keys: a source's write key (scope ``track``) and REST keys (``read``, ``write``, ``admin``).

A key reads ``sgm_<id>_<secret>``: the id (8 hex digits) finds its entry, the secret (32
random bytes, URL-safe base64) is never stored; only its SHA-256 is. The store is the file
``<workspace>.keys.json`` next to the workspace, not a table in it, so ``segmentum keys``
works while ``segmentum serve`` holds the workspace: the service re-reads the file whenever
it changes (a revoked key is refused from the next request on). Writers take an exclusive
``flock`` on ``<workspace>.keys.lock`` and replace the file atomically.

Scopes: ``track`` sends events to ``/v1/*``; ``read`` reads the REST API, ``write`` also
changes it, ``admin`` can do everything (``track`` included). A write key's name is its
source: events it sends carry ``source = <name>``, and messageIds are de-duplicated per
source (two keys of one name, e.g. during a rotation, are one source).
"""

from __future__ import annotations

import base64
import datetime as _dt
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import threading
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

from segmentum.errors import AuthError, ForbiddenError, NotFoundError, UsageError

__all__ = ["SCOPES", "ApiKey", "KeyStore", "keys_path"]

SCOPES = ("track", "read", "write", "admin")
_IMPLIES = {"admin": set(SCOPES), "write": {"write", "read"}, "read": {"read"}, "track": {"track"}}
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_KEY = re.compile(r"sgm_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")


def keys_path(workspace_path: str | os.PathLike) -> Path:
    """Where a workspace's keys live: ``<workspace>.keys.json``."""
    return Path(f"{Path(workspace_path).resolve()}.keys.json")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """One key's stored entry (never the secret)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    sha256: str
    created_at: str
    revoked_at: str | None = None

    def allows(self, scope: str) -> bool:
        return any(scope in _IMPLIES[s] for s in self.scopes)

    def public(self) -> dict:
        """The entry as shown by ``keys list`` (no hash)."""
        d = asdict(self)
        d.pop("sha256")
        d["scopes"] = list(self.scopes)
        return d


class KeyStore:
    """The keys of one workspace (see the module docstring)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._lock_path = self.path.with_suffix(".lock")
        self._mutex = threading.Lock()
        self._stamp: tuple | None = None
        self._keys: dict[str, ApiKey] = {}

    # -- reading -------------------------------------------------------------------------
    def _fresh(self) -> dict[str, ApiKey]:
        """The keys as the file has them now (re-read only when the file changed)."""
        try:
            st = self.path.stat()
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            stamp = None
        with self._mutex:
            if stamp != self._stamp:
                self._keys = self._read() if stamp else {}
                self._stamp = stamp
            return self._keys

    def _read(self) -> dict[str, ApiKey]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return {k["id"]: ApiKey(**{**k, "scopes": tuple(k["scopes"])}) for k in raw["keys"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"The key file {self.path} is not valid ({exc}).",
                hint="Restore it from a backup, or remove it and create the keys again.",
                file=str(self.path),
            ) from None

    def list(self, *, include_revoked: bool = False) -> list[ApiKey]:
        keys = sorted(self._fresh().values(), key=lambda k: (k.name, k.created_at))
        return [k for k in keys if include_revoked or k.revoked_at is None]

    def authenticate(self, key: str | None, scope: str) -> ApiKey:
        """The entry of a valid, unrevoked key allowing ``scope``; AuthError / ForbiddenError."""
        if not key:
            raise AuthError(
                "No API key given.",
                hint="Send the key as the HTTP Basic user (empty password), as writeKey in the "
                "body, or as Authorization: Bearer <key>. Create one with `segmentum keys create`.",
            )
        m = _KEY.fullmatch(key.strip())
        entry = self._fresh().get(m.group(1)) if m else None
        if entry is None or not hmac.compare_digest(entry.sha256, _digest(m.group(2))):
            raise AuthError("Unknown API key.", hint="Check the key, or create one with `segmentum keys create`.")
        if entry.revoked_at:
            raise AuthError(f"The key {entry.id} ({entry.name}) was revoked on {entry.revoked_at}.")
        if not entry.allows(scope):
            raise ForbiddenError(
                f"The key {entry.id} ({entry.name}) has scopes {', '.join(entry.scopes)}; "
                f"this needs {scope}.",
                hint=f"Create a key with `segmentum keys create NAME --scopes {scope}`.",
            )
        return entry

    # -- writing -------------------------------------------------------------------------
    @contextmanager
    def _editing(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            keys = self._read() if self.path.exists() else {}
            yield keys
            tmp = self.path.with_suffix(".tmp")
            body = {"keys": [asdict(k) for k in sorted(keys.values(), key=lambda k: k.created_at)]}
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(body, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)

    def create(self, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
        """A new key: its entry and the key itself (shown once, never stored)."""
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise UsageError(
                f"Key name {name!r} is not valid: use 1-64 lower-case letters, digits, '.', '_' "
                "or '-', starting with a letter or digit (e.g. web, ios-app, crm).",
                field="name",
            )
        wanted = tuple(dict.fromkeys(s.strip().lower() for s in scopes if s.strip()))
        bad = [s for s in wanted if s not in SCOPES]
        if bad or not wanted:
            raise UsageError(
                f"Unknown scope {bad[0]!r}." if bad else "A key needs at least one scope.",
                hint=f"Scopes are {', '.join(SCOPES)} (e.g. --scopes track for a source's write key).",
                field="scopes",
            )
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        with self._editing() as keys:
            key_id = secrets.token_hex(4)
            while key_id in keys:
                key_id = secrets.token_hex(4)
            entry = ApiKey(key_id, name, wanted, _digest(secret), _now())
            keys[key_id] = entry
        return entry, f"sgm_{key_id}_{secret}"

    def revoke(self, id_or_name: str) -> list[ApiKey]:
        """Revoke a key by id, or every active key of a name; the entries revoked."""
        with self._editing() as keys:
            hits = [k for k in keys.values() if k.revoked_at is None and id_or_name in (k.id, k.name)]
            if not hits:
                known = sorted({k.id for k in keys.values()} | {k.name for k in keys.values()})
                raise NotFoundError(
                    f"No active key with id or name {id_or_name!r}.",
                    hint="`segmentum keys list` shows them." if known else "There are no keys yet.",
                )
            when = _now()
            revoked = []
            for k in hits:
                keys[k.id] = ApiKey(**{**asdict(k), "revoked_at": when})
                revoked.append(keys[k.id])
        return revoked


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")

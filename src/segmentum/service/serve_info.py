"""``<workspace>.serve.json``: which ``segmentum serve`` holds a workspace, and at what URL.

DuckDB lets one process write a database file. ``segmentum serve`` holds its workspace for
as long as it runs and writes this file next to it (``pid``, ``url``, ``started_at``,
``workspace``); a clean exit removes it. :func:`read_serve_info` gives the file's content
while that process is alive and still a ``segmentum`` process (a file left by a killed
server is stale: it is removed and ``None`` returned), so a command that finds the
workspace locked can say "segmentum serve (pid N) at URL holds this workspace".
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["ServeInfo", "serve_info_path", "read_serve_info", "write_serve_info", "remove_serve_info"]


@dataclass(frozen=True)
class ServeInfo:
    pid: int
    url: str
    started_at: str
    workspace: str

    def holder(self) -> str:
        """How a message names the holder: 'segmentum serve (pid N) at URL'."""
        return f"segmentum serve (pid {self.pid}) at {self.url}"


def serve_info_path(workspace_path: str | os.PathLike) -> Path:
    from segmentum.workspace import serve_file  # the name the workspace's lock error reads

    return serve_file(Path(workspace_path).resolve())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # a reused pid is not the server that wrote the file
        try:
            return b"segmentum" in cmdline.read_bytes()
        except OSError:
            return True
    return True


def read_serve_info(workspace_path: str | os.PathLike) -> ServeInfo | None:
    """The live server of this workspace, or None (no file, unreadable, or stale)."""
    path = serve_info_path(workspace_path)
    try:
        info = ServeInfo(**json.loads(path.read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if _alive(info.pid):
        return info
    path.unlink(missing_ok=True)
    return None


def write_serve_info(workspace_path: str | os.PathLike, info: ServeInfo) -> Path:
    path = serve_info_path(workspace_path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2), encoding="utf-8")
    os.replace(tmp, path)
    return path


def remove_serve_info(workspace_path: str | os.PathLike, pid: int) -> None:
    """Remove the file if this process (``pid``) wrote it."""
    path = serve_info_path(workspace_path)
    try:
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()
    except (FileNotFoundError, ValueError):
        pass

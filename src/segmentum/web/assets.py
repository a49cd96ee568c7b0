"""The web app's front-end packages: which npm files it serves, the copy step, the check.

The packages are pinned in ``package.json`` / ``package-lock.json`` at the repository root.
The build (``make install``) runs ``npm ci`` and then ``python -m segmentum.web.assets``,
which copies the files below from ``node_modules/`` into ``static/vendor/`` (not committed;
shipped in the wheel as package data), with ``manifest.json`` naming each package's
version. A user installing the wheel needs no Node.

An app without them (a source checkout that skipped ``npm ci``) still answers: every page
says which files are missing and the command that brings them (:func:`missing`).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

__all__ = ["VENDOR", "VENDOR_DIR", "missing", "copy_vendor", "main"]

# served name -> (npm package, path inside the package)
VENDOR: dict[str, tuple[str, str]] = {
    "htmx.min.js": ("htmx.org", "dist/htmx.min.js"),
    "alpine.min.js": ("alpinejs", "dist/cdn.min.js"),
    "vega.min.js": ("vega", "build/vega.min.js"),
    "vega-lite.min.js": ("vega-lite", "build/vega-lite.min.js"),
    "vega-embed.min.js": ("vega-embed", "build/vega-embed.min.js"),
}
VENDOR_DIR = Path(__file__).resolve().parent / "static" / "vendor"
BUILD_HINT = "npm ci && python -m segmentum.web.assets (both are part of `make install`)"


def missing(folder: Path = VENDOR_DIR) -> list[str]:
    """The vendor files this installation lacks (empty when the build ran)."""
    return [name for name in VENDOR if not (folder / name).is_file()]


def copy_vendor(node_modules: Path, folder: Path = VENDOR_DIR) -> dict[str, str]:
    """Copy every file of :data:`VENDOR` from ``node_modules`` into ``folder``; returns
    (and writes as ``manifest.json``) each package's version."""
    absent = [f"{pkg}/{path}" for pkg, path in VENDOR.values() if not (node_modules / pkg / path).is_file()]
    if absent:
        raise FileNotFoundError(
            f"{node_modules} lacks {', '.join(absent)}: run `npm ci` in the repository root first."
        )
    folder.mkdir(parents=True, exist_ok=True)
    versions = {}
    for name, (pkg, path) in VENDOR.items():
        shutil.copyfile(node_modules / pkg / path, folder / name)
        meta = json.loads((node_modules / pkg / "package.json").read_text(encoding="utf-8"))
        versions[pkg] = meta["version"]
    (folder / "manifest.json").write_text(json.dumps(versions, indent=2) + "\n", encoding="utf-8")
    return versions


def main(argv: list[str] | None = None) -> int:
    """``python -m segmentum.web.assets [NODE_MODULES]`` (default: ./node_modules)."""
    args = sys.argv[1:] if argv is None else argv
    node_modules = Path(args[0] if args else "node_modules").resolve()
    try:
        versions = copy_vendor(node_modules)
    except FileNotFoundError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    print(f"Copied {', '.join(f'{k} {v}' for k, v in versions.items())} into {VENDOR_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

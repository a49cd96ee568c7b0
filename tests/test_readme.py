"""The documentation is executable: every shell and Python block of README.md and docs/*.md
runs as written on a fresh demo workspace, so the text cannot drift from the program.

How a fenced block is treated is said by its info string (GitHub highlights by the first word
and ignores the rest):

    bash                 each command runs in order in the demo folder and must exit 0;
                         ``$ cmd`` lines are commands followed by shown output (not run);
                         ``# ...`` lines are comments
    bash fails           the same, but each command must exit non-zero (a documented mistake)
    bash background      each command is started in the background, kept running while the
                         rest of the document runs, stopped at the end
    python               runs with the project's Python in the demo folder
    yaml file=PATH       (or json / text / csv) written to PATH before the document runs
    rule                 each line (comments stripped) is a rule that must parse
    text, console, ebnf, tree, output
                         shown, never run

A block without an info string fails the test: every block says what it is.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
SHOWN = {"text", "console", "ebnf", "tree", "output", "json", "yaml", "csv", "html"}
RUN = {"bash", "python", "rule"}

# Commands that cannot run inside the test suite, each with the reason.
NOT_RUN = {
    "make demo": "builds the venv and runs `segmentum demo`, which this test runs itself",
    "make test": "the test suite itself",
}

# Commands on the public CDNOW log, run where ../shared/data has it (developers and CI), left
# out elsewhere: a clone on its own has no copy of the file.
NEEDS_CDNOW = ("CDNOW_master.txt", "cdnow.duckdb")

FENCE = re.compile(r"^```(.*)$")


class Block:
    def __init__(self, doc: Path, line: int, info: str, body: str) -> None:
        self.doc, self.line, self.body = doc, line, body
        words = info.split()
        self.lang = words[0] if words else ""
        self.attrs = {w.split("=", 1)[0]: (w.split("=", 1)[1] if "=" in w else True) for w in words[1:]}

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(REPO)}:{self.line}"


def blocks(doc: Path) -> list[Block]:
    out, info, start, body = [], None, 0, []
    for n, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        m = FENCE.match(line)
        if m and info is None:
            info, start, body = m.group(1).strip(), n, []
        elif m and not m.group(1).strip():
            out.append(Block(doc, start, info, "\n".join(body) + "\n"))
            info = None
        elif info is not None:
            body.append(line)
    return out


def commands(body: str) -> list[tuple[str, bool]]:
    """(command, shown_output_follows) for a shell block: continuation lines joined, comments
    and shown output left out; a command ending inside quotes goes on to the next line."""
    cmds: list[tuple[str, bool]] = []
    pending = ""
    in_output = continued = False
    for raw in body.splitlines():
        line = raw.rstrip()
        if continued:
            pending += line.strip()
            continued = False
        elif pending:
            pending += "\n" + line
        else:
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                in_output = False if not stripped else in_output
                continue
            if stripped.startswith("$ "):
                pending, in_output = stripped[2:], True
            elif in_output:
                continue  # shown output of a `$ ` command
            else:
                pending = stripped
        if pending.endswith("\\"):
            pending, continued = pending[:-1].rstrip() + " ", True
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on
            continue
        cmds.append((pending, in_output))
        pending = ""
    assert not pending, f"unterminated command: {pending!r}"
    return cmds


def test_every_block_says_what_it_is():
    for doc in DOCS:
        for b in blocks(doc):
            assert b.lang, f"{b.where}: a code block without an info string (bash, python, text, ...)"
            assert b.lang in RUN | SHOWN, f"{b.where}: unknown block kind {b.lang!r}"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """A folder with the demo workspace (`segmentum demo`) and the repository's examples."""
    root = tmp_path_factory.mktemp("readme")
    env = _env(root)
    r = subprocess.run([str(BIN / "segmentum"), "demo"], cwd=root, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    for name in ("examples", "src", "docs"):
        (root / name).symlink_to(REPO / name)
    (root / ".venv").symlink_to(BIN.parent)  # `source .venv/bin/activate` as in a clone
    for shared in (REPO.parent / "shared" / "data",):
        if shared.is_dir():  # the CDNOW log the README loads (developers and CI have it)
            for f in shared.glob("CDNOW_master.txt"):
                shutil.copy(f, root / f.name)
    return root


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGMENTUM_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(root)
    env["COLUMNS"] = "100"
    return env


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_document_runs_as_written(doc: Path, demo: Path, tmp_path: Path):
    work = tmp_path / "work"
    shutil.copytree(demo, work, symlinks=True)
    env = _env(work)
    doc_blocks = blocks(doc)
    for b in doc_blocks:  # files first: commands may name a file shown further down
        if "file" in b.attrs:
            target = work / str(b.attrs["file"])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(b.body, encoding="utf-8")
    background: list[subprocess.Popen] = []
    try:
        for b in doc_blocks:
            if b.lang == "bash":
                _run_shell(b, work, env, background)
            elif b.lang == "python":
                r = subprocess.run([sys.executable, "-c", b.body], cwd=work, env=env,
                                   capture_output=True, text=True, timeout=600)
                assert r.returncode == 0, f"{b.where}: the Python block fails:\n{r.stderr[-3000:]}"
            elif b.lang == "rule":
                _check_rules(b)
    finally:
        for p in background:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def _run_shell(b: Block, work: Path, env: dict, background: list) -> None:
    for cmd, _ in commands(b.body):
        if re.sub(r"\s+#.*$", "", cmd).strip() in NOT_RUN:
            continue
        if any(n in cmd for n in NEEDS_CDNOW) and not (work / "CDNOW_master.txt").exists():
            continue
        if b.attrs.get("background"):
            p = subprocess.Popen(["bash", "-c", cmd], cwd=work, env=env, start_new_session=True,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            background.append(p)
            _wait_for_port(cmd)
            continue
        r = subprocess.run(["bash", "-o", "pipefail", "-c", cmd], cwd=work, env=env,
                           capture_output=True, text=True, timeout=900)
        out = (r.stdout + r.stderr)[-3000:]
        if b.attrs.get("fails"):
            assert r.returncode != 0, f"{b.where}: `{cmd}` is documented to fail but exits 0"
            assert "Traceback" not in out, f"{b.where}: `{cmd}` prints a traceback:\n{out}"
        else:
            assert r.returncode == 0, f"{b.where}: `{cmd}` exits {r.returncode}:\n{out}"


def _wait_for_port(cmd: str, timeout: float = 30.0) -> None:
    import socket

    m = re.search(r"--port[ =](\d+)", cmd)
    if not m:
        time.sleep(2)
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", int(m.group(1)))) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"`{cmd}` did not start listening on port {m.group(1)}")


def _check_rules(b: Block) -> None:
    from segmentum.segments.parser import parse

    for n, line in enumerate(b.body.splitlines(), b.line + 1):
        rule = re.sub(r"\s+#.*$", "", line).strip()
        if rule and not rule.startswith("#"):
            try:
                parse(rule)
            except Exception as exc:  # noqa: BLE001 - the message is the test's output
                raise AssertionError(f"{b.doc.name}:{n}: {rule!r} does not parse: {exc}") from None


def test_shell_splitting_understands_continuations_and_shown_output():
    body = (
        "# a comment\n"
        "segmentum rfm --as-of 2026-11-01   # trailing comment\n"
        "segmentum segment preview --rule 'count(email_open, last 90 days) > 2\n"
        "  and exists(orders)' --as-of 2026-11-01\n"
        "$ segmentum load orders x.csv --json\n"
        '{"input": 9}\n'
        "\n"
        "segmentum a \\\n  --b\n"
    )
    assert commands(body) == [
        ("segmentum rfm --as-of 2026-11-01   # trailing comment", False),
        ("segmentum segment preview --rule 'count(email_open, last 90 days) > 2\n"
         "  and exists(orders)' --as-of 2026-11-01", False),
        ("segmentum load orders x.csv --json", True),
        ("segmentum a --b", False),
    ]

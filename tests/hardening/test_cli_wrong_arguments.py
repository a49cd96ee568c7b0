"""Every CLI command given wrong arguments (an unknown option, a missing argument; a number
option given text, for a sample of them) fails as a usage error: exit code 2, a clear message, no traceback. The
commands are found by walking the Typer app, so a new command is covered without listing it.
Only parse errors are provoked: no command body runs."""

from __future__ import annotations

import sys

import pytest
import typer

from segmentum.cli.app import app, main


def _leaves(cmd, path: tuple[str, ...] = ()):
    """(path, command) of every command that runs (Typer bundles its own click: duck-typed)."""
    if path:
        yield path, cmd  # a group runs too (its callback), e.g. `segmentum rfm`
    if hasattr(cmd, "commands"):
        for name, sub in sorted(cmd.commands.items()):
            yield from _leaves(sub, (*path, name))


LEAVES = list(_leaves(typer.main.get_command(app)))
# options that take a number, in commands of every part of the pipeline
NUMBERS = [(("generate",), "--contacts"), (("demo",), "--contacts"), (("rfm",), "--levels"),
           (("quarantine",), "--limit"), (("segment", "members"), "--limit"),
           (("contact",), "--events"), (("serve",), "--port")]
REQUIRED = [path for path, cmd in LEAVES
            if any(p.param_type_name == "argument" and p.required for p in cmd.params)]


def _run(argv: list[str], capsys) -> tuple[int, str]:
    old = sys.argv
    sys.argv = ["segmentum", *argv]
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        sys.argv = old
    out = capsys.readouterr()
    return done.value.code, out.out + out.err


def _is_usage_error(code: int, text: str, *words: str) -> None:
    assert code == 2, text
    assert "Traceback" not in text, text
    assert any(w in text for w in words), text


def test_the_walk_finds_the_commands():
    names = {" ".join(p) for p, _ in LEAVES}
    assert {"load", "segment preview", "serve", "keys create", "contact erase"} <= names
    assert len(LEAVES) > 60 and REQUIRED


@pytest.mark.parametrize("path", [p for p, _ in LEAVES], ids=" ".join)
def test_an_unknown_option_is_a_usage_error(path, capsys):
    _is_usage_error(*_run([*path, "--no-such-option"], capsys), "No such option")


@pytest.mark.parametrize(("path", "option"), NUMBERS, ids=lambda x: " ".join(x) if isinstance(x, tuple) else x)
def test_a_number_option_given_text_is_a_usage_error(path, option, capsys):
    _is_usage_error(*_run([*path, option, "lots"], capsys), "Invalid value", "is not a valid")


@pytest.mark.parametrize("path", REQUIRED, ids=" ".join)
def test_a_missing_argument_is_a_usage_error(path, capsys):
    _is_usage_error(*_run(list(path), capsys), "Missing argument", "Missing option", "Usage")


def test_an_unknown_command_is_a_usage_error(capsys):
    _is_usage_error(*_run(["segmnt"], capsys), "No such command")

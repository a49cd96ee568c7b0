"""One root error for everything Segmentum raises on purpose, one subclass per stage.

    SegmentumError            a mistake a person can fix; the CLI prints it without a traceback
    ├── UsageError            a bad option, name or argument
    ├── ConfigError           a bad workspace / backend configuration
    ├── MappingError          a bad column-mapping YAML file
    ├── InputFileError        a file that cannot be read at all (not a bad row: those go to quarantine)
    ├── WorkspaceError        the workspace lacks something the command needs (e.g. no orders yet)
    └── NotFittedError        a model used before `fit`
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "SegmentumError",
    "UsageError",
    "ConfigError",
    "MappingError",
    "InputFileError",
    "WorkspaceError",
    "NotFittedError",
    "did_you_mean",
]


class SegmentumError(Exception):
    """Root of every error Segmentum raises for a person to act on."""


class UsageError(SegmentumError):
    """A bad option, name or argument."""


class ConfigError(SegmentumError):
    """A bad workspace or backend configuration."""


class MappingError(SegmentumError):
    """A bad column-mapping file."""


class InputFileError(SegmentumError):
    """A file that cannot be read at all."""


class WorkspaceError(SegmentumError):
    """The workspace lacks what a command needs."""


class NotFittedError(SegmentumError, ValueError):
    """A model was used before it was fitted."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' Did you mean "x"?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f' Did you mean "{close[0]}"?' if close else ""

"""Tables that read well at any width: never a number cut to "1…".

The commands print through :class:`FittingConsole`, which lays out every Rich table it is
given before printing it:

* a table that fits the width is printed as it is;
* on a terminal (or with ``COLUMNS`` set) a wider table is split into parts that fit, each
  repeating the table's leading column(s) - the cohort, the stage, the name - so that every
  cell keeps its full width;
* written to a pipe or a file without ``COLUMNS``, a table is printed whole at its natural
  width (one line per row, for ``less -S``, ``grep`` or a file); ``--json`` is the form for
  programs.

A table says how many leading columns its parts repeat with ``table.keep_columns``
(default 1).
"""

from __future__ import annotations

import copy
import os
from typing import Any

from rich.console import Console
from rich.measure import Measurement
from rich.table import Column, Table

__all__ = ["FittingConsole", "split_table", "natural_width"]


def natural_width(table: Table, console: Console) -> int:
    """The width a table takes with nothing wrapped."""
    return Measurement.get(console, console.options.update(width=10_000), table).maximum


def _part(table: Table, columns: list[Column], title: str | None) -> Table:
    part = copy.copy(table)
    part.columns = []
    for i, column in enumerate(columns):
        column = copy.copy(column)
        column._index = i  # Rich pads the first and last column by their index
        part.columns.append(column)
    part.title = title
    return part


def split_table(table: Table, width: int, console: Console) -> list[Table]:
    """The table as parts no wider than ``width`` (one part when it fits), each with the
    table's leading ``keep_columns`` and as many of the others as fit, in order."""
    keep = getattr(table, "keep_columns", 1)
    if len(table.columns) <= keep + 1 or natural_width(table, console) <= width:
        return [table]
    lead, rest = table.columns[:keep], table.columns[keep:]
    groups: list[list[Column]] = [[]]
    for column in rest:
        trial = _part(table, [*lead, *groups[-1], column], None)
        if groups[-1] and natural_width(trial, console) > width:
            groups.append([])
        groups[-1].append(column)
    n = len(groups)
    return [
        _part(table, [*lead, *group],
              f"{table.title or 'Table'} (part {i} of {n})" if i == 1 else f"... part {i} of {n}")
        for i, group in enumerate(groups, start=1)
    ]


class FittingConsole(Console):
    """A Rich console whose tables are split or widened to be read whole (module doc)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        if not any(isinstance(o, Table) for o in objects):
            return super().print(*objects, **kwargs)
        for obj in objects:
            if not isinstance(obj, Table):
                super().print(obj, **kwargs)
            elif not self.is_terminal and "COLUMNS" not in os.environ:
                self._print_whole(obj, **kwargs)
            else:
                for part in split_table(obj, self.width, self):
                    super().print(part, **kwargs)

    def _print_whole(self, table: Table, **kwargs: Any) -> None:
        width = natural_width(table, self)
        if width <= self.width:
            return super().print(table, **kwargs)
        wide = Console(file=self.file, width=width, no_color=self.no_color)
        wide.print(table, **kwargs)

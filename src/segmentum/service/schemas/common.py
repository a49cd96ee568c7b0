"""The shapes every resource shares: a page of a list, an error body, a cursor.

Every list of the REST API is a :class:`Page`: ``items``, the ``limit`` used, ``next`` (the
cursor of the next page, or null on the last one) and ``total`` where it is cheap to know.
A cursor is opaque text (:mod:`segmentum.crm.cursors`): pass it back as
``?cursor=`` unchanged; a page read with it starts right after that row, so rows added
meanwhile before it never shift what comes next.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Page", "ErrorBody", "Problem", "Model", "MAX_LIMIT"]

T = TypeVar("T")
MAX_LIMIT = 1000


class Model(BaseModel):
    """A response or request body: unknown keys in requests are refused."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    limit: int = Field(description="the most items a page holds (the `limit` asked for)")
    next: str | None = Field(description="cursor of the next page (`?cursor=`); null on the last page")
    total: int | None = Field(default=None, description="items in the whole list, when known")


class Problem(BaseModel):
    field: str
    reason: str


class ErrorBody(BaseModel):
    """What every error answers: ``code`` for programs, ``message`` and ``hint`` for people,
    and what locates the fault (line, column, field, index, ...)."""

    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    hint: str | None = None

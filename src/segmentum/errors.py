"""One root error for everything Segmentum raises on purpose, one subclass per stage.

Every error a person can act on derives from :class:`SegmentumError`. The CLI prints it as
one red line (or ``{"error": {...}}`` with ``--json``) and exits 2; the service returns
``to_dict()`` as the JSON body with the class's ``http_status``. No input ever yields a
traceback: a traceback is a bug.

    SegmentumError                  code            http  a mistake a person can fix
    ├── UsageError                  usage           400   a bad option, name or argument
    │   ├── NotFoundError           not_found       404   no such segment / campaign / contact / key / ...
    │   └── BuilderError            usage           400   a web builder value that is no rule part (segmentum.web.builder)
    ├── ConfigError                 config          400   a bad workspace / backend configuration
    ├── MappingError                mapping         400   a bad column-mapping YAML file
    ├── InputFileError              input_file      400   a file that cannot be read at all
    │   └── EncodingError           encoding        400   bytes that are not the file's encoding
    ├── WorkspaceError              workspace       409   the workspace lacks something the command needs
    │   ├── WorkspaceMissingError   workspace_missing 404 no workspace at that path (typo in -w?)
    │   ├── WorkspaceBusyError      workspace_busy  409   another process holds the workspace
    │   └── ModelConflictError      model_conflict  409   a recompute would change what saved segments mean
    ├── NotFittedError              not_fitted      409   a model used before ``fit``
    ├── TemplateFileError           template_file   400   a bad persona template   (segmentum.personas.library)
    ├── SegmentError                segment         400   a bad segment definition (segmentum.segments.errors)
    │   ├── RuleError               rule            400   located in rule text: line, column, carets
    │   │   ├── SegmentSyntaxError  rule_syntax     400   the text does not parse
    │   │   └── RuleCheckError      rule_check      400   parses, but can't be evaluated here
    │   │       ├── UnknownNameError   unknown_name 400   (segmentum.segments.passes.common)
    │   │       ├── MissingDataError   missing_data 409
    │   │       ├── SegmentCycleError  segment_cycle 400
    │   │       └── RuleTypeError      rule_type    400
    │   ├── SegmentJSONError        segment_json    400   a bad JSON rule, located by a JSON path
    │   ├── SegmentFileError        segment_file    400   a bad segment YAML file, by file and key
    │   ├── SegmentNotFoundError    segment_not_found 404 (segmentum.segments.store)
    │   ├── RefreshError            refresh         409   a refresh that can't be done
    │   └── EvaluationError         evaluation      422   checks, but can't be computed on this data
    ├── ActivationError             activation      400   campaigns, triggers, content, channels
    │   ├── CampaignFileError       campaign_file   400   a bad campaign / trigger YAML file, by file and key
    │   ├── RenderError             render          422   a template that can't render for a contact
    │   ├── ChannelError            channel         502   a channel that refused or failed a message
    │   └── ConsentError            consent         403   a send the contact's consent does not allow
    └── ServiceError                service         500   the HTTP service
        ├── AuthError               unauthorized    401   a missing, unknown or revoked key
        ├── ForbiddenError          forbidden       403   a key without the scope the route needs
        ├── PayloadError            invalid_payload 400   a request body that is not valid
        │   └── PayloadTooLargeError payload_too_large 413
        ├── OverloadedError         overloaded      429   too much at once: retry after ``retry_after``
        └── StorageError            storage         503   storage failed: nothing was acknowledged

``to_dict()`` gives ``{"code", "message", "hint", ...}`` plus whatever locates the fault
(line, column, file, field, index of a batch's event, ...). ``tests/test_errors.py`` checks
that every public error class is drawn above and reachable from the root.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar

__all__ = [
    "SegmentumError",
    "UsageError",
    "NotFoundError",
    "ConfigError",
    "MappingError",
    "InputFileError",
    "EncodingError",
    "WorkspaceError",
    "WorkspaceMissingError",
    "WorkspaceBusyError",
    "ModelConflictError",
    "NotFittedError",
    "ActivationError",
    "CampaignFileError",
    "RenderError",
    "ChannelError",
    "ConsentError",
    "ServiceError",
    "AuthError",
    "ForbiddenError",
    "PayloadError",
    "PayloadTooLargeError",
    "OverloadedError",
    "StorageError",
    "did_you_mean",
]


class SegmentumError(Exception):
    """Root of every error Segmentum raises for a person to act on.

    ``code`` names the kind of fault for programs, ``http_status`` is what the service
    answers with; ``hint`` says how to fix it; keyword ``details`` (file, line, field,
    index, ...) locate it and come back in :meth:`to_dict`.
    """

    code: ClassVar[str] = "error"
    http_status: ClassVar[int] = 400

    def __init__(self, message: str = "", *, hint: str | None = None, **details: Any) -> None:
        self.message = message
        self.hint = hint
        self.details = details
        super().__init__(message)

    def to_dict(self) -> dict[str, Any]:
        """The error as data: ``code``, ``message``, ``hint`` and the details that locate it."""
        data: dict[str, Any] = {"code": self.code, "message": self.message, "hint": self.hint}
        data.update(getattr(self, "details", {}) or {})
        return data

    def __str__(self) -> str:
        message = getattr(self, "message", None)
        if message is None:
            return super().__str__()
        hint = getattr(self, "hint", None)
        if not hint or hint in message:
            return message
        stop = "" if message.endswith((".", "?", "!", ":")) else "."
        return f"{message}{stop} {hint}"


class UsageError(SegmentumError):
    """A bad option, name or argument."""

    code = "usage"


class NotFoundError(UsageError):
    """No such thing by that name or id (segment, campaign, contact, key, ...)."""

    code = "not_found"
    http_status = 404


class ConfigError(SegmentumError):
    """A bad workspace or backend configuration."""

    code = "config"


class MappingError(SegmentumError):
    """A bad column-mapping file."""

    code = "mapping"


class InputFileError(SegmentumError):
    """A file that cannot be read at all."""

    code = "input_file"


class EncodingError(InputFileError):
    """A file whose bytes are not in the encoding it is read with (line, byte offset, likely one)."""

    code = "encoding"


class WorkspaceError(SegmentumError):
    """The workspace lacks what a command needs."""

    code = "workspace"
    http_status = 409


class WorkspaceMissingError(WorkspaceError):
    """No workspace at the path given (only loading and generating create one)."""

    code = "workspace_missing"
    http_status = 404


class WorkspaceBusyError(WorkspaceError):
    """Another process (e.g. ``segmentum serve``) holds the workspace for writing."""

    code = "workspace_busy"


class ModelConflictError(WorkspaceError):
    """Recomputing a model with other settings would change what saved segments mean."""

    code = "model_conflict"


class NotFittedError(SegmentumError, ValueError):
    """A model was used before it was fitted."""

    code = "not_fitted"
    http_status = 409


class ActivationError(SegmentumError):
    """Campaigns, triggers, content and channels."""

    code = "activation"


class CampaignFileError(ActivationError):
    """A bad campaign or trigger YAML file, naming the file and the key at fault."""

    code = "campaign_file"


class RenderError(ActivationError):
    """A message template that cannot be rendered for a contact (e.g. a missing field)."""

    code = "render"
    http_status = 422


class ChannelError(ActivationError):
    """A channel refused or failed a message.

    ``transient``: trying again later may succeed (a 4xx SMTP reply, an HTTP 5xx, a
    timeout); ``uncertain``: the message may have been delivered all the same (the
    connection broke after it was handed over), so it must not be resent blindly."""

    code = "channel"
    http_status = 502

    def __init__(
        self, message: str = "", *, transient: bool = False, uncertain: bool = False, **kw: Any
    ) -> None:
        super().__init__(message, transient=transient, uncertain=uncertain, **kw)
        self.transient = transient
        self.uncertain = uncertain


class ConsentError(ActivationError):
    """A send that the contact's consent or unsubscribe does not allow."""

    code = "consent"
    http_status = 403


class ServiceError(SegmentumError):
    """The HTTP service."""

    code = "service"
    http_status = 500


class AuthError(ServiceError):
    """A missing, unknown or revoked key."""

    code = "unauthorized"
    http_status = 401


class ForbiddenError(ServiceError):
    """A key without the scope the route needs."""

    code = "forbidden"
    http_status = 403


class PayloadError(ServiceError):
    """A request body that is not valid (bad JSON, invalid events: which and why)."""

    code = "invalid_payload"
    http_status = 400


class PayloadTooLargeError(PayloadError):
    """A request, batch or event above its size limit."""

    code = "payload_too_large"
    http_status = 413


class OverloadedError(ServiceError):
    """Too many requests at once; retry after ``retry_after`` seconds."""

    code = "overloaded"
    http_status = 429

    def __init__(self, message: str = "", *, retry_after: float = 1.0, **kw: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kw)
        self.retry_after = retry_after


class StorageError(ServiceError):
    """Storage failed; nothing of the request was acknowledged."""

    code = "storage"
    http_status = 503

    def __init__(self, message: str = "", *, retry_after: float = 5.0, **kw: Any) -> None:
        super().__init__(message, retry_after=retry_after, **kw)
        self.retry_after = retry_after


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' Did you mean "x"?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f' Did you mean "{close[0]}"?' if close else ""

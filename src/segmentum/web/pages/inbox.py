"""``/inbox``: the messages the local SMTP sink caught (:mod:`segmentum.web.inbox`), for
demos and tests: point an smtp channel at the sink and watch the mail land.

    GET /inbox               the newest messages (?offset=), refreshing itself while open
    GET /inbox/list          the list alone (htmx polls it)
    GET /inbox/{id}          one message: headers, text, HTML (sandboxed)
"""

from __future__ import annotations

from fastapi import Request

from segmentum.errors import NotFoundError
from segmentum.web.inbox import inbox_dir, one_message, read_inbox
from segmentum.web.render import page, partial, web_router

__all__ = ["router"]

router = web_router()
PAGE = 50


def _folder(request: Request):
    return inbox_dir(request.app.state.service.settings.workspace_path)


@router.get("/inbox")
async def inbox(request: Request, offset: int = 0):
    total, messages = read_inbox(_folder(request), PAGE, max(offset, 0))
    return page(request, "inbox/list.html", total=total, messages=messages, offset=max(offset, 0),
                page_size=PAGE, folder=_folder(request))


@router.get("/inbox/list")
async def inbox_list(request: Request, offset: int = 0):
    total, messages = read_inbox(_folder(request), PAGE, max(offset, 0))
    return partial(request, "inbox/messages.html", total=total, messages=messages,
                   offset=max(offset, 0), page_size=PAGE, folder=_folder(request))


@router.get("/inbox/{message_id}")
async def message(request: Request, message_id: str):
    found = one_message(_folder(request), message_id)
    if found is None:
        raise NotFoundError(f"No message {message_id!r} in the local inbox.")
    return page(request, "inbox/message.html", m=found)

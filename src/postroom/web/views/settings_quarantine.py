"""Settings → Quarantine: raw mail that failed, its reason, download and Replay.

Replay is the pipeline's own (``PipelineRunner.replay``, as ``/api/v1/raw-messages/replay`` and
``postroom replay``): the mail goes back to the queue and a worker runs it again, under the parse
budget of the workers' parser processes. The request does not parse it itself: quarantined mail is the
suspect kind, and a web request has no budget to kill. The page then shows the outcome, asking again
(htmx) every second while the mail is still queued or being processed.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from postroom.api.disposition import content_disposition
from postroom.api.pagination import Order, PageRequest, keyset_page
from postroom.errors import InvalidSetting
from postroom.service import Service
from postroom.store.models import Connection, Message, RawBody, RawMessage, RawStatus
from postroom.web.deps import AdminUserDep, ServiceDep
from postroom.web.templating import render
from postroom.web.views.settings_people import PAGE_SIZE, not_found

router = APIRouter()

_ORDER = (Order(RawMessage.id, descending=True),)
_SETTLED = frozenset({RawStatus.DONE, RawStatus.DUPLICATE, RawStatus.IGNORED, RawStatus.QUARANTINED})


def _page(service: Service, cursor: str | None) -> dict[str, Any]:
    query = select(RawMessage).where(RawMessage.status == RawStatus.QUARANTINED)
    with service.db.read() as session:
        # The row only: the bytes live in raw_bodies and a listing never needs them.
        rows, next_cursor = keyset_page(session, query, _ORDER, PageRequest(cursor, PAGE_SIZE))
        connection_ids = {r.connection_id for r in rows if r.connection_id is not None}
        names = (
            dict(session.execute(select(Connection.id, Connection.name).where(Connection.id.in_(connection_ids))).all())
            if connection_ids
            else {}
        )
    return {
        "nav": "settings",
        "section": "quarantine",
        "items": [{"raw": r, "connection": names.get(r.connection_id, "")} for r in rows],
        "next_cursor": next_cursor,
        "first_page": cursor is None,
    }


def _result(service: Service, raw_id: int) -> dict[str, Any] | None:
    """What became of a replayed mail, for the result box."""
    with service.db.read() as session:
        raw = session.get(RawMessage, raw_id)
        if raw is None:
            return None
        conversation_id = (
            session.scalar(select(Message.conversation_id).where(Message.id == raw.message_pk))
            if raw.message_pk is not None
            else None
        )
        return {
            "id": raw.id,
            "status": raw.status.value,
            "settled": raw.status in _SETTLED,
            "error": raw.error,
            "attempts": raw.attempts,
            "conversation_id": conversation_id,
        }


@router.get("/settings/quarantine")
def quarantine_page(
    request: Request, service: ServiceDep, user: AdminUserDep, cursor: str | None = None, replayed: int | None = None
) -> Response:
    try:
        context = _page(service, cursor)
    except InvalidSetting:
        context = _page(service, None)
    context["result"] = _result(service, replayed) if replayed is not None else None
    return render(request, "settings/quarantine.html", context, user=user)


@router.get("/settings/quarantine/{raw_id:int}/result")
def replay_result(request: Request, service: ServiceDep, user: AdminUserDep, raw_id: int) -> Response:
    """The result box alone, which htmx asks for until the mail has settled."""
    result = _result(service, raw_id)
    if result is None:
        return not_found(request, user, f"no raw message {raw_id}")
    return render(request, "partials/quarantine_result.html", {"result": result}, user=user)


@router.get("/settings/quarantine/{raw_id:int}.eml")
def download(request: Request, service: ServiceDep, user: AdminUserDep, raw_id: int) -> Response:
    with service.db.read() as session:
        body = session.get(RawBody, raw_id)
        if body is None:
            return not_found(request, user, f"no raw message {raw_id}")
        data = body.data
    # An attachment of type message/rfc822, never shown inline: the bytes are a stranger's.
    return Response(
        data,
        media_type="message/rfc822",
        headers={"Content-Disposition": content_disposition(f"{raw_id}.eml"), "X-Content-Type-Options": "nosniff"},
    )


@router.post("/settings/quarantine/{raw_id:int}/replay")
def replay(request: Request, service: ServiceDep, user: AdminUserDep, raw_id: int) -> Response:
    with service.db.read() as session:
        raw = session.get(RawMessage, raw_id)
        if raw is None:
            return not_found(request, user, f"no raw message {raw_id}")
    # Only a quarantined mail is put back (the service's own condition); another is shown as it is.
    service.pipeline.replay([raw_id])
    return RedirectResponse(f"/settings/quarantine?replayed={raw_id}", status_code=303)

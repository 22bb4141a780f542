"""/api/v1/raw-messages: the raw store — see quarantined mail and replay it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy import select

from postroom.api.deps import ServiceDep
from postroom.api.disposition import content_disposition
from postroom.api.pagination import Order, Page, PageRequest, keyset_page, link_next, page_request
from postroom.api.schemas import RawMessageOut, ReplayIn, ReplayOut
from postroom.errors import NotFound
from postroom.store.models import RawBody, RawMessage, RawStatus

router = APIRouter(tags=["raw messages"])


def _view(raw: RawMessage) -> dict[str, Any]:
    return {
        "id": raw.id,
        "connection_id": raw.connection_id,
        "mailbox_id": raw.mailbox_id,
        "origin": raw.origin,
        "dedupe_key": raw.dedupe_key,
        "header_message_id": raw.header_message_id,
        "size": raw.size,
        "received_at": raw.received_at.isoformat(),
        "status": raw.status.value,
        "error": raw.error,
        "attempts": raw.attempts,
        "message_id": raw.message_pk,
    }


@router.get("/raw-messages", response_model=Page[RawMessageOut])
def list_raw_messages(
    service: ServiceDep,
    request: Request,
    response: Response,
    page: Annotated[PageRequest, Depends(page_request)],
    status: RawStatus | None = None,
    connection_id: int | None = None,
) -> dict[str, Any]:
    """The raw store, newest first; filter by ``status`` (e.g. quarantined) and connection."""
    query = select(RawMessage)
    if status is not None:
        query = query.where(RawMessage.status == status)
    if connection_id is not None:
        query = query.where(RawMessage.connection_id == connection_id)
    with service.db.read() as session:
        # The bytes stay in the database: a listing never needs them.
        rows, next_cursor = keyset_page(session, query, [Order(RawMessage.id, descending=True)], page)
        items = [_view(r) for r in rows]
    link_next(request, response, next_cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/raw-messages/{raw_id}/eml", response_class=Response)
def download_raw(raw_id: int, service: ServiceDep) -> Response:
    with service.db.read() as session:
        body = session.get(RawBody, raw_id)
        if body is None:
            raise NotFound(f"no raw message {raw_id}")
        data = body.data
    return Response(
        data,
        media_type="message/rfc822",
        headers={"Content-Disposition": content_disposition(f"{raw_id}.eml"), "X-Content-Type-Options": "nosniff"},
    )


@router.post("/raw-messages/replay", response_model=ReplayOut)
def replay(body: ReplayIn, service: ServiceDep) -> dict[str, int]:
    """Run quarantined messages through the pipeline again (all of them, or the given ids)."""
    return {"queued": service.pipeline.replay(body.ids)}

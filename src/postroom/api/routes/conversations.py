"""/api/v1/conversations: list, start (agent first), read, reply, change status; attachment files."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from postroom.api.deps import PrincipalDep, ServiceDep
from postroom.api.disposition import content_disposition
from postroom.api.schemas import (
    ConversationListOut,
    ConversationOut,
    ConversationPatch,
    ConversationStartIn,
    MessageOut,
    ReplyIn,
)
from postroom.errors import NotFound
from postroom.helpdesk.conversations import ConversationFilter, message_view
from postroom.store.models import Attachment, ConversationStatus

router = APIRouter(tags=["conversations"])


@router.get("/conversations", response_model=ConversationListOut)
def list_conversations(
    service: ServiceDep,
    connection_id: int | None = None,
    status_: Annotated[ConversationStatus | None, Query(alias="status")] = None,
    contact: Annotated[str | None, Query(description="Contact email address or id.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    flt = ConversationFilter(connection_id=connection_id, status=status_, contact=contact, limit=limit, offset=offset)
    with service.db.read() as session:
        rows, total = service.conversations.search(session, flt)
        return {"total": total, "items": [service.conversations.summary(c) for c in rows]}


@router.post("/conversations", status_code=status.HTTP_201_CREATED, response_model=ConversationOut)
def start_conversation(body: ConversationStartIn, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    """The agent writes first: new conversations rotate through the connection's mailboxes, and a customer
    who was written to before keeps the same sender address (seed 003)."""
    with service.db.write() as session:
        conversation, _, events = service.conversations.start(
            session,
            body.connection_id,
            to=body.to,
            cc=body.cc,
            subject=body.subject,
            text=body.text,
            author=body.author or principal.name or principal.email,
            signer=body.author,
        )
        view = service.conversations.detail(service.conversations.get(session, conversation.id))
    service.outbox_changed()
    service.events.publish(events)
    return view


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
def get_conversation(conversation_id: int, service: ServiceDep) -> dict[str, Any]:
    with service.db.read() as session:
        return service.conversations.detail(service.conversations.get(session, conversation_id))


@router.patch("/conversations/{conversation_id}", response_model=ConversationOut)
def update_conversation(conversation_id: int, body: ConversationPatch, service: ServiceDep) -> dict[str, Any]:
    with service.db.write() as session:
        if body.status is not None:
            service.conversations.set_status(session, conversation_id, ConversationStatus(body.status))
        return service.conversations.detail(service.conversations.get(session, conversation_id))


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageOut,
)
def reply(conversation_id: int, body: ReplyIn, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    """An agent's reply: composed as a threaded answer from the conversation's mailbox and queued for sending."""
    with service.db.write() as session:
        message, events = service.conversations.reply(
            session,
            conversation_id,
            text=body.text,
            author=body.author or principal.name or principal.email,
            signer=body.author,
        )
        view = message_view(message)
    service.outbox_changed()
    service.events.publish(events)
    return view


@router.get("/attachments/{attachment_id}", response_class=Response)
def download_attachment(attachment_id: int, service: ServiceDep) -> Response:
    with service.db.read() as session:
        attachment = session.get(Attachment, attachment_id)
        if attachment is None or attachment.blob_key is None:
            raise NotFound(f"no stored attachment {attachment_id}")
        key, filename, content_type = attachment.blob_key, attachment.filename, attachment.content_type
    data = service.blobs.get(key)
    return Response(
        data,
        media_type=content_type,
        # Never rendered inline by the browser: attachments are untrusted content. The name is the
        # sender's, in any script: content_disposition() writes it as RFC 6266 asks, in ASCII.
        headers={
            "Content-Disposition": content_disposition(filename, "attachment"),
            "X-Content-Type-Options": "nosniff",
        },
    )

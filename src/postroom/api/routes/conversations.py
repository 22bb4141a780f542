"""/api/v1/conversations: list, start (agent first), read, work on (status, priority, assignee, team, tags,
snooze), notes, replies (with copies and files); attachment files."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from postroom.api.deps import PrincipalDep, ServiceDep
from postroom.api.disposition import content_disposition
from postroom.api.pagination import Order, PageRequest, keyset_page, link_next, page_request
from postroom.api.schemas.work import (
    ConversationOut,
    ConversationPage,
    ConversationPatchIn,
    ConversationStartIn,
    MessageOut,
    NoteIn,
    PriorityName,
    ReplyIn,
    Status,
)
from postroom.errors import NotFound
from postroom.helpdesk import search
from postroom.helpdesk.conversations import AttachmentsTooLarge, ConversationFilter, Upload, message_view
from postroom.service import Service
from postroom.store.models import Attachment, Conversation, ConversationStatus, Priority

router = APIRouter(tags=["conversations"])

# Newest activity first; the id breaks ties, so a cursor names one place in the list.
LIST_ORDER = (Order(Conversation.last_activity_at, descending=True), Order(Conversation.id, descending=True))


@router.get("/conversations", response_model=ConversationPage)
def list_conversations(
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: PrincipalDep,
    page: Annotated[PageRequest, Depends(page_request)],
    status_: Annotated[Status | None, Query(alias="status")] = None,
    assignee_id: Annotated[
        str | None, Query(description="A user id, `me` (you) or `none` (unassigned).", pattern=r"^(\d+|me|none)$")
    ] = None,
    team_id: int | None = None,
    connection_id: int | None = None,
    tag: Annotated[str | None, Query(description="A tag name (any case).")] = None,
    priority: PriorityName | None = None,
    customer_id: int | None = None,
    contact_id: int | None = None,
    contact: Annotated[str | None, Query(description="Contact email address or id.")] = None,
    q: Annotated[str | None, Query(description="Full-text search.")] = None,
) -> dict[str, Any]:
    """Conversations by last activity, newest first; `cursor` pages stay put while new mail arrives (a
    conversation that gets new mail moves to the top and is not shown twice)."""
    flt = ConversationFilter(
        connection_id=connection_id,
        status=ConversationStatus(status_) if status_ else None,
        contact=contact,
        contact_id=contact_id,
        customer_id=customer_id,
        assignee_id=principal.user_id
        if assignee_id == "me"
        else (int(assignee_id) if assignee_id and assignee_id.isdigit() else None),
        unassigned=assignee_id == "none",
        team_id=team_id,
        tag=tag,
        priority=Priority(priority) if priority else None,
    )
    conversations = service.conversations
    with service.db.read() as session:
        if q:
            # Full-text search (helpdesk.search): a condition on conversations, in this database's engine.
            flt = dataclasses.replace(flt, matching=search.conversations_matching(session, q))
        rows, next_cursor = keyset_page(session, conversations.list_query(flt), LIST_ORDER, page)
        items = conversations.summaries(session, rows)
    link_next(request, response, next_cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/conversations", status_code=status.HTTP_201_CREATED, response_model=ConversationOut)
def start_conversation(body: ConversationStartIn, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    """The agent writes first: new conversations rotate through the connection's mailboxes, and a customer
    who was written to before keeps the same sender address."""
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
            author_id=principal.user_id,
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
def update_conversation(
    conversation_id: int, body: ConversationPatchIn, service: ServiceDep, principal: PrincipalDep
) -> dict[str, Any]:
    """Change status (`snoozed` needs `snoozed_until`), priority, assignee, team or tags; each change is an
    activity entry by you and an event."""
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    with service.db.write() as session:
        conversation, events = service.conversations.update(
            session, conversation_id, changes, actor_id=principal.user_id
        )
        view = service.conversations.detail(service.conversations.get(session, conversation.id))
    service.events.publish(events)
    return view


@router.post(
    "/conversations/{conversation_id}/notes",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageOut,
)
def add_note(conversation_id: int, body: NoteIn, service: ServiceDep, principal: PrincipalDep) -> dict[str, Any]:
    """An internal note for the team: never emailed, never quoted in a reply. `@name` (a user's name or the
    local part of their address) or `@<id>` in the text, and `mention_ids`, mention users."""
    with service.db.write() as session:
        note, events = service.conversations.add_note(
            session, conversation_id, text=body.text, author_id=principal.user_id, mention_ids=body.mention_ids
        )
        messages: list[dict[str, Any]] = service.conversations.detail(note.conversation)["messages"]
        view = next(m for m in messages if m["id"] == note.id)
    service.events.publish(events)
    return view


_REPLY_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": ReplyIn.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "author": {"type": "string"},
                        "cc": {"type": "string"},
                        "bcc": {"type": "string"},
                        "attachment_ids": {"type": "array", "items": {"type": "integer"}},
                        "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    },
                    "required": ["text"],
                }
            },
        },
    }
}


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageOut,
    openapi_extra=_REPLY_BODY,
    responses={413: {"description": "The files are over the connection's max_attachment_bytes."}},
)
async def reply(conversation_id: int, request: Request, service: ServiceDep, principal: PrincipalDep) -> Any:
    """An agent's reply: composed as a threaded answer from the conversation's mailbox and queued for sending.

    JSON, or multipart/form-data with uploaded `files`. The author is the signed-in user; `author` only
    overrides the name the signature shows."""
    uploads: list[Upload] = []
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        limit = await run_in_threadpool(_attachment_limit, service, conversation_id)
        # A body far over the limit is refused before it is parsed; the parser spools files to disk, and
        # their sizes are checked before any is read into memory.
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD_BYTES:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(AttachmentsTooLarge(int(declared), limit)))
        form = await request.form()
        files = [value for _, value in form.multi_items() if isinstance(value, UploadFile)]
        total = sum(upload.size or 0 for upload in files)
        if total > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(AttachmentsTooLarge(total, limit)))
        fields: dict[str, Any] = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if key != "files":
                    _refuse(("body", key), "only `files` may carry files")
                uploads.append(Upload(value.filename or "", value.content_type or "", await value.read()))
            elif key == "attachment_ids":
                fields.setdefault(key, []).append(value)
            else:
                fields[key] = value
        body = _validate(fields)
    else:
        try:
            raw = await request.json()
        except ValueError:
            _refuse(("body",), "a JSON object or multipart/form-data is expected")
        body = _validate(raw)
    return await run_in_threadpool(
        _reply, service, principal.user_id, principal.name or principal.email, conversation_id, body, uploads
    )


# What a multipart reply may carry besides its files (the text, addresses, part headers).
FORM_OVERHEAD_BYTES = 1024 * 1024


def _attachment_limit(service: Service, conversation_id: int) -> int:
    with service.db.read() as session:
        return service.conversations.attachment_limit(session, conversation_id)


def _reply(
    service: Service, user_id: int, name: str, conversation_id: int, body: ReplyIn, uploads: list[Upload]
) -> dict[str, Any]:
    try:
        with service.db.write() as session:
            message, events = service.conversations.reply(
                session,
                conversation_id,
                text=body.text,
                author=body.author or name,
                signer=body.author,
                author_id=user_id,
                cc=body.cc,
                bcc=body.bcc,
                attachment_ids=body.attachment_ids,
                uploads=uploads,
                blobs=service.blobs,
            )
            session.refresh(message, ["attachments"])
            view = message_view(message)
    except AttachmentsTooLarge as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, str(exc)) from None
    service.outbox_changed()
    service.events.publish(events)
    return view


def _validate(data: Any) -> ReplyIn:
    try:
        return ReplyIn.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def _refuse(loc: tuple[str, ...], message: str) -> Any:
    raise RequestValidationError([{"type": "value_error", "loc": loc, "msg": message}])


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

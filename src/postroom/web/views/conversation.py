"""One conversation: its timeline, the reply editor and notes, the side panel, HTML mail in a sandboxed frame.

The page is rendered whole once; afterwards htmx swaps its parts: the timeline (after a reply, a note or a
change in the side panel, which all add to it), the side panel, the editor, and the delivery line of a
reply still on its way (it asks every 2 s until the outbox settled it). Every change goes through the same
services as the API (``ConversationService.update``, ``.reply``, ``.add_note``, the contacts service).

HTML mail is shown in an ``<iframe sandbox>`` without ``allow-scripts`` and without ``allow-same-origin``
(the frame's document has an opaque origin: it can run nothing and read nothing of ours), whose document
comes from :func:`message_frame` with a policy of its own that allows no fetching but our inline pictures,
and remote pictures (only pictures) once the agent pressed "Load images". The pictures of a mail are asked
for by a document of no origin, so the browser sends them no session cookie: their URLs carry a signature
of their own instead (:func:`_signed`), valid for a few hours.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import weakref
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from postroom.api.disposition import content_disposition
from postroom.errors import Conflict, InvalidSetting, NotFound
from postroom.helpdesk import conversation_page as pages
from postroom.helpdesk import mentions
from postroom.helpdesk.contacts import ContactService
from postroom.helpdesk.conversations import AttachmentsTooLarge, Upload
from postroom.helpdesk.delivery import RETRYABLE, retry_delivery
from postroom.helpdesk.reads import mark_read
from postroom.service import Service
from postroom.store.models import Attachment, Conversation, Direction, Message, OutboxStatus
from postroom.web.deps import ServiceDep, UserDep
from postroom.web.session import WebUser
from postroom.web.templating import render

router = APIRouter()
contacts = ContactService()

# How long a signed picture URL of a mail frame stays valid; a frame shown longer is reloaded with new ones.
INLINE_URL_SECONDS = 6 * 3600
# Types a browser could run as a page (or a script) if it were ever opened from our origin: served as bytes.
_DANGEROUS_TYPES = ("html", "xml", "javascript", "ecmascript", "svg", "xsl", "x-sh", "wasm")
# Pictures a mail may show inline in its frame: raster formats only (SVG can carry script).
_INLINE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/jpg", "image/gif", "image/webp", "image/bmp", "image/avif", "image/x-icon"}
)
_FRAME_POLICY = (
    "default-src 'none'; img-src 'self' data:{remote}; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'self'"
)
_STATUS_LABELS = {
    "queued": ("◷", "Queued"),
    "sending": ("➤", "Sending"),
    "sent": ("✓", "Sent"),
    "bounced": ("⚠", "Bounced"),
    "failed": ("✕", "Failed"),
    "uncertain": ("?", "Uncertain: it may or may not have gone out"),
}
_PENDING = frozenset({OutboxStatus.QUEUED.value, OutboxStatus.SENDING.value})
_RETRYABLE = frozenset(s.value for s in RETRYABLE)


# -- reading ---------------------------------------------------------------------------------------


@router.get("/conversations/{conversation_id}")
def conversation_page(request: Request, service: ServiceDep, user: UserDep, conversation_id: int) -> Response:
    try:
        with service.db.write() as session:
            # Opening the page is reading it: the conversation is no longer unread for this user. A short
            # write of its own (one row), so that the write lock is not held while the page is read.
            if session.get(Conversation, conversation_id) is None:
                raise NotFound(f"no conversation {conversation_id}")
            mark_read(session, user.user_id, conversation_id)
            # The notes naming this user in it are seen too.
            mentions.mark_conversation_seen(session, user.user_id, conversation_id)
        with service.db.read() as session:
            context = _context(service, session, conversation_id)
    except NotFound:
        return _not_found(request, user)
    return render(request, "conversation.html", {**context, "nav": "conversations"}, user=user)


@router.get("/conversations/{conversation_id}/timeline")
def timeline(request: Request, service: ServiceDep, user: UserDep, conversation_id: int) -> Response:
    try:
        with service.db.read() as session:
            context = _context(service, session, conversation_id)
    except NotFound:
        return _not_found(request, user)
    return render(request, "partials/conv_timeline.html", context, user=user)


@router.get("/conversations/{conversation_id}/messages/{message_id}/delivery")
def delivery(request: Request, service: ServiceDep, user: UserDep, conversation_id: int, message_id: int) -> Response:
    with service.db.read() as session:
        message = session.get(Message, message_id)
        if message is None or message.conversation_id != conversation_id or message.direction is not Direction.OUT:
            return _not_found(request, user)
        view = _delivery_view(message)
    return render(request, "partials/conv_delivery.html", {"conversation_id": conversation_id, "m": view}, user=user)


@router.post("/conversations/{conversation_id}/messages/{message_id}/retry")
def retry(request: Request, service: ServiceDep, user: UserDep, conversation_id: int, message_id: int) -> Response:
    error = ""
    try:
        with service.db.write() as session:
            message, events = retry_delivery(session, conversation_id, message_id, actor_id=user.user_id)
            view = _delivery_view(message)
    except NotFound:
        return _not_found(request, user)
    except Conflict as exc:
        error = str(exc)
        events = []
        with service.db.read() as session:
            current = session.get(Message, message_id)
            if current is None:
                return _not_found(request, user)
            view = _delivery_view(current)
    service.outbox_changed()
    service.events.publish(events)
    context = {"conversation_id": conversation_id, "m": view, "error": error}
    return render(request, "partials/conv_delivery.html", context, user=user)


@router.get("/conversations/{conversation_id}/messages/{message_id}/html")
def message_frame(
    service: ServiceDep,
    user: UserDep,
    conversation_id: int,
    message_id: int,
    images: bool = False,
    whole: bool = False,
) -> Response:
    """The document of a message's sandboxed frame (see the module docstring)."""
    with service.db.read() as session:
        message = session.get(Message, message_id)
        if message is None or message.conversation_id != conversation_id or not message.html:
            return Response("no such message", status_code=404, media_type="text/plain")
        cids = {
            (a.content_id or "").strip("<>"): a.id
            for a in message.attachments
            if a.content_id and a.blob_key and a.content_type.lower() in _INLINE_TYPES
        }
        html = message.html
    key = _frame_key(service)
    expires = (int(time.time()) // 3600 + 1) * 3600 + INLINE_URL_SECONDS

    def inline_url(content_id: str) -> str | None:
        attachment_id = cids.get(content_id)
        if attachment_id is None:
            return None
        signature = _signed(key, conversation_id, message_id, attachment_id, expires)
        return (
            f"/conversations/{conversation_id}/messages/{message_id}/inline/{attachment_id}?e={expires}&s={signature}"
        )

    document = pages.frame_document(html, whole=whole, load_images=images, inline_url=inline_url)
    return HTMLResponse(
        document,
        headers={
            "Content-Security-Policy": _FRAME_POLICY.format(remote=" https: http:" if images else ""),
            "X-Frame-Options": "SAMEORIGIN",
            # Remote pictures, once allowed, learn nothing of where they are shown.
            "Referrer-Policy": "no-referrer",
            # Kept for a while: the frame is asked for again whenever the timeline around it is refreshed.
            "Cache-Control": "private, max-age=300",
        },
    )


@router.get("/conversations/{conversation_id}/messages/{message_id}/inline/{attachment_id}")
def inline_picture(
    service: ServiceDep, conversation_id: int, message_id: int, attachment_id: int, e: int = 0, s: str = ""
) -> Response:
    """A picture a mail shows inline (``cid:``), asked for by its frame, which has no session: signed URL."""
    expected = _signed(_frame_key(service), conversation_id, message_id, attachment_id, e)
    if e < time.time() or not hmac.compare_digest(expected, s):
        return Response(status_code=404)
    with service.db.read() as session:
        attachment = session.get(Attachment, attachment_id)
        if (
            attachment is None
            or attachment.message_pk != message_id
            or attachment.blob_key is None
            or attachment.content_type.lower() not in _INLINE_TYPES
        ):
            return Response(status_code=404)
        message = session.get(Message, message_id)
        if message is None or message.conversation_id != conversation_id:
            return Response(status_code=404)
        key, content_type = attachment.blob_key, attachment.content_type.lower()
    return Response(
        service.blobs.get(key),
        media_type=content_type,
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
            # The frame that shows it has an opaque origin: the picture must be allowed to be embedded by it.
            "Cross-Origin-Resource-Policy": "cross-origin",
        },
    )


@router.get("/conversations/{conversation_id}/attachments/{attachment_id}")
def download(
    request: Request, service: ServiceDep, user: UserDep, conversation_id: int, attachment_id: int
) -> Response:
    with service.db.read() as session:
        attachment = session.get(Attachment, attachment_id)
        message = session.get(Message, attachment.message_pk) if attachment is not None else None
        if attachment is None or attachment.blob_key is None or message is None:
            return _not_found(request, user)
        if message.conversation_id != conversation_id:
            return _not_found(request, user)
        key, filename, content_type = attachment.blob_key, attachment.filename, attachment.content_type
    data = service.blobs.get(key)
    if not content_type or any(word in content_type.lower() for word in _DANGEROUS_TYPES):
        # A page or a script of the sender's must never run on our origin, whatever a browser decides.
        content_type = "application/octet-stream"
    return Response(
        data,
        media_type=content_type,
        headers={
            "Content-Disposition": content_disposition(filename, "attachment"),
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )


# -- writing ---------------------------------------------------------------------------------------


@router.post("/conversations/{conversation_id}/reply")
async def reply(request: Request, service: ServiceDep, user: UserDep, conversation_id: int) -> Response:
    """Send a reply (multipart form: ``text``, ``cc``, ``bcc``, ``files``; ``then=resolve`` also resolves)."""
    form = await request.form()
    fields = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    uploads = [
        Upload(value.filename or "", value.content_type or "", await value.read())
        for key, value in form.multi_items()
        if key == "files" and isinstance(value, UploadFile) and (value.filename or value.size)
    ]
    return await run_in_threadpool(_reply, request, service, user, conversation_id, fields, uploads)


def _reply(
    request: Request,
    service: Service,
    user: WebUser,
    conversation_id: int,
    fields: dict[str, str],
    uploads: list[Upload],
) -> Response:
    text, cc, bcc = fields.get("text", ""), fields.get("cc", ""), fields.get("bcc", "")
    resolve = fields.get("then") == "resolve"
    errors: dict[str, str] = {}
    events: list[Any] = []
    try:
        if not text.strip():
            raise InvalidSetting("text", "write a reply first")
        with service.db.write() as session:
            _message, events = service.conversations.reply(
                session,
                conversation_id,
                text=text,
                author=user.display_name,
                author_id=user.user_id,
                cc=cc,
                bcc=bcc,
                uploads=uploads,
                blobs=service.blobs,
            )
            if resolve:
                _, more = service.conversations.update(
                    session, conversation_id, {"status": "resolved"}, actor_id=user.user_id
                )
                events += more
    except NotFound:
        return _not_found(request, user)
    except AttachmentsTooLarge as exc:
        errors["files"] = (
            f"The files add up to {_size(exc.total)}, over this inbox's limit of {_size(exc.limit)}. "
            "Choose smaller files (and choose them again: the browser forgets them)."
        )
    except InvalidSetting as exc:
        errors[exc.field if exc.field in ("text", "cc", "bcc") else "form"] = _sentence(exc.reason)
    except Conflict as exc:
        errors["form"] = _sentence(str(exc))
    if errors:
        with service.db.read() as session:
            context = _context(service, session, conversation_id)
        draft = {"text": text, "cc": cc, "bcc": bcc}
        return render(request, "partials/conv_composer.html", {**context, "errors": errors, "draft": draft}, user=user)
    service.outbox_changed()
    service.events.publish(events)
    with service.db.read() as session:
        context = _context(service, session, conversation_id)
    sent = "Reply queued and conversation resolved." if resolve else "Reply queued."
    return render(
        request,
        "partials/conv_after_reply.html",
        {**context, "sent": sent, "errors": {}, "draft": {}},
        user=user,
        headers={"HX-Trigger": '{"postroom:sent": "reply"}'},
    )


@router.post("/conversations/{conversation_id}/notes")
def add_note(
    request: Request, service: ServiceDep, user: UserDep, conversation_id: int, text: Annotated[str, Form()] = ""
) -> Response:
    error = ""
    try:
        if not text.strip():
            raise InvalidSetting("text", "write the note first")
        with service.db.write() as session:
            _, events = service.conversations.add_note(session, conversation_id, text=text, author_id=user.user_id)
    except NotFound:
        return _not_found(request, user)
    except InvalidSetting as exc:
        error = _sentence(exc.reason)
    with service.db.read() as session:
        context = _context(service, session, conversation_id)
    if error:
        return render(
            request, "partials/conv_note_form.html", {**context, "note_error": error, "note": text}, user=user
        )
    service.events.publish(events)
    return render(
        request,
        "partials/conv_after_note.html",
        {**context, "note_error": "", "note": ""},
        user=user,
        headers={"HX-Trigger": '{"postroom:sent": "note"}'},
    )


@router.post("/conversations/{conversation_id}/work")
async def work(request: Request, service: ServiceDep, user: UserDep, conversation_id: int) -> Response:
    """One change from the side panel: assignee, team, status (with snooze time), priority or tags."""
    form = await request.form()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    return await run_in_threadpool(_work, request, service, user, conversation_id, fields)


def _work(request: Request, service: Service, user: WebUser, conversation_id: int, fields: dict[str, str]) -> Response:
    changes: dict[str, Any] = {}
    error_field, error = "", ""
    # Choosing "Snoozed" only opens the time field: nothing changes until a time is given.
    asking_time = fields.get("status") == "snoozed" and not fields.get("snoozed_until", "").strip()
    try:
        changes = {} if asking_time else _changes(fields)
        if changes:
            with service.db.write() as session:
                _, events = service.conversations.update(session, conversation_id, changes, actor_id=user.user_id)
            service.events.publish(events)
    except NotFound:
        return _not_found(request, user)
    except InvalidSetting as exc:
        error_field, error = exc.field, _sentence(exc.reason)
    with service.db.read() as session:
        context = _context(service, session, conversation_id)
    wanted = {}
    if error or asking_time:
        wanted = {"status": fields.get("status", ""), "until": fields.get("snoozed_until", "")}
    context = {
        **context,
        "panel_error": error,
        "panel_error_field": error_field,
        "wanted": wanted,
        "snooze_hint": asking_time,
    }
    return render(request, "partials/conv_after_work.html", context, user=user)


@router.post("/conversations/{conversation_id}/contact")
def edit_contact(
    request: Request,
    service: ServiceDep,
    user: UserDep,
    conversation_id: int,
    name: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    notes: Annotated[str, Form()] = "",
) -> Response:
    error = ""
    try:
        with service.db.write() as session:
            conversation = service.conversations.get(session, conversation_id)
            if conversation.contact_id is None:
                raise Conflict("this conversation has no contact")
            contacts.update(session, conversation.contact_id, {"name": name, "phone": phone, "notes": notes})
    except NotFound:
        return _not_found(request, user)
    except (InvalidSetting, Conflict) as exc:
        error = _sentence(str(exc))
    with service.db.read() as session:
        context = _context(service, session, conversation_id)
    return render(
        request,
        "partials/conv_panel.html",
        {**context, "contact_error": error, "contact_saved": not error},
        user=user,
    )


# -- helpers ---------------------------------------------------------------------------------------


def _changes(fields: dict[str, str]) -> dict[str, Any]:
    """The form's one change, in the shape ``ConversationService.update`` takes (as the API's PATCH)."""
    changes: dict[str, Any] = {}
    if "assignee_id" in fields:
        changes["assignee_id"] = _id("assignee_id", fields["assignee_id"])
    if "team_id" in fields:
        changes["team_id"] = _id("team_id", fields["team_id"])
    if "priority" in fields:
        changes["priority"] = fields["priority"]
        if fields["priority"] not in ("low", "normal", "high", "urgent"):
            raise InvalidSetting("priority", "choose a priority from the list")
    if "tags" in fields:
        changes["tags"] = [t for t in (part.strip() for part in fields["tags"].split(",")) if t]
    if "status" in fields:
        status = fields["status"]
        if status not in ("open", "pending", "snoozed", "resolved"):
            raise InvalidSetting("status", "choose a status from the list")
        changes["status"] = status
        if status == "snoozed":
            until = fields.get("snoozed_until", "").strip()
            if not until:
                raise InvalidSetting("snoozed_until", "choose until when to snooze")
            try:
                changes["snoozed_until"] = datetime.fromisoformat(until).replace(tzinfo=UTC)
            except ValueError:
                raise InvalidSetting("snoozed_until", "is not a date and time") from None
    return changes


def _id(field: str, value: str) -> int | None:
    if not value.strip():
        return None
    if not value.strip().isdigit():
        raise InvalidSetting(field, "choose from the list")
    return int(value)


def _context(service: Service, session: Session, conversation_id: int) -> dict[str, Any]:
    """Everything the page and its parts show, in a bounded number of queries."""
    conversations = service.conversations
    conversation = conversations.get(session, conversation_id)
    detail = conversations.detail(conversation)
    names = pages.activity_names(session, detail["activities"])
    messages = {m.id: m for m in conversation.messages}
    entries: list[dict[str, Any]] = []
    for item in detail["timeline"]:
        if item["type"] == "activity":
            activity = item["activity"]
            if activity["kind"] == "note":
                continue  # the note itself is in the timeline
            actor = activity["actor"]
            entries.append(
                {
                    "type": "activity",
                    "id": activity["id"],
                    "who": (actor["name"] or actor["email"]) if actor else "Postroom",
                    "what": pages.describe_activity(activity, names),
                    "at": _when(activity["created_at"]),
                }
            )
            continue
        view = item["message"]
        message = messages[view["id"]]
        shown = _message_view(conversation_id, message, view)
        entries.append({"type": item["type"], "m": shown, "at": shown["at"]})
    panel = pages.side_panel(session, conversation)
    # Whom a reply goes to, as the composer decides it (Reply-To of the customer's last mail, else its sender).
    last_in = next((m for m in reversed(conversation.messages) if m.direction is Direction.IN), None)
    if last_in is not None and last_in.reply_to:
        recipients = [a.get("email", "") for a in last_in.reply_to]
    elif last_in is not None and last_in.from_email:
        recipients = [last_in.from_email]
    else:
        recipients = [detail["contact"]["email"]] if detail["contact"] else []
    return {
        "c": detail,
        "conversation_id": conversation_id,
        "status": detail["status"],
        "entries": entries,
        "panel": panel,
        "sender": pages.sender(session, conversation),
        "snoozed_until": conversation.snoozed_until,
        "recipients": ", ".join(recipients),
    }


def _message_view(conversation_id: int, message: Message, view: dict[str, Any]) -> dict[str, Any]:
    direction = message.direction
    if direction is Direction.IN:
        who = message.from_name or message.from_email or "Unknown sender"
    else:
        who = message.author or message.from_name or "Postroom"
    text = message.reply_text or message.text
    html = bool(message.html) and direction is Direction.IN
    shown_inline = message.html.lower() if html else ""
    files = [
        a
        for a in view["attachments"]
        # Pictures shown inside an HTML mail are not files the customer sent along.
        if not (a["content_id"] and f"cid:{a['content_id'].strip('<>').lower()}" in shown_inline)
    ]
    return {
        "id": message.id,
        "direction": direction.value,
        "who": who,
        "email": message.from_email if direction is not Direction.NOTE else "",
        "to": ", ".join(a.get("email", "") for a in (message.to or [])),
        "cc": ", ".join(a.get("email", "") for a in (message.cc or [])),
        "text": text,
        "quoted": message.quoted_text if direction is not Direction.NOTE else "",
        "signature": message.signature if direction is Direction.IN else "",
        "html": html,
        "remote": view["remote_references"] if html else 0,
        "frame_step": pages.frame_height(text, "<img" in message.html) if html else 0,
        "frame_url": f"/conversations/{conversation_id}/messages/{message.id}/html",
        "attachments": files,
        "at": message.created_at.replace(tzinfo=UTC) if message.created_at.tzinfo is None else message.created_at,
        "degraded": message.degraded_reason,
        "delivery": _delivery_view(message)["delivery"] if direction is Direction.OUT else None,
        "bcc": ", ".join(a.get("email", "") for a in (message.bcc or [])),
    }


def _delivery_view(message: Message) -> dict[str, Any]:
    status = message.delivery_status or ""
    icon, label = _STATUS_LABELS.get(status, ("•", status.capitalize() or "Unknown"))
    return {
        "id": message.id,
        "delivery": {
            "status": status,
            "icon": icon,
            "label": label,
            "detail": message.delivery_detail,
            "pending": status in _PENDING,
            "retryable": status in _RETRYABLE,
        },
    }


_FRAME_KEYS: weakref.WeakKeyDictionary[Service, bytes] = weakref.WeakKeyDictionary()


def _frame_key(service: Service) -> bytes:
    key = _FRAME_KEYS.get(service)
    if key is None:
        # Derived from the secret key, like the other signing keys: one secret to keep.
        key = hmac.new(service.settings.fernet_key(), b"postroom mail frame pictures v1", hashlib.sha256).digest()
        _FRAME_KEYS[service] = key
    return key


def _signed(key: bytes, conversation_id: int, message_id: int, attachment_id: int, expires: int) -> str:
    payload = f"{conversation_id}.{message_id}.{attachment_id}.{expires}".encode()
    return hmac.new(key, payload, hashlib.sha256).hexdigest()[:32]


def _when(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _size(value: int) -> str:
    return f"{value / 1_048_576:.1f} MB" if value >= 1_048_576 else f"{max(1, value // 1024)} KB"


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith((".", "!", "?")) else ".")


def _not_found(request: Request, user: WebUser) -> Response:
    context = {"title": "Not found", "message": "This conversation does not exist (any more)."}
    return render(request, "error.html", context, user=user, status_code=404)

"""Stage ``content``: the message row with its texts, and its attachment files into the blob store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, insert, select, update

from postroom.helpdesk.search import index_message
from postroom.pipeline.context import Context, Event, stage
from postroom.store.models import Attachment, Conversation, Direction, Message, Outbox, utcnow


def _insert_all_columns(table: Any) -> Any:
    # Every column is named, so that a forgotten value fails loudly (prepared statements apply no
    # column defaults) instead of storing NULL.
    return insert(table).values({c.name: bindparam(c.name) for c in table.columns if c.name != "id"})


_INSERT_MESSAGE = _insert_all_columns(Message.__table__).returning(Message.id)
_INSERT_ATTACHMENT = _insert_all_columns(Attachment.__table__)
_TOUCH_CONVERSATION = (
    update(Conversation)
    .where(Conversation.id == bindparam("conversation_id"))
    .values(last_message_at=bindparam("now"), updated_at=bindparam("now"), last_activity_at=bindparam("now"))
)


@stage("content")
def content(ctx: Context) -> None:
    parsed = ctx.require_parsed()
    conversation = ctx.conversation
    if conversation is None:
        raise RuntimeError("the thread stage must run before this stage")
    sql = ctx.batch.sql
    now = utcnow()
    attachments = []
    for attachment in parsed.attachments:
        blob_key = None
        if attachment.skipped_reason is None:
            blob_key = ctx.blob_keys.get(attachment.sha256) or ctx.services.blobs.put(
                attachment.payload, attachment.sha256
            )
        attachments.append(
            {
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size": attachment.size,
                "sha256": attachment.sha256,
                "inline": attachment.inline,
                "content_id": attachment.content_id,
                "blob_key": blob_key,
                "skipped_reason": attachment.skipped_reason,
                "in_history": attachment.in_history,
            }
        )
    message_pk = int(
        sql.scalar(
            _INSERT_MESSAGE,
            {
                "conversation_id": conversation.id,
                "connection_id": ctx.raw.connection_id,
                "direction": Direction.IN,
                "author": "",
                "author_id": None,
                "from_email": parsed.from_.email if parsed.from_ else "",
                "from_name": parsed.from_.name if parsed.from_ else "",
                "to": [a.to_json() for a in parsed.to],
                "cc": [a.to_json() for a in parsed.cc],
                "bcc": [],
                "reply_to": [a.to_json() for a in parsed.reply_to],
                "subject": parsed.subject,
                "message_id": parsed.message_id,
                "in_reply_to": parsed.in_reply_to,
                "references": list(parsed.references),
                "text": parsed.text,
                "html": parsed.html,
                "reply_text": parsed.reply_text,
                "signature": parsed.signature,
                "quoted_text": parsed.quoted_text,
                "classification": parsed.classification.to_json(),
                "headers": [[name, value] for name, value in parsed.headers],
                "sent_at": parsed.date,
                "delivery_status": None,
                "delivery_detail": "",
                "degraded_reason": getattr(parsed, "degraded_reason", ""),
                "created_at": now,
            },
        )
    )
    # In this savepoint: a message is searchable exactly when it is stored.
    index_message(
        sql,
        message_pk,
        conversation.id,
        parsed.subject,
        parsed.from_.name if parsed.from_ else "",
        parsed.from_.email if parsed.from_ else "",
        parsed.text,
    )
    for row in attachments:
        row["message_pk"] = message_pk
    sql.executemany(_INSERT_ATTACHMENT, attachments)
    if not ctx.new_conversation:
        # A new conversation was created with these times a moment ago.
        sql.execute(_TOUCH_CONVERSATION, {"conversation_id": conversation.id, "now": now})
    ctx.message_pk = message_pk
    ctx.events.append(Event("message.received", conversation.id, message_pk, ctx.raw.connection_id))
    bounce = parsed.classification.bounce
    if bounce is not None and bounce.original_message_id:
        _mark_bounced(ctx, bounce.original_message_id, bounce.status or "", bounce.diagnostic or "")


def _mark_bounced(ctx: Context, original_message_id: str, status: str, diagnostic: str) -> None:
    """A delivery report about one of our messages: that message bounced, and the agent sees why.

    Rare, so written with the ORM; flushed here, inside the message's savepoint.
    """
    session = ctx.session
    original = session.scalar(
        select(Message).where(
            Message.message_id == original_message_id,
            Message.connection_id == ctx.raw.connection_id,
            Message.direction == Direction.OUT,
        )
    )
    if original is None:
        return
    original.delivery_status = "bounced"
    original.delivery_detail = " ".join(part for part in (status, diagnostic) if part)
    outbox = session.scalar(select(Outbox).where(Outbox.message_pk == original.id))
    if outbox is not None:
        outbox.last_error = original.delivery_detail
    session.flush()
    ctx.events.append(Event("message.bounced", original.conversation_id, original.id, ctx.raw.connection_id))

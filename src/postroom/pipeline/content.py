"""Stage ``content``: the message row with its texts, and its attachment files into the blob store."""

from __future__ import annotations

from sqlalchemy import select

from postroom.pipeline.context import Context, Event, stage
from postroom.store.models import Attachment, Direction, Message, Outbox, utcnow


@stage("content")
def content(ctx: Context) -> None:
    parsed = ctx.require_parsed()
    conversation = ctx.conversation
    if conversation is None:
        raise RuntimeError("the thread stage must run before this stage")
    message = Message(
        conversation_id=conversation.id,
        connection_id=ctx.raw.connection_id,
        direction=Direction.IN,
        from_email=parsed.from_.email if parsed.from_ else "",
        from_name=parsed.from_.name if parsed.from_ else "",
        to=[a.to_json() for a in parsed.to],
        cc=[a.to_json() for a in parsed.cc],
        reply_to=[a.to_json() for a in parsed.reply_to],
        subject=parsed.subject,
        message_id=parsed.message_id,
        in_reply_to=parsed.in_reply_to,
        references=list(parsed.references),
        text=parsed.text,
        html=parsed.html,
        reply_text=parsed.reply_text,
        signature=parsed.signature,
        quoted_text=parsed.quoted_text,
        classification=parsed.classification.to_json(),
        headers=[[name, value] for name, value in parsed.headers],
        sent_at=parsed.date,
    )
    for attachment in parsed.attachments:
        blob_key = None
        if attachment.skipped_reason is None:
            blob_key = ctx.services.blobs.put(attachment.payload, attachment.sha256)
        message.attachments.append(
            Attachment(
                filename=attachment.filename,
                content_type=attachment.content_type,
                size=attachment.size,
                sha256=attachment.sha256,
                inline=attachment.inline,
                content_id=attachment.content_id,
                blob_key=blob_key,
                skipped_reason=attachment.skipped_reason,
                in_history=attachment.in_history,
            )
        )
    ctx.session.add(message)
    now = utcnow()
    conversation.last_message_at = now
    conversation.updated_at = now
    ctx.session.flush()
    ctx.message = message
    ctx.raw.message_pk = message.id
    ctx.events.append(Event("message.received", conversation.id, message.id, ctx.raw.connection_id))
    bounce = parsed.classification.bounce
    if bounce is not None and bounce.original_message_id:
        _mark_bounced(ctx, bounce.original_message_id, bounce.status or "", bounce.diagnostic or "")


def _mark_bounced(ctx: Context, original_message_id: str, status: str, diagnostic: str) -> None:
    """A delivery report about one of our messages: that message bounced, and the agent sees why."""
    original = ctx.session.scalar(
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
    outbox = ctx.session.scalar(select(Outbox).where(Outbox.message_pk == original.id))
    if outbox is not None:
        outbox.last_error = original.delivery_detail
    ctx.events.append(Event("message.bounced", original.conversation_id, original.id, ctx.raw.connection_id))

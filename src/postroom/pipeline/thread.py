"""Stage ``thread``: find the conversation this mail belongs to, or open a new one.

In order (seeds 001, 002, 003):
1. a Postroom reply token (in a recipient's plus address or in a Message-ID it answers);
2. a delivery report about one of our messages joins that message's conversation;
3. In-Reply-To, then References newest first, naming a message this connection knows (RFC 5322 §3.6.4);
4. the open conversation of the same contact on the same mailbox, whatever the subject (seed 003);
5. a reply ("Re: …") to a resolved conversation of the same contact with the same subject reopens it;
6. otherwise a new conversation titled with the subject, the new text as its description (seed 001).
"""

from __future__ import annotations

from sqlalchemy import select

from postroom.jobs.locks import xact_lock
from postroom.mail.threading import read_reply_token, subject_key
from postroom.pipeline.context import Context, Event, stage
from postroom.store.models import Conversation, ConversationStatus, Message, utcnow

SUBJECT_MATCH_CANDIDATES = 20


def _by_message_ids(ctx: Context, message_ids: list[str]) -> Conversation | None:
    if not message_ids:
        return None
    rows = ctx.session.execute(
        select(Message.message_id, Message.conversation_id).where(
            Message.message_id.in_(message_ids), Message.connection_id == ctx.raw.connection_id
        )
    ).all()
    found = {message_id: conversation_id for message_id, conversation_id in rows}
    for message_id in message_ids:
        if message_id in found:
            return ctx.session.get(Conversation, found[message_id])
    return None


def _find(ctx: Context) -> Conversation | None:
    parsed = ctx.require_parsed()
    session = ctx.session
    if parsed.reply_token:
        conversation_id = read_reply_token(parsed.reply_token, ctx.services.reply_token_key)
        if conversation_id is not None:
            conversation = session.get(Conversation, conversation_id)
            if conversation is not None:
                return conversation
    bounce = parsed.classification.bounce
    if bounce is not None and bounce.original_message_id:
        conversation = _by_message_ids(ctx, [bounce.original_message_id])
        if conversation is not None:
            return conversation
    wanted = ([parsed.in_reply_to] if parsed.in_reply_to else []) + list(reversed(parsed.references))
    conversation = _by_message_ids(ctx, list(dict.fromkeys(wanted)))
    if conversation is not None:
        return conversation
    if ctx.contact is None or ctx.mailbox is None:
        return None
    conversation = session.scalar(
        select(Conversation)
        .where(
            Conversation.mailbox_id == ctx.mailbox.id,
            Conversation.contact_id == ctx.contact.id,
            Conversation.status != ConversationStatus.RESOLVED,
        )
        .order_by(Conversation.last_message_at.desc())
        .limit(1)
    )
    if conversation is not None:
        return conversation
    wanted_key = subject_key(parsed.subject)
    if wanted_key and parsed.normalized_subject != parsed.subject.strip():
        resolved = session.scalars(
            select(Conversation)
            .where(Conversation.mailbox_id == ctx.mailbox.id, Conversation.contact_id == ctx.contact.id)
            .order_by(Conversation.last_message_at.desc())
            .limit(SUBJECT_MATCH_CANDIDATES)
        ).all()
        for candidate in resolved:
            if subject_key(candidate.subject) == wanted_key:
                return candidate
    return None


@stage("thread")
def thread(ctx: Context) -> None:
    parsed = ctx.require_parsed()
    if ctx.contact is not None and ctx.mailbox is not None:
        # Two mails of one customer processed at once must not open two conversations.
        xact_lock(ctx.session, f"thread:{ctx.mailbox.id}:{ctx.contact.id}")
    conversation = _find(ctx)
    now = utcnow()
    if conversation is None:
        conversation = Conversation(
            connection_id=ctx.raw.connection_id,
            mailbox_id=ctx.raw.mailbox_id,
            contact_id=ctx.contact.id if ctx.contact else None,
            customer_id=ctx.contact.customer_id if ctx.contact else None,
            subject=parsed.subject,
            description=parsed.reply_text or parsed.text,
            status=ConversationStatus.OPEN,
            created_at=now,
            updated_at=now,
            last_message_at=now,
        )
        ctx.session.add(conversation)
        ctx.session.flush()
        ctx.new_conversation = True
        ctx.events.append(Event("conversation.created", conversation.id, None, ctx.raw.connection_id))
    elif conversation.status == ConversationStatus.RESOLVED and not parsed.classification.automated:
        # A customer writing again into a resolved conversation reopens it; an auto-reply does not.
        conversation.status = ConversationStatus.OPEN
        ctx.events.append(Event("conversation.reopened", conversation.id, None, ctx.raw.connection_id))
    ctx.conversation = conversation

"""Stage ``thread``: find the conversation this mail belongs to, or open a new one.

In order:
1. a Postroom reply token (in a recipient's plus address or in a Message-ID it answers);
2. a delivery report about one of our messages joins that message's conversation;
3. In-Reply-To, then References newest first, naming a message this connection knows (RFC 5322 §3.6.4);
4. with the connection's ``grouping`` "contact" only: the conversation of the same contact on the same
   connection that is not resolved, whatever the subject;
5. a reply ("Re: …") to a conversation of the same contact on the mailbox with the same subject (reopened
   when it was resolved);
6. otherwise a new conversation titled with the subject, the new text as its description, in
   the connection's team's queue.

With ``grouping`` "thread" (the default) a mail that answers nothing opens a conversation of its own:
a customer's two unrelated questions are two work items. Explicit reply headers (rules 1 to 3) win in
both modes, so an answer to an agent's other conversation with the customer still lands there.

A customer's mail puts a conversation that waited for them (pending) or was resolved back in the open
queue. A machine's answer — an out-of-office or a delivery report (RFC 3834, RFC 3464) — never opens,
reopens or starts a conversation: after rules 1 to 3 it joins the contact's latest conversation as it
is, and with none it is kept as an ignored raw message; otherwise it would become the "open conversation
of the contact" that swallows the customer's real answer (rule 4).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, insert, select, update

from postroom.mail.model import Kind
from postroom.mail.threading import read_reply_token, subject_key
from postroom.pipeline.contact import sender_of
from postroom.pipeline.context import Context, ConversationRow, Event, stage
from postroom.store.models import (
    Conversation,
    ConversationStatus,
    Grouping,
    Message,
    Priority,
    RawStatus,
    utcnow,
)

SUBJECT_MATCH_CANDIDATES = 20

_COLUMNS = (Conversation.id, Conversation.status, Conversation.subject)
_BY_ID = select(*_COLUMNS).where(Conversation.id == bindparam("conversation_id"))
_OPEN_OF_CONTACT = (
    select(*_COLUMNS)
    .where(
        Conversation.connection_id == bindparam("connection_id"),
        Conversation.contact_id == bindparam("contact_id"),
        Conversation.status != ConversationStatus.RESOLVED,
    )
    .order_by(Conversation.last_message_at.desc())
    .limit(1)
)
_RECENT_OF_CONTACT = (
    select(*_COLUMNS)
    .where(Conversation.mailbox_id == bindparam("mailbox_id"), Conversation.contact_id == bindparam("contact_id"))
    .order_by(Conversation.last_message_at.desc())
    .limit(SUBJECT_MATCH_CANDIDATES)
)
# Machine answers (out-of-office, delivery reports): they join a conversation but never change its status.
_MACHINE_ANSWERS = (Kind.AUTO_REPLY, Kind.BOUNCE)
_CREATE = (
    insert(Conversation)
    .values({column.name: bindparam(column.name) for column in Conversation.__table__.columns if column.name != "id"})
    .returning(Conversation.id)
)
_REOPEN = (
    update(Conversation)
    .where(Conversation.id == bindparam("conversation_id"))
    .values(status=ConversationStatus.OPEN, snoozed_until=None)
)
# One statement per number of Message-IDs looked up (a prepared statement has a fixed shape).
_BY_MESSAGE_IDS: dict[int, Select[str | None, int]] = {}


def _by_message_ids_statement(count: int) -> Select[str | None, int]:
    found = _BY_MESSAGE_IDS.get(count)
    if found is None:
        statement = select(Message.message_id, Message.conversation_id).where(
            Message.message_id.in_([bindparam(f"m{i}") for i in range(count)]),
            Message.connection_id == bindparam("connection_id"),
        )
        found = _BY_MESSAGE_IDS.setdefault(count, statement)
    return found


def _row(found: tuple[Any, ...] | None) -> ConversationRow | None:
    return None if found is None else ConversationRow(found[0], ConversationStatus(found[1]), found[2])


def _by_message_ids(ctx: Context, message_ids: list[str]) -> ConversationRow | None:
    if not message_ids:
        return None
    values: dict[str, object] = {f"m{i}": message_id for i, message_id in enumerate(message_ids)}
    values["connection_id"] = ctx.raw.connection_id
    rows = ctx.batch.sql.all(_by_message_ids_statement(len(message_ids)), values)
    found = {message_id: conversation_id for message_id, conversation_id in rows}
    for message_id in message_ids:
        if message_id in found:
            return _row(ctx.batch.sql.first(_BY_ID, {"conversation_id": found[message_id]}))
    return None


def _find(ctx: Context) -> ConversationRow | None:
    parsed = ctx.require_parsed()
    sql = ctx.batch.sql
    if parsed.reply_token:
        conversation_id = read_reply_token(parsed.reply_token, ctx.services.reply_token_key)
        if conversation_id is not None:
            conversation = _row(sql.first(_BY_ID, {"conversation_id": conversation_id}))
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
    of_contact = {"mailbox_id": ctx.mailbox.id, "contact_id": ctx.contact.id}
    if parsed.classification.kind in _MACHINE_ANSWERS:
        return _row(sql.first(_RECENT_OF_CONTACT, of_contact))
    if _grouping(ctx) is Grouping.CONTACT:
        found = sql.first(_OPEN_OF_CONTACT, {"connection_id": ctx.raw.connection_id, "contact_id": ctx.contact.id})
        if found is not None:
            return _row(found)
    wanted_key = subject_key(parsed.subject)
    if wanted_key and parsed.normalized_subject != parsed.subject.strip():
        for found in sql.all(_RECENT_OF_CONTACT, of_contact):
            candidate = _row(found)
            if candidate is not None and subject_key(candidate.subject) == wanted_key:
                return candidate
    return None


def _grouping(ctx: Context) -> Grouping:
    return ctx.connection.grouping if ctx.connection is not None else Grouping.THREAD


def thread_lock(ctx: Context, email: str) -> str | None:
    """The key held while a contact's mail is threaded (rules 4 to 6 decide by contact).

    Two mails of one customer processed at once must not open two conversations. Named by the
    contact's address rather than its id: contacts are unique by (lower-case) address, so it is the
    same contact, and the key is known before the contact stage has found or created the row,
    which lets the runner take it ahead with the batch's other keys. Per mailbox, except with
    grouping by contact, whose rule 4 looks across the connection's mailboxes.
    """
    if ctx.mailbox is None:
        return None
    if _grouping(ctx) is Grouping.CONTACT:
        return f"thread:c{ctx.mailbox.connection_id}:{email.lower()}"
    return f"thread:{ctx.mailbox.id}:{email.lower()}"


def _predicted_locks(ctx: Context) -> list[str]:
    key = thread_lock(ctx, sender_of(ctx.require_parsed()).email)
    return [] if key is None else [key]


@stage("thread", locks=_predicted_locks)
def thread(ctx: Context) -> None:
    parsed = ctx.require_parsed()
    key = thread_lock(ctx, ctx.contact.email) if ctx.contact is not None else None
    if key is not None:
        ctx.batch.lock(key)
    conversation = _find(ctx)
    kind = parsed.classification.kind
    if conversation is None and kind in _MACHINE_ANSWERS:
        what = "an automatic reply" if kind is Kind.AUTO_REPLY else "a delivery report"
        ctx.stop(RawStatus.IGNORED, f"{what} that answers no conversation: " + "; ".join(parsed.classification.reasons))
        return
    if conversation is None:
        now = utcnow()
        new_id = ctx.batch.sql.scalar(
            _CREATE,
            {
                "connection_id": ctx.raw.connection_id,
                "mailbox_id": ctx.raw.mailbox_id,
                "contact_id": ctx.contact.id if ctx.contact else None,
                "customer_id": ctx.contact.customer_id if ctx.contact else None,
                "subject": parsed.subject,
                "description": parsed.reply_text or parsed.text,
                "status": ConversationStatus.OPEN,
                "snoozed_until": None,
                "priority": Priority.NORMAL,
                "assignee_id": None,
                # In the team's queue from the start; the ``assign`` stage picks a member when asked to.
                "team_id": ctx.connection.team_id if ctx.connection is not None else None,
                "created_at": now,
                "updated_at": now,
                "last_message_at": now,
                "last_activity_at": now,
            },
        )
        conversation = ConversationRow(int(new_id), ConversationStatus.OPEN, parsed.subject)
        ctx.new_conversation = True
        ctx.events.append(Event("conversation.created", conversation.id, None, ctx.raw.connection_id))
    elif conversation.status is not ConversationStatus.OPEN and not parsed.classification.automated:
        # A customer writing again puts the conversation back in the open queue, whether it waited for
        # their answer (pending), was snoozed (the snooze ends) or was resolved; an automated mail does not.
        ctx.batch.sql.execute(_REOPEN, {"conversation_id": conversation.id})
        conversation.status = ConversationStatus.OPEN
        ctx.events.append(Event("conversation.reopened", conversation.id, None, ctx.raw.connection_id))
    ctx.conversation = conversation

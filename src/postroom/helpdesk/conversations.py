"""Conversations: listing, reading, and agents' replies (composed and queued in one transaction)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, selectinload

from postroom.channels.accounts import mailbox_mail
from postroom.errors import Conflict, InvalidSetting, NotFound
from postroom.mail.addresses import parse_address_list, unsafe_character
from postroom.mail.compose import compose, reply_subject
from postroom.mail.html import displayable_html, remote_references
from postroom.mail.model import Address
from postroom.mail.threading import make_reply_token
from postroom.pipeline.context import Event
from postroom.store.models import (
    Attachment,
    Connection,
    Contact,
    Conversation,
    ConversationStatus,
    CustomerDomain,
    Direction,
    Mailbox,
    Message,
    Outbox,
    OutboxStatus,
    SentCopyStatus,
    utcnow,
)


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    connection_id: int | None = None
    status: ConversationStatus | None = None
    contact: str | None = None  # an email address, or a contact id as a string
    limit: int = 50
    offset: int = 0


def response_delay(connection: Connection) -> float:
    """Seconds a reply waits before it goes out (seed 002 "Response Delay"): uniform in [min, max]."""
    low, high = connection.response_delay_min, connection.response_delay_max
    if high <= 0:
        return 0.0
    # Not a secret, only a human-like pause: the standard generator is the right tool.
    return random.uniform(low, max(low, high))


class ConversationService:
    def __init__(self, reply_token_key: bytes) -> None:
        self.reply_token_key = reply_token_key

    # -- reading -------------------------------------------------------------------------------

    def search(self, session: Session, flt: ConversationFilter) -> tuple[Sequence[Conversation], int]:
        query = select(Conversation)
        if flt.connection_id is not None:
            query = query.where(Conversation.connection_id == flt.connection_id)
        if flt.status is not None:
            query = query.where(Conversation.status == flt.status)
        if flt.contact:
            if flt.contact.isdigit():
                query = query.where(Conversation.contact_id == int(flt.contact))
            else:
                query = query.join(Contact, Contact.id == Conversation.contact_id).where(
                    Contact.email == flt.contact.strip().lower()
                )
        total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
        rows = session.scalars(
            query.options(selectinload(Conversation.contact))
            .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
            .limit(flt.limit)
            .offset(flt.offset)
        ).all()
        return rows, total

    def get(self, session: Session, conversation_id: int) -> Conversation:
        conversation = session.scalar(
            select(Conversation)
            .where(Conversation.id == conversation_id)
            .options(
                selectinload(Conversation.contact),
                selectinload(Conversation.messages).selectinload(Message.attachments),
            )
        )
        if conversation is None:
            raise NotFound(f"no conversation {conversation_id}")
        return conversation

    def set_status(self, session: Session, conversation_id: int, status: ConversationStatus) -> Conversation:
        conversation = self.get(session, conversation_id)
        conversation.status = status
        conversation.updated_at = utcnow()
        return conversation

    # -- replying ------------------------------------------------------------------------------

    def reply(
        self,
        session: Session,
        conversation_id: int,
        *,
        text: str,
        author: str = "",
        signer: str = "",
        send_after: datetime | None = None,
    ) -> tuple[Message, list[Event]]:
        """Compose an agent's reply and queue it in the outbox, in the caller's transaction.

        ``author`` is recorded on the message (who wrote it); ``signer`` fills ``{{ sender_name }}`` in the
        signature and defaults to the mailbox's From name.
        """
        if not text.strip():
            raise InvalidSetting("text", "must not be empty")
        conversation = self.get(session, conversation_id)
        mailbox = session.get(Mailbox, conversation.mailbox_id) if conversation.mailbox_id else None
        if mailbox is None:
            # The connection is kept (SET NULL only when it is deleted) when just the mailbox was removed from it.
            gone = (
                "its mailbox was removed from its connection"
                if conversation.connection_id
                else "its connection was deleted"
            )
            raise Conflict(f"conversation {conversation_id} has no mailbox to answer from ({gone})")
        connection = mailbox.connection
        messages = conversation.messages
        last_in = next((m for m in reversed(messages) if m.direction == Direction.IN), None)
        parent = next((m for m in reversed(messages) if m.direction != Direction.NOTE and m.message_id), None)
        own = {b.address.lower() for b in connection.mailboxes}
        to = self._recipients(conversation, last_in)
        cc = tuple(
            Address(a["email"], a.get("name", ""))
            for a in (last_in.cc if last_in else [])
            if a["email"].lower() not in own and a["email"].lower() not in {t.email.lower() for t in to}
        )
        return self._queue(
            session,
            conversation,
            mailbox,
            to=to,
            cc=cc,
            subject=reply_subject(conversation.subject or (last_in.subject if last_in else "")),
            text=text,
            author=author,
            signer=signer,
            parent=parent,
            send_after=send_after,
        )

    def start(
        self,
        session: Session,
        connection_id: int,
        *,
        to: str,
        subject: str,
        text: str,
        cc: str = "",
        author: str = "",
        signer: str = "",
        send_after: datetime | None = None,
    ) -> tuple[Conversation, Message, list[Event]]:
        """The agent writes first: a new conversation with an outgoing message, queued like a reply.

        Seed 003: a customer who already has a conversation on this connection keeps the address it was
        written from; otherwise new conversations rotate through the connection's mailboxes.
        """
        if not text.strip():
            raise InvalidSetting("text", "must not be empty")
        if not subject.strip():
            raise InvalidSetting("subject", "must not be empty")
        for field, value in (("to", to), ("cc", cc), ("subject", subject.replace("\t", " "))):
            # The API refuses these already; other callers (CLI, automations) get the same answer here,
            # before the tolerant address parser unfolds a line break into another recipient list.
            bad = unsafe_character(value)
            if bad is not None:
                raise InvalidSetting(field, f"must not contain control characters or line separators (found {bad!r})")
        recipients = parse_address_list(to)
        if not recipients or any("@" not in r.email for r in recipients):
            raise InvalidSetting("to", f"{to!r} is not a list of email addresses")
        copies = parse_address_list(cc) if cc.strip() else ()
        connection = session.scalar(
            select(Connection).where(Connection.id == connection_id).options(selectinload(Connection.mailboxes))
        )
        if connection is None:
            raise NotFound(f"no connection {connection_id}")
        if not connection.mailboxes:
            raise Conflict(f"connection {connection.name!r} has no mailbox to write from")
        contact = self._contact(session, recipients[0])
        mailbox = self._sticky_mailbox(session, connection, contact) or self._next_mailbox(session, connection)
        now = utcnow()
        conversation = Conversation(
            connection_id=connection.id,
            mailbox_id=mailbox.id,
            contact_id=contact.id,
            customer_id=contact.customer_id,
            subject=subject.strip(),
            status=ConversationStatus.OPEN,
            created_at=now,
            updated_at=now,
            last_message_at=now,
        )
        session.add(conversation)
        session.flush()
        message, events = self._queue(
            session,
            conversation,
            mailbox,
            to=recipients,
            cc=copies,
            subject=subject.strip(),
            text=text,
            author=author,
            signer=signer,
            parent=None,
            send_after=send_after,
        )
        events.insert(0, Event("conversation.created", conversation.id, None, connection.id))
        return conversation, message, events

    def _contact(self, session: Session, address: Address) -> Contact:
        email = address.email.strip().lower()
        contact = session.scalar(select(Contact).where(Contact.email == email))
        if contact is not None:
            return contact
        domain = email.rpartition("@")[2]
        customer_id = session.scalar(select(CustomerDomain.customer_id).where(CustomerDomain.domain == domain))
        try:
            # A savepoint: the pipeline may create the same contact at the same moment (unique email).
            with session.begin_nested():
                contact = Contact(email=email, name=address.name, customer_id=customer_id)
                session.add(contact)
        except IntegrityError:
            contact = session.scalars(select(Contact).where(Contact.email == email)).one()
        return contact

    def _sticky_mailbox(self, session: Session, connection: Connection, contact: Contact) -> Mailbox | None:
        """The mailbox of the contact's latest conversation on this connection, if it still exists."""
        mailbox_id = session.scalar(
            select(Conversation.mailbox_id)
            .where(
                Conversation.connection_id == connection.id,
                Conversation.contact_id == contact.id,
                Conversation.mailbox_id.is_not(None),
            )
            .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
            .limit(1)
        )
        return next((b for b in connection.mailboxes if b.id == mailbox_id), None)

    def _next_mailbox(self, session: Session, connection: Connection) -> Mailbox:
        # One UPDATE … RETURNING: concurrent starts each take their own turn (the row lock orders them).
        turn = session.execute(
            update(Connection)
            .where(Connection.id == connection.id)
            .values(rotation=Connection.rotation + 1)
            .returning(Connection.rotation)
        ).scalar_one()
        boxes = connection.mailboxes
        return boxes[(turn - 1) % len(boxes)]

    def _queue(
        self,
        session: Session,
        conversation: Conversation,
        mailbox: Mailbox,
        *,
        to: tuple[Address, ...],
        cc: tuple[Address, ...],
        subject: str,
        text: str,
        author: str,
        signer: str,
        parent: Message | None,
        send_after: datetime | None,
    ) -> tuple[Message, list[Event]]:
        connection = mailbox.connection
        references = _ancestors(parent, conversation.messages) if parent is not None else ()
        outgoing = mailbox_mail(
            connection,
            mailbox,
            to=to,
            subject=subject,
            text=text,
            signer=signer,
            cc=cc,
            in_reply_to=parent.message_id if parent else None,
            references=references,
            reply_token=make_reply_token(conversation.id, self.reply_token_key),
        )
        sender, html = outgoing.from_, outgoing.html
        composed = compose(outgoing)
        now = utcnow()
        if send_after is None:
            send_after = now + timedelta(seconds=response_delay(connection))
        message = Message(
            conversation_id=conversation.id,
            connection_id=connection.id,
            direction=Direction.OUT,
            author=author,
            from_email=sender.email,
            from_name=sender.name,
            to=[a.to_json() for a in to],
            cc=[a.to_json() for a in cc],
            reply_to=[a.to_json() for a in outgoing.reply_to],
            subject=composed.subject,
            message_id=composed.message_id,
            in_reply_to=outgoing.in_reply_to,
            references=list(composed.references),
            text=text,
            html=html or "",
            reply_text=text,
            sent_at=None,
            delivery_status=OutboxStatus.QUEUED.value,
            created_at=now,
        )
        session.add(message)
        session.flush()
        session.add(
            Outbox(
                message_pk=message.id,
                connection_id=connection.id,
                mailbox_id=mailbox.id,
                raw=composed.raw,
                message_id=composed.message_id,
                envelope_from=composed.envelope_from,
                recipients=list(composed.recipients),
                status=OutboxStatus.QUEUED,
                next_attempt_at=send_after,
                created_at=now,
            )
        )
        if conversation.status == ConversationStatus.OPEN:
            # The ball is in the customer's court until they answer.
            conversation.status = ConversationStatus.PENDING
        conversation.updated_at = now
        conversation.last_message_at = now
        session.flush()
        return message, [Event("message.queued", conversation.id, message.id, connection.id)]

    def _recipients(self, conversation: Conversation, last_in: Message | None) -> tuple[Address, ...]:
        # Answer where the customer asked answers to go (Reply-To, RFC 5322 §3.6.2), else to the sender.
        if last_in is not None and last_in.reply_to:
            return tuple(Address(a["email"], a.get("name", "")) for a in last_in.reply_to)
        if last_in is not None and last_in.from_email:
            return (Address(last_in.from_email, last_in.from_name),)
        if conversation.contact is not None:
            return (Address(conversation.contact.email, conversation.contact.name),)
        raise Conflict(f"conversation {conversation.id} has nobody to reply to")

    # -- views ---------------------------------------------------------------------------------

    def summary(self, conversation: Conversation) -> dict[str, Any]:
        contact = conversation.contact
        return {
            "id": conversation.id,
            "connection_id": conversation.connection_id,
            "mailbox_id": conversation.mailbox_id,
            "subject": conversation.subject,
            "status": conversation.status.value,
            "contact": {"id": contact.id, "email": contact.email, "name": contact.name} if contact else None,
            "customer_id": conversation.customer_id,
            "assignee_id": conversation.assignee_id,
            "team_id": conversation.team_id,
            "created_at": conversation.created_at.isoformat(),
            "updated_at": conversation.updated_at.isoformat(),
            "last_message_at": conversation.last_message_at.isoformat(),
        }

    def detail(self, conversation: Conversation) -> dict[str, Any]:
        session = object_session(conversation)
        ids = [m.id for m in conversation.messages if m.direction is Direction.OUT]
        copies: dict[int | None, SentCopyStatus | None] = {}
        if session is not None and ids:
            rows = session.execute(select(Outbox.message_pk, Outbox.sent_copy).where(Outbox.message_pk.in_(ids)))
            copies = {pk: copy for pk, copy in rows}
        return {
            **self.summary(conversation),
            "description": conversation.description,
            "messages": [message_view(m, copies.get(m.id)) for m in conversation.messages],
        }


def _ancestors(parent: Message, messages: Sequence[Message]) -> tuple[str, ...]:
    """The References of a reply to ``parent``, without ``parent`` itself (compose appends its id).

    RFC 5322 §3.6.4: the parent's References, else its In-Reply-To. A client that writes In-Reply-To
    but no References cut the chain short; when the message it answers is in the conversation, its
    own chain is known here and carried on, so that every client sees the whole thread.
    """
    if parent.references:
        return tuple(parent.references)
    by_id = {m.message_id: m for m in messages if m.message_id and m.id != parent.id}
    chain: list[str] = []
    seen: set[str] = set()
    current = parent.in_reply_to
    while current and current not in seen:
        seen.add(current)
        earlier = by_id.get(current)
        chain.append(current)
        if earlier is None:
            break
        if earlier.references:
            chain.extend(reversed(earlier.references))
            break
        current = earlier.in_reply_to
    return tuple(reversed(chain))


def message_view(message: Message, sent_copy: SentCopyStatus | None = None) -> dict[str, Any]:
    """The API view of a message; ``sent_copy`` is the state of its copy in the Sent folder, if one is kept."""
    return {
        "id": message.id,
        "direction": message.direction.value,
        "author": message.author,
        "from": {"email": message.from_email, "name": message.from_name},
        "to": message.to,
        "cc": message.cc,
        "reply_to": message.reply_to,
        "subject": message.subject,
        "message_id": message.message_id,
        "in_reply_to": message.in_reply_to,
        "references": message.references,
        "text": message.text,
        # Bodies stored before remote references were always held back are held back when served.
        "html": (html := displayable_html(message.html)),
        "remote_references": remote_references(html),
        "reply_text": message.reply_text,
        "signature": message.signature,
        "quoted_text": message.quoted_text,
        "classification": message.classification,
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "created_at": message.created_at.isoformat(),
        "delivery_status": message.delivery_status,
        "delivery_detail": message.delivery_detail,
        "degraded_reason": message.degraded_reason,
        "sent_copy": sent_copy.value if sent_copy is not None else None,
        "attachments": [attachment_view(a) for a in message.attachments],
    }


def attachment_view(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "sha256": attachment.sha256,
        "inline": attachment.inline,
        "content_id": attachment.content_id,
        "stored": attachment.blob_key is not None,
        "skipped_reason": attachment.skipped_reason,
        "in_history": attachment.in_history,
    }

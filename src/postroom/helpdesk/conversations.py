"""Conversations: listing, reading, and agents' replies (composed and queued in one transaction)."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session, selectinload

from postroom.channels.accounts import mailbox_mail
from postroom.errors import Conflict, InvalidSetting, NotFound
from postroom.helpdesk.contacts import ContactBook, lock_contact_keys
from postroom.helpdesk.customers import customer_refs
from postroom.helpdesk.search import index_message_row
from postroom.mail.addresses import parse_address_list, unsafe_character
from postroom.mail.compose import compose, reply_subject
from postroom.mail.html import displayable_html, remote_references
from postroom.mail.model import Address, OutgoingAttachment
from postroom.mail.threading import make_reply_token
from postroom.pipeline.context import Event
from postroom.store.blobs import BlobStore
from postroom.store.db import SqlCursor
from postroom.store.models import (
    Activity,
    Attachment,
    Connection,
    Contact,
    Conversation,
    ConversationStatus,
    ConversationTag,
    Direction,
    Mailbox,
    Mention,
    Message,
    Outbox,
    OutboxStatus,
    Priority,
    SentCopyStatus,
    Tag,
    Team,
    User,
    utcnow,
)

# ``@name`` in a note: not the middle of an email address (``ada@example.com`` mentions nobody).
_MENTION = re.compile(r"(?<![\w.+-])@([\w][\w.+-]*)")


@dataclass(frozen=True, slots=True)
class ConversationFilter:
    """What a list shows; every field left None filters nothing."""

    connection_id: int | None = None
    status: ConversationStatus | None = None
    contact: str | None = None  # an email address, or a contact id as a string
    contact_id: int | None = None
    customer_id: int | None = None
    # A user id, or "me" (the asking user) and "none" (unassigned), resolved by the caller to
    # ``assignee_id`` / ``unassigned``.
    assignee_id: int | None = None
    unassigned: bool = False
    team_id: int | None = None
    tag: str | None = None
    priority: Priority | None = None
    # A condition on Conversation.id from full-text search (helpdesk.search), when ``q`` was given.
    matching: ColumnElement[bool] | None = None


@dataclass(frozen=True, slots=True)
class Upload:
    """A file an agent attaches to a reply."""

    filename: str
    content_type: str
    data: bytes = dataclasses.field(repr=False)


_UNSET: Any = object()


def response_delay(connection: Connection) -> float:
    """Seconds a reply waits before it goes out (the response delay): uniform in [min, max]."""
    low, high = connection.response_delay_min, connection.response_delay_max
    if high <= 0:
        return 0.0
    # Not a secret, only a human-like pause: the standard generator is the right tool.
    return random.uniform(low, max(low, high))


class ConversationService:
    def __init__(self, reply_token_key: bytes) -> None:
        self.reply_token_key = reply_token_key

    # -- reading -------------------------------------------------------------------------------

    def list_query(self, flt: ConversationFilter) -> Select[Conversation]:
        """The conversations ``flt`` selects, unordered (the caller pages them by last activity)."""
        query = select(Conversation).options(selectinload(Conversation.contact))
        if flt.connection_id is not None:
            query = query.where(Conversation.connection_id == flt.connection_id)
        if flt.status is not None:
            query = query.where(Conversation.status == flt.status)
        if flt.contact_id is not None:
            query = query.where(Conversation.contact_id == flt.contact_id)
        if flt.customer_id is not None:
            query = query.where(Conversation.customer_id == flt.customer_id)
        if flt.unassigned:
            query = query.where(Conversation.assignee_id.is_(None))
        elif flt.assignee_id is not None:
            query = query.where(Conversation.assignee_id == flt.assignee_id)
        if flt.team_id is not None:
            query = query.where(Conversation.team_id == flt.team_id)
        if flt.priority is not None:
            query = query.where(Conversation.priority == flt.priority)
        if flt.tag:
            tagged = (
                select(ConversationTag.conversation_id)
                .join(Tag, Tag.id == ConversationTag.tag_id)
                .where(Tag.key == flt.tag.strip().lower())
            )
            query = query.where(Conversation.id.in_(tagged))
        if flt.contact:
            if flt.contact.isdigit():
                query = query.where(Conversation.contact_id == int(flt.contact))
            else:
                query = query.join(Contact, Contact.id == Conversation.contact_id).where(
                    Contact.email == flt.contact.strip().lower()
                )
        if flt.matching is not None:
            query = query.where(flt.matching)
        return query

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

    # -- working on it -------------------------------------------------------------------------

    def update(
        self, session: Session, conversation_id: int, changes: Mapping[str, Any], *, actor_id: int | None
    ) -> tuple[Conversation, list[Event]]:
        """Apply the given fields (status, snoozed_until, priority, assignee_id, team_id, tags).

        Each real change records an Activity by ``actor_id`` ({"from", "to"}), bumps ``last_activity_at``
        and yields its event; a field set to what it already is changes nothing.
        """
        conversation = self.get(session, conversation_id)
        now = utcnow()
        events: list[Event] = []

        def record(kind: str, event: str, before: Any, after: Any, **more: Any) -> None:
            session.add(
                Activity(
                    conversation_id=conversation.id,
                    actor_id=actor_id,
                    kind=kind,
                    data={"from": before, "to": after, **more},
                    created_at=now,
                )
            )
            events.append(Event(event, conversation.id, None, conversation.connection_id))

        if "status" in changes and changes["status"] is not None:
            status = ConversationStatus(changes["status"])
            until = changes.get("snoozed_until")
            if status is ConversationStatus.SNOOZED:
                if until is None:
                    raise InvalidSetting("snoozed_until", "is required to snooze a conversation")
                until = until if until.tzinfo else until.replace(tzinfo=UTC)
                if until <= now:
                    raise InvalidSetting("snoozed_until", "must be in the future")
            elif until is not None:
                raise InvalidSetting("snoozed_until", "goes only with status 'snoozed'")
            before = (conversation.status.value, conversation.snoozed_until)
            conversation.status = status
            conversation.snoozed_until = until if status is ConversationStatus.SNOOZED else None
            if before != (status.value, conversation.snoozed_until):
                snoozed = conversation.snoozed_until
                more = {"snoozed_until": snoozed.isoformat()} if snoozed is not None else {}
                record("status", "conversation.status_changed", before[0], status.value, **more)
        elif changes.get("snoozed_until") is not None:
            raise InvalidSetting("snoozed_until", "goes only with status 'snoozed'")
        if "priority" in changes and changes["priority"] is not None:
            priority = Priority(changes["priority"])
            if priority is not conversation.priority:
                record("priority", "conversation.priority_changed", conversation.priority.value, priority.value)
                conversation.priority = priority
        if "assignee_id" in changes:
            assignee_id = changes["assignee_id"]
            if assignee_id is not None:
                user = session.get(User, assignee_id)
                if user is None or not user.enabled:
                    raise InvalidSetting("assignee_id", f"no enabled user {assignee_id}")
            if assignee_id != conversation.assignee_id:
                record("assignee", "conversation.assigned", conversation.assignee_id, assignee_id)
                conversation.assignee_id = assignee_id
        if "team_id" in changes:
            team_id = changes["team_id"]
            if team_id is not None and session.get(Team, team_id) is None:
                raise InvalidSetting("team_id", f"no team {team_id}")
            if team_id != conversation.team_id:
                record("team", "conversation.team_changed", conversation.team_id, team_id)
                conversation.team_id = team_id
        if "tags" in changes and changes["tags"] is not None:
            before_tags = self.tags_of(session, [conversation.id])[conversation.id]
            after_tags = self._set_tags(session, conversation.id, changes["tags"])
            if sorted(before_tags, key=str.lower) != sorted(after_tags, key=str.lower):
                record("tags", "conversation.tags_changed", before_tags, after_tags)
        if events:
            conversation.last_activity_at = now
            conversation.updated_at = now
        session.flush()
        return conversation, events

    def _set_tags(self, session: Session, conversation_id: int, names: Sequence[str]) -> list[str]:
        wanted: dict[str, str] = {}
        for raw in names:
            name = " ".join(raw.split())
            if not name:
                raise InvalidSetting("tags", "a tag name must not be empty")
            if len(name) > 100:
                raise InvalidSetting("tags", f"tag {name[:20]!r}… is longer than 100 characters")
            wanted.setdefault(name.lower(), name)
        tags = [self._tag(session, key, name) for key, name in wanted.items()]
        session.execute(delete(ConversationTag).where(ConversationTag.conversation_id == conversation_id))
        session.add_all(ConversationTag(conversation_id=conversation_id, tag_id=t.id) for t in tags)
        session.flush()
        return [t.name for t in sorted(tags, key=lambda t: t.key)]

    def _tag(self, session: Session, key: str, name: str) -> Tag:
        tag = session.scalar(select(Tag).where(Tag.key == key))
        if tag is not None:
            return tag
        try:
            # A savepoint: another agent may create the same tag at the same moment (unique key).
            with session.begin_nested():
                tag = Tag(name=name, key=key)
                session.add(tag)
        except IntegrityError:
            tag = session.scalars(select(Tag).where(Tag.key == key)).one()
        return tag

    def add_note(
        self,
        session: Session,
        conversation_id: int,
        *,
        text: str,
        author_id: int,
        mention_ids: Collection[int] = (),
    ) -> tuple[Message, list[Event]]:
        """An internal note: a message with direction ``note``, never composed, queued or quoted."""
        if not text.strip():
            raise InvalidSetting("text", "must not be empty")
        conversation = self.get(session, conversation_id)
        author = session.get(User, author_id)
        now = utcnow()
        note = Message(
            conversation_id=conversation.id,
            connection_id=conversation.connection_id,
            direction=Direction.NOTE,
            author=author.name or author.email if author is not None else "",
            author_id=author_id,
            text=text,
            reply_text=text,
            created_at=now,
        )
        session.add(note)
        session.flush()
        index_message_row(session, note)
        for user_id in self._mentioned(session, text, mention_ids):
            session.add(Mention(message_pk=note.id, user_id=user_id, created_at=now))
        session.add(
            Activity(
                conversation_id=conversation.id,
                actor_id=author_id,
                kind="note",
                data={"message_id": note.id},
                created_at=now,
            )
        )
        conversation.last_activity_at = now
        conversation.updated_at = now
        session.flush()
        return note, [Event("note.created", conversation.id, note.id, conversation.connection_id)]

    def _mentioned(self, session: Session, text: str, mention_ids: Collection[int]) -> list[int]:
        words = {w.rstrip(".").lower() for w in _MENTION.findall(text)}
        ids = {int(w) for w in words if w.isdigit()}
        for user_id in mention_ids:
            ids.add(user_id)
        found: list[int] = []
        names = {w for w in words if not w.isdigit()}
        users = session.scalars(select(User).where(User.enabled.is_(True)).order_by(User.id)).all()
        for user in users:
            local = user.email.partition("@")[0].lower()
            spellings = {local, user.name.lower(), user.name.replace(" ", "").lower()} - {""}
            if user.id in ids or spellings & names:
                found.append(user.id)
        unknown = set(mention_ids) - set(found)
        if unknown:
            raise InvalidSetting("mention_ids", f"no enabled user {min(unknown)}")
        return found

    # -- replying ------------------------------------------------------------------------------

    def attachment_limit(self, session: Session, conversation_id: int) -> int:
        """The most bytes of files one reply in this conversation may carry (its connection's
        ``max_attachment_bytes``): checked on uploads before they are read into memory."""
        conversation = self.get(session, conversation_id)
        connection = session.get(Connection, conversation.connection_id) if conversation.connection_id else None
        if connection is None:
            raise InvalidSetting("conversation_id", "this conversation has no connection to reply from")
        return connection.max_attachment_bytes

    def reply(
        self,
        session: Session,
        conversation_id: int,
        *,
        text: str,
        author: str = "",
        signer: str = "",
        send_after: datetime | None = None,
        author_id: int | None = None,
        cc: str = "",
        bcc: str = "",
        attachment_ids: Sequence[int] = (),
        uploads: Sequence[Upload] = (),
        blobs: BlobStore | None = None,
    ) -> tuple[Message, list[Event]]:
        """Compose an agent's reply and queue it in the outbox, in the caller's transaction.

        ``author`` is recorded on the message (who wrote it) and ``author_id`` is the signed-in user;
        ``signer`` fills ``{{ sender_name }}`` in the signature and defaults to the mailbox's From name.
        ``cc`` adds copies to those the customer's mail had; ``bcc`` goes in the envelope only. Files
        are ``attachment_ids`` already in this conversation and ``uploads``; together they must fit in
        the connection's ``max_attachment_bytes``.
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
        copies = [
            Address(a["email"], a.get("name", ""))
            for a in (last_in.cc if last_in else [])
            if a["email"].lower() not in own and a["email"].lower() not in {t.email.lower() for t in to}
        ]
        taken = {a.email.lower() for a in (*to, *copies)}
        for address in _addresses("cc", cc):
            if address.email.lower() not in taken:
                copies.append(address)
                taken.add(address.email.lower())
        blind = tuple(a for a in _addresses("bcc", bcc) if a.email.lower() not in taken)
        files = self._files(session, conversation, connection, attachment_ids, uploads, blobs)
        message, events = self._queue(
            session,
            conversation,
            mailbox,
            to=to,
            cc=tuple(copies),
            bcc=blind,
            subject=reply_subject(conversation.subject or (last_in.subject if last_in else "")),
            text=text,
            author=author,
            author_id=author_id,
            signer=signer,
            parent=parent,
            send_after=send_after,
            files=files,
        )
        if files and blobs is not None:
            for file in files:
                digest = hashlib.sha256(file.payload).hexdigest()
                session.add(
                    Attachment(
                        message_pk=message.id,
                        filename=file.filename,
                        content_type=file.content_type,
                        size=len(file.payload),
                        sha256=digest,
                        blob_key=blobs.put(file.payload, digest),
                    )
                )
            session.flush()
        return message, events

    def _files(
        self,
        session: Session,
        conversation: Conversation,
        connection: Connection,
        attachment_ids: Sequence[int],
        uploads: Sequence[Upload],
        blobs: BlobStore | None,
    ) -> list[OutgoingAttachment]:
        if not attachment_ids and not uploads:
            return []
        if blobs is None:
            raise InvalidSetting("attachments", "files cannot be sent from here (no file store)")
        files: list[OutgoingAttachment] = []
        for attachment_id in dict.fromkeys(attachment_ids):
            attachment = session.scalar(
                select(Attachment)
                .join(Message, Message.id == Attachment.message_pk)
                .where(Attachment.id == attachment_id, Message.conversation_id == conversation.id)
            )
            if attachment is None or attachment.blob_key is None:
                raise InvalidSetting("attachment_ids", f"no stored file {attachment_id} in this conversation")
            payload = blobs.get(attachment.blob_key)
            files.append(OutgoingAttachment(attachment.filename, attachment.content_type, payload))
        for upload in uploads:
            name = upload.filename.strip() or "attachment"
            files.append(OutgoingAttachment(name, upload.content_type or "application/octet-stream", upload.data))
        total = sum(len(f.payload) for f in files)
        if total > connection.max_attachment_bytes:
            raise AttachmentsTooLarge(total, connection.max_attachment_bytes)
        return files

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
        author_id: int | None = None,
    ) -> tuple[Conversation, Message, list[Event]]:
        """The agent writes first: a new conversation with an outgoing message, queued like a reply.

        A customer who already has a conversation on this connection keeps the address it was
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
            last_activity_at=now,
        )
        session.add(conversation)
        session.flush()
        message, events = self._queue(
            session,
            conversation,
            mailbox,
            to=recipients,
            cc=copies,
            bcc=(),
            subject=subject.strip(),
            text=text,
            author=author,
            author_id=author_id,
            signer=signer,
            parent=None,
            send_after=send_after,
            files=[],
        )
        events.insert(0, Event("conversation.created", conversation.id, None, connection.id))
        return conversation, message, events

    def _contact(self, session: Session, address: Address) -> Contact:
        # As the pipeline finds senders (helpdesk.contacts): by any of a contact's addresses, linked to the
        # customer of the domain, under the same lock key, and indexed for search.
        email = address.email.strip().lower()
        lock_contact_keys(session, [email])
        row = ContactBook(SqlCursor(session)).find_or_create(Address(email, address.name))
        contact = session.get(Contact, row.id, populate_existing=True)
        if contact is None:
            raise RuntimeError(f"contact {email!r} vanished")
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
        bcc: tuple[Address, ...],
        subject: str,
        text: str,
        author: str,
        author_id: int | None,
        signer: str,
        parent: Message | None,
        send_after: datetime | None,
        files: list[OutgoingAttachment],
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
            bcc=bcc,
            attachments=tuple(files),
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
            author_id=author_id,
            from_email=sender.email,
            from_name=sender.name,
            to=[a.to_json() for a in to],
            cc=[a.to_json() for a in cc],
            bcc=[a.to_json() for a in bcc],
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
        index_message_row(session, message)
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
        conversation.last_activity_at = now
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

    def tags_of(self, session: Session, ids: Sequence[int]) -> dict[int, list[str]]:
        tags: dict[int, list[str]] = {i: [] for i in ids}
        if ids:
            rows = session.execute(
                select(ConversationTag.conversation_id, Tag.name)
                .join(Tag, Tag.id == ConversationTag.tag_id)
                .where(ConversationTag.conversation_id.in_(ids))
                .order_by(Tag.key)
            )
            for conversation_id, name in rows:
                tags[conversation_id].append(name)
        return tags

    def summaries(self, session: Session, conversations: Sequence[Conversation]) -> list[dict[str, Any]]:
        """The list view of conversations, with their assignee, team and tags read in three queries."""
        ids = [c.id for c in conversations]
        user_ids = {c.assignee_id for c in conversations if c.assignee_id is not None}
        team_ids = {c.team_id for c in conversations if c.team_id is not None}
        users = _users(session, user_ids)
        teams = (
            {
                i: {"id": i, "name": n}
                for i, n in session.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids)))
            }
            if team_ids
            else {}
        )
        tags = self.tags_of(session, ids)
        customers = customer_refs(session, {c.customer_id for c in conversations if c.customer_id is not None})
        return [
            {**self._summary(c, users, teams, tags.get(c.id, [])), "customer": customers.get(c.customer_id)}
            for c in conversations
        ]

    def summary(self, conversation: Conversation) -> dict[str, Any]:
        session = object_session(conversation)
        if session is None:
            return self._summary(conversation, {}, {}, [])
        return self.summaries(session, [conversation])[0]

    def _summary(
        self,
        conversation: Conversation,
        users: Mapping[int, dict[str, Any]],
        teams: Mapping[int, dict[str, Any]],
        tags: list[str],
    ) -> dict[str, Any]:
        contact = conversation.contact
        return {
            "id": conversation.id,
            "connection_id": conversation.connection_id,
            "mailbox_id": conversation.mailbox_id,
            "subject": conversation.subject,
            "status": conversation.status.value,
            "snoozed_until": conversation.snoozed_until.isoformat() if conversation.snoozed_until else None,
            "priority": conversation.priority.value,
            "contact": {"id": contact.id, "email": contact.email, "name": contact.name} if contact else None,
            "customer_id": conversation.customer_id,
            "customer": None,
            "assignee_id": conversation.assignee_id,
            "assignee": users.get(conversation.assignee_id) if conversation.assignee_id is not None else None,
            "team_id": conversation.team_id,
            "team": teams.get(conversation.team_id) if conversation.team_id is not None else None,
            "tags": tags,
            "created_at": conversation.created_at.isoformat(),
            "updated_at": conversation.updated_at.isoformat(),
            "last_message_at": conversation.last_message_at.isoformat(),
            "last_activity_at": conversation.last_activity_at.isoformat(),
        }

    def detail(self, conversation: Conversation) -> dict[str, Any]:
        """The conversation with its timeline: messages, notes and activity entries in the order they happened."""
        session = object_session(conversation)
        ids = [m.id for m in conversation.messages if m.direction is Direction.OUT]
        copies: dict[int | None, SentCopyStatus | None] = {}
        activities: list[Activity] = []
        mentions: dict[int, list[int]] = {}
        if session is not None:
            if ids:
                rows = session.execute(select(Outbox.message_pk, Outbox.sent_copy).where(Outbox.message_pk.in_(ids)))
                copies = {pk: copy for pk, copy in rows}
            activities = list(
                session.scalars(
                    select(Activity).where(Activity.conversation_id == conversation.id).order_by(Activity.id)
                )
            )
            notes = [m.id for m in conversation.messages if m.direction is Direction.NOTE]
            if notes:
                for message_pk, user_id in session.execute(
                    select(Mention.message_pk, Mention.user_id)
                    .where(Mention.message_pk.in_(notes))
                    .order_by(Mention.id)
                ):
                    mentions.setdefault(message_pk, []).append(user_id)
        people = {a.actor_id for a in activities if a.actor_id is not None}
        people.update(u for users in mentions.values() for u in users)
        users = _users(session, people) if session is not None else {}
        messages = []
        for m in conversation.messages:
            view = message_view(m, copies.get(m.id))
            view["mentions"] = [users[u] for u in mentions.get(m.id, []) if u in users]
            messages.append(view)
        activity_views = [
            {
                "id": a.id,
                "kind": a.kind,
                "actor": users.get(a.actor_id) if a.actor_id is not None else None,
                "data": a.data,
                "created_at": a.created_at.isoformat(),
            }
            for a in activities
        ]
        entries: list[tuple[datetime, int, int, dict[str, Any]]] = []
        for m, view in zip(conversation.messages, messages, strict=True):
            kind = "note" if m.direction is Direction.NOTE else "message"
            entries.append((m.created_at, 0, m.id, {"type": kind, "at": view["created_at"], "message": view}))
        for a, view in zip(activities, activity_views, strict=True):
            entries.append((a.created_at, 1, a.id, {"type": "activity", "at": view["created_at"], "activity": view}))
        entries.sort(key=lambda e: (e[0], e[1], e[2]))
        base = self.summaries(session, [conversation])[0] if session is not None else self.summary(conversation)
        return {
            **base,
            "description": conversation.description,
            "messages": messages,
            "activities": activity_views,
            "timeline": [e[3] for e in entries],
        }


class AttachmentsTooLarge(InvalidSetting):
    """The files of one reply are over the connection's ``max_attachment_bytes``."""

    def __init__(self, total: int, limit: int) -> None:
        super().__init__(
            "attachments",
            f"the files add up to {total} bytes, over this connection's limit of {limit} bytes (max_attachment_bytes)",
        )
        self.total = total
        self.limit = limit


def _addresses(field_name: str, value: str) -> tuple[Address, ...]:
    if not value.strip():
        return ()
    bad = unsafe_character(value)
    if bad is not None:
        raise InvalidSetting(field_name, f"must not contain control characters or line separators (found {bad!r})")
    found = parse_address_list(value)
    if not found or any("@" not in a.email for a in found):
        raise InvalidSetting(field_name, f"{value!r} is not a list of email addresses")
    return tuple(found)


def _users(session: Session, ids: Collection[int]) -> dict[int, dict[str, Any]]:
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.name, User.email).where(User.id.in_(ids)))
    return {i: {"id": i, "name": name, "email": email} for i, name, email in rows}


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
        "author_id": message.author_id,
        "from": {"email": message.from_email, "name": message.from_name},
        "to": message.to,
        "cc": message.cc,
        "bcc": message.bcc,
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

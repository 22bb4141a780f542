"""SQLAlchemy models: the data model of DESIGN §3.

Portable between SQLite (embedded default) and PostgreSQL (scale-out): only types both understand,
timestamps stored as UTC, JSON through SQLAlchemy's JSON type. Secrets are stored encrypted
(:mod:`postroom.store.secrets`); columns holding ciphertext end in ``_enc``.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are aware UTC in Python and naive UTC in the database, the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# Constraint names are spelled out so that Alembic migrations are the same on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


class ConnectionMode(enum.StrEnum):
    """How mail comes in."""

    IMAP = "imap"  # read the mailbox over IMAP (IDLE + poll)
    POP3 = "pop3"  # read the mailbox over POP3 (UIDL cursor)
    FORWARDING = "forwarding"  # the admin forwards to a generated address on our SMTP listener
    WEBHOOK = "webhook"  # a provider (SendGrid Inbound Parse, Mailgun routes) posts the raw MIME to us


class OutboundKind(enum.StrEnum):
    """How mail goes out: over SMTP or through the SendGrid API."""

    SMTP = "smtp"
    SENDGRID = "sendgrid"


class ConnectionStatus(enum.StrEnum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    ERROR = "ERROR"


class RawStatus(enum.StrEnum):
    PENDING = "pending"  # stored, waiting for the pipeline
    PROCESSING = "processing"  # claimed by a pipeline worker (see claimed_by / claimed_until)
    DONE = "done"  # became (part of) a conversation
    DUPLICATE = "duplicate"  # the same mail was already processed (dedupe stage)
    QUARANTINED = "quarantined"  # a stage failed; `error` says why; `postroom replay` runs it again
    IGNORED = "ignored"  # deliberately not turned into a message (e.g. our own mail looping back); `error` says why


class Direction(enum.StrEnum):
    IN = "in"
    OUT = "out"
    NOTE = "note"


class ConversationStatus(enum.StrEnum):
    OPEN = "open"
    PENDING = "pending"  # answered; waiting for the customer
    SNOOZED = "snoozed"  # set aside until ``snoozed_until`` or the customer's next mail
    RESOLVED = "resolved"


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Role(enum.StrEnum):
    ADMIN = "admin"  # everything
    AGENT = "agent"  # works conversations; no connections, users, tokens or settings


class Availability(enum.StrEnum):
    AVAILABLE = "available"  # takes new conversations from auto-assignment
    AWAY = "away"


class Grouping(enum.StrEnum):
    THREAD = "thread"  # a new thread opens a new conversation; replies join theirs
    CONTACT = "contact"  # while a conversation with the address is open, all its mail joins it


class TokenKind(enum.StrEnum):
    API = "api"  # made by a person for a program; lives until revoked
    ACCESS = "access"  # issued by the OAuth2 password flow; expires
    SESSION = "session"  # a browser session; expires


class OutboxStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for its send time (or for a retry)
    SENDING = "sending"  # claimed by a worker
    SENT = "sent"
    FAILED = "failed"  # permanent failure or retries exhausted; the agent is told
    UNCERTAIN = "uncertain"  # a worker died mid-send: it may have gone out, so it is never re-sent blindly


class SentCopyStatus(enum.StrEnum):
    """The copy of a mail sent over SMTP in the mailbox's Sent folder (IMAP APPEND, see jobs/outbox.py).

    No status (NULL) when no copy is wanted: SendGrid, POP3, ``save_to_sent`` off, providers that file it themselves.
    """

    PENDING = "pending"  # to be filed: set with the row's "sent", retried with backoff, and never filed twice
    FILED = "filed"  # in the Sent folder (``sent_copy_folder``), appended by us or found there on a retry
    FAILED = "failed"  # the attempts ran out; ``sent_copy_error`` says why (the mail itself stays sent)


def _enum(cls: type[enum.StrEnum]) -> Enum:
    # Stored as plain strings (no database ENUM type), so adding a value needs no migration dance.
    return Enum(cls, native_enum=False, length=16, values_callable=lambda e: [m.value for m in e])


class Connection(Base):
    """An inbox: one way mail comes in and goes out, serving one or more mailboxes."""

    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    mode: Mapped[ConnectionMode] = mapped_column(_enum(ConnectionMode), default=ConnectionMode.IMAP)
    # What the admin asked for (Start/Stop) and what the runtime reports back.
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[ConnectionStatus] = mapped_column(_enum(ConnectionStatus), default=ConnectionStatus.STOPPED)
    status_message: Mapped[str] = mapped_column(Text, default="")
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Bumped on every change of settings and on every Start, so a worker knows to (re)start the
    # connection with what is stored now.
    revision: Mapped[int] = mapped_column(Integer, default=1)
    check_interval: Mapped[float] = mapped_column(Float, default=15.0)
    mark_as_read: Mapped[bool] = mapped_column(Boolean, default=True)
    unread_only: Mapped[bool] = mapped_column(Boolean, default=False)
    smtp_signature: Mapped[str] = mapped_column(Text, default="")
    max_attachment_bytes: Mapped[int] = mapped_column(BigInteger, default=10_485_760)
    # Further per-connection settings by their environment-variable names (e.g. EMAIL_NAME); see helpdesk.connections.
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)
    outbound: Mapped[OutboundKind] = mapped_column(_enum(OutboundKind), default=OutboundKind.SMTP)
    sendgrid_api_key_enc: Mapped[str] = mapped_column(Text, default="")
    sendgrid_api_url: Mapped[str] = mapped_column(String(255), default="https://api.sendgrid.com")
    # OAuth applies to the whole connection; every mailbox then carries its own OAuth credentials.
    oauth_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The random local part of a forwarding address (<inbound_key>@<POSTROOM_INBOUND_DOMAIN>), or the key in a
    # webhook URL; None for connections that read a mailbox themselves.
    inbound_key: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    webhook_provider: Mapped[str] = mapped_column(String(16), default="")  # "", "sendgrid" or "mailgun"
    webhook_signing_key_enc: Mapped[str] = mapped_column(Text, default="")
    # POP3 only: delete from the server after the raw mail is stored (off unless the admin asks).
    delete_after_import: Mapped[bool] = mapped_column(Boolean, default=False)
    # Append what we send over SMTP to the mailbox's Sent folder (IMAP connections).
    save_to_sent: Mapped[bool] = mapped_column(Boolean, default=True)
    # Response delay: a reply waits a random time in [min, max] seconds before it goes out.
    response_delay_min: Mapped[float] = mapped_column(Float, default=0.0)
    response_delay_max: Mapped[float] = mapped_column(Float, default=0.0)
    # Where the next agent-first conversation's mailbox rotation continues.
    rotation: Mapped[int] = mapped_column(Integer, default=0)
    # Passwords, tokens and API keys may go over an unencrypted link to a host other than loopback only
    # when the admin allows it here (off by default; shown as a warning).
    allow_plaintext_auth: Mapped[bool] = mapped_column(Boolean, default=False)
    # New conversations of this connection go to this team's queue, and are assigned round robin over its
    # available members when ``auto_assign`` is on.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), default=None)
    auto_assign: Mapped[bool] = mapped_column(Boolean, default=False)
    # How new mail is grouped into conversations (see Grouping).
    grouping: Mapped[Grouping] = mapped_column(_enum(Grouping), default=Grouping.THREAD)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    mailboxes: Mapped[list[Mailbox]] = relationship(
        back_populates="connection", order_by="Mailbox.position", cascade="all, delete-orphan"
    )


class Mailbox(Base):
    """One address of a connection, with its own servers, credentials and import cursor."""

    __tablename__ = "mailboxes"
    __table_args__ = (UniqueConstraint("connection_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    address: Mapped[str] = mapped_column(String(320), index=True)
    email_name: Mapped[str] = mapped_column(String(200), default="")
    message_content_type: Mapped[str] = mapped_column(String(20), default="text/plain")
    username: Mapped[str] = mapped_column(String(320), default="")
    password_enc: Mapped[str] = mapped_column(Text, default="")
    # The incoming server: IMAP, or POP3 when the connection's mode is pop3 (one field for both).
    imap_host: Mapped[str] = mapped_column(String(255), default="")
    imap_port: Mapped[int] = mapped_column(Integer, default=993)
    imap_encryption: Mapped[str] = mapped_column(String(16), default="ssl")
    imap_folder: Mapped[str] = mapped_column(String(255), default="INBOX")
    validate_certificate: Mapped[bool] = mapped_column(Boolean, default=True)
    smtp_host: Mapped[str] = mapped_column(String(255), default="")
    smtp_port: Mapped[int] = mapped_column(Integer, default=587)
    smtp_encryption: Mapped[str] = mapped_column(String(16), default="auto")
    smtp_username: Mapped[str] = mapped_column(String(320), default="")
    smtp_password_enc: Mapped[str] = mapped_column(Text, default="")
    reply_to: Mapped[str] = mapped_column(String(320), default="")  # Reply-To of outgoing mail; empty = the address
    sent_folder: Mapped[str] = mapped_column(String(255), default="")  # empty = the folder marked \Sent
    oauth_client_id: Mapped[str] = mapped_column(String(500), default="")
    oauth_client_secret_enc: Mapped[str] = mapped_column(Text, default="")
    oauth_refresh_token_enc: Mapped[str] = mapped_column(Text, default="")
    oauth_token_uri: Mapped[str] = mapped_column(String(500), default="")
    # The current access token, shared by every worker (refreshed under a lock, see channels/oauth_tokens).
    oauth_access_token_enc: Mapped[str] = mapped_column(Text, default="")
    oauth_access_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    # IMAP cursor (RFC 3501 §2.3.1.1): every UID ≤ last_uid under uidvalidity is in raw_messages.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)

    connection: Mapped[Connection] = relationship(back_populates="mailboxes")


class RawMessage(Base):
    """The bytes of one received mail, committed before the source acknowledged it."""

    __tablename__ = "raw_messages"
    __table_args__ = (
        UniqueConstraint("mailbox_id", "dedupe_key"),
        Index("ix_raw_messages_status_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id", ondelete="SET NULL"), index=True)
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id", ondelete="SET NULL"))
    # "imap:<uidvalidity>:<uid>", "mid:<Message-ID>" or "sha256:<hex>" (DESIGN §1).
    dedupe_key: Mapped[str] = mapped_column(String(1000))
    origin: Mapped[str] = mapped_column(String(16))  # imap, pop3, smtp, webhook
    # The Message-ID header as found (without brackets), read cheaply at store time for resync and dedupe.
    header_message_id: Mapped[str | None] = mapped_column(String(998), index=True, default=None)
    size: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[RawStatus] = mapped_column(_enum(RawStatus), default=RawStatus.PENDING)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), default=None)

    body: Mapped[RawBody] = relationship(lazy="raise", cascade="all, delete-orphan", uselist=False)


class RawBody(Base):
    """The bytes of a raw message, in a table of their own.

    Kept apart so that the frequent status changes of a raw message rewrite a small row: SQLite
    rewrites a whole record, overflow pages included, on every UPDATE.
    """

    __tablename__ = "raw_bodies"

    raw_id: Mapped[int] = mapped_column(ForeignKey("raw_messages.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    domains: Mapped[list[CustomerDomain]] = relationship(back_populates="customer", cascade="all, delete-orphan")


class CustomerDomain(Base):
    """Mail from this domain belongs to the customer (customer domain mapping)."""

    __tablename__ = "customer_domains"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)

    customer: Mapped[Customer] = relationship(back_populates="domains")


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    phone: Mapped[str] = mapped_column(String(50), default="")
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    addresses: Mapped[list[ContactAddress]] = relationship(
        back_populates="contact", cascade="all, delete-orphan", order_by="ContactAddress.id"
    )


class ContactAddress(Base):
    """A further address of a contact (``Contact.email`` is the first); an address belongs to one contact."""

    __tablename__ = "contact_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)

    contact: Mapped[Contact] = relationship(back_populates="addresses")


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_lookup", "mailbox_id", "contact_id", "status"),
        # The lists (newest activity first, often by status) and the snooze alarm clock.
        Index("ix_conversations_status_activity", "status", "last_activity_at", "id"),
        Index("ix_conversations_snooze", "status", "snoozed_until"),
        # Grouping by contact: the contact's conversation on the connection that is not resolved.
        Index("ix_conversations_connection_contact", "connection_id", "contact_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id", ondelete="SET NULL"), index=True)
    # The mailbox the conversation stays on: the agent answers from this address.
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"), index=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ConversationStatus] = mapped_column(_enum(ConversationStatus), default=ConversationStatus.OPEN)
    snoozed_until: Mapped[datetime | None] = mapped_column(default=None)
    priority: Mapped[Priority] = mapped_column(_enum(Priority), default=Priority.NORMAL)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_message_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Any change a person would notice (mail, note, status, assignment…): the order of the lists.
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    messages: Mapped[list[Message]] = relationship(back_populates="conversation", order_by="Message.id")
    contact: Mapped[Contact | None] = relationship()


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_rfc_id", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id", ondelete="SET NULL"))
    direction: Mapped[Direction] = mapped_column(_enum(Direction))
    author: Mapped[str] = mapped_column(String(200), default="")  # the agent who wrote an outgoing message
    # The user who wrote it (a reply or a note); None for mail that came in and for automatic mail.
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    from_email: Mapped[str] = mapped_column(String(320), default="")
    from_name: Mapped[str] = mapped_column(String(200), default="")
    to: Mapped[list[Any]] = mapped_column(default=list)
    cc: Mapped[list[Any]] = mapped_column(default=list)
    # Blind copies of an agent's reply: on record here, never in the MIME (RFC 5322 §3.6.3).
    bcc: Mapped[list[Any]] = mapped_column(default=list)
    reply_to: Mapped[list[Any]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    # RFC 5322 Message-ID, without angle brackets.
    message_id: Mapped[str | None] = mapped_column(String(998), default=None)
    in_reply_to: Mapped[str | None] = mapped_column(String(998), default=None)
    references: Mapped[list[Any]] = mapped_column(default=list)
    text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str] = mapped_column(Text, default="")
    reply_text: Mapped[str] = mapped_column(Text, default="")
    signature: Mapped[str] = mapped_column(Text, default="")
    quoted_text: Mapped[str] = mapped_column(Text, default="")
    classification: Mapped[dict[str, Any]] = mapped_column(default=dict)
    headers: Mapped[list[Any]] = mapped_column(default=list)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)  # Date header (in) or the time sent (out)
    delivery_status: Mapped[str | None] = mapped_column(String(16), default=None)  # outbound: the outbox status
    delivery_detail: Mapped[str] = mapped_column(Text, default="")
    # Why the body was kept raw rather than fully understood (the mail went over its work budget); "" normally.
    degraded_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    attachments: Mapped[list[Attachment]] = relationship(back_populates="message", order_by="Attachment.id")


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    inline: Mapped[bool] = mapped_column(Boolean, default=False)
    content_id: Mapped[str | None] = mapped_column(String(998), default=None)
    # Key in the blob store (content-addressed by sha256); None when the file was skipped.
    blob_key: Mapped[str | None] = mapped_column(String(200), default=None)
    skipped_reason: Mapped[str | None] = mapped_column(Text, default=None)
    in_history: Mapped[bool] = mapped_column(Boolean, default=False)

    message: Mapped[Message] = relationship(back_populates="attachments")


class Outbox(Base):
    """A composed mail waiting to go out; written in the same transaction as its Message."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_sent_copy_due", "sent_copy", "sent_copy_next_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_pk: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"), unique=True)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id", ondelete="SET NULL"), index=True)
    mailbox_id: Mapped[int | None] = mapped_column(ForeignKey("mailboxes.id", ondelete="SET NULL"))
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    message_id: Mapped[str] = mapped_column(String(998))
    envelope_from: Mapped[str] = mapped_column(String(320))
    recipients: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus), default=OutboxStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str] = mapped_column(Text, default="")
    smtp_reply: Mapped[str] = mapped_column(Text, default="")
    claimed_by: Mapped[str | None] = mapped_column(String(100), default=None)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
    # The Sent-folder copy of a mail sent over SMTP: marked pending in the transaction that marks the row sent,
    # so a worker dying after the send leaves a copy to file, never a lost one. While a worker files it,
    # ``sent_copy_next_at`` lies one claim length ahead (the claim); after a failure it is the next attempt.
    sent_copy: Mapped[SentCopyStatus | None] = mapped_column(_enum(SentCopyStatus), default=None)
    sent_copy_attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_copy_next_at: Mapped[datetime | None] = mapped_column(default=None)
    sent_copy_error: Mapped[str] = mapped_column(Text, default="")
    sent_copy_folder: Mapped[str] = mapped_column(String(255), default="")  # where it was filed


class ConnectionLog(Base):
    __tablename__ = "connection_logs"
    __table_args__ = (Index("ix_connection_logs_conn_id", "connection_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    level: Mapped[str] = mapped_column(String(10))
    event: Mapped[str] = mapped_column(String(50))
    message: Mapped[str] = mapped_column(Text)


class ApiToken(Base):
    """An API bearer token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))  # first characters, to tell tokens apart in lists
    is_admin: Mapped[bool] = mapped_column(Boolean, default=True)
    # The user whose role the token carries; every token has one (tokens older than users were given
    # to the first administrator by the migration that brought users).
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[TokenKind] = mapped_column(_enum(TokenKind), default=TokenKind.API)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)  # None: until revoked
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class Lease(Base):
    """Ownership of a piece of work (a connection) by one worker process until ``expires_at`` (DESIGN §4)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    owner: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column()


class WebhookReplay(Base):
    """A signed inbound webhook post already accepted (provider and its one-time token), kept for as long
    as its signature is accepted, so that a captured post is refused by every process, after restarts too."""

    __tablename__ = "webhook_replays"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(index=True)


class User(Base):
    """A person who works in Postroom: an admin or an agent."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # lower case
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.AGENT)
    # argon2id (PHC string); "" for a user who cannot sign in with a password.
    password_hash: Mapped[str] = mapped_column(Text, default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    availability: Mapped[Availability] = mapped_column(_enum(Availability), default=Availability.AVAILABLE)
    # At most this many open conversations from auto-assignment; None: no cap.
    max_open: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(default=None)
    last_sign_in_at: Mapped[datetime | None] = mapped_column(default=None)


class SignInThrottle(Base):
    """Failed sign-ins counted per account (``account:<email>``) and per client address (``ip:<addr>``)."""

    __tablename__ = "sign_in_throttle"

    key: Mapped[str] = mapped_column(String(400), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)


class Invitation(Base):
    """An invitation to join as a user; the link carries a signed token naming this row and its nonce."""

    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[Role] = mapped_column(_enum(Role), default=Role.AGENT)
    nonce: Mapped[str] = mapped_column(String(64))
    invited_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    connection_id: Mapped[int | None] = mapped_column(ForeignKey("connections.id", ondelete="SET NULL"), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Round robin: the member who got the team's last auto-assigned conversation.
    last_assigned_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(100), unique=True)  # the name in lower case: one tag per spelling


class ConversationTag(Base):
    __tablename__ = "conversation_tags"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True)


class Mention(Base):
    """An agent named in a note (``@name`` or by id), for the browser app to show."""

    __tablename__ = "mentions"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    seen_at: Mapped[datetime | None] = mapped_column(default=None)


class ConversationRead(Base):
    """When a user last read a conversation: it is unread for them when a customer wrote after that."""

    __tablename__ = "conversation_reads"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    read_at: Mapped[datetime] = mapped_column(default=utcnow)


class Activity(Base):
    """One change of a conversation (status, assignee, team, priority, tags, note…), for its timeline."""

    __tablename__ = "activities"
    __table_args__ = (Index("ix_activities_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    kind: Mapped[str] = mapped_column(String(32))  # status, assignee, team, priority, tags, note, …
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)  # what changed: {"from": …, "to": …}
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

"""Response and request bodies of the API, as they appear in the OpenAPI document at /docs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class MailboxOut(BaseModel):
    id: int
    position: int
    address: str
    email_name: str
    username: str
    password: str = Field(description="`********` when set; never the password itself.")
    imap_server: str
    imap_port: int
    imap_encryption: str
    imap_mailbox: str
    validate_certificate: bool
    smtp_server: str
    smtp_port: int
    smtp_encryption: str
    smtp_username: str
    smtp_password: str
    message_content_type: str


class ConnectionOut(BaseModel):
    id: int
    name: str
    description: str
    mode: str
    status: Literal["STOPPED", "STARTING", "RUNNING", "ERROR"]
    status_message: str = Field(description="Why the connection is in ERROR; names the account and protocol.")
    status_changed_at: str | None
    enabled: bool = Field(description="Whether the admin started it (Start) or stopped it (Stop).")
    check_interval: float
    mark_as_read: bool
    unread_only: bool
    smtp_signature: str
    max_attachment_bytes: int
    address: str
    email_name: str
    username: str
    password: str
    imap_server: str
    imap_port: str
    imap_encryption: str
    imap_mailbox: str
    validate_certificate: str
    smtp_server: str
    smtp_port: str
    smtp_encryption: str
    smtp_username: str
    smtp_password: str
    message_content_type: str
    mailboxes: list[MailboxOut]
    created_at: str | None
    updated_at: str | None


class ConnectionLogOut(BaseModel):
    id: int
    at: str
    level: str
    event: str
    message: str


class ContactOut(BaseModel):
    id: int
    email: str
    name: str


class ConversationSummaryOut(BaseModel):
    id: int
    connection_id: int | None
    mailbox_id: int | None
    subject: str
    status: Literal["open", "pending", "resolved"]
    contact: ContactOut | None
    customer_id: int | None
    assignee: str | None
    team: str | None
    created_at: str
    updated_at: str
    last_message_at: str


class ConversationListOut(BaseModel):
    total: int
    items: list[ConversationSummaryOut]


class AttachmentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    inline: bool
    content_id: str | None
    stored: bool
    skipped_reason: str | None
    in_history: bool


class AddressOut(BaseModel):
    email: str
    name: str = ""


class MessageOut(BaseModel):
    id: int
    direction: Literal["in", "out", "note"]
    author: str
    from_: AddressOut = Field(alias="from", serialization_alias="from")
    to: list[AddressOut]
    cc: list[AddressOut]
    reply_to: list[AddressOut]
    subject: str
    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    text: str
    html: str
    reply_text: str = Field(description="What the sender newly wrote: no quoted history, no signature.")
    signature: str
    quoted_text: str
    classification: dict[str, Any]
    sent_at: str | None
    created_at: str
    delivery_status: str | None = Field(description="Outgoing mail: queued, sending, sent, failed, uncertain, bounced.")
    delivery_detail: str
    attachments: list[AttachmentOut]

    model_config = {"populate_by_name": True}


class ConversationOut(ConversationSummaryOut):
    description: str
    messages: list[MessageOut]


class ReplyIn(BaseModel):
    text: str = Field(min_length=1, description="The agent's reply, plain text.")
    author: str = Field(default="", description="The agent's name; fills {{ sender_name }} in the signature.")


class ConversationPatch(BaseModel):
    status: Literal["open", "pending", "resolved"] | None = None


class RawMessageOut(BaseModel):
    id: int
    connection_id: int | None
    mailbox_id: int | None
    origin: str
    dedupe_key: str
    header_message_id: str | None
    size: int
    received_at: str
    status: str
    error: str
    attempts: int
    message_id: int | None


class ReplayIn(BaseModel):
    ids: list[int] | None = Field(default=None, description="Quarantined raw messages to run again; all when omitted.")


class ReplayOut(BaseModel):
    queued: int

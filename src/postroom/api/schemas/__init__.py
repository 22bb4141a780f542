"""Response and request bodies of the API, as they appear in the OpenAPI document at /docs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from postroom.mail.addresses import check_header_safe


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
    reply_to: str
    sent_folder: str
    oauth_client_id: str
    oauth_client_secret: str = Field(description="`********` when set.")
    oauth_refresh_token: str = Field(description="`********` when set.")
    oauth_token_uri: str


class ConnectionOut(BaseModel):
    id: int
    name: str
    description: str
    mode: Literal["imap", "pop3", "forwarding", "webhook"]
    outbound: Literal["smtp", "sendgrid"]
    status: Literal["STOPPED", "STARTING", "RUNNING", "ERROR"]
    status_message: str = Field(description="Why the connection is in ERROR; names the account and protocol.")
    status_changed_at: str | None
    enabled: bool = Field(description="Whether the admin started it (Start) or stopped it (Stop).")
    check_interval: float
    mark_as_read: bool
    unread_only: bool
    delete_after_import: bool
    save_to_sent: bool
    smtp_signature: str
    max_attachment_bytes: int
    oauth_enabled: bool
    allow_plaintext_auth: bool = Field(
        description="Whether passwords and tokens may go unencrypted to a host other than loopback."
    )
    warnings: list[str] = Field(
        description="What the admin should know about these settings, e.g. a password that goes unencrypted."
    )
    sendgrid_api_key: str = Field(description="`********` when set.")
    sendgrid_api_url: str
    webhook_provider: str
    webhook_signing_key: str = Field(description="`********` when set.")
    inbound_address: str | None = Field(description="Forwarding mode: forward your support address here.")
    webhook_path: str | None = Field(description="Webhook mode: the path your provider posts to.")
    response_delay_min: float
    response_delay_max: float
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
    reply_to: str
    sent_folder: str
    oauth_client_id: str
    oauth_client_secret: str
    oauth_refresh_token: str
    oauth_token_uri: str
    pop3_server: str | None = None
    pop3_port: str | None = None
    pop3_encryption: str | None = None
    mailboxes: list[MailboxOut]
    created_at: str | None
    updated_at: str | None


class ConnectionLogOut(BaseModel):
    id: int
    at: str
    level: str
    event: str
    message: str


class ProbeStepOut(BaseModel):
    mailbox: str
    part: Literal["incoming", "outgoing", "roundtrip"]
    protocol: str = Field(description="IMAP, POP3, SMTP…; empty when the part does not apply to the connection.")
    name: str = Field(
        description="dns, tcp, tls, signin, folder; outgoing test_mail (send_to); roundtrip: send, arrival, cleanup."
    )
    ok: bool
    skipped: bool = Field(description="Not applicable, or not run because an earlier step failed; not a failure.")
    milliseconds: float
    detail: str = Field(description="What the step found, or why it failed (the server's words where it gave any).")
    error: str | None = Field(description="What decided a failure, e.g. AuthenticationError, TlsError, NotArrived.")


class ProbeReportOut(BaseModel):
    """The result of "Test connection": every step of every mailbox, passed or failed."""

    connection_id: int
    connection: str
    mode: str
    outbound: str
    roundtrip: bool
    ok: bool = Field(description="Whether every step passed.")
    summary: str
    started_at: str
    milliseconds: float
    steps: list[ProbeStepOut]


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
    assignee_id: int | None
    team_id: int | None
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
    html: str = Field(
        description="Sanitised HTML. Nothing in it loads by itself: URLs outside the mail are held back in"
        " data-remote-src (and data-remote-srcset …) attributes, which a client may move back on request."
    )
    remote_references: int = Field(
        0, description="How many URLs the HTML holds back (0: nothing to load; a 'Load images' button otherwise)."
    )
    reply_text: str = Field(description="What the sender newly wrote: no quoted history, no signature.")
    signature: str
    quoted_text: str
    classification: dict[str, Any]
    sent_at: str | None
    created_at: str
    delivery_status: str | None = Field(description="Outgoing mail: queued, sending, sent, failed, uncertain, bounced.")
    delivery_detail: str
    sent_copy: str | None = Field(
        None,
        description="Outgoing SMTP mail: its copy in the mailbox's Sent folder: pending, filed, failed; null when"
        " none is kept (SendGrid, POP3, save_to_sent off, providers that file sent mail themselves).",
    )
    degraded_reason: str = Field(
        "",
        description="Incoming mail: why only part of it was understood (its parsing went over the work budget):"
        " its HTML is not shown but kept as the file body.html; empty normally.",
    )
    attachments: list[AttachmentOut]

    model_config = {"populate_by_name": True}


class ConversationOut(ConversationSummaryOut):
    description: str
    messages: list[MessageOut]


class ReplyIn(BaseModel):
    text: str = Field(min_length=1, description="The agent's reply, plain text.")
    author: str = Field(default="", description="The agent's name; fills {{ sender_name }} in the signature.")


class ConversationStartIn(BaseModel):
    """The agent writes first (seed 003): a new conversation from one of the connection's mailboxes."""

    connection_id: int
    to: str = Field(min_length=3, description="Recipient(s), e.g. 'Ann <ann@example.com>'; the first is the contact.")
    cc: str = Field(default="", description="Copies, comma-separated.")
    subject: str = Field(min_length=1)
    text: str = Field(min_length=1, description="The message, plain text.")
    author: str = Field(default="", description="The agent's name; fills {{ sender_name }} in the signature.")

    @field_validator("to", "cc")
    @classmethod
    def _addresses(cls, value: str, info: ValidationInfo) -> str:
        # Refused whole, not cleaned: the address parser unfolds line breaks (RFC 5322 §2.2.3), so
        # "a@x.test\r\nBcc: b@y.test" would quietly become a different list of recipients.
        return check_header_safe(info.field_name or "address", value)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        # A tab is white space in an unstructured header (RFC 5322 §3.2.2); every other control breaks it.
        check_header_safe("subject", value.replace("\t", " "))
        return value


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

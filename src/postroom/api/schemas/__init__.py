"""Response and request bodies of the API, as they appear in the OpenAPI document at /docs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from postroom.helpdesk.connections import ConnectionInput


class RequestModel(BaseModel):
    """Base of every request body: a key the model does not know is refused (422 naming it), not ignored,
    so a misspelt setting never silently does nothing. Schemas show ``additionalProperties: false``.
    """

    model_config = ConfigDict(extra="forbid")


class ConnectionCreateIn(ConnectionInput):
    """A new connection. Per-mailbox fields take one value per address, comma-separated or as a list;
    known variable names (``EMAIL_NAME``, ``IMAP_MAILBOX``, …) go in ``env``. Unknown fields are refused.
    """

    name: str = Field(description="Unique name of the connection.")


class ConnectionUpdateIn(ConnectionInput):
    """A change of some settings; fields left out stay. ``null`` resets a text setting to none or its
    default (``reply_to``, ``email_name``, ``sent_folder``, ``description``, …) and removes a secret; on a port or
    ``validate_certificate`` it keeps the stored values (the view shows null where mailboxes differ).
    """


class MailboxPatchIn(RequestModel):
    """A change of one mailbox's settings; fields left out stay, ``null`` resets to the default or, for a
    secret, removes it. A changed server, port, encryption or user name needs the password again."""

    address: str | None = Field(default=None, description="The mailbox's address (a rename keeps its mail).")
    email_name: str | None = None
    username: str | None = None
    password: str | None = Field(default=None, description="Write-only; `********` keeps the stored one.")
    imap_server: str | None = None
    imap_port: int | None = Field(default=None, ge=1, le=65535)
    imap_encryption: str | None = None
    imap_mailbox: str | None = None
    validate_certificate: bool | None = None
    smtp_server: str | None = None
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_encryption: str | None = None
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, description="Write-only.")
    message_content_type: Literal["text/plain", "text/html"] | None = None
    reply_to: str | None = None
    sent_folder: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: str | None = Field(default=None, description="Write-only.")
    oauth_refresh_token: str | None = Field(default=None, description="Write-only.")
    oauth_token_uri: str | None = None


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
    team_id: int | None = Field(None, description="The team whose queue new conversations join.")
    auto_assign: bool = Field(False, description="New conversations are assigned round robin in the team.")
    grouping: Literal["thread", "contact"] = Field("thread", description="How new mail is grouped into conversations.")
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
    imap_port: int | None = Field(description="Every mailbox's port; null when they differ (see `mailboxes`).")
    imap_encryption: str
    imap_mailbox: str
    validate_certificate: bool | None = Field(description="Every mailbox's setting; null when they differ.")
    smtp_server: str
    smtp_port: int | None = Field(description="Every mailbox's SMTP port; null when they differ.")
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
    pop3_port: int | None = None
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


class ReplayIn(RequestModel):
    ids: list[int] | None = Field(default=None, description="Quarantined raw messages to run again; all when omitted.")


class ReplayOut(BaseModel):
    queued: int

"""Typed values that the mail logic hands to the rest of Postroom.

These are the contract between :mod:`postroom.mail` (pure, no I/O) and its callers: the pipeline,
``postroom parse`` and the outbound composer. Everything is immutable and JSON-friendly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


@dataclass(frozen=True, slots=True)
class Address:
    """One mailbox address: ``email`` is normalised (domain lower-cased, IDNA decoded), ``name`` may be empty."""

    email: str
    name: str = ""

    def formatted(self) -> str:
        """The address as it would appear in a header, for display (not for writing headers)."""
        return f"{self.name} <{self.email}>" if self.name else self.email

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "email": self.email}


class Kind(StrEnum):
    """What sort of mail this is; decides whether anyone may answer automatically."""

    HUMAN = "human"
    AUTO_REPLY = "auto_reply"  # out-of-office, vacation, RFC 3834 auto-replied
    BULK = "bulk"  # newsletters, list mail, Precedence: bulk
    BOUNCE = "bounce"  # non-delivery and delivery-status reports
    LOOP = "loop"  # our own outgoing mail coming back


@dataclass(frozen=True, slots=True)
class Bounce:
    """What a delivery-status report says about the message it reports on (RFC 3464)."""

    failed_recipients: tuple[str, ...] = ()
    status: str | None = None  # enhanced status code, e.g. "5.1.1" (RFC 3463)
    diagnostic: str | None = None
    original_message_id: str | None = None
    permanent: bool = True


@dataclass(frozen=True, slots=True)
class Classification:
    kind: Kind = Kind.HUMAN
    reasons: tuple[str, ...] = ()  # which headers or rules decided, e.g. ("Auto-Submitted: auto-replied",)
    bounce: Bounce | None = None

    @property
    def automated(self) -> bool:
        return self.kind is not Kind.HUMAN

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind.value, "reasons": list(self.reasons)}
        if self.bounce is not None:
            out["bounce"] = {
                "failed_recipients": list(self.bounce.failed_recipients),
                "status": self.bounce.status,
                "diagnostic": self.bounce.diagnostic,
                "original_message_id": self.bounce.original_message_id,
                "permanent": self.bounce.permanent,
            }
        return out


@dataclass(frozen=True, slots=True)
class ParsedAttachment:
    filename: str  # safe for any storage: no path separators, no control characters, never empty
    content_type: str
    size: int
    sha256: str
    inline: bool
    content_id: str | None = None  # without angle brackets
    payload: bytes = field(default=b"", repr=False)  # empty when skipped
    skipped_reason: str | None = None  # e.g. "larger than 10485760 bytes"; the file is then not stored
    in_history: bool = False  # belongs only to the quoted/forwarded history, not to the new message

    def to_json(self) -> dict[str, Any]:
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": self.size,
            "sha256": self.sha256,
            "inline": self.inline,
            "content_id": self.content_id,
            "skipped_reason": self.skipped_reason,
            "in_history": self.in_history,
        }


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """Everything Postroom understands of one mail. Produced by :func:`postroom.mail.parse.parse_message`."""

    subject: str
    from_: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    bcc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime  # timezone-aware; the time received when missing, broken or in the future
    message_id: str  # without angle brackets; derived from the bytes when the mail has none
    message_id_derived: bool
    in_reply_to: str | None
    references: tuple[str, ...]  # oldest first, at most the last 32
    text: str  # best text/plain rendering of the whole body (from HTML when only HTML was sent)
    html: str  # sanitised HTML, "" when the mail has none
    reply_text: str  # what the sender newly wrote, without signature or quoted history
    signature: str
    quoted_text: str
    attachments: tuple[ParsedAttachment, ...]
    classification: Classification
    normalized_subject: str  # without Re:/Fwd:/[tags], for matching threads by subject
    reply_token: str | None = None  # a verified Postroom reply token found in the recipients or references
    thread_index: str | None = None  # Outlook Thread-Index, as sent
    thread_topic: str | None = None
    headers: tuple[tuple[str, str], ...] = ()  # decoded headers in order, for storage and display
    defects: tuple[str, ...] = ()  # what was broken and recovered, for display in `postroom parse`
    # Why only a bounded part of the mail was understood (it went over its work budget); "" normally.
    degraded_reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """The shape ``postroom parse`` prints (one JSON object per mail)."""
        return {
            "subject": self.subject,
            "from": self.from_.to_json() if self.from_ else None,
            "to": [a.to_json() for a in self.to],
            "cc": [a.to_json() for a in self.cc],
            "bcc": [a.to_json() for a in self.bcc],
            "reply_to": [a.to_json() for a in self.reply_to],
            "date": self.date.isoformat(),
            "message_id": self.message_id,
            "message_id_derived": self.message_id_derived,
            "in_reply_to": self.in_reply_to,
            "references": list(self.references),
            "normalized_subject": self.normalized_subject,
            "text": self.text,
            "html": self.html,
            "reply_text": self.reply_text,
            "signature": self.signature,
            "quoted_text": self.quoted_text,
            "attachments": [a.to_json() for a in self.attachments],
            "classification": self.classification.to_json(),
            "reply_token": self.reply_token,
            "thread_index": self.thread_index,
            "thread_topic": self.thread_topic,
            "defects": list(self.defects),
        }


@dataclass(frozen=True, slots=True)
class ReplyParts:
    """A plain-text body split into what is new, the signature and the quoted history."""

    reply_text: str
    signature: str
    quoted_text: str


@dataclass(frozen=True, slots=True)
class OutgoingAttachment:
    filename: str
    content_type: str
    payload: bytes = field(repr=False)
    content_id: str | None = None  # set for inline images referenced as cid: from the HTML
    inline: bool = False


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """What an agent (or automation) sends; :func:`postroom.mail.compose.compose` turns it into MIME."""

    from_: Address
    to: tuple[Address, ...]
    subject: str
    text: str
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    reply_to: tuple[Address, ...] = ()
    html: str | None = None  # when set, text/plain and text/html alternatives are both sent
    in_reply_to: str | None = None  # Message-ID (without brackets) of the message answered
    references: tuple[str, ...] = ()  # of the message answered, oldest first; in_reply_to is appended
    signature: str | None = None  # appended to text (and html); {{ sender_name }}/{{ sender_email }} filled
    sender_name: str = ""  # fills {{ sender_name }} in the signature (the agent's name)
    sender_email: str = ""  # fills {{ sender_email }}
    attachments: tuple[OutgoingAttachment, ...] = ()
    auto_submitted: bool = False  # mail no person wrote gets Auto-Submitted: auto-generated (RFC 3834)
    message_id_domain: str | None = None  # defaults to the From domain
    reply_token: str | None = None  # placed in the Message-ID so that replies thread without headers
    thread_index: str | None = None  # Outlook Thread-Index of the message answered
    thread_topic: str | None = None
    date: datetime | None = None  # defaults to now
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ComposedMail:
    raw: bytes = field(repr=False)  # CRLF line endings, ready for SMTP DATA
    message_id: str  # without angle brackets
    envelope_from: str
    recipients: tuple[str, ...]  # to + cc + bcc, for RCPT TO (Bcc is not written into the headers)
    subject: str
    references: tuple[str, ...]

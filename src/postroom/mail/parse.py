"""``parse_message``: raw bytes in, everything Postroom understands of the mail out.

The work is ordered so that the common mail costs little: the MIME tree is cut from the bytes without
decoding any body (:mod:`postroom.mail.mime`); only the fields and parts used are decoded; HTML is only
rendered to text when there is no text/plain; quote detection takes a fast path when a body has no marker
at all. Broken mail never raises: what was repaired is listed in ``defects``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from postroom.errors import MessageParseError
from postroom.mail.addresses import parse_address_list
from postroom.mail.attachments import content_id, extension_for, safe_filename
from postroom.mail.bodies import Bodies, FileSource, find_bodies
from postroom.mail.classify import ClassifyInput, classify
from postroom.mail.headers import Headers, bytes_to_str, parse_date, parse_msg_ids
from postroom.mail.html import html_to_text, sanitize_html
from postroom.mail.html_bounds import DEFAULT_HTML_LIMITS, HtmlLimits, bound_html
from postroom.mail.html_quotes import cids_in_history, split_html_reply
from postroom.mail.mime import Part, parse_tree
from postroom.mail.model import Address, Classification, ParsedAttachment, ParsedMessage, ReplyParts
from postroom.mail.quotes import split_reply
from postroom.mail.threading import (
    derive_message_id,
    find_reply_token,
    last_references,
    normalize_subject,
)

DEFAULT_MAX_ATTACHMENT_BYTES = 10_485_760


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """How to parse mail for one connection. Defaults suit most; all fields are documented here."""

    # Larger attachments are listed with ``skipped_reason`` and an empty payload (never dropped); 0 = no limit.
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    # When the mail arrived: the date used when Date is missing, broken or in the future (now() when None).
    received_at: datetime | None = None
    # Our own mailbox addresses, lower-case: our mail coming back to them is recognised as a loop.
    own_addresses: frozenset[str] = field(default_factory=frozenset)
    # Key of the reply tokens Postroom puts in Reply-To addresses and Message-IDs; None = do not look.
    reply_token_key: bytes | None = None
    # Replace remote image URLs in the sanitised HTML by ``data-remote-src`` so that nothing loads.
    block_remote_images: bool = False
    # Nesting depth and length of the HTML handed to the sanitiser and the text renderer
    # (:mod:`postroom.mail.html_bounds`): what keeps their work per mail bounded.
    html_limits: HtmlLimits = DEFAULT_HTML_LIMITS


_DEFAULT_OPTIONS = ParseOptions()


def _addresses(headers: Headers, name: str) -> tuple[Address, ...]:
    out: list[Address] = []
    for raw in headers.raw_all(name):
        out.extend(parse_address_list(bytes_to_str(raw, headers.hint)))
    return tuple(out)


def _first_text_charset(root: Part) -> str | None:
    for part in root.walk():
        if part.maintype == "text" and part.charset:
            return part.charset
    return None


def _date(headers: Headers, received: datetime, defects: list[str]) -> datetime:
    text = headers.text("date")
    parsed = parse_date(text)
    if parsed is None:
        defects.append("Date missing or unreadable; the time received is used" if text else "Date missing")
        return received
    if parsed > received:
        defects.append("Date is in the future; the time received is used")
        return received
    return parsed


def _normalize_newlines(text: str) -> str:
    if "\r" not in text:
        return text
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _attachments(
    bodies: Bodies, options: ParseOptions, history_cids: set[str], new_cids: set[str]
) -> tuple[ParsedAttachment, ...]:
    out: list[ParsedAttachment] = []
    limit = options.max_attachment_bytes
    for index, source in enumerate(bodies.files, start=1):
        payload = source.payload if source.payload is not None else _file_payload(source)
        cid = content_id(source.part) if source.part is not None else source.content_id
        fallback = f"attachment-{index}"
        if source.content_type in ("message/rfc822", "message/global") and source.part is not None:
            inner = source.part.message
            subject = inner.headers.get("subject") if inner is not None else None
            fallback = subject or "forwarded-message"
        filename = safe_filename(source.filename or "", source.content_type, fallback)
        if not source.filename and "." not in filename:
            filename += extension_for(source.content_type)
        if source.disposition == "inline":
            inline = True
        elif source.disposition == "attachment":
            inline = False
        else:
            inline = cid is not None and (cid in new_cids or cid in history_cids or source.part is not None)
        in_history = source.forwarded or (cid is not None and cid in history_cids and cid not in new_cids)
        size = len(payload)
        digest = hashlib.sha256(payload).hexdigest()
        skipped = None
        if limit and size > limit:
            skipped = f"larger than {limit} bytes"
            payload = b""
        out.append(
            ParsedAttachment(
                filename=filename,
                content_type=source.content_type,
                size=size,
                sha256=digest,
                inline=inline,
                content_id=cid,
                payload=payload,
                skipped_reason=skipped,
                in_history=in_history,
            )
        )
    return tuple(out)


def _file_payload(source: FileSource) -> bytes:
    """The file's bytes, transfer encoding undone; for an attached message, the message as it was sent."""
    return source.part.decoded() if source.part is not None else b""


def _bounded(html: str, options: ParseOptions, defects: list[str]) -> str:
    bounded = bound_html(html, options.html_limits)
    defects.extend(bounded.defects)
    return bounded.html


def _split(
    bodies: Bodies, own_plain: str, own_html_raw: str, options: ParseOptions, defects: list[str]
) -> tuple[ReplyParts, str | None]:
    """Reply, signature and history; and the text rendering of the HTML when it had to be made."""
    rendered: str | None = None
    if own_plain.strip():
        parts = split_reply(own_plain)
    elif own_html_raw.strip():
        parts, rendered = split_html_reply(own_html_raw)
    else:
        parts = ReplyParts("", "", "")
    forwarded = _normalize_newlines(bodies.forwarded_plain()).strip()
    if not forwarded and any(t.forwarded for t in bodies.html):
        forwarded_html = _bounded("".join(t.text for t in bodies.html if t.forwarded), options, defects)
        forwarded = html_to_text(forwarded_html).strip()
    if forwarded:
        quoted = "\n\n".join(p for p in (parts.quoted_text, forwarded) if p)
        parts = ReplyParts(parts.reply_text, parts.signature, quoted)
    return parts, rendered


def _collect_defects(root: Part) -> tuple[str, ...]:
    found: list[str] = []
    for part in root.walk():
        for defect in part.defects:
            if defect not in found:
                found.append(defect)
    return tuple(found)


def _derived_id(raw: bytes, root: Part) -> str:
    headers = root.headers
    pieces = [headers.raw(name) or b"" for name in ("from", "to", "cc", "date", "subject")]
    return derive_message_id(raw, [*pieces, root.body])


def parse_message(raw: bytes, options: ParseOptions = _DEFAULT_OPTIONS) -> ParsedMessage:
    """Understand one mail. Raises :class:`MessageParseError` only for input that is not mail at all."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise MessageParseError(f"expected bytes, got {type(raw).__name__}")
    data = bytes(raw)
    if not data.strip():
        raise MessageParseError("empty input is not a mail")
    return _parse(data, options)


# Characters of body text a degraded mail keeps (each of its plain text and its text from HTML).
DEGRADED_TEXT_CHARS = 100_000
_TAG_OR_COMMENT = re.compile(r"<!--.*?-->|<[^<>]*>", re.DOTALL)


def parse_degraded(raw: bytes, reason: str, options: ParseOptions = _DEFAULT_OPTIONS) -> ParsedMessage:
    """Understand a mail at a cost bounded by its size, for a mail that went over its work budget.

    Headers, addresses, threading fields and classification as :func:`parse_message` finds them;
    the plain-text bodies as they are, cut at :data:`DEGRADED_TEXT_CHARS`; the files. The HTML is
    neither sanitised nor rendered (that is the work that ran over): each HTML body is kept as a file
    (``body.html``, downloaded, never shown), and when there is no plain text its tags are stripped
    by one regular expression for a readable text. Nothing is split into reply and history.
    ``reason`` is kept on the result (``degraded_reason``) and among its defects.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise MessageParseError(f"expected bytes, got {type(raw).__name__}")
    data = bytes(raw)
    if not data.strip():
        raise MessageParseError("empty input is not a mail")
    return _parse(data, options, degraded_reason=reason)


def _degraded_bodies(bodies: Bodies, options: ParseOptions) -> tuple[str, tuple[ParsedAttachment, ...]]:
    text = _normalize_newlines(bodies.all_plain()[:DEGRADED_TEXT_CHARS])
    html = bodies.all_html()
    if not text.strip() and html.strip():
        # A non-greedy comment match can scan far; the input is cut first, so the cost stays bounded.
        stripped = _TAG_OR_COMMENT.sub(" ", html[: DEGRADED_TEXT_CHARS * 4])
        text = "\n".join(" ".join(line.split()) for line in stripped.splitlines() if line.strip())
        text = text[:DEGRADED_TEXT_CHARS]
    files = list(_attachments(bodies, options, set(), set()))
    for index, body in enumerate(bodies.html, start=1):
        payload = body.text.encode("utf-8", "surrogateescape")
        files.append(
            ParsedAttachment(
                filename="body.html" if len(bodies.html) == 1 else f"body-{index}.html",
                content_type="text/html",
                size=len(payload),
                sha256=hashlib.sha256(payload).hexdigest(),
                inline=False,
                content_id=None,
                payload=payload,
                skipped_reason=None,
                in_history=body.forwarded,
            )
        )
    return text.rstrip("\n"), tuple(files)


def _bodies(
    bodies: Bodies, options: ParseOptions, defects: list[str]
) -> tuple[str, str, ReplyParts, tuple[ParsedAttachment, ...], str]:
    """Text, sanitised HTML, reply parts, files and all plain text: the bodies fully understood."""
    all_plain = _normalize_newlines(bodies.all_plain())
    own_plain = _normalize_newlines(bodies.own_plain())
    # Every piece of HTML that reaches the sanitiser or the renderer is bounded first.
    all_html = bodies.all_html()
    html_raw = _bounded(all_html, options, defects)
    own_html = bodies.own_html()
    own_html_raw = html_raw if own_html == all_html else _bounded(own_html, options, defects)
    parts, rendered = _split(bodies, own_plain, own_html_raw, options, defects)
    if all_plain.strip():
        text = all_plain
    elif html_raw.strip():
        if rendered is not None and own_html_raw == html_raw:
            text = rendered
        else:
            text = html_to_text(html_raw)
    else:
        text = ""
    text = text.rstrip("\n")
    html = _normalize_newlines(sanitize_html(html_raw, block_remote_images=options.block_remote_images))
    new_cids, history_cids = cids_in_history(own_html_raw) if bodies.files else (set(), set())
    attachments = _attachments(bodies, options, history_cids, new_cids)

    return text, html, parts, attachments, all_plain


def _parse(raw: bytes, options: ParseOptions, degraded_reason: str | None = None) -> ParsedMessage:
    received = options.received_at or datetime.now(UTC)
    if received.tzinfo is None:
        received = received.replace(tzinfo=UTC)
    root = parse_tree(raw)
    headers = root.headers
    if headers.hint is None:
        headers.hint = _first_text_charset(root)
    defects: list[str] = []
    if not headers.fields:
        defects.append("no header fields")

    subject = headers.get("subject", strip=False) or ""
    from_list = _addresses(headers, "from")
    from_ = next((a for a in from_list if a.email), None)
    if from_ is None:
        sender = _addresses(headers, "sender")
        from_ = next((a for a in sender if a.email), None)
        if from_ is not None:
            defects.append("From missing or unreadable; Sender used")
    to = _addresses(headers, "to")
    cc = _addresses(headers, "cc")
    bcc = _addresses(headers, "bcc")
    reply_to = _addresses(headers, "reply-to")
    date = _date(headers, received, defects)

    ids = parse_msg_ids(headers.text("message-id"))
    message_id_derived = not ids
    message_id = ids[0] if ids else _derived_id(raw, root)
    in_reply_to_ids = parse_msg_ids(headers.text("in-reply-to"))
    in_reply_to = in_reply_to_ids[0] if in_reply_to_ids else None
    references = last_references(
        parse_msg_ids(" ".join(h.decode("utf-8", "replace") for h in headers.raw_all("references")))
    )

    bodies = find_bodies(root)
    if degraded_reason is not None:
        defects.append(f"only partly understood: {degraded_reason}")
        text, attachments = _degraded_bodies(bodies, options)
        parts = ReplyParts(text, "", "")
        html = ""
        all_plain = text
    else:
        text, html, parts, attachments, all_plain = _bodies(bodies, options, defects)

    classification: Classification = classify(
        ClassifyInput(
            headers=headers,
            root=root,
            reports=bodies.reports,
            from_=from_,
            subject=subject,
            message_id=None if message_id_derived else message_id,
            text=all_plain if all_plain.strip() else text,
            own_addresses=options.own_addresses,
        )
    )
    reply_token = None
    if options.reply_token_key:
        recipients = list(to) + list(cc)
        for name in ("delivered-to", "x-original-to", "envelope-to", "x-envelope-to"):
            recipients.extend(_addresses(headers, name))
        refs = [*references, *([in_reply_to] if in_reply_to else [])]
        reply_token = find_reply_token(recipients, refs, options.reply_token_key)

    decoded_headers = tuple(headers.decoded())
    defects.extend(_collect_defects(root))
    return ParsedMessage(
        subject=subject,
        from_=from_,
        to=to,
        cc=cc,
        bcc=bcc,
        reply_to=reply_to,
        date=date,
        message_id=message_id,
        message_id_derived=message_id_derived,
        in_reply_to=in_reply_to,
        references=references,
        text=text,
        html=html,
        reply_text=parts.reply_text,
        signature=parts.signature,
        quoted_text=parts.quoted_text,
        attachments=attachments,
        classification=classification,
        normalized_subject=normalize_subject(subject),
        reply_token=reply_token,
        thread_index=headers.get("thread-index"),
        thread_topic=headers.get("thread-topic"),
        headers=decoded_headers,
        defects=tuple(dict.fromkeys(defects)),
        degraded_reason=degraded_reason or "",
    )

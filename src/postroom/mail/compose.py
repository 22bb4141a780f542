"""Outbound mail as MIME bytes, ready for SMTP DATA (RFC 5322, RFC 2045–2047, RFC 2231, RFC 3834).

The writer is ours rather than :class:`email.message.EmailMessage`'s so that what goes out is exactly what
Postroom reads back: text bodies keep every character (the standard library turns ``\\x0b`` and ``\\u2028``
into line breaks), header values are encoded whole when they need encoding (so a subject that happens to
contain ``=?`` is not misread), and the line-length rules of RFC 5322 §2.1.1 are kept everywhere: header
lines are folded at whitespace to 78 characters where possible and never exceed 998.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from html import escape

from postroom.errors import HeaderInjectionError
from postroom.mail.addresses import normalize_email, unsafe_character
from postroom.mail.classify import LOOP_HEADER
from postroom.mail.html import html_to_text
from postroom.mail.model import Address, ComposedMail, OutgoingAttachment, OutgoingMail
from postroom.mail.threading import (
    _REPLY_PREFIX,
    MAX_REFERENCES,
    make_message_id,
    make_thread_index,
    normalize_subject,
)

CRLF = "\r\n"
MAX_LINE = 998  # RFC 5322 §2.1.1: MUST NOT exceed 998 characters (without CRLF)
SOFT_LINE = 78  # … and SHOULD NOT exceed 78
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_PLACEHOLDER = re.compile(r"\{\{\s*(sender_name|sender_email)\s*\}\}")
_LOOKS_HTML = re.compile(r"<(?:[a-zA-Z][a-zA-Z0-9]*\b[^>]*|/[a-zA-Z][a-zA-Z0-9]*\s*)>")
# Headers the composer writes itself; extra_headers may not replace them.
_RESERVED = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-disposition",
        "content-id",
        "auto-submitted",
        "thread-index",
        "thread-topic",
        LOOP_HEADER.lower(),
    }
)


def reply_subject(subject: str) -> str:
    """``Re: <subject>`` with any reply prefix in any language ("RE:", "AW:", "Sv:", "Re[2]:" …) replaced by one."""
    text = re.sub(r"\s+", " ", subject or "").strip()
    for _ in range(50):
        stripped = _REPLY_PREFIX.sub("", text, count=1)
        if stripped == text:
            break
        text = stripped
    return f"Re: {text}" if text else "Re:"


def _check(header: str, value: str | None) -> None:
    if value is not None and ("\r" in value or "\n" in value):
        raise HeaderInjectionError(header)


def _check_address(header: str, email: str) -> None:
    # An address is written as it is (RFC 5322 §3.4.1, RFC 6532 §3.2), never encoded, and
    # normalize_email() would silently drop white space such as CR LF: any control character or line
    # separator is refused before that happens, so that no value can become a second header.
    if unsafe_character(email) is not None:
        raise HeaderInjectionError(header)


def _check_header_lines(block: list[str]) -> None:
    """The last guard before bytes are made: every header is one field, folded only at white space.

    RFC 5322 §2.2: a field is a name, a colon and a body; §2.2.3: a CRLF inside it must be followed by
    white space. Whatever went wrong upstream, a line that would start a new field is refused here.
    """
    for field in block:
        lines = field.split(CRLF)
        name = lines[0].partition(":")[0]
        if not _FIELD_NAME.fullmatch(name) or ":" not in lines[0]:
            raise HeaderInjectionError(name)
        for line in lines:
            if unsafe_character(line.replace("\t", " ")) is not None:
                raise HeaderInjectionError(name)
        if any(line[:1] not in (" ", "\t") for line in lines[1:]):
            raise HeaderInjectionError(name)


# --- header encoding -------------------------------------------------------------------------------


def _needs_encoding(value: str) -> bool:
    if not value.isascii() or "=?" in value:
        return True
    if any((ord(ch) < 32 and ch != "\t") or ord(ch) == 127 for ch in value):
        return True
    return any(len(word) > 900 for word in value.split(" "))


def _encoded_words(value: str, first_room: int) -> list[str]:
    """RFC 2047 B-encoded words of UTF-8, never splitting a character, each word at most 75 characters."""
    words: list[str] = []
    chunk = ""
    limit = 45  # 45 bytes of UTF-8 → 60 base64 characters + 12 of wrapping = 72
    for ch in value:
        if len((chunk + ch).encode("utf-8")) > limit:
            words.append(chunk)
            chunk = ch
        else:
            chunk += ch
    if chunk or not words:
        words.append(chunk)
    return ["=?utf-8?b?" + base64.b64encode(w.encode("utf-8")).decode("ascii") + "?=" for w in words]


def _fold(name: str, tokens: list[str]) -> str:
    """``Name: tokens…`` folded before a token whenever a line would pass 78 characters."""
    lines: list[str] = []
    line = f"{name}:"
    for i, token in enumerate(tokens):
        sep = " " if i == 0 or not token.startswith((" ", "\t")) else ""
        piece = sep + token if sep else token
        if len(line) + len(piece) > SOFT_LINE and line.strip() != f"{name}:":
            lines.append(line)
            line = piece if piece.startswith((" ", "\t")) else " " + piece
        else:
            line += piece
    lines.append(line)
    for folded in lines:
        if len(folded) > MAX_LINE:
            raise ValueError(f"header {name} cannot be folded under {MAX_LINE} characters")
    return CRLF.join(lines)


def _unstructured(name: str, value: str) -> str:
    """An unstructured header (Subject, Thread-Topic, extra headers), encoded when needed (RFC 2047 §5)."""
    if _needs_encoding(value):
        return _fold(name, _encoded_words(value, SOFT_LINE - len(name) - 2))
    # Folding inserts CRLF before existing whitespace, so unfolding (RFC 5322 §2.2.3) restores the value.
    parts = re.split(r"(?= )", value)
    if not parts or parts == [""]:
        return f"{name}: {value}" if value else f"{name}:"
    first, rest = parts[0], parts[1:]
    out = f"{name}: {first}"
    lines: list[str] = []
    for piece in rest:
        if len(out) + len(piece) > SOFT_LINE and out.strip():
            lines.append(out)
            out = piece
        else:
            out += piece
    lines.append(out)
    return CRLF.join(lines)


def _phrase(name: str) -> str:
    """A display name as an RFC 5322 phrase: atoms, a quoted string, or encoded words."""
    if not name:
        return ""
    if _needs_encoding(name) or name != name.strip() or "  " in name:
        return " ".join(_encoded_words(name, 60))
    if all(_ATOM.fullmatch(word) for word in name.split(" ")):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _addr_spec(email: str) -> str:
    email = normalize_email(email)
    local, at, domain = email.rpartition("@")
    if not at:
        raise ValueError(f"not an address: {email!r}")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"domain cannot be written: {domain!r}") from exc
    quoted = local.startswith('"') and local.endswith('"')
    if not _DOT_ATOM.fullmatch(local) and not quoted and local.isascii():
        local = '"' + local.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{local}@{domain}"


def _address_tokens(addresses: Iterable[Address]) -> list[str]:
    tokens: list[str] = []
    items = list(addresses)
    for i, address in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        phrase = _phrase(address.name)
        if phrase:
            words = phrase.split(" ") if phrase.startswith("=?") or not phrase.startswith('"') else [phrase]
            tokens.extend(words)
            tokens.append(f"<{_addr_spec(address.email)}>{comma}")
        else:
            tokens.append(f"{_addr_spec(address.email)}{comma}")
    return tokens


# --- bodies ------------------------------------------------------------------------------------------


def _qp(text: str) -> str:
    """Quoted-printable (RFC 2045 §6.7) of UTF-8 text whose line breaks are CRLF; lines at most 76 characters."""
    data = re.sub(r"\r\n|\r|\n", "\r\n", text).encode("utf-8")
    encoded = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False).decode("ascii")
    # binascii leaves a leading "." alone; SMTP dot-stuffing handles it, but a lone "From " at a line start is
    # mangled by mbox tools, so it is encoded (RFC 2045 §6.7 note 5 suggests the same).
    encoded = re.sub(r"(?m)^From ", "=46rom ", encoded.replace("\n", "\r\n").replace("\r\r\n", "\r\n"))
    return encoded


def _b64(data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return CRLF.join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def _param(name: str, value: str) -> str:
    """A MIME parameter; non-ASCII or special values use RFC 2231 with continuations."""
    _check(f"parameter {name}", value)
    plain = all(32 <= ord(ch) < 127 for ch in value) and '"' not in value and "\\" not in value
    if plain and len(value) <= 60:
        return f'{name}="{value}"'
    encoded = "".join(
        ch if (ch.isascii() and (ch.isalnum() or ch in "-._~")) else "".join(f"%{b:02X}" for b in ch.encode())
        for ch in value
    )
    if len(encoded) <= 60:
        return f"{name}*=utf-8''{encoded}"
    pieces: list[str] = []
    while encoded:
        cut = min(60, len(encoded))
        # Never cut inside a %XX escape.
        while cut < len(encoded) and "%" in encoded[max(0, cut - 2) : cut]:
            cut -= 1
        pieces.append(encoded[:cut])
        encoded = encoded[cut:]
    first = f"{name}*0*=utf-8''{pieces[0]}"
    return "; ".join([first, *(f"{name}*{i}*={p}" for i, p in enumerate(pieces[1:], start=1))])


def _fill(signature: str, mail: OutgoingMail, html: bool) -> str:
    def value(match: re.Match[str]) -> str:
        raw = mail.sender_name if match.group(1) == "sender_name" else mail.sender_email
        return escape(raw) if html else raw

    return _PLACEHOLDER.sub(value, signature)


# A signature that brings its own separator line: "-- " (RFC 3676 §4.3), or "--" as many editors save
# it without the trailing space; leading blank lines and a non-breaking space (HTML's &nbsp;) allowed.
_OWN_SEPARATOR = re.compile(r"\A(?:[ \t\u00a0]*\r?\n)*--[ \t\u00a0]*(?:\r?\n|\Z)")


def _bodies(mail: OutgoingMail) -> tuple[str, str | None]:
    text = mail.text or ""
    html = mail.html
    if mail.signature:
        sig_is_html = bool(_LOOKS_HTML.search(mail.signature))
        sig_text = _fill(html_to_text(mail.signature) if sig_is_html else mail.signature, mail, html=False)
        # "-- " on its own line separates a signature (RFC 3676 §4.3); readers fold it away. A signature
        # that starts with one (the README's example does) gets ours instead of a second one.
        own = _OWN_SEPARATOR.match(sig_text)
        if own is not None:
            sig_text = sig_text[own.end() :]
        text = f"{text.rstrip()}\n\n-- \n{sig_text}" if text.strip() else f"-- \n{sig_text}"
        if html is not None:
            if sig_is_html:
                sig_html = _fill(mail.signature, mail, html=True)
                # An HTML signature is kept as written, its own "-- " line included.
                separator = "" if own is not None else "-- <br>\n"
            else:
                sig_html = escape(sig_text).replace("\n", "<br>\n")
                separator = "-- <br>\n"
            block = f'<div class="postroom-signature">{separator}{sig_html}</div>'
            if re.search(r"</body\s*>", html, re.IGNORECASE):
                html = re.sub(r"(</body\s*>)", lambda m: block + m.group(1), html, count=1, flags=re.IGNORECASE)
            else:
                html = f"{html}\n{block}"
    return text, html


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def boundary(self) -> str:
        # "=_" cannot occur in quoted-printable or base64 output, so the boundary never collides with content.
        return "=_pr_" + os.urandom(12).hex()

    def text_part(self, subtype: str, text: str) -> list[str]:
        return [
            f'Content-Type: text/{subtype}; charset="utf-8"',
            "Content-Transfer-Encoding: quoted-printable",
            "",
            _qp(text),
        ]

    def file_part(self, attachment: OutgoingAttachment, inline: bool) -> list[str]:
        ctype = attachment.content_type.strip().lower() or "application/octet-stream"
        _check("content type", ctype)
        if not re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", ctype):
            raise ValueError(f"not a content type: {attachment.content_type!r}")
        _check("filename", attachment.filename)
        _check("content id", attachment.content_id)
        head = [
            _fold("Content-Type", [f"{ctype};", _param("name", attachment.filename)]),
            _fold(
                "Content-Disposition",
                [f"{'inline' if inline else 'attachment'};", _param("filename", attachment.filename)],
            ),
            "Content-Transfer-Encoding: base64",
        ]
        if attachment.content_id:
            cid = attachment.content_id.strip().strip("<>")
            head.append(f"Content-ID: <{cid}>")
        _check_header_lines(head)
        return [*head, "", _b64(attachment.payload)]

    def multipart(self, subtype: str, parts: list[list[str]], extra: str = "") -> list[str]:
        boundary = self.boundary()
        out = [_fold("Content-Type", [f"multipart/{subtype};", f'boundary="{boundary}"' + extra]), ""]
        for part in parts:
            out.append(f"--{boundary}")
            out.extend(part)
        out.append(f"--{boundary}--")
        out.append("")
        return out


def compose(mail: OutgoingMail) -> ComposedMail:
    """Turn an :class:`OutgoingMail` into MIME bytes with CRLF line endings.

    Raises :class:`~postroom.errors.HeaderInjectionError` when a value that goes into a header holds CR or
    LF, and ``ValueError`` for values that cannot be written at all (an address without ``@``).
    """
    _check("Subject", mail.subject)
    for label, addresses in (
        ("From", (mail.from_,)),
        ("To", mail.to),
        ("Cc", mail.cc),
        ("Bcc", mail.bcc),
        ("Reply-To", mail.reply_to),
    ):
        for address in addresses:
            _check(f"{label} name", address.name)
            _check_address(label, address.email)
    _check("In-Reply-To", mail.in_reply_to)
    for ref in mail.references:
        _check("References", ref)
    for header_name, header_value in mail.extra_headers:
        _check(header_name, header_name)
        _check(header_name, header_value)
        if not _FIELD_NAME.fullmatch(header_name):
            raise ValueError(f"not a header name: {header_name!r}")
        if header_name.lower() in _RESERVED:
            raise ValueError(f"header {header_name} is written by the composer")
    for label, value in (
        ("Thread-Topic", mail.thread_topic),
        ("Thread-Index", mail.thread_index),
        ("message_id_domain", mail.message_id_domain),
        ("reply_token", mail.reply_token),
    ):
        _check(label, value)

    from_email = normalize_email(mail.from_.email)
    domain = mail.message_id_domain or from_email.rpartition("@")[2]
    message_id = make_message_id(domain, mail.reply_token)
    references = [r.strip().strip("<>") for r in mail.references if r.strip().strip("<>")]
    parent = mail.in_reply_to.strip().strip("<>") if mail.in_reply_to else None
    if parent and (not references or references[-1] != parent):
        references.append(parent)
    if len(references) > MAX_REFERENCES:
        # Keep the thread's root and the most recent ancestors (RFC 5322 §3.6.4 leaves trimming open).
        references = [references[0], *references[-(MAX_REFERENCES - 1) :]]

    date = mail.date or datetime.now(UTC)
    headers = [
        _fold("From", _address_tokens([mail.from_])),
        _fold("Date", [format_datetime(date if date.tzinfo else date.replace(tzinfo=UTC))]),
        _unstructured("Subject", mail.subject),
        _fold("Message-ID", [f"<{message_id}>"]),
    ]
    if mail.to:
        headers.append(_fold("To", _address_tokens(mail.to)))
    if mail.cc:
        headers.append(_fold("Cc", _address_tokens(mail.cc)))
    if mail.reply_to:
        headers.append(_fold("Reply-To", _address_tokens(mail.reply_to)))
    if parent:
        headers.append(_fold("In-Reply-To", [f"<{parent}>"]))
    if references:
        headers.append(_fold("References", [f"<{r}>" for r in references]))
    if mail.auto_submitted:
        # RFC 3834 §5: mail no person wrote says so, and automatic responders then stay quiet.
        headers.append("Auto-Submitted: auto-generated")
    topic = mail.thread_topic if mail.thread_topic is not None else normalize_subject(mail.subject)
    headers.append(_unstructured("Thread-Topic", topic))
    headers.append(f"Thread-Index: {make_thread_index(mail.thread_index, date)}")
    headers.append(f"{LOOP_HEADER}: {_addr_spec(from_email)}")
    for header_name, header_value in mail.extra_headers:
        headers.append(_unstructured(header_name, header_value))
    headers.append("MIME-Version: 1.0")
    _check_header_lines(headers)

    writer = _Writer()
    text, html = _bodies(mail)
    body = writer.text_part("plain", text)
    inline = [a for a in mail.attachments if a.inline and a.content_id]
    files = [a for a in mail.attachments if not (a.inline and a.content_id)]
    if html is not None:
        html_part = writer.text_part("html", html)
        if inline:
            html_part = writer.multipart(
                "related", [html_part, *(writer.file_part(a, True) for a in inline)], '; type="text/html"'
            )
        body = writer.multipart("alternative", [body, html_part])
    elif inline:
        files = list(mail.attachments)
    if files:
        body = writer.multipart("mixed", [body, *(writer.file_part(a, a.inline) for a in files)])

    raw = CRLF.join([*headers, *body])
    if not raw.endswith(CRLF):
        raw += CRLF
    data = raw.encode("utf-8")  # non-ASCII only in RFC 6532 addresses (SMTPUTF8)
    recipients = tuple(dict.fromkeys(normalize_email(a.email) for a in (*mail.to, *mail.cc, *mail.bcc)))
    return ComposedMail(
        raw=data,
        message_id=message_id,
        envelope_from=from_email,
        recipients=recipients,
        subject=mail.subject,
        references=tuple(references),
    )

"""Small, valid mails for tests and benchmarks, built fast: unique Message-IDs unless asked otherwise.

Built by hand rather than with :class:`email.message.EmailMessage`, which costs a millisecond a mail
and would dominate a benchmark that generates thousands.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, formataddr, getaddresses

__all__ = ["make_mail"]

_ADDRESS_HEADERS = frozenset({"from", "to", "cc", "bcc", "reply-to", "sender"})


def make_mail(
    subject: str = "Help with my order",
    *,
    body: str = "Hello,\n\nmy parcel has not arrived.\n\nKind regards\nAda\n",
    sender: str = "Ada Customer <ada@customer.example>",
    to: str = "support@postroom.test",
    message_id: str | None = None,
    with_message_id: bool = True,
    headers: Sequence[tuple[str, str]] = (),
    date: datetime | None = None,
) -> bytes:
    """An RFC 5322 text/plain message with CRLF line endings; ``message_id`` is without angle brackets.

    Non-ASCII header text is encoded as RFC 2047 words, a non-ASCII body or one with lines longer
    than RFC 5322 §2.1.1 allows is sent base64-encoded.
    """
    fields: list[tuple[str, str]] = [
        ("From", sender),
        ("To", to),
        ("Subject", subject),
        ("Date", format_datetime(date or datetime.now(UTC))),
    ]
    if with_message_id:
        fields.append(("Message-ID", f"<{message_id or secrets.token_hex(8) + '@customer.example'}>"))
    fields.extend(headers)
    lines = body.replace("\r\n", "\n").split("\n")
    if body.isascii() and all(len(line) <= 998 for line in lines):
        encoding, payload = "7bit", "\r\n".join(lines).encode("ascii")
    else:
        encoded = base64.encodebytes(body.encode("utf-8"))
        encoding, payload = "base64", encoded.replace(b"\n", b"\r\n")
    fields += [
        ("MIME-Version", "1.0"),
        ("Content-Type", "text/plain; charset=utf-8"),
        ("Content-Transfer-Encoding", encoding),
    ]
    head = "".join(f"{name}: {_encode(name, value)}\r\n" for name, value in fields)
    # UTF-8 is left in a header only for internationalised addresses (RFC 6532).
    return head.encode("utf-8") + b"\r\n" + payload


def _encode(name: str, value: str) -> str:
    if value.isascii():
        return value
    if name.lower() in _ADDRESS_HEADERS:
        pairs = getaddresses([value])
        if not all(address.isascii() for _, address in pairs):
            return value
        # Only display names may be encoded words (RFC 2047 §5); the addresses stay as they are.
        return ", ".join(formataddr(pair, charset="utf-8") for pair in pairs)
    return Header(value, "utf-8").encode()

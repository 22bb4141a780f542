"""Hostile mail for tests and benchmarks: bodies built to make a parser or a sanitiser work hard."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime

__all__ = ["make_nested_html_mail", "nested_html"]


def nested_html(depth: int) -> str:
    """``depth`` nested ``<div>`` elements around one word: 21 bytes a level (100,000 levels: 2.1 MB).

    HTML sanitisers that build a tree and walk it recursively spend time growing faster than the
    depth; nh3 needed about a minute for 100,000 levels.
    """
    return '<div dir="ltr">' * depth + "deep" + "</div>" * depth


def make_nested_html_mail(
    depth: int,
    *,
    subject: str = "Nested",
    sender: str = "Mallory <mallory@attacker.example>",
    to: str = "support@postroom.test",
    message_id: str | None = None,
) -> bytes:
    """A text/html-only mail (base64, as a client would send 2 MB of HTML) whose body nests ``depth`` levels."""
    body = base64.encodebytes(nested_html(depth).encode("ascii")).replace(b"\n", b"\r\n")
    head = (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {format_datetime(datetime.now(UTC))}\r\n"
        f"Message-ID: <{message_id or secrets.token_hex(8) + '@attacker.example'}>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    )
    return head.encode("ascii") + body

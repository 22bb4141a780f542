"""Cheap looks into raw bytes without parsing the mail (used when storing, on the hot path)."""

from __future__ import annotations

import re

_HEADER_END = re.compile(rb"\r?\n\r?\n")
# A Message-ID header with its folded continuation lines (RFC 5322 §2.2.3).
_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
_ANGLE = re.compile(rb"<([^<>\s]+)>")


def peek_message_id(raw: bytes) -> str | None:
    """The Message-ID of a raw mail without brackets, or None; reads the header block only."""
    end = _HEADER_END.search(raw)
    header = raw[: end.start()] if end else raw[:65536]
    match = _MESSAGE_ID.search(header)
    if match is None:
        return None
    value = match.group(1)
    angle = _ANGLE.search(value)
    token = angle.group(1) if angle else value.strip()
    if not token:
        return None
    text = token.decode("utf-8", "replace").strip()
    return text[:998] or None

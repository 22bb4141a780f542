"""Cheap looks into raw bytes without parsing the mail (used when storing, on the hot path).

The Message-ID read here is the one :func:`postroom.mail.parse.parse_message` reads (same rule,
:func:`postroom.mail.headers.parse_msg_ids`), so the raw store, a UIDVALIDITY resync and the dedupe
stage all speak of the same identifier.
"""

from __future__ import annotations

import re

from postroom.mail.headers import parse_msg_ids

_HEADER_END = re.compile(rb"\r?\n\r?\n")
# A Message-ID header with its folded continuation lines (RFC 5322 §2.2.3).
_MESSAGE_ID = re.compile(rb"^message-id[ \t]*:((?:.*)(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)
MAX_HEADER_SCAN = 256 * 1024


def peek_message_id(raw: bytes) -> str | None:
    """The first Message-ID of a raw mail (or header block), without brackets; None when it has none."""
    end = _HEADER_END.search(raw, 0, MAX_HEADER_SCAN)
    header = raw[: end.start()] if end else raw[:MAX_HEADER_SCAN]
    match = _MESSAGE_ID.search(header)
    if match is None:
        return None
    value = b" ".join(match.group(1).split()).decode("utf-8", "replace")
    ids = parse_msg_ids(value)
    return ids[0][:998] if ids else None

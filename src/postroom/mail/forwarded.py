"""Whom a forwarded mail was for: the original recipient, read from the headers that forwarding leaves.

When an admin forwards ``support@company.example`` to a generated address on our SMTP listener,
the SMTP envelope names only the generated address (RFC 5321 §3.3: the envelope, not the header, routes a
mail). Which of the connection's mailboxes the mail belongs to survives in header fields instead, and each
kind of forwarder leaves a different one:

- ``X-Forwarded-To`` / ``X-Forwarded-For``: Gmail and Google Workspace forwarding rules. These are not
  RFC 5322 address lists: ``X-Forwarded-For`` holds the forwarding mailbox and the destination separated by
  a space, so they are split on white space and commas.
- ``X-Original-To`` and ``Delivered-To``: Postfix local delivery (and many others), one address each; a mail
  forwarded over several hops carries one ``Delivered-To`` per hop, the newest on top.
- ``Resent-To``: a client's "redirect"/"bounce" action (RFC 5322 §3.6.6).
- ``To`` and ``Cc``: what the sender wrote, which names the support address when the forward kept it.

The first address in that order (fields top to bottom within one name) that is one of the connection's
mailbox addresses wins; addresses match case-insensitively. Nothing here does I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from postroom.mail.addresses import email_key, parse_address_list
from postroom.mail.headers import Headers, bytes_to_str, unfold
from postroom.mail.mime import parse_part

# Highest precedence first: the fields a forwarder writes deliberately come before what the sender wrote.
ORIGINAL_RECIPIENT_HEADERS = (
    "x-forwarded-to",
    "x-original-to",
    "delivered-to",
    "x-forwarded-for",
    "resent-to",
    "to",
    "cc",
)
# Machine-written fields that list bare addresses separated by spaces rather than commas.
_SPACE_SEPARATED = frozenset({"x-forwarded-to", "x-forwarded-for"})
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_SEPARATORS = re.compile(r"[\s,;]+")
MAX_HEADER_SCAN = 256 * 1024


def read_headers(raw: bytes) -> Headers:
    """The header fields of a raw mail, without reading (or cutting up) its body."""
    end = _HEADER_END.search(raw, 0, MAX_HEADER_SCAN)
    block = raw[: end.start()] if end else raw[:MAX_HEADER_SCAN]
    # The blank line added here ends the block, so the parser sees headers and an empty body.
    return parse_part(block + b"\n\n").headers


def _addresses(name: str, raw: bytes, headers: Headers) -> list[str]:
    # Split before decoding encoded words: a decoded display name may hold commas (RFC 2047 §5).
    value = unfold(bytes_to_str(raw, headers.hint)).strip()
    if name in _SPACE_SEPARATED:
        return [token.strip("<>") for token in _SEPARATORS.split(value) if "@" in token]
    return [address.email for address in parse_address_list(value) if address.email]


def recipient_candidates(headers: Headers) -> list[str]:
    """Every address the forwarding headers name, in precedence order, each once (first spelling kept)."""
    seen: set[str] = set()
    out: list[str] = []
    for name in ORIGINAL_RECIPIENT_HEADERS:
        for raw in headers.raw_all(name):
            for address in _addresses(name, raw, headers):
                key = email_key(address)
                if key and key not in seen:
                    seen.add(key)
                    out.append(address)
    return out


def original_recipient(mail: Headers | bytes, addresses: Iterable[str]) -> str | None:
    """Which of ``addresses`` (a connection's mailboxes) a forwarded mail was sent to, or None.

    ``mail`` is the raw mail or its parsed headers. The match is returned as spelled in ``addresses``,
    so that the caller can look it up in its own table.
    """
    wanted: dict[str, str] = {}
    for address in addresses:
        wanted.setdefault(email_key(address), address)
    if not wanted:
        return None
    headers = read_headers(mail) if isinstance(mail, bytes) else mail
    for candidate in recipient_candidates(headers):
        match = wanted.get(email_key(candidate))
        if match is not None:
            return match
    return None

"""Stage ``parse``: bytes → :class:`~postroom.mail.model.ParsedMessage` with the connection's options.

The runner parses every mail before the transaction begins (:func:`prepare`, in a parser process
with a time budget, see :mod:`postroom.pipeline.pool`), so that no parsing holds a write lock; this
stage checks the result, and quarantines a mail the runner could not parse with the reason it
recorded. Only a stage list run outside the runner (a context without either) parses here, with
the same bounds on HTML (:mod:`postroom.mail.html_bounds`) that keep every parse bounded.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from postroom.errors import StageError
from postroom.mail.html_bounds import DEFAULT_HTML_LIMITS, HtmlLimits
from postroom.mail.model import ParsedMessage
from postroom.mail.parse import ParseOptions, parse_degraded, parse_message
from postroom.pipeline.context import Context, stage
from postroom.store.blobs import BlobStore
from postroom.store.models import Connection


def parse_options(
    connection: Connection | None,
    received_at: datetime,
    reply_token_key: bytes,
    html_limits: HtmlLimits = DEFAULT_HTML_LIMITS,
) -> ParseOptions:
    """How mail of this connection is parsed, wherever it is parsed."""
    own = frozenset(box.address.lower() for box in connection.mailboxes) if connection else frozenset()
    return ParseOptions(
        max_attachment_bytes=connection.max_attachment_bytes if connection else 10_485_760,
        received_at=received_at,
        own_addresses=own,
        reply_token_key=reply_token_key,
        html_limits=html_limits,
    )


@dataclass(frozen=True, slots=True)
class Prepared:
    """A mail parsed ahead of its transaction, its attachment files already in the blob store.

    ``blob_keys`` maps the SHA-256 of each stored file to its key; those files' payloads were
    dropped from ``parsed`` so that they do not travel back from the worker process.
    """

    parsed: ParsedMessage
    blob_keys: dict[str, str]


def prepare(data: bytes, options: ParseOptions, blobs: BlobStore | None, *, degraded: str | None = None) -> Prepared:
    """Parse and store the attachment files: the CPU-heavy part of a mail, done outside the transaction.

    Storing files before the transaction that refers to them is safe because the blob store is
    content-addressed: a file whose message is rolled back, or turns out to be a duplicate, is
    only an unreferenced copy, never a wrong one. Without ``blobs`` (a store this process cannot
    share) the files stay in the result and the ``content`` stage stores them. With ``degraded``
    (a reason), the mail is parsed in the bounded degraded mode.
    """
    parsed = parse_message(data, options) if degraded is None else parse_degraded(data, degraded, options)
    if blobs is None:
        return Prepared(parsed, {})
    keys: dict[str, str] = {}
    attachments = []
    for attachment in parsed.attachments:
        if attachment.skipped_reason is None and attachment.sha256 not in keys:
            keys[attachment.sha256] = blobs.put(attachment.payload, attachment.sha256)
        attachments.append(dataclasses.replace(attachment, payload=b"") if attachment.sha256 in keys else attachment)
    return Prepared(dataclasses.replace(parsed, attachments=tuple(attachments)), keys)


@stage("parse")
def parse(ctx: Context) -> None:
    parsed = ctx.parsed
    if parsed is None and ctx.parse_failure is not None:
        raise StageError("parse", ctx.parse_failure)
    if parsed is None:
        options = parse_options(ctx.connection, ctx.raw.received_at, ctx.services.reply_token_key)
        parsed = parse_message(ctx.raw_bytes, options)
    if not parsed.headers:
        # Broken mail is understood as far as it goes; bytes without a single header field are not
        # mail at all (RFC 5322 §3.6 requires at least From and Date), so a person should look.
        raise StageError("parse", "not an email: no header fields found")
    ctx.parsed = parsed

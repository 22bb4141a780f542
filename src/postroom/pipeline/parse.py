"""Stage ``parse``: bytes → :class:`~postroom.mail.model.ParsedMessage` with the connection's options."""

from __future__ import annotations

from postroom.errors import StageError
from postroom.mail.parse import ParseOptions, parse_message
from postroom.pipeline.context import Context, stage


@stage("parse")
def parse(ctx: Context) -> None:
    connection = ctx.connection
    own = frozenset(box.address.lower() for box in connection.mailboxes) if connection else frozenset()
    options = ParseOptions(
        max_attachment_bytes=connection.max_attachment_bytes if connection else 10_485_760,
        received_at=ctx.raw.received_at,
        own_addresses=own,
        reply_token_key=ctx.services.reply_token_key,
    )
    parsed = parse_message(ctx.raw_bytes, options)
    if not parsed.headers:
        # Broken mail is understood as far as it goes; bytes without a single header field are not
        # mail at all (RFC 5322 §3.6 requires at least From and Date), so a person should look.
        raise StageError("parse", "not an email: no header fields found")
    ctx.parsed = parsed

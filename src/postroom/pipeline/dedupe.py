"""Stage ``dedupe``: a mail whose Message-ID this connection already has is processed once only.

Covers the same mail fetched again after a UIDVALIDITY change, delivered to two mailboxes of one
connection, or forwarded twice by two forwarding rules. Mail without a Message-ID gets one derived from
its bytes by the parser, so exact copies are caught too.
"""

from __future__ import annotations

from sqlalchemy import bindparam, select

from postroom.pipeline.context import Context, stage
from postroom.store.models import Message, RawStatus

_KNOWN = (
    select(Message.id)
    .where(Message.message_id == bindparam("message_id"), Message.connection_id == bindparam("connection_id"))
    .limit(1)
)


def _message_id_lock(ctx: Context) -> str:
    # Two workers must not both decide that the same Message-ID is new.
    return f"message-id:{ctx.raw.connection_id}:{ctx.require_parsed().message_id}"


@stage("dedupe", locks=lambda ctx: [_message_id_lock(ctx)])
def dedupe(ctx: Context) -> None:
    message_id = ctx.require_parsed().message_id
    ctx.batch.lock(_message_id_lock(ctx))
    existing = ctx.batch.sql.scalar(_KNOWN, {"message_id": message_id, "connection_id": ctx.raw.connection_id})
    if existing is not None:
        ctx.stop(RawStatus.DUPLICATE, f"Message-ID <{message_id}> already imported as message {existing}")

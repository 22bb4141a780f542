"""Stage ``contact``: who wrote, as a contact (created when new) linked to a customer by domain."""

from __future__ import annotations

from postroom.mail.model import Address
from postroom.pipeline.context import Context, stage


@stage("contact")
def contact(ctx: Context) -> None:
    parsed = ctx.require_parsed()
    sender = parsed.from_ or (parsed.reply_to[0] if parsed.reply_to else None)
    if sender is None:
        # No usable From at all: keep the mail, under a placeholder contact an agent can fix.
        sender = Address("unknown-sender@invalid", "Unknown sender")
    ctx.contact = ctx.batch.contacts.find_or_create(sender)

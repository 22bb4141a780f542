"""Stage ``contact``: who wrote, as a contact (created when new) linked to a customer by domain."""

from __future__ import annotations

from postroom.mail.model import Address, ParsedMessage
from postroom.pipeline.context import Context, stage

# No usable From at all: the mail is kept, under a placeholder contact an agent can fix.
UNKNOWN_SENDER = Address("unknown-sender@invalid", "Unknown sender")


def sender_of(parsed: ParsedMessage) -> Address:
    """Whom the mail is from, as the contact it is filed under."""
    return parsed.from_ or (parsed.reply_to[0] if parsed.reply_to else None) or UNKNOWN_SENDER


def contact_lock(email: str) -> str:
    """The key held while a contact is found or created: contacts are unique by (lower-case) address.

    Two transactions inserting the same new address wait on each other anyway (the unique index);
    naming that wait as a key lets the runner take it in order with the batch's other keys.
    """
    return f"contact:{email.lower()}"


@stage("contact", locks=lambda ctx: [contact_lock(sender_of(ctx.require_parsed()).email)])
def contact(ctx: Context) -> None:
    sender = sender_of(ctx.require_parsed())
    ctx.batch.lock(contact_lock(sender.email))
    ctx.contact = ctx.batch.contacts.find_or_create(sender)

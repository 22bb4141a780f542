"""Stored mailboxes → the protocol accounts sources and transports take (secrets decrypted here only)."""

from __future__ import annotations

from typing import cast

from postroom.sources.base import ImapAccount, ImapEncryption
from postroom.store.models import Connection, Mailbox
from postroom.store.secretbox import SecretBox
from postroom.transports.base import SmtpAccount, SmtpEncryption


def imap_account(connection: Connection, mailbox: Mailbox, secrets: SecretBox) -> ImapAccount:
    return ImapAccount(
        address=mailbox.address,
        host=mailbox.imap_host,
        port=mailbox.imap_port,
        encryption=cast(ImapEncryption, mailbox.imap_encryption),
        validate_certificate=mailbox.validate_certificate,
        username=mailbox.username or mailbox.address,
        password=secrets.decrypt(mailbox.password_enc),
        folder=mailbox.imap_folder or "INBOX",
        mark_as_read=connection.mark_as_read,
        unread_only=connection.unread_only,
        check_interval=connection.check_interval,
    )


def smtp_account(mailbox: Mailbox, secrets: SecretBox) -> SmtpAccount:
    # SMTP credentials default to the IMAP ones: most providers use one account for both.
    return SmtpAccount(
        address=mailbox.address,
        host=mailbox.smtp_host,
        port=mailbox.smtp_port,
        encryption=cast(SmtpEncryption, mailbox.smtp_encryption),
        validate_certificate=mailbox.validate_certificate,
        username=mailbox.smtp_username or mailbox.username or mailbox.address,
        password=secrets.decrypt(mailbox.smtp_password_enc or mailbox.password_enc),
    )

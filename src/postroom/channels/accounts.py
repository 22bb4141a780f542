"""Stored mailboxes → the protocol accounts sources and transports take (secrets decrypted here only),
and the identity mail from a mailbox is written with (:func:`mailbox_mail`).
"""

from __future__ import annotations

import html as html_lib
from dataclasses import dataclass, field
from typing import Any, cast

from postroom.channels.oauth_tokens import token_manager
from postroom.mail.model import Address, OutgoingMail
from postroom.sources.base import ImapAccount, ImapEncryption
from postroom.sources.imap import ImapAuthenticator, password_login
from postroom.sources.oauth import TokenManager, imap_xoauth2, pop3_xoauth2, smtp_xoauth2
from postroom.sources.pop3 import Pop3Account, Pop3Authenticator
from postroom.sources.pop3 import password_login as pop3_password_login
from postroom.store.db import Database
from postroom.store.models import Connection, Mailbox
from postroom.store.secretbox import SecretBox
from postroom.transports.base import SmtpAccount, SmtpEncryption
from postroom.transports.sendgrid import DEFAULT_API_URL, SendgridAccount
from postroom.transports.smtp import SmtpAuthenticator, password_auth


def text_to_html(text: str) -> str:
    """A plain-text message as simple HTML: escaped, paragraphs and line breaks kept."""
    paragraphs = [p for p in text.replace("\r\n", "\n").split("\n\n")]
    return "".join(f"<p>{html_lib.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs if p.strip() or p)


def mailbox_mail(
    connection: Connection,
    mailbox: Mailbox,
    *,
    to: tuple[Address, ...],
    subject: str,
    text: str,
    signer: str = "",
    **more: Any,
) -> OutgoingMail:
    """Mail written from ``mailbox`` as its settings say: From and its name, Reply-To, the content type
    (``text/html`` adds an HTML alternative) and the connection's signature with its placeholders.

    Replies, new conversations and the "Test connection" test mail all start here, so a test mail looks
    like what customers receive. ``signer`` fills ``{{ sender_name }}`` (else the mailbox's name);
    ``more`` passes the other :class:`OutgoingMail` fields (threading, reply token, headers).
    """
    return OutgoingMail(
        from_=Address(mailbox.address, mailbox.email_name),
        to=to,
        reply_to=(Address(mailbox.reply_to),) if mailbox.reply_to else (),
        subject=subject,
        text=text,
        html=text_to_html(text) if mailbox.message_content_type == "text/html" else None,
        signature=connection.smtp_signature or None,
        sender_name=signer or mailbox.email_name,
        sender_email=mailbox.address,
        **more,
    )


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


def pop3_account(connection: Connection, mailbox: Mailbox, secrets: SecretBox) -> Pop3Account:
    # The incoming-server columns hold the POP3 server of a pop3 connection (seed 004: one field for both).
    return Pop3Account(
        address=mailbox.address,
        host=mailbox.imap_host,
        port=mailbox.imap_port,
        encryption=cast(ImapEncryption, mailbox.imap_encryption),
        validate_certificate=mailbox.validate_certificate,
        username=mailbox.username or mailbox.address,
        password=secrets.decrypt(mailbox.password_enc),
        delete_after_import=connection.delete_after_import,
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


def sendgrid_account(connection: Connection, mailbox: Mailbox, secrets: SecretBox) -> SendgridAccount:
    # One API key per connection (seed 004); the mailbox names the sender in logs and errors.
    return SendgridAccount(
        address=mailbox.address,
        api_key=secrets.decrypt(connection.sendgrid_api_key_enc),
        api_url=connection.sendgrid_api_url or DEFAULT_API_URL,
    )


@dataclass(frozen=True, slots=True)
class MailboxAuth:
    """How one mailbox signs in to each protocol: by password, or by XOAUTH2 with a shared token manager."""

    imap: ImapAuthenticator
    pop3: Pop3Authenticator
    smtp: SmtpAuthenticator
    secrets: tuple[str, ...] = field(default=(), repr=False)  # for the connection log's scrubber
    manager: TokenManager | None = field(default=None, repr=False)

    def close(self) -> None:
        """Release what signing in holds (the token manager's HTTP client)."""
        if self.manager is not None:
            self.manager.close()


def mailbox_auth(connection: Connection, mailbox: Mailbox, secrets: SecretBox, db: Database) -> MailboxAuth:
    """The sign-in of a mailbox; with OAuth (seed 003) one token manager serves IMAP/POP3 and SMTP."""
    if not connection.oauth_enabled:
        passwords = (secrets.decrypt(mailbox.password_enc), secrets.decrypt(mailbox.smtp_password_enc))
        return MailboxAuth(imap=password_login, pop3=pop3_password_login, smtp=password_auth, secrets=passwords)
    manager = token_manager(db, secrets, mailbox)
    oauth_secrets = (secrets.decrypt(mailbox.oauth_client_secret_enc), secrets.decrypt(mailbox.oauth_refresh_token_enc))
    return MailboxAuth(
        imap=imap_xoauth2(manager),
        pop3=pop3_xoauth2(manager),
        smtp=smtp_xoauth2(manager),
        secrets=oauth_secrets,
        manager=manager,
    )

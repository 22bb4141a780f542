"""Stored mailboxes → the protocol accounts sources and transports take (secrets decrypted here only),
and the identity mail from a mailbox is written with (:func:`mailbox_mail`).

Every sign-in of a stored mailbox goes through :func:`mailbox_auth`, whose authenticators refuse to send a
password or an OAuth token over an unencrypted connection to a host other than loopback unless the
connection allows it (``allow_plaintext_auth``). Saving such settings is refused already
(``helpdesk.connections``); this is the second line, for rows written before that check or by other means.
"""

from __future__ import annotations

import html as html_lib
from dataclasses import dataclass, field
from typing import Any, Final, cast

import aiosmtplib

from postroom.channels.oauth_tokens import token_manager
from postroom.errors import TlsError
from postroom.mail.model import Address, OutgoingMail
from postroom.sources import imap, pop3
from postroom.sources.base import ImapAccount, ImapEncryption
from postroom.sources.imap import ImapAuthenticator, password_login
from postroom.sources.oauth import TokenManager, imap_xoauth2, pop3_xoauth2, smtp_xoauth2
from postroom.sources.pop3 import Pop3Account, Pop3Authenticator, Pop3Client
from postroom.sources.pop3 import password_login as pop3_password_login
from postroom.store.db import Database
from postroom.store.models import Connection, Mailbox
from postroom.store.secretbox import SecretBox
from postroom.tls import is_loopback
from postroom.transports import smtp
from postroom.transports.base import SmtpAccount, SmtpEncryption
from postroom.transports.sendgrid import DEFAULT_API_URL, SendgridAccount
from postroom.transports.smtp import SmtpAuthenticator, password_auth

# What an admin reads when a sign-in is refused for want of encryption.
PLAINTEXT_ADVICE: Final = "enable encryption (ssl or starttls) or set allow_plaintext_auth on the connection"


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
    # The incoming-server columns hold the POP3 server of a pop3 connection (one field for both).
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
    # One API key per connection; the mailbox names the sender in logs and errors.
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
    """The sign-in of a mailbox; with OAuth one token manager serves IMAP/POP3 and SMTP.

    The authenticators check, at the moment they would send the secret, that the connection is encrypted
    or goes to loopback, unless ``allow_plaintext_auth`` is on (see :func:`refuse_plaintext`).
    """
    allowed = connection.allow_plaintext_auth
    if not connection.oauth_enabled:
        passwords = (secrets.decrypt(mailbox.password_enc), secrets.decrypt(mailbox.smtp_password_enc))
        return MailboxAuth(
            imap=_guard_imap(password_login, allowed, "password"),
            pop3=_guard_pop3(pop3_password_login, allowed, "password"),
            smtp=_guard_smtp(password_auth, allowed, oauth=False),
            secrets=passwords,
        )
    manager = token_manager(db, secrets, mailbox)
    oauth_secrets = (secrets.decrypt(mailbox.oauth_client_secret_enc), secrets.decrypt(mailbox.oauth_refresh_token_enc))
    return MailboxAuth(
        imap=_guard_imap(imap_xoauth2(manager), allowed, "OAuth access token"),
        pop3=_guard_pop3(pop3_xoauth2(manager), allowed, "OAuth access token"),
        smtp=_guard_smtp(smtp_xoauth2(manager), allowed, oauth=True),
        secrets=oauth_secrets,
        manager=manager,
    )


def refuse_plaintext(protocol: str, address: str, host: str, port: int, what: str, *, allowed: bool) -> None:
    """Raise :class:`TlsError` rather than send ``what`` unencrypted to ``host``, unless that is loopback or allowed.

    A password in LOGIN, AUTH PLAIN or USER/PASS, and an XOAUTH2 bearer token, travel as they are (base64 is
    no protection): RFC 8314 §5 asks clients not to send them without TLS, and an active attacker can
    strip a STARTTLS offer, which is why "none" is refused here rather than "STARTTLS if offered".
    """
    if allowed or is_loopback(host):
        return
    raise TlsError(
        protocol,
        address,
        f"{host}:{port} is not encrypted and the {what} would travel in plain text, so it was not sent; "
        + PLAINTEXT_ADVICE,
    )


def _guard_imap(inner: ImapAuthenticator, allowed: bool, what: str) -> ImapAuthenticator:
    def authenticate(client: Any, account: ImapAccount) -> None:
        if account.encryption == "none":
            refuse_plaintext(imap.PROTOCOL, account.address, account.host, account.port, what, allowed=allowed)
        inner(client, account)

    return authenticate


def _guard_pop3(inner: Pop3Authenticator, allowed: bool, what: str) -> Pop3Authenticator:
    def authenticate(client: Pop3Client, account: Pop3Account) -> None:
        if account.encryption == "none":
            refuse_plaintext(pop3.PROTOCOL, account.address, account.host, account.port, what, allowed=allowed)
        inner(client, account)

    return authenticate


def _guard_smtp(inner: SmtpAuthenticator, allowed: bool, *, oauth: bool) -> SmtpAuthenticator:
    async def authenticate(client: aiosmtplib.SMTP, account: SmtpAccount) -> None:
        # Without a password the password authenticator sends nothing (an unauthenticated relay): no secret.
        if smtp.encryption_for(account) == "none" and (oauth or account.password):
            what = "OAuth access token" if oauth else "password"
            refuse_plaintext(smtp.PROTOCOL, account.address, account.host, account.port, what, allowed=allowed)
        await inner(client, account)

    return authenticate

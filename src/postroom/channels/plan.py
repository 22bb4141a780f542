"""What running a connection means for its mode: which sources read mail, which sign-ins send it.

The runner (``channels/runner.py``) starts what a :class:`ConnectionPlan` lists and knows nothing of
modes itself: IMAP and POP3 connections have a source per mailbox; forwarding and webhook
connections receive through the process-wide SMTP listener and the HTTP API, so they have none.
Outgoing checks are the SMTP sign-in of every mailbox, or one SendGrid API check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from postroom.channels.accounts import (
    MailboxAuth,
    imap_account,
    mailbox_auth,
    pop3_account,
    sendgrid_account,
    smtp_account,
)
from postroom.channels.sink import MailboxSink
from postroom.sources.base import EventLog, Source, StatusCallback
from postroom.sources.imap import ImapSource
from postroom.sources.pop3 import Pop3Source
from postroom.store.db import Database
from postroom.store.models import Connection, ConnectionMode, Mailbox, OutboundKind
from postroom.store.secretbox import SecretBox
from postroom.transports import sendgrid, smtp

SourceFactory = Callable[[EventLog, StatusCallback], Source]


@dataclass(frozen=True, slots=True)
class IncomingPlan:
    protocol: str  # "IMAP", "POP3": names the source in logs and thread names
    address: str
    build: SourceFactory


@dataclass(frozen=True, slots=True)
class OutgoingPlan:
    protocol: str  # "SMTP", "SendGrid"
    address: str
    endpoint: str
    check: Callable[[], None]  # signs in once; raises the ChannelError that says what failed


@dataclass(frozen=True, slots=True)
class ConnectionPlan:
    mode: str
    incoming: list[IncomingPlan]
    outgoing: list[OutgoingPlan]
    secrets: list[str] = field(repr=False)  # every secret of the connection, scrubbed from its log
    auths: list[MailboxAuth] = field(default_factory=list, repr=False)
    # Every mailbox's address: a mode without sources and one SendGrid check lists fewer plans than boxes.
    addresses: list[str] = field(default_factory=list)

    def close(self) -> None:
        for auth in self.auths:
            auth.close()

    def describe(self) -> str:
        protocols = sorted({p.protocol for p in self.incoming} | {p.protocol for p in self.outgoing})
        boxes = len(self.addresses or {p.address for p in self.incoming} | {p.address for p in self.outgoing})
        return f"{boxes} mailbox(es) over {' and '.join(protocols) or 'nothing'}"


def plan_connection(
    connection: Connection, secrets: SecretBox, *, db: Database, on_stored: Callable[[int], None]
) -> ConnectionPlan:
    """Decrypt what the connection needs and describe its sources and outgoing sign-ins (inside a session)."""
    incoming: list[IncomingPlan] = []
    outgoing: list[OutgoingPlan] = []
    found_secrets: list[str] = []
    auths: list[MailboxAuth] = []
    for box in connection.mailboxes:
        auth = mailbox_auth(connection, box, secrets, db)
        auths.append(auth)
        found_secrets.extend(auth.secrets)
        sink = MailboxSink(db, connection.id, box.id, on_stored)
        if connection.mode is ConnectionMode.IMAP:
            incoming.append(_imap(connection, box, secrets, sink, auth))
        elif connection.mode is ConnectionMode.POP3:
            incoming.append(_pop3(connection, box, secrets, sink, auth))
        if connection.outbound is OutboundKind.SMTP:
            outgoing.append(_smtp(box, secrets, auth))
    if connection.outbound is OutboundKind.SENDGRID and connection.mailboxes:
        # One API key serves every mailbox of the connection: one check is enough.
        outgoing.append(_sendgrid(connection, connection.mailboxes, secrets))
        found_secrets.append(secrets.decrypt(connection.sendgrid_api_key_enc))
    addresses = [box.address for box in connection.mailboxes]
    return ConnectionPlan(
        connection.mode.value, incoming, outgoing, [s for s in found_secrets if s], auths, addresses=addresses
    )


def _imap(
    connection: Connection, box: Mailbox, secrets: SecretBox, sink: MailboxSink, auth: MailboxAuth
) -> IncomingPlan:
    account = imap_account(connection, box, secrets)

    def build(events: EventLog, on_status: StatusCallback) -> Source:
        return ImapSource(account, sink, events, on_status=on_status, authenticate=auth.imap)

    return IncomingPlan("IMAP", account.address, build)


def _pop3(
    connection: Connection, box: Mailbox, secrets: SecretBox, sink: MailboxSink, auth: MailboxAuth
) -> IncomingPlan:
    account = pop3_account(connection, box, secrets)

    def build(events: EventLog, on_status: StatusCallback) -> Source:
        return Pop3Source(account, sink, events, on_status=on_status, authenticate=auth.pop3)

    return IncomingPlan("POP3", account.address, build)


def _smtp(box: Mailbox, secrets: SecretBox, auth: MailboxAuth) -> OutgoingPlan:
    account = smtp_account(box, secrets)

    def check() -> None:
        asyncio.run(smtp.check_login(account, authenticate=auth.smtp))

    return OutgoingPlan("SMTP", account.address, f"{account.host}:{account.port}", check)


def _sendgrid(connection: Connection, boxes: Sequence[Mailbox], secrets: SecretBox) -> OutgoingPlan:
    # The check is made once for the key every mailbox sends with, so its lines and errors name them all.
    account = replace(sendgrid_account(connection, boxes[0], secrets), address=", ".join(box.address for box in boxes))

    def check() -> None:
        asyncio.run(sendgrid.check(account))

    return OutgoingPlan("SendGrid", account.address, account.base_url, check)

"""Mail that is pushed to us (forwarding mode's SMTP listener, inbound webhooks) meets the database here.

:class:`ForwardingResolver` tells the SMTP listener which connection a generated address belongs to, and
:class:`InboundRawSink` commits what the listener or a webhook received to the raw store, after which the
pipeline takes over (DESIGN §1).

Every existing forwarding connection accepts mail, started or not: a stopped connection's mail waits in
the raw store rather than bouncing while an admin restarts or reconfigures it. Mail is refused (550 at
RCPT) only for addresses that belong to no connection at all.

A pushed mail is stored under the mailbox it was originally sent to (:mod:`postroom.mail.forwarded`) and
deduplicated per mailbox by its Message-ID (or the SHA-256 of its bytes when it has none), so the same mail
forwarded twice, by two forwarding rules or by a sender retrying, is stored once.

Mail to ``postmaster`` (RFC 5321 §4.5.1: a receiving SMTP server must accept it) belongs to no connection.
It is committed like every other mail, before the 250, as a raw message without connection or mailbox
(the columns are nullable: a deleted connection's mail looks the same) in status ``ignored``, so the
pipeline never makes a conversation of it and replay leaves it alone, with an ``error`` that says what it
is; a warning on the service log names its sender and Message-ID. The admin finds it with
``GET /api/v1/raw-messages?status=ignored`` and reads it at ``/api/v1/raw-messages/{id}/eml``. Kept in
the database rather than in a local directory because it is then as durable as any other mail and
readable from every machine of a scaled-out installation.

A signed webhook post is accepted once (:class:`WebhookReplays`): its replay key (the Mailgun token, the
SendGrid signature) is inserted into ``webhook_replays`` in the transaction that stores its mail, and the
primary key refuses a second insert, on SQLite and PostgreSQL, from any process, after restarts too.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

import structlog
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postroom.errors import NotFound, StoreError, WebhookSignatureInvalid
from postroom.mail.addresses import email_key
from postroom.mail.forwarded import original_recipient, read_headers
from postroom.mail.peek import peek_message_id
from postroom.sources.base import InboundMail
from postroom.sources.smtp_listener import InboundTarget
from postroom.sources.webhooks import ReplayKey
from postroom.store.db import Database
from postroom.store.models import (
    Connection,
    ConnectionMode,
    Mailbox,
    RawBody,
    RawMessage,
    RawStatus,
    WebhookReplay,
    utcnow,
)

log = structlog.get_logger(__name__)

# RawMessage.dedupe_key holds at most 1000 characters; longer Message-IDs are keyed by their hash.
_MAX_KEY = 1000
# What the raw message of a postmaster mail says in its ``error`` column (its status is ``ignored``).
POSTMASTER_NOTE = "mail to postmaster (RFC 5321 §4.5.1): kept for the admin, not made a conversation"


def inbound_dedupe_key(raw: bytes) -> str:
    """``mid:<Message-ID>`` when the mail has one (DESIGN §1), otherwise ``sha256:<hex of the bytes>``."""
    message_id = peek_message_id(raw)
    if message_id is None:
        return f"sha256:{hashlib.sha256(raw).hexdigest()}"
    key = f"mid:{message_id}"
    if len(key) > _MAX_KEY:
        key = f"mid-sha256:{hashlib.sha256(message_id.encode('utf-8', 'surrogateescape')).hexdigest()}"
    return key


class ForwardingResolver:
    """A :class:`~postroom.sources.smtp_listener.RecipientResolver` for ``<inbound_key>@<inbound_domain>``.

    ``inbound_domains`` are every domain of ``POSTROOM_INBOUND_DOMAIN`` (one, or an iterable of them):
    a generated address is accepted at each, because admins copy the address into forwarding rules
    and a rule written before the domain changed still names the old one.
    """

    def __init__(self, db: Database, inbound_domains: str | Iterable[str]) -> None:
        self.db = db
        names = [inbound_domains] if isinstance(inbound_domains, str) else list(inbound_domains)
        self.inbound_domains = frozenset(name.strip().lower().rstrip(".") for name in names)

    def resolve(self, address: str) -> InboundTarget | None:
        local, at, domain = address.strip().strip("<>").rpartition("@")
        # Domains compare case-insensitively (RFC 5321 §2.4); our keys are lower-case, and matching the
        # local part without case forgives a relay that folded it.
        if not at or not local or domain.lower().rstrip(".") not in self.inbound_domains:
            return None
        key = local.lower()
        if len(key) > 64:
            return None
        with self.db.read() as session:
            connection_id = session.scalar(
                select(Connection.id).where(
                    func.lower(Connection.inbound_key) == key, Connection.mode == ConnectionMode.FORWARDING
                )
            )
        return None if connection_id is None else InboundTarget(connection_id=int(connection_id))


class WebhookReplays:
    """The signed webhook posts accepted lately, in the table ``webhook_replays``, shared by every process.

    ``max_age`` is the accepted window of a post's signed timestamp (``POSTROOM_WEBHOOK_MAX_AGE_SECONDS``,
    either way). A key is kept twice that long: a post stamped ``max_age`` ahead of our clock stays
    acceptable until ``max_age`` behind it, and a key forgotten earlier could be replayed in between.
    Older rows are deleted at most once per ``prune_interval`` seconds per process, in a transaction of
    their own after a store, so that the table stays as small as the traffic of that span.
    """

    def __init__(self, db: Database, max_age: float, *, prune_interval: float = 60.0) -> None:
        self.db = db
        self.keep = timedelta(seconds=2 * max_age)
        self.prune_interval = prune_interval
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def claim(self, session: Session, replay: ReplayKey) -> None:
        """Record ``replay`` in ``session``'s transaction; :class:`WebhookSignatureInvalid` if it is known.

        Insert-or-refuse in one statement: the primary key decides, also between two processes posting
        the same key at once (on PostgreSQL the second insert waits for the first transaction and fails
        only if it commits). The savepoint keeps the transaction usable after the refusal. Rolled back
        with the transaction, so a post whose mail could not be stored may come again.
        """
        try:
            with session.begin_nested():
                session.execute(insert(WebhookReplay), [{"key": replay.key, "seen_at": utcnow()}])
        except IntegrityError:
            raise WebhookSignatureInvalid(
                replay.provider, f"this {replay.what} was used before (a replayed request)"
            ) from None

    def prune(self, *, force: bool = False) -> int:
        """Delete the keys older than twice the window, unless done less than ``prune_interval`` ago."""
        now = time.monotonic()
        with self._lock:
            if not force and now < self._next_prune:
                return 0
            self._next_prune = now + self.prune_interval
        with self.db.write() as session:
            result = session.execute(delete(WebhookReplay).where(WebhookReplay.seen_at < utcnow() - self.keep))
        removed = int(getattr(result, "rowcount", 0) or 0)
        if removed:
            log.debug("inbound.webhook_replays_pruned", removed=removed)
        return removed


class InboundRawSink:
    """An :class:`~postroom.sources.smtp_listener.InboundSink` on the database.

    ``origin`` is what the raw messages are marked with (``smtp`` or ``webhook``); ``on_stored`` is called
    with the number of new raw messages after each commit that stored one (it wakes the pipeline).
    ``replays`` is where :meth:`store` records a signed webhook post's replay key.
    """

    def __init__(
        self,
        db: Database,
        origin: str,
        on_stored: Callable[[int], None] | None = None,
        *,
        replays: WebhookReplays | None = None,
    ) -> None:
        self.db = db
        self.origin = origin
        self.on_stored = on_stored
        self.replays = replays

    def store(
        self, target: InboundTarget, mail: InboundMail, *, trace: bytes = b"", replay: ReplayKey | None = None
    ) -> int:
        """See :meth:`InboundSink.store`. With ``replay``, the post's replay key is recorded in the same
        transaction: a key seen before raises :class:`WebhookSignatureInvalid` and stores nothing, and a
        store that fails leaves the key unused."""
        if replay is not None and self.replays is None:
            raise ValueError("a replay key needs the sink's WebhookReplays")
        key = inbound_dedupe_key(mail.raw)
        data = trace + mail.raw
        with self.db.write() as session:
            if replay is not None and self.replays is not None:
                # First: a replay is refused before anything else is looked at.
                self.replays.claim(session, replay)
            mailbox_id = self._mailbox_for(session, target, mail)
            raw_id = self._known(session, mailbox_id, key)
            created = raw_id is None
            if raw_id is None:
                raw_id = self._insert(session, target.connection_id, mailbox_id, key, data)
                created = raw_id is not None
                if raw_id is None:
                    # Another process stored the same mail between our look and our insert.
                    raw_id = self._known(session, mailbox_id, key)
                    if raw_id is None:
                        raise NotFound(f"raw message {key!r} of mailbox {mailbox_id} vanished while storing it")
        if created:
            log.info(
                "inbound.stored",
                origin=self.origin,
                raw_id=raw_id,
                connection_id=target.connection_id,
                mailbox_id=mailbox_id,
                size=len(data),
            )
            if self.on_stored is not None:
                self.on_stored(1)
        else:
            log.info("inbound.duplicate", origin=self.origin, raw_id=raw_id, dedupe_key=key[:80])
        if replay is not None and self.replays is not None:
            try:
                self.replays.prune()
            except Exception:
                # The mail is stored and its key recorded; old keys only wait for the next prune.
                log.warning("inbound.webhook_replays_prune_failed", exc_info=True)
        return raw_id

    def store_postmaster(self, mail: InboundMail, *, trace: bytes = b"") -> int:
        """Commit mail to ``postmaster`` as an ``ignored`` raw message of no connection (see the module)."""
        # Prefixed, so that it never matches mail of a deleted connection, which has no mailbox either.
        key = f"postmaster:{inbound_dedupe_key(mail.raw)}"
        if len(key) > _MAX_KEY:
            key = f"postmaster:sha256:{hashlib.sha256(key.encode('utf-8', 'surrogateescape')).hexdigest()}"
        data = trace + mail.raw
        # No unique key guards a row without a mailbox, so on PostgreSQL two deliveries of one mail at
        # the same instant may both be kept: a second copy for the admin, never a lost one.
        with self.db.write() as session:
            known = session.scalar(
                select(RawMessage.id).where(
                    RawMessage.connection_id.is_(None), RawMessage.mailbox_id.is_(None), RawMessage.dedupe_key == key
                )
            )
            if known is not None:
                log.info("inbound.postmaster_duplicate", raw_id=known, dedupe_key=key[:80])
                return int(known)
            raw_id = session.scalar(
                insert(RawMessage).returning(RawMessage.id),
                {
                    "connection_id": None,
                    "mailbox_id": None,
                    "dedupe_key": key,
                    "origin": self.origin,
                    "header_message_id": peek_message_id(mail.raw),
                    "size": len(data),
                    "received_at": utcnow(),
                    "status": RawStatus.IGNORED,
                    "error": POSTMASTER_NOTE,
                    "attempts": 0,
                },
            )
            if raw_id is None:
                raise StoreError("the database returned no id for the postmaster mail it stored")
            session.execute(insert(RawBody), [{"raw_id": raw_id, "data": data}])
        raw_id = int(raw_id)
        # A warning: somebody wrote to the postmaster, usually about a problem with our mail, and nobody
        # reads the raw store by accident.
        log.warning(
            "inbound.postmaster_mail",
            raw_id=raw_id,
            sender=mail.envelope_from or "<>",
            message_id=peek_message_id(mail.raw),
            size=len(data),
            read_at=f"/api/v1/raw-messages/{raw_id}/eml",
        )
        return raw_id

    def _mailbox_for(self, session: Session, target: InboundTarget, mail: InboundMail) -> int:
        boxes = session.execute(
            select(Mailbox.id, Mailbox.address)
            .where(Mailbox.connection_id == target.connection_id)
            .order_by(Mailbox.position)
        ).all()
        if not boxes:
            raise NotFound(f"connection {target.connection_id} has no mailbox (deleted meanwhile?)")
        if target.mailbox_id is not None and any(box.id == target.mailbox_id for box in boxes):
            return int(target.mailbox_id)
        by_key = {email_key(box.address): int(box.id) for box in boxes}
        # A webhook's envelope names the original recipient itself; a forwarding address never is one.
        for recipient in mail.recipients:
            found = by_key.get(email_key(recipient))
            if found is not None:
                return found
        match = original_recipient(read_headers(mail.raw), [box.address for box in boxes])
        if match is not None:
            return by_key[email_key(match)]
        # Nothing names one of our addresses (a Bcc, or a forwarder that rewrote every header): the
        # connection's first mailbox answers.
        return int(boxes[0].id)

    @staticmethod
    def _known(session: Session, mailbox_id: int, key: str) -> int | None:
        found = session.scalar(
            select(RawMessage.id).where(RawMessage.mailbox_id == mailbox_id, RawMessage.dedupe_key == key)
        )
        return None if found is None else int(found)

    def _insert(self, session: Session, connection_id: int, mailbox_id: int, key: str, data: bytes) -> int | None:
        """Insert the raw message and its bytes; None when the dedupe key was taken meanwhile.

        On SQLite the write transaction holds the database lock from its start, so the look before this
        cannot go stale; on PostgreSQL two deliveries of one mail may race, and the unique key decides.
        The savepoint keeps the transaction usable after that refusal.
        """
        try:
            with session.begin_nested():
                raw_id = session.scalar(
                    insert(RawMessage).returning(RawMessage.id),
                    {
                        "connection_id": connection_id,
                        "mailbox_id": mailbox_id,
                        "dedupe_key": key,
                        "origin": self.origin,
                        "header_message_id": peek_message_id(data),
                        "size": len(data),
                        "received_at": utcnow(),
                        "status": RawStatus.PENDING,
                        "error": "",
                        "attempts": 0,
                    },
                )
                session.execute(insert(RawBody), [{"raw_id": raw_id, "data": data}])
        except IntegrityError:
            return None
        return None if raw_id is None else int(raw_id)

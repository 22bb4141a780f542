"""The outbox worker: sends queued mail, retries temporary failures with backoff, never sends twice.

A row is claimed (``queued`` → ``sending``, with an owner and an expiry) in one transaction and
settled (``sent`` / ``queued`` again / ``failed``) in another. A row still ``sending`` after its claim
expired belongs to a worker that died mid-send: the mail may or may not have left, so it becomes
``uncertain`` and the agent decides — sending it again blindly could deliver it twice.

Each connection says how its mail goes out (``Connection.outbound``): over its mailboxes' SMTP servers, or
through SendGrid's Web API with the connection's API key. After an SMTP send, a connection that reads its
mailbox over IMAP and keeps ``save_to_sent`` also files the copy in the mailbox's Sent folder, as a mail
client would (SendGrid mail never reached the mailbox's server, and providers such as Gmail file SMTP mail
themselves, which is what the setting is for).

The copy is durable work of its own (``Outbox.sent_copy``): the transaction that settles a row ``sent`` also
marks its copy ``pending``, so a worker that dies after the send leaves a copy to file, never a lost one. The
sending worker files it at once; a failure keeps it ``pending`` with the retry policy's backoff, the loop picks
up due copies like due mail, and when the attempts run out it is ``failed`` with the reason on the connection
log. A retry first searches the Sent folder for the mail's Message-ID, since the APPEND of an attempt whose
result was never recorded may have gone through: a copy is never filed twice. Whatever happens to the copy,
the mail stays sent (never failed, never sent again).
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postroom.channels.accounts import MailboxAuth, imap_account, mailbox_auth, sendgrid_account, smtp_account
from postroom.channels.logs import ConnectionEventLog
from postroom.errors import ChannelError, DeliveryError, PostroomError
from postroom.mail.model import ComposedMail
from postroom.pipeline.context import Event
from postroom.sources.base import ImapAccount
from postroom.sources.imap import ImapAuthenticator
from postroom.store.db import Database
from postroom.store.models import (
    Connection,
    ConnectionMode,
    Mailbox,
    Message,
    OutboundKind,
    Outbox,
    OutboxStatus,
    SentCopyStatus,
    utcnow,
)
from postroom.store.secretbox import SecretBox
from postroom.transports import sendgrid, smtp
from postroom.transports.base import SendResult, SmtpAccount
from postroom.transports.sendgrid import SendgridAccount, SendgridTemporaryError
from postroom.transports.sent_folder import SentCopy, append_to_sent, files_sent_mail_itself
from postroom.transports.smtp import SmtpAuthenticator

log = structlog.get_logger(__name__)


class Sender(Protocol):
    """Sends one message over SMTP (:func:`postroom.transports.smtp.send`)."""

    def __call__(
        self, account: SmtpAccount, mail: ComposedMail, *, authenticate: SmtpAuthenticator = ...
    ) -> Awaitable[SendResult]: ...


class SentAppender(Protocol):
    """Files sent bytes in a Sent folder (:func:`postroom.transports.sent_folder.append_to_sent`); blocking."""

    def __call__(
        self,
        account: ImapAccount,
        raw: bytes,
        folder: str = ...,
        *,
        authenticate: ImapAuthenticator = ...,
        unless_filed: str = ...,
    ) -> SentCopy: ...


SendgridSender = Callable[[SendgridAccount, bytes, str, Sequence[str]], Awaitable[SendResult]]
"""Sends one message's MIME through SendGrid (:func:`postroom.transports.sendgrid.send`)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff for temporary failures: first_delay × factor^n, capped, with ±10 % jitter."""

    first_delay: float = 30.0
    factor: float = 2.0
    max_delay: float = 3600.0
    max_attempts: int = 12  # with the defaults above, about 8 hours of trying

    def delay(self, attempts: int) -> float:
        base = min(self.max_delay, self.first_delay * self.factor ** max(0, attempts - 1))
        return base * random.uniform(0.9, 1.1)


@dataclass(frozen=True, slots=True)
class OutboxLimits:
    claim_batch: int = 8  # messages sent concurrently by one worker
    claim_seconds: float = 600.0  # longer than any send can take; after it a claim is stale
    poll_seconds: float = 1.0


@dataclass(frozen=True, slots=True)
class _Route:
    """How one claimed message goes out, read from its connection and mailbox with the secrets decrypted."""

    smtp: SmtpAccount | None = None
    sendgrid: SendgridAccount | None = None
    # Set when the copy is to be filed in the mailbox's Sent folder after an SMTP send.
    sent_copy: ImapAccount | None = None
    sent_folder: str = ""
    auth: MailboxAuth | None = None  # how the mailbox signs in to SMTP and IMAP (password or XOAUTH2)


UNCERTAIN_REASON = (
    "the worker sending this message stopped before it could record the result; "
    "it may have been delivered — check with the recipient, then resend if needed"
)


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        secrets: SecretBox,
        *,
        worker_id: str,
        sender: Sender = smtp.send,
        sendgrid_sender: SendgridSender = sendgrid.send,
        sent_appender: SentAppender = append_to_sent,
        policy: RetryPolicy = RetryPolicy(),
        sent_copy_policy: RetryPolicy | None = None,
        limits: OutboxLimits = OutboxLimits(),
        on_events: Callable[[list[Event]], None] | None = None,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.worker_id = worker_id
        self.sender = sender
        self.sendgrid_sender = sendgrid_sender
        self.sent_appender = sent_appender
        self.policy = policy
        # Filing the Sent copy backs off like sending does unless told otherwise: the usual causes (server down,
        # folder missing, credentials changed) are the ones an admin fixes within the hours that policy spans.
        self.sent_copy_policy = sent_copy_policy or policy
        self.limits = limits
        self.on_events = on_events or (lambda events: None)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._main, name="outbox", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def wake(self) -> None:
        """Mail was queued in this process: send it now rather than at the next poll."""
        self._wake.set()

    def _main(self) -> None:
        asyncio.run(self._loop())

    async def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self.mark_stale_uncertain()
                sent = await self.run_once()
            except Exception:
                log.exception("outbox.loop_failed")
                sent = 0
            if sent:
                continue
            await asyncio.to_thread(self._wake.wait, self.limits.poll_seconds)

    # -- work ----------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim due mail and due Sent copies, send and file them; returns how many were attempted."""
        ids = self.claim()
        copies = self.claim_sent_copies()
        if ids or copies:
            await asyncio.gather(
                *(self._send(outbox_id) for outbox_id in ids), *(self._file_pending(outbox_id) for outbox_id in copies)
            )
        return len(ids) + len(copies)

    def claim(self) -> list[int]:
        now = utcnow()
        with self.db.write() as session:
            query = (
                select(Outbox.id)
                .join(Connection, Connection.id == Outbox.connection_id)
                .where(
                    Outbox.status == OutboxStatus.QUEUED,
                    Outbox.next_attempt_at <= now,
                    # A stopped connection keeps its mail queued until it is started again.
                    Connection.enabled.is_(True),
                )
                .order_by(Outbox.next_attempt_at, Outbox.id)
                .limit(self.limits.claim_batch)
            )
            if not self.db.is_sqlite:
                query = query.with_for_update(of=Outbox, skip_locked=True)
            ids = list(session.scalars(query))
            if ids:
                session.execute(
                    update(Outbox)
                    .where(Outbox.id.in_(ids))
                    .values(
                        status=OutboxStatus.SENDING,
                        claimed_by=self.worker_id,
                        claimed_until=now + timedelta(seconds=self.limits.claim_seconds),
                    )
                )
                session.execute(
                    update(Message)
                    .where(Message.id.in_(select(Outbox.message_pk).where(Outbox.id.in_(ids))))
                    .values(delivery_status=OutboxStatus.SENDING.value)
                )
        return ids

    def claim_sent_copies(self) -> list[int]:
        """Claim the pending Sent copies that are due: their next attempt moves one claim length ahead.

        Should this worker die while filing, the copy is due again for any worker when that time comes, and the
        retry's search finds a copy that did reach the folder. A stopped connection keeps its copies pending.
        """
        now = utcnow()
        with self.db.write() as session:
            query = (
                select(Outbox.id)
                .join(Connection, Connection.id == Outbox.connection_id)
                .where(
                    Outbox.sent_copy == SentCopyStatus.PENDING,
                    Outbox.sent_copy_next_at <= now,
                    Connection.enabled.is_(True),
                )
                .order_by(Outbox.sent_copy_next_at, Outbox.id)
                .limit(self.limits.claim_batch)
            )
            if not self.db.is_sqlite:
                # As in claim(): two workers never take the same copy; SQLite has one writer at a time anyway.
                query = query.with_for_update(of=Outbox, skip_locked=True)
            ids = list(session.scalars(query))
            if ids:
                session.execute(
                    update(Outbox)
                    .where(Outbox.id.in_(ids))
                    .values(sent_copy_next_at=now + timedelta(seconds=self.limits.claim_seconds))
                )
        return ids

    def mark_stale_uncertain(self) -> int:
        events: list[Event] = []
        with self.db.write() as session:
            stale = session.scalars(
                select(Outbox).where(Outbox.status == OutboxStatus.SENDING, Outbox.claimed_until < utcnow())
            ).all()
            for row in stale:
                events.append(_settle(session, row, OutboxStatus.UNCERTAIN, UNCERTAIN_REASON))
        if events:
            self.on_events(events)
        return len(stale)

    async def _send(self, outbox_id: int) -> None:
        with self.db.read() as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return
            mailbox = session.get(Mailbox, row.mailbox_id) if row.mailbox_id else None
            connection = session.get(Connection, row.connection_id) if row.connection_id else None
            mail = ComposedMail(
                raw=row.raw,
                message_id=row.message_id,
                envelope_from=row.envelope_from,
                recipients=tuple(row.recipients),
                subject="",
                references=(),
            )
            connection_id = row.connection_id
            try:
                route = self._route(connection, mailbox) if mailbox is not None else None
            except PostroomError as exc:
                # A secret that cannot be decrypted: nothing can be sent until an admin fixes the key.
                route, setup_error = None, str(exc)
            else:
                setup_error = "the mailbox of this message was deleted"
        secrets = _secrets(route)
        events_log = ConnectionEventLog(self.db, connection_id, secrets) if connection_id else None
        if route is None:
            self._settle_failed(outbox_id, setup_error, events_log)
            return
        try:
            await self._deliver(outbox_id, route, mail, events_log)
        finally:
            if route.auth is not None:
                route.auth.close()

    async def _deliver(
        self, outbox_id: int, route: _Route, mail: ComposedMail, events_log: ConnectionEventLog | None
    ) -> None:
        try:
            if route.sendgrid is not None:
                result = await self.sendgrid_sender(route.sendgrid, mail.raw, mail.envelope_from, mail.recipients)
            elif route.smtp is not None and route.auth is not None:
                result = await self.sender(route.smtp, mail, authenticate=route.auth.smtp)
            elif route.smtp is not None:
                result = await self.sender(route.smtp, mail)
            else:
                # _route always sets one of the two; should it ever not, the row fails visibly.
                raise PostroomError("no transport is configured for this message")
        except DeliveryError as exc:
            reply = _reply_text(exc)
            if exc.temporary:
                wait = exc.retry_after if isinstance(exc, SendgridTemporaryError) else None
                self._settle_retry(outbox_id, reply, events_log, at_least=wait)
            else:
                self._settle_failed(outbox_id, reply, events_log)
            return
        except ChannelError as exc:
            # Cannot connect, TLS or sign-in failed: the mail is fine, the connection is not. Retry on
            # backoff (an admin may fix the credentials meanwhile), give up after max_attempts.
            self._settle_retry(outbox_id, str(exc), events_log)
            return
        except PostroomError as exc:
            self._settle_failed(outbox_id, str(exc), events_log)
            return
        wanted = self._settle_sent(outbox_id, result, events_log, sent_copy=route.sent_copy is not None)
        if wanted and route.sent_copy is not None:
            # Nothing can have filed this copy yet: no search before the APPEND.
            await self._file_in_sent(outbox_id, route, route.sent_copy, mail, events_log, retry=False)

    def _route(self, connection: Connection | None, mailbox: Mailbox) -> _Route:
        if connection is not None and connection.outbound is OutboundKind.SENDGRID:
            return _Route(sendgrid=sendgrid_account(connection, mailbox, self.secrets))
        sent_copy = None
        # Only a mailbox we read over IMAP has a Sent folder we can reach; POP3 has no folders (RFC 1939).
        # Gmail and Microsoft file submitted mail themselves: a copy of ours would be a second one.
        if (
            connection is not None
            and connection.save_to_sent
            and connection.mode is ConnectionMode.IMAP
            and not files_sent_mail_itself(mailbox.smtp_host)
        ):
            sent_copy = imap_account(connection, mailbox, self.secrets)
        auth = mailbox_auth(connection, mailbox, self.secrets, self.db) if connection is not None else None
        return _Route(
            smtp=smtp_account(mailbox, self.secrets), sent_copy=sent_copy, sent_folder=mailbox.sent_folder, auth=auth
        )

    async def _file_pending(self, outbox_id: int) -> None:
        """File a copy claimed by :meth:`claim_sent_copies`: a retry, or the copy of a worker that died."""
        with self.db.read() as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return
            mailbox = session.get(Mailbox, row.mailbox_id) if row.mailbox_id else None
            connection = session.get(Connection, row.connection_id) if row.connection_id else None
            mail = ComposedMail(
                raw=row.raw,
                message_id=row.message_id,
                envelope_from=row.envelope_from,
                recipients=tuple(row.recipients),
                subject="",
                references=(),
            )
            connection_id = row.connection_id
            route: _Route | None = None
            setup_error = ""
            try:
                # The settings as they are now: an admin who fixed the folder or the password is heard.
                route = self._route(connection, mailbox) if mailbox is not None else None
            except PostroomError as exc:
                setup_error = str(exc)
        events_log = ConnectionEventLog(self.db, connection_id, _secrets(route)) if connection_id else None
        try:
            if route is None and setup_error:
                # A secret that cannot be decrypted: an admin may still fix the key.
                self._settle_copy_retry(outbox_id, setup_error, events_log)
            elif route is None:
                self._settle_copy_retry(outbox_id, "the mailbox of this message was deleted", events_log, give_up=True)
            elif route.sent_copy is None:
                self._settle_copy_unwanted(outbox_id, "the connection no longer files sent mail", events_log)
            else:
                await self._file_in_sent(outbox_id, route, route.sent_copy, mail, events_log, retry=True)
        finally:
            if route is not None and route.auth is not None:
                route.auth.close()

    async def _file_in_sent(
        self,
        outbox_id: int,
        route: _Route,
        account: ImapAccount,
        mail: ComposedMail,
        events_log: ConnectionEventLog | None,
        *,
        retry: bool,
    ) -> None:
        """APPEND the sent bytes to the Sent folder (once); whatever happens, the message stays sent."""
        folder = route.sent_folder
        # A retry may follow an APPEND that went through before its worker could record it: look first.
        unless_filed = mail.message_id if retry else ""
        try:
            if route.auth is not None:
                copy = await asyncio.to_thread(
                    self.sent_appender,
                    account,
                    mail.raw,
                    folder,
                    authenticate=route.auth.imap,
                    unless_filed=unless_filed,
                )
            else:
                copy = await asyncio.to_thread(self.sent_appender, account, mail.raw, folder, unless_filed=unless_filed)
        except PostroomError as exc:
            self._settle_copy_retry(outbox_id, str(exc), events_log)
            return
        except Exception as exc:
            # A bug in filing must not take the outbox down: the mail is out, and that is recorded.
            log.exception("outbox.sent_folder_crashed", message_id=mail.message_id)
            self._settle_copy_retry(outbox_id, f"unexpected error: {type(exc).__name__}", events_log)
            return
        self._settle_copy_filed(outbox_id, copy, events_log)

    # -- settling ------------------------------------------------------------------------------

    def _settle_sent(
        self, outbox_id: int, result: SendResult, events_log: ConnectionEventLog | None, *, sent_copy: bool
    ) -> bool:
        """Record the send; with ``sent_copy``, in the same transaction, the copy to file. False: the row is gone."""
        refused = "; ".join(f"{rcpt}: {reply}" for rcpt, reply in result.refused.items())
        detail = f"refused recipients: {refused}" if refused else ""
        with self.db.write() as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return False
            row.attempts += 1
            row.sent_at = utcnow()
            row.smtp_reply = str(result.reply)
            if sent_copy:
                # Claimed by this worker, which files it right away; should it die first, the copy is due
                # for any worker once the claim has run out.
                row.sent_copy = SentCopyStatus.PENDING
                row.sent_copy_attempts = 0
                row.sent_copy_next_at = row.sent_at + timedelta(seconds=self.limits.claim_seconds)
            event = _settle(session, row, OutboxStatus.SENT, detail, shown=detail or str(result.reply))
        if events_log is not None:
            note = f"; refused {refused}" if refused else ""
            events_log("info", "sent", f"sent <{row.message_id}>: {result.reply}{note}")
        self.on_events([event])
        return True

    def _settle_copy_filed(self, outbox_id: int, copy: SentCopy, events_log: ConnectionEventLog | None) -> None:
        with self.db.write() as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return
            row.sent_copy = SentCopyStatus.FILED
            row.sent_copy_attempts += 1
            row.sent_copy_next_at = None
            row.sent_copy_error = ""
            row.sent_copy_folder = copy.folder
            message_id = row.message_id
        if events_log is not None:
            if copy.existing:
                events_log("info", "sent_folder", f"<{message_id}> was already in {copy.folder}; not filed again")
            else:
                events_log("info", "sent_folder", f"<{message_id}> filed in {copy.folder}")

    def _settle_copy_retry(
        self, outbox_id: int, error: str, events_log: ConnectionEventLog | None, *, give_up: bool = False
    ) -> None:
        """File again after the backoff delay, or give the copy up once its attempts are spent (or at once)."""
        policy = self.sent_copy_policy
        with self.db.write() as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return
            row.sent_copy_attempts += 1
            attempts = row.sent_copy_attempts
            if give_up or attempts >= policy.max_attempts:
                row.sent_copy = SentCopyStatus.FAILED
                row.sent_copy_next_at = None
                row.sent_copy_error = f"gave up after {attempts} attempts: {error}"
            else:
                row.sent_copy_next_at = utcnow() + timedelta(seconds=policy.delay(attempts))
                row.sent_copy_error = error
            retry_at = row.sent_copy_next_at
            message_id = row.message_id
        if events_log is None:
            log.warning("outbox.sent_folder_failed", message_id=message_id, attempts=attempts, error=error)
        elif retry_at is None:
            events_log(
                "error",
                "sent_folder_failed",
                f"<{message_id}> was sent but could not be filed in the Sent folder; "
                f"gave up after {attempts} attempts: {error}",
            )
        else:
            events_log(
                "warning",
                "sent_folder_retry",
                f"<{message_id}> was sent; filing it in the Sent folder failed (attempt {attempts}), "
                f"retrying at {retry_at:%H:%M:%S}: {error}",
            )

    def _settle_copy_unwanted(self, outbox_id: int, reason: str, events_log: ConnectionEventLog | None) -> None:
        """A pending copy nobody wants any more (the setting was switched off): no copy, as if never wanted."""
        with self.db.write() as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return
            row.sent_copy = None
            row.sent_copy_next_at = None
            row.sent_copy_error = reason
            message_id = row.message_id
        if events_log is not None:
            events_log("info", "sent_folder_skipped", f"<{message_id}> not filed in the Sent folder: {reason}")

    def _settle_retry(
        self,
        outbox_id: int,
        error: str,
        events_log: ConnectionEventLog | None,
        *,
        at_least: float | None = None,
    ) -> None:
        """Queue again after the backoff delay, or ``at_least`` seconds when the server asked for longer."""
        with self.db.write() as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return
            row.attempts += 1
            if row.attempts >= self.policy.max_attempts:
                error = f"gave up after {row.attempts} attempts: {error}"
                event = _settle(session, row, OutboxStatus.FAILED, error)
            else:
                delay = max(self.policy.delay(row.attempts), at_least or 0.0)
                row.next_attempt_at = utcnow() + timedelta(seconds=delay)
                _settle(session, row, OutboxStatus.QUEUED, error, shown=f"will retry: {error}")
                event = None
        if event is not None:
            if events_log is not None:
                events_log("error", "send_failed", f"<{row.message_id}> not sent: {error}")
            self.on_events([event])
        elif events_log is not None:
            when = f"{row.next_attempt_at:%H:%M:%S}"
            events_log(
                "warning",
                "send_retry",
                f"<{row.message_id}> attempt {row.attempts} failed, retrying at {when}: {error}",
            )

    def _settle_failed(self, outbox_id: int, error: str, events_log: ConnectionEventLog | None) -> None:
        with self.db.write() as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return
            event = _settle(session, row, OutboxStatus.FAILED, error)
        if events_log is not None:
            events_log("error", "send_failed", f"<{row.message_id}> not sent: {error}")
        self.on_events([event])


_EVENTS = {
    OutboxStatus.SENT: "message.sent",
    OutboxStatus.FAILED: "message.failed",
    OutboxStatus.QUEUED: "message.retry",
    OutboxStatus.UNCERTAIN: "message.uncertain",
}


def _settle(session: Session, row: Outbox, status: OutboxStatus, error: str, *, shown: str | None = None) -> Event:
    """Give up the claim with a new status, mirrored on the conversation's message the agent sees."""
    row.status = status
    row.last_error = error
    row.claimed_by = None
    row.claimed_until = None
    message = session.get(Message, row.message_pk) if row.message_pk else None
    if message is not None:
        message.delivery_status = status.value
        message.delivery_detail = error if shown is None else shown
        if status is OutboxStatus.SENT:
            message.sent_at = row.sent_at
    return Event(_EVENTS[status], message.conversation_id if message else None, row.message_pk, row.connection_id)


def _secrets(route: _Route | None) -> list[str]:
    """What the connection log must never show, whatever an error message quotes."""
    if route is None:
        return []
    found = [
        route.smtp.password if route.smtp else "",
        route.sendgrid.api_key if route.sendgrid else "",
        route.sent_copy.password if route.sent_copy else "",
        *(route.auth.secrets if route.auth else ()),
    ]
    return [secret for secret in found if secret]


def _reply_text(exc: DeliveryError) -> str:
    parts = [str(exc.code)] if exc.code else []
    if exc.enhanced_status:
        parts.append(exc.enhanced_status)
    text = str(exc)
    return " ".join([*parts, text]) if parts and not text.startswith(parts[0]) else text

"""The outbox worker: sends queued mail, retries temporary failures with backoff, never sends twice.

A row is claimed (``queued`` → ``sending``, with an owner and an expiry) in one transaction and
settled (``sent`` / ``queued`` again / ``failed``) in another. A row still ``sending`` whose worker is
gone (its worker lease expired, seconds after it died; or, for a worker without one, its claim expired)
belongs to a worker that died mid-send: the mail may or may not have left, so it becomes ``uncertain``
and the agent decides — sending it again blindly could deliver it twice.

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

Stopping (``postroom serve`` or ``worker`` on SIGTERM/SIGINT) lets the sends in flight finish for
``OutboxLimits.shutdown_grace`` seconds; a send still running then is cancelled. What happens to its row
depends on what is known about it: a send that had not finished signing in to the SMTP server (connect,
TLS, EHLO, AUTH, an OAuth token refresh) never issued MAIL FROM, let alone DATA, so its row is ``queued``
again and another worker or the next start sends it; one that got further, or any SendGrid request (an
HTTP request cut off may have been accepted), may have been delivered, so it becomes ``uncertain`` at once
rather than after the claim runs out.

A refused sign-in while sending (SMTP 535, SendGrid 401/403 for the key, an OAuth token endpoint refusing
the client) cannot heal by retrying sooner: the row is parked without counting an attempt (a reply waits
for the admin to fix the credentials, it is never given up for this) and tried again after the retry
policy's longest delay (``RetryPolicy.max_delay``), or at once when the connection's settings are saved
(``ConnectionService.update`` makes the queued rows that already failed due). Other channel failures
(cannot connect, TLS) keep the retry policy and its ``max_attempts``. A RUNNING connection turns ERROR with
the reason, which names the mailbox, marked as found while sending (logged once, when the status changes).
The runner writes statuses only on its own transitions, so this ERROR stays until a send from the same
mailbox succeeds (which sets RUNNING again, only over an ERROR of ours: another mailbox's success says
nothing about this one's credentials) or the connection restarts. A revoked OAuth grant
(``invalid_grant``: :class:`ReauthorizationRequired`) cannot heal by retrying: the mailbox's rows are
parked for ``OutboxLimits.reauth_wait`` without counting attempts (a reply waits for the admin, it is
never given up for this), and this worker does not ask the token endpoint again for that mailbox until
its stored refresh token changes (an admin pasted a new one: the parked rows are due at once) or the wait
is over (one request per mailbox per ``reauth_wait``, in case the provider relents).
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import aiosmtplib
import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postroom.channels.accounts import MailboxAuth, imap_account, mailbox_auth, sendgrid_account, smtp_account
from postroom.channels.logs import ConnectionEventLog
from postroom.errors import (
    AuthenticationError,
    ChannelError,
    DeliveryError,
    PostroomError,
    ReauthorizationRequired,
)
from postroom.jobs.leases import claim_abandoned
from postroom.mail.model import ComposedMail
from postroom.pipeline.context import Event
from postroom.sources.base import ImapAccount, LogLevel
from postroom.sources.imap import ImapAuthenticator
from postroom.store.db import Database
from postroom.store.models import (
    Connection,
    ConnectionMode,
    ConnectionStatus,
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
from postroom.transports.smtp import SmtpAuthenticator, password_auth

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
    # On stop, how long sends in flight may take to finish before they are cancelled (module docstring).
    # Short enough for a container's stop timeout (Docker: 10 s) with the connections' own shutdown.
    shutdown_grace: float = 8.0
    # After a token endpoint refused a mailbox's OAuth grant: how long its replies wait, and how long before
    # this worker asks the endpoint again without a new refresh token.
    reauth_wait: float = 3600.0


# How often a send in progress looks whether the worker is stopping.
_STOP_CHECK_SECONDS = 0.1


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
SHUTDOWN_UNCERTAIN_REASON = (
    "the worker was shut down while the server was receiving this message; "
    "it may have been delivered — check with the recipient, then resend if needed"
)
# Ends the status message of a connection set to ERROR by a failed send, so that only such an ERROR is cleared
# by a later successful send (never one the runner wrote).
SENDING_MARK = " (found while sending; replies stay queued until it is fixed)"


@dataclass(slots=True)
class _Flight:
    """A claimed row being sent by this worker; ``handed`` once the message may have reached the server."""

    handed: bool = False


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a claimed row goes: its connection (at the revision read) and mailbox, for status and parking."""

    connection_id: int | None
    revision: int | None
    mailbox_id: int | None
    refresh_token_enc: str = field(default="", repr=False)  # the stored OAuth grant (encrypted), when any
    address: str = ""  # the mailbox's address, which the errors of its sign-in name
    # The connection showed an ERROR of ours about this mailbox when the row was read: a success clears it.
    flagged: bool = False


@dataclass(frozen=True, slots=True)
class _Reauth:
    """A mailbox whose grant the token endpoint refused: not asked again before ``until`` unless the grant changed."""

    refresh_token_enc: str = field(repr=False)
    until: float  # time.monotonic()
    error: str


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
        # Touched only on the outbox's event loop thread.
        self._flights: dict[int, _Flight] = {}
        self._reauth: dict[int, _Reauth] = {}  # mailbox id → its refused grant

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._main, name="outbox", daemon=True)
        self._thread.start()

    def signal_stop(self) -> None:
        """Ask the worker to stop: no more claims; sends in flight get ``shutdown_grace`` to finish."""
        self._stop.set()
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop and wait until sends in flight are settled (finished, queued again or uncertain)."""
        self.signal_stop()
        if self._thread is not None:
            self._thread.join(self.limits.shutdown_grace + 10.0 if timeout is None else timeout)
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
                self.release_reauthorized()
                sent = await self._run_until_stopped()
            except Exception:
                log.exception("outbox.loop_failed")
                sent = 0
            if sent:
                continue
            await asyncio.to_thread(self._wake.wait, self.limits.poll_seconds)

    async def _run_until_stopped(self) -> int:
        """:meth:`run_once`, cut short when a stop's grace period runs out (module docstring)."""
        work = asyncio.ensure_future(self.run_once())
        while not work.done() and not self._stop.is_set():
            await asyncio.wait({work}, timeout=_STOP_CHECK_SECONDS)
        if not work.done():
            await asyncio.wait({work}, timeout=self.limits.shutdown_grace)
        if work.done():
            return work.result()
        in_flight = dict(self._flights)
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
        self._abandon(in_flight)
        return 0

    # -- work ----------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Claim due mail and due Sent copies, send and file them; returns how many were attempted."""
        ids = self.claim()
        copies = self.claim_sent_copies()
        self._flights.update((outbox_id, _Flight()) for outbox_id in ids)
        try:
            if ids or copies:
                await asyncio.gather(
                    *(self._send(outbox_id) for outbox_id in ids),
                    *(self._file_pending(outbox_id) for outbox_id in copies),
                )
        finally:
            for outbox_id in ids:
                self._flights.pop(outbox_id, None)
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
        """Rows still ``sending`` whose worker is gone become ``uncertain``: its worker lease expired
        (seconds after a ``kill -9``), or it held none and the claim's own expiry passed. A live
        worker's sends are never touched, however long they take."""
        events: list[Event] = []
        now = utcnow()
        with self.db.write() as session:
            stale = session.scalars(
                select(Outbox).where(
                    Outbox.status == OutboxStatus.SENDING,
                    claim_abandoned(Outbox.claimed_by, Outbox.claimed_until, now),
                )
            ).all()
            for row in stale:
                events.append(settle(session, row, OutboxStatus.UNCERTAIN, UNCERTAIN_REASON))
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
            target = _Target(
                connection_id,
                connection.revision if connection is not None else None,
                row.mailbox_id if mailbox is not None else None,
                mailbox.oauth_refresh_token_enc
                if mailbox is not None and connection is not None and connection.oauth_enabled
                else "",
                address=mailbox.address if mailbox is not None else "",
                flagged=mailbox is not None
                and connection is not None
                and connection.status is ConnectionStatus.ERROR
                and connection.status_message.endswith(SENDING_MARK)
                and _names_mailbox(mailbox.address) in connection.status_message,
            )
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
            refused = self._refused_grant(target)
            if refused is not None:
                # The token endpoint said invalid_grant for this very grant: asking again cannot help.
                self._settle_parked(outbox_id, refused.error, events_log)
                return
            await self._deliver(outbox_id, route, mail, events_log, target)
        finally:
            if route.auth is not None:
                route.auth.close()

    async def _deliver(
        self,
        outbox_id: int,
        route: _Route,
        mail: ComposedMail,
        events_log: ConnectionEventLog | None,
        target: _Target,
    ) -> None:
        flight = self._flights.get(outbox_id) or _Flight()
        try:
            if route.sendgrid is not None:
                # One HTTP request: once it is on its way it may be accepted, whatever happens to the answer.
                flight.handed = True
                result = await self.sendgrid_sender(route.sendgrid, mail.raw, mail.envelope_from, mail.recipients)
            elif route.smtp is not None:
                result = await self.sender(
                    route.smtp, mail, authenticate=_marking(route.auth.smtp if route.auth else password_auth, flight)
                )
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
        except ReauthorizationRequired as exc:
            # Retrying the refresh at every backoff step only hammers the token endpoint: park the mailbox.
            self._refuse_grant(target, str(exc))
            self._settle_parked(outbox_id, str(exc), events_log)
            self._flag_connection(target, exc, events_log)
            return
        except AuthenticationError as exc:
            # Refused credentials stay refused until an admin changes them, however long that takes: park the
            # row without spending attempts; saving the connection's settings makes it due at once.
            self._settle_parked(outbox_id, str(exc), events_log, credentials=True)
            self._flag_connection(target, exc, events_log)
            return
        except ChannelError as exc:
            # Cannot connect or TLS failed: the mail is fine, the connection is not (perhaps only for now).
            # Retry on backoff, give up after max_attempts.
            self._settle_retry(outbox_id, str(exc), events_log)
            return
        except PostroomError as exc:
            self._settle_failed(outbox_id, str(exc), events_log)
            return
        self._clear_flag(target, events_log)
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

    # -- sign-in failures found while sending -----------------------------------------------------

    def _refused_grant(self, target: _Target) -> _Reauth | None:
        """The refusal to honour instead of asking the token endpoint again, if this mailbox's grant was refused."""
        if target.mailbox_id is None:
            return None
        refused = self._reauth.get(target.mailbox_id)
        if refused is None:
            return None
        if refused.refresh_token_enc != target.refresh_token_enc or time.monotonic() >= refused.until:
            # A new grant, or time for one more try: the token endpoint decides again.
            del self._reauth[target.mailbox_id]
            return None
        return refused

    def _refuse_grant(self, target: _Target, error: str) -> None:
        if target.mailbox_id is not None:
            until = time.monotonic() + self.limits.reauth_wait
            self._reauth[target.mailbox_id] = _Reauth(target.refresh_token_enc, until, error)

    def release_reauthorized(self) -> int:
        """Make the parked mail of a mailbox due now once its refresh token changed (an admin signed in again)."""
        if not self._reauth:
            return 0
        with self.db.read() as session:
            query = select(Mailbox.id, Mailbox.oauth_refresh_token_enc).where(Mailbox.id.in_(list(self._reauth)))
            stored = {mailbox_id: refresh_token_enc for mailbox_id, refresh_token_enc in session.execute(query)}
        changed = [m for m, refused in self._reauth.items() if stored.get(m) != refused.refresh_token_enc]
        if not changed:
            return 0
        for mailbox_id in changed:
            del self._reauth[mailbox_id]
        with self.db.write() as session:
            result = session.execute(
                update(Outbox)
                .where(Outbox.mailbox_id.in_(changed), Outbox.status == OutboxStatus.QUEUED)
                .values(next_attempt_at=utcnow())
            )
        return int(getattr(result, "rowcount", 0) or 0)

    def _flag_connection(self, target: _Target, exc: ChannelError, events_log: ConnectionEventLog | None) -> None:
        """Show a sign-in refused while sending on a RUNNING connection (once: only the change is logged).

        Only RUNNING is replaced: STARTING belongs to a start in progress, whose own sign-in check decides, and
        an ERROR already says what the runner found. The revision guards against settings changed meanwhile.
        """
        if target.connection_id is None:
            return
        message = f"{exc}{SENDING_MARK}"
        with self.db.write() as session:
            query = update(Connection).where(
                Connection.id == target.connection_id,
                Connection.enabled.is_(True),
                Connection.status == ConnectionStatus.RUNNING,
            )
            if target.revision is not None:
                query = query.where(Connection.revision == target.revision)
            result = session.execute(
                query.values(status=ConnectionStatus.ERROR, status_message=message, status_changed_at=utcnow())
            )
        if getattr(result, "rowcount", 0) and events_log is not None:
            events_log("error", "send_sign_in_failed", message)

    def _clear_flag(self, target: _Target, events_log: ConnectionEventLog | None) -> None:
        """After a successful send: an ERROR set by :meth:`_flag_connection` for this mailbox is over; RUNNING.

        Only an ERROR naming the mailbox that just signed in is cleared: with several mailboxes, another one's
        refused password is still refused.
        """
        if target.connection_id is None or not target.flagged:
            return  # one write less per send; should another worker flag it meanwhile, the next success clears it
        with self.db.write() as session:
            result = session.execute(
                update(Connection)
                .where(
                    Connection.id == target.connection_id,
                    Connection.status == ConnectionStatus.ERROR,
                    Connection.status_message.endswith(SENDING_MARK, autoescape=True),
                    Connection.status_message.contains(_names_mailbox(target.address), autoescape=True),
                )
                .values(status=ConnectionStatus.RUNNING, status_message="", status_changed_at=utcnow())
            )
        if getattr(result, "rowcount", 0) and events_log is not None:
            events_log("info", "send_sign_in_ok", "signed in for sending again; running")

    # -- shutdown --------------------------------------------------------------------------------

    def _abandon(self, in_flight: dict[int, _Flight]) -> None:
        """Settle the sends cancelled at shutdown: queued again if never handed to the server, else uncertain."""
        events: list[Event] = []
        notes: list[tuple[int | None, LogLevel, str]] = []
        for outbox_id, flight in in_flight.items():
            with self.db.write() as session:
                row = session.get(Outbox, outbox_id)
                if row is None or row.status is not OutboxStatus.SENDING or row.claimed_by != self.worker_id:
                    continue  # settled before the cancellation reached it
                if flight.handed:
                    events.append(settle(session, row, OutboxStatus.UNCERTAIN, SHUTDOWN_UNCERTAIN_REASON))
                    notes.append(
                        (
                            row.connection_id,
                            "warning",
                            f"<{row.message_id}> interrupted by shutdown after the server had it; "
                            f"marked uncertain: {SHUTDOWN_UNCERTAIN_REASON}",
                        )
                    )
                else:
                    # Never past the sign-in: nothing reached the server, another worker sends it as if new.
                    row.next_attempt_at = utcnow()
                    events.append(settle(session, row, OutboxStatus.QUEUED, row.last_error, shown=""))
                    notes.append(
                        (
                            row.connection_id,
                            "info",
                            f"<{row.message_id}> not sent before shutdown (it never reached the server); queued again",
                        )
                    )
        for connection_id, level, text in notes:
            if connection_id is not None:
                ConnectionEventLog(self.db, connection_id, [])(level, "send_interrupted", text)
            log.info("outbox.send_interrupted", connection_id=connection_id, detail=text)
        if events:
            self.on_events(events)

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
            event = settle(session, row, OutboxStatus.SENT, detail, shown=detail or str(result.reply))
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
                event = settle(session, row, OutboxStatus.FAILED, error)
            else:
                delay = max(self.policy.delay(row.attempts), at_least or 0.0)
                row.next_attempt_at = utcnow() + timedelta(seconds=delay)
                settle(session, row, OutboxStatus.QUEUED, error, shown=f"will retry: {error}")
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

    def _settle_parked(
        self, outbox_id: int, error: str, events_log: ConnectionEventLog | None, *, credentials: bool = False
    ) -> None:
        """Queue again later, counting no attempt: the reply waits for an admin.

        A refused grant waits ``reauth_wait`` (or a new refresh token); refused ``credentials`` (a password, an
        API key) wait the retry policy's longest delay, or until the connection's settings are saved.
        """
        wait = self.policy.max_delay if credentials else self.limits.reauth_wait
        with self.db.write() as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return
            row.next_attempt_at = utcnow() + timedelta(seconds=wait)
            if credentials:
                shown = f"waiting for an admin to fix the credentials: {error}"
            else:
                shown = f"waiting for an admin to sign in again: {error}"
            event = settle(session, row, OutboxStatus.QUEUED, error, shown=shown)
            message_id, due = row.message_id, row.next_attempt_at
        if events_log is not None:
            if credentials:
                waits = "waits for the credentials to be fixed"
                until = "the connection's settings are saved"
            else:
                waits, until = "waits for re-authorisation", "a new refresh token is saved"
            events_log(
                "warning",
                "send_waiting",
                f"<{message_id}> {waits} (next try {due:%Y-%m-%d %H:%M:%S}, or as soon as {until}): {error}",
            )
        self.on_events([event])

    def _settle_failed(self, outbox_id: int, error: str, events_log: ConnectionEventLog | None) -> None:
        with self.db.write() as session:
            row = session.get(Outbox, outbox_id)
            if row is None:
                return
            event = settle(session, row, OutboxStatus.FAILED, error)
        if events_log is not None:
            events_log("error", "send_failed", f"<{row.message_id}> not sent: {error}")
        self.on_events([event])


_EVENTS = {
    OutboxStatus.SENT: "message.sent",
    OutboxStatus.FAILED: "message.failed",
    OutboxStatus.QUEUED: "message.retry",
    OutboxStatus.UNCERTAIN: "message.uncertain",
}


def settle(session: Session, row: Outbox, status: OutboxStatus, error: str, *, shown: str | None = None) -> Event:
    """Give up the claim with a new status, mirrored on the conversation's message the agent sees.

    The one way an outbox row changes its outcome: the worker uses it, and so does a deleted connection
    or mailbox failing the replies it can no longer send (``helpdesk.connections``).
    """
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


def _names_mailbox(address: str) -> str:
    """How a channel error names the mailbox (``"SMTP ann@example.com: authentication failed: …"``).

    The leading space and the colon keep ``bob@x.example`` from matching ``jimbob@x.example``.
    """
    return f" {address}:"


def _marking(authenticate: SmtpAuthenticator, flight: _Flight) -> SmtpAuthenticator:
    """``authenticate``, and then mark the flight handed: past the sign-in, MAIL FROM and DATA follow."""

    async def signed_in(client: aiosmtplib.SMTP, account: SmtpAccount) -> None:
        await authenticate(client, account)
        flight.handed = True

    return signed_in


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

"""The seam between a mail source and the raw store.

A source fetches bytes and hands them to a :class:`RawSink`; the sink commits them (with the new
cursor, in one transaction) and returns; only then does the source acknowledge to the server
(``\\Seen``, POP3 ``DELE``, SMTP ``250``). Nothing is acknowledged that is not stored.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

from postroom.errors import PostroomError, display_protocol

ImapEncryption = Literal["ssl", "starttls", "none"]
LogLevel = Literal["debug", "info", "warning", "error"]


@dataclass(frozen=True, slots=True)
class ImapAccount:
    """Everything needed to read one IMAP mailbox. ``address`` names it in logs and errors."""

    address: str
    host: str
    port: int = 993
    encryption: ImapEncryption = "ssl"
    validate_certificate: bool = True
    username: str = ""
    password: str = field(default="", repr=False)
    folder: str = "INBOX"
    mark_as_read: bool = True
    unread_only: bool = False
    check_interval: float = 15.0  # seconds between polls; also the safety net while IDLEing
    idle_renew: float = 540.0  # re-issue IDLE before servers drop it (RFC 2177: at least every 29 min)
    timeout: float = 30.0  # socket timeout for connect and commands
    batch_size: int = 200  # messages per UID FETCH and per store transaction

    @property
    def login(self) -> str:
        return self.username or self.address


@dataclass(frozen=True, slots=True)
class ImapCursor:
    """Where a mailbox was read up to: every UID ≤ ``last_uid`` under ``uidvalidity`` is stored (RFC 3501 §2.3.1.1)."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True, slots=True)
class FetchedMail:
    """One message as fetched, before anything is understood of it."""

    uid: int
    raw: bytes = field(repr=False)
    flags: tuple[str, ...] = ()
    internal_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class InboundMail:
    """A mail pushed to us (forwarded to the SMTP listener, posted by a webhook) with its SMTP envelope."""

    raw: bytes = field(repr=False)
    recipients: tuple[str, ...]  # the envelope recipients (RCPT TO)
    envelope_from: str  # MAIL FROM; "" for the null sender


class RawSink(Protocol):
    """Where a source puts what it fetched. Implemented on the database by the channel runtime."""

    def load_cursor(self) -> ImapCursor | None:
        """The cursor committed last time, or None before the first import."""
        ...

    def store(self, mails: Sequence[FetchedMail], cursor: ImapCursor) -> int:
        """Commit the mails and the new cursor in one transaction; return how many were new.

        Mails already stored under the same dedupe key are skipped. When this returns, the bytes are
        durable and the source may acknowledge them.
        """
        ...

    def known_message_ids(self, message_ids: Sequence[str]) -> set[str]:
        """Which of these Message-IDs (without brackets) this mailbox has already stored.

        Used after a UIDVALIDITY change to resynchronise without fetching or importing mail twice.
        """
        ...


class EventLog(Protocol):
    """Per-connection log (connect, sign-in, imports, errors). Never given secrets."""

    def __call__(self, level: LogLevel, event: str, message: str) -> None: ...


class MailboxLog:
    """An :class:`EventLog` whose every line names its mailbox the way errors do.

    A connection with several mailboxes writes one log; ``connecting to …`` or ``reconnecting in …``
    alone does not say which. Each line gets the prefix of :class:`~postroom.errors.ChannelError`'s text
    (``IMAP support@example.com: …``), except a line that already begins with a protocol and this
    address (the text of such an error), so that none names it twice.
    """

    def __init__(self, log: EventLog, protocol: str, address: str) -> None:
        self.log = log
        self.prefix = f"{display_protocol(protocol)} {address}: "
        self._named = re.compile(r"\S+ " + re.escape(address) + ": ")

    def __call__(self, level: LogLevel, event: str, message: str) -> None:
        if not self._named.match(message):
            message = self.prefix + message
        self.log(level, event, message)


StopCheck = Callable[[], bool]


# ── how a running source reports (shared by every source) ──────────────────────────────────────


class SourceState(StrEnum):
    CONNECTING = "connecting"  # opening the connection, signing in, catching up
    RUNNING = "running"  # signed in and caught up; waiting for mail (IDLE or polling)
    RETRYING = "retrying"  # the last attempt failed; the next one starts after ``retry_in`` seconds
    STOPPED = "stopped"  # run() has returned


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """What ``run()`` reports to its ``on_status`` callback at every change of state.

    The runtime maps it onto the connection status: RUNNING clears an error; RETRYING carries the
    error and ``failures``, the number of consecutive failed attempts, so that the runtime can set
    the connection to ERROR after as many as it tolerates (or at once when ``error.temporary`` is
    false: a wrong password does not fix itself).
    """

    state: SourceState
    failures: int = 0
    error: PostroomError | None = None
    retry_in: float | None = None


StatusCallback = Callable[[SourceStatus], None]
"""Called from the source's thread; must return quickly and must not raise."""


def ignore_status(status: SourceStatus) -> None:
    """The default ``on_status``: a source used without a runtime reports to no one."""


class Source(Protocol):
    """A mailbox reader (IMAP, POP3) as the runtime drives it."""

    def check_login(self) -> None:
        """Connect and sign in once, then disconnect; raise the ChannelError that says what failed."""
        ...

    def run(self, stop: threading.Event) -> None:
        """Read until ``stop`` is set: reconnect with backoff on failure, report every state change."""
        ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between reconnection attempts: exponential, capped, with jitter.

    The n-th consecutive failure waits between half and all of ``initial * factor**(n-1)`` (capped
    at ``cap``), so that many workers that lost the same server do not return in step.
    """

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 300.0

    def delay(self, failures: int, rand: Callable[[], float] = random.random) -> float:
        exponent = min(max(failures - 1, 0), 64)
        base = min(self.cap, self.initial * self.factor**exponent)
        return base / 2 + rand() * base / 2


Session = Callable[[Callable[[], None]], None]
"""One connected stretch of a source's life: connect, sign in, catch up, call ``running()``, then wait for
mail until the stop event is set and return; raise a :class:`PostroomError` when the server or the sink
fails. :func:`run_with_backoff` starts it again after every failure."""


def run_with_backoff(
    session: Session,
    stop: threading.Event,
    *,
    log: EventLog,
    on_status: StatusCallback,
    backoff: Backoff,
    stable_after: float,
    stopped: str,
) -> None:
    """Run ``session`` until ``stop`` is set, starting it again with backoff after every failure.

    Reports CONNECTING before each start, RUNNING when the session calls ``running()``, RETRYING with the
    error and the count of consecutive failures, and STOPPED last, whatever ends the loop. A session that
    stayed running for ``stable_after`` seconds ends a run of failures; one that fails sooner continues it,
    so that a server which accepts and then drops every connection still shows up as failing. Anything but
    a :class:`PostroomError` is a bug and propagates (after STOPPED). ``stopped`` is the log line at the end.
    """
    failures = 0
    running_since: float | None = None

    def running() -> None:
        nonlocal running_since
        running_since = time.monotonic()
        on_status(SourceStatus(SourceState.RUNNING))

    def stable() -> bool:
        return running_since is not None and time.monotonic() - running_since >= stable_after

    try:
        while not stop.is_set():
            on_status(SourceStatus(SourceState.CONNECTING, failures))
            running_since = None
            try:
                session(running)
            except PostroomError as error:
                if stop.is_set():
                    break
                failures = 1 if stable() else failures + 1
                delay = backoff.delay(failures)
                log("error", "error", str(error))
                log("info", "retry", f"reconnecting in {delay:.1f} s (failure {failures} in a row)")
                on_status(SourceStatus(SourceState.RETRYING, failures, error, delay))
                stop.wait(delay)
    finally:
        if stable():
            failures = 0
        log("info", "stopped", stopped)
        on_status(SourceStatus(SourceState.STOPPED, failures))


def xoauth2_string(user: str, token: str) -> str:
    """The SASL XOAUTH2 initial client response, before base64 (Google's and Microsoft's mechanism)."""
    return f"user={user}\x01auth=Bearer {token}\x01\x01"

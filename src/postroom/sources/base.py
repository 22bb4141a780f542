"""The seam between a mail source and the raw store.

A source fetches bytes and hands them to a :class:`RawSink`; the sink commits them (with the new
cursor, in one transaction) and returns; only then does the source acknowledge to the server
(``\\Seen``, POP3 ``DELE``, SMTP ``250``). Nothing is acknowledged that is not stored.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal, Protocol

from postroom.errors import PostroomError

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

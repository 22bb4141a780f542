"""In-memory implementations of the source seams, for tests of sources against real servers.

:class:`MemorySink` is a :class:`~postroom.sources.base.RawSink` that keeps everything in lists and
records every hand-over, so that a test can tell "stored twice" from "handed over twice".
:class:`MemoryEventLog` is an :class:`~postroom.sources.base.EventLog`; :class:`StatusRecorder`
collects what a source reports to ``on_status``. All three are thread-safe: ``ImapSource.run`` calls
them from its own thread while the test waits in another.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email import policy
from email.parser import BytesHeaderParser

from postroom.mail.peek import peek_message_id
from postroom.sources.base import FetchedMail, ImapCursor, LogLevel, SourceState, SourceStatus

__all__ = ["LogRecord", "MemoryEventLog", "MemorySink", "StatusRecorder"]

StoreHook = Callable[[Sequence[FetchedMail], ImapCursor], None]


class MemorySink:
    """A RawSink in memory, deduplicating like the raw store: by Message-ID, else by the bytes' hash.

    ``handed`` holds every mail ever passed to :meth:`store` (duplicates included); ``stored`` the
    distinct ones kept. ``before_store`` runs inside :meth:`store` before it commits, which lets a
    test look at the server at the moment the source is waiting for the commit, or raise to make
    the commit fail.
    """

    def __init__(self, cursor: ImapCursor | None = None, *, before_store: StoreHook | None = None) -> None:
        self.cursor = cursor
        self.before_store = before_store
        self.handed: list[FetchedMail] = []
        self.stored: list[FetchedMail] = []
        self.store_calls = 0
        self._keys: set[str] = set()
        self._message_ids: set[str] = set()
        self._changed = threading.Condition()

    def load_cursor(self) -> ImapCursor | None:
        with self._changed:
            return self.cursor

    def store(self, mails: Sequence[FetchedMail], cursor: ImapCursor) -> int:
        if self.before_store is not None:
            self.before_store(mails, cursor)
        with self._changed:
            self.store_calls += 1
            new = 0
            for mail in mails:
                self.handed.append(mail)
                message_id = peek_message_id(mail.raw)
                key = f"id:{message_id}" if message_id else f"sha256:{hashlib.sha256(mail.raw).hexdigest()}"
                if key in self._keys:
                    continue
                self._keys.add(key)
                if message_id:
                    self._message_ids.add(message_id)
                self.stored.append(mail)
                new += 1
            self.cursor = cursor
            self._changed.notify_all()
            return new

    def known_message_ids(self, message_ids: Sequence[str]) -> set[str]:
        with self._changed:
            return {mid for mid in message_ids if mid in self._message_ids}

    def subjects(self) -> list[str]:
        """The Subject of each stored mail, in order (a convenience for assertions)."""
        with self._changed:
            return [_subject(mail.raw) for mail in self.stored]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[FetchedMail]:
        """Wait until at least ``count`` distinct mails are stored; return them."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.stored) >= count, timeout):
                raise TimeoutError(f"expected {count} stored mails within {timeout} s, got {len(self.stored)}")
            return list(self.stored)


@dataclass(frozen=True, slots=True)
class LogRecord:
    level: LogLevel
    event: str
    message: str


class MemoryEventLog:
    """An EventLog that keeps its records."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []
        self._lock = threading.Lock()

    def __call__(self, level: LogLevel, event: str, message: str) -> None:
        with self._lock:
            self.records.append(LogRecord(level, event, message))

    def events(self, event: str | None = None) -> list[LogRecord]:
        with self._lock:
            return [r for r in self.records if event is None or r.event == event]

    def text(self) -> str:
        """Everything logged, one record a line, as an admin would read it."""
        with self._lock:
            return "\n".join(f"{r.level} {r.event}: {r.message}" for r in self.records)


class StatusRecorder:
    """An ``on_status`` callback that records what a source reported."""

    def __init__(self) -> None:
        self.statuses: list[SourceStatus] = []
        self._changed = threading.Condition()

    def __call__(self, status: SourceStatus) -> None:
        with self._changed:
            self.statuses.append(status)
            self._changed.notify_all()

    def states(self) -> list[SourceState]:
        with self._changed:
            return [s.state for s in self.statuses]

    def wait_for(
        self,
        state: SourceState,
        *,
        timeout: float = 5.0,
        after: int = 0,
        where: Callable[[SourceStatus], bool] | None = None,
    ) -> SourceStatus:
        """Wait for a status in ``state`` (among those from index ``after`` on) that satisfies ``where``."""
        deadline = time.monotonic() + timeout

        def found() -> SourceStatus | None:
            for status in self.statuses[after:]:
                if status.state is state and (where is None or where(status)):
                    return status
            return None

        with self._changed:
            while (status := found()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = ", ".join(s.state.value for s in self.statuses)
                    raise TimeoutError(f"no {state.value} status within {timeout} s (seen: {seen})")
                self._changed.wait(remaining)
            return status


def _subject(raw: bytes) -> str:
    return str(BytesHeaderParser(policy=policy.default).parsebytes(raw).get("Subject", ""))

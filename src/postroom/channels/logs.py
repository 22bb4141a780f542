"""The per-connection log (connect, sign-in, imports, sends, errors), readable through the API and CLI.

Secrets never reach it: sources and transports do not pass them, and as a second line of defence
every message is scrubbed of the connection's own secrets before it is written.
"""

from __future__ import annotations

from collections.abc import Iterable

import structlog

from postroom.sources.base import LogLevel
from postroom.store.db import Database
from postroom.store.models import ConnectionLog, utcnow

log = structlog.get_logger("postroom.connection")

REDACTED = "[redacted]"
MAX_MESSAGE = 2000


class ConnectionEventLog:
    """An :class:`~postroom.sources.base.EventLog` writing rows for one connection."""

    def __init__(self, db: Database, connection_id: int, secrets: Iterable[str] = ()) -> None:
        self.db = db
        self.connection_id = connection_id
        # Longest first, so that a secret containing another is replaced whole.
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def scrub(self, message: str) -> str:
        for secret in self._secrets:
            message = message.replace(secret, REDACTED)
        return message[:MAX_MESSAGE]

    def __call__(self, level: LogLevel, event: str, message: str) -> None:
        message = self.scrub(message)
        getattr(log, level)(event, connection_id=self.connection_id, message=message)
        try:
            with self.db.write() as session:
                session.add(
                    ConnectionLog(
                        connection_id=self.connection_id,
                        at=utcnow(),
                        level=level,
                        event=event,
                        message=message,
                    )
                )
        except Exception:  # noqa: BLE001
            # The log must never take a source down (e.g. the connection was just deleted).
            log.warning("connection_log.write_failed", connection_id=self.connection_id, log_event=event)

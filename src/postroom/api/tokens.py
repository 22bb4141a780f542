"""API bearer tokens: random, shown once, stored as SHA-256 only; their last use recorded off the request path.

Checking a token is a read. Recording when it was last used is a write, and on SQLite every writer
queues for one lock (``BEGIN IMMEDIATE``, up to the 30 s busy timeout): were it done in the request,
every API read would wait behind the pipeline's import batches. So a request only notes the use in
memory (:class:`LastUsedRecorder`), and a short-lived thread writes the notes shortly after, with a busy
or lock timeout of a fraction of a second; when the database is busy it gives up and tries again later.
``last_used_at`` is therefore approximate by design: to ``LAST_USED_RESOLUTION``, plus the flush delay,
and a use noted just before the process ends may be lost.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import weakref
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from postroom.helpdesk.users import ensure_bootstrap_admin
from postroom.store.db import SQLITE_BUSY_TIMEOUT_MS, Database
from postroom.store.models import ApiToken, Role, TokenKind, User, utcnow

log = structlog.get_logger(__name__)

TOKEN_PREFIX = "pr_"  # noqa: S105 (a prefix that makes tokens recognisable, not a secret)
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class UsagePolicy:
    """How the last use of tokens is written (see the module docstring)."""

    # Seconds between a noted use and its write: uses of one burst of requests are written together.
    flush_delay: float = 0.5
    # How long one write may wait for the database's write lock before it gives up (and retries later).
    lock_timeout_ms: int = 100
    # Retries double the delay up to this many seconds; after max_attempts failed writes the notes are
    # dropped (logged): the next request after LAST_USED_RESOLUTION notes the use again.
    max_delay: float = 30.0
    max_attempts: int = 8


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    id: int
    name: str
    is_admin: bool
    last_used_at: datetime | None
    user_id: int
    user_email: str
    user_name: str
    role: Role


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    session: Session,
    name: str,
    *,
    admin: bool = True,
    user_id: int | None = None,
    kind: TokenKind = TokenKind.API,
    expires_at: datetime | None = None,
) -> str:
    """Make a new token of ``user_id`` (the first administrator when not given) and return it; this is the
    only time it can be seen. ``admin`` is kept for the rows' history: the role comes from the user."""
    if user_id is None:
        user_id = ensure_bootstrap_admin(session).id
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            name=name,
            token_sha256=_digest(token),
            prefix=token[:10],
            is_admin=admin,
            user_id=user_id,
            kind=kind,
            expires_at=expires_at,
        )
    )
    session.flush()
    return token


def verify_token(session: Session, token: str) -> VerifiedToken | None:
    """The token and its user if the token is valid (not revoked, not expired, its user enabled); reads
    only (note the use with :func:`usage_recorder`)."""
    found = session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id).where(ApiToken.token_sha256 == _digest(token))
    ).first()
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None or not user.enabled:
        return None
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    return VerifiedToken(
        id=row.id,
        name=row.name,
        is_admin=user.role is Role.ADMIN,
        last_used_at=row.last_used_at,
        user_id=user.id,
        user_email=user.email,
        user_name=user.name,
        role=user.role,
    )


def has_tokens(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))))


class LastUsedRecorder:
    """Notes token uses in memory and writes them from a thread of its own, never waiting on a lock for long.

    The thread exists only while notes are pending, so no start or stop is needed: it ends when all is
    written (or given up). :meth:`flush` writes at once, for tests and for a clean shutdown.
    """

    def __init__(self, db: Database, policy: UsagePolicy | None = None) -> None:
        self.db = db
        self.policy = policy or UsagePolicy()
        self._lock = threading.Lock()
        self._pending: dict[int, datetime] = {}
        # The newest use known per token (noted here or read from its row): decides when to note again.
        self._known: dict[int, datetime] = {}
        self._thread: threading.Thread | None = None

    def used(self, token: VerifiedToken, now: datetime | None = None) -> None:
        """Note a use of ``token``, if its recorded use is older than ``LAST_USED_RESOLUTION``; never blocks."""
        now = now or utcnow()
        with self._lock:
            known = self._known.get(token.id)
            if token.last_used_at is not None and (known is None or token.last_used_at > known):
                known = token.last_used_at
            if known is not None and now - known <= LAST_USED_RESOLUTION:
                return
            self._known[token.id] = now
            self._pending[token.id] = now
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="api-token-usage", daemon=True)
                self._thread.start()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self) -> bool:
        """Write the pending notes now; False (notes kept) when the database stayed busy or failed."""
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return True
        if self._write(batch):
            return True
        with self._lock:
            for token_id, at in batch.items():
                newer = self._pending.get(token_id)
                self._pending[token_id] = at if newer is None or at > newer else newer
        return False

    def _write(self, batch: dict[int, datetime]) -> bool:
        timeout = self.policy.lock_timeout_ms
        try:
            # A plain (deferred) transaction, not db.write(): BEGIN IMMEDIATE would wait the full busy
            # timeout for the lock before the short one below could be set.
            with self.db.engine.connect() as connection:
                try:
                    if self.db.is_sqlite:
                        connection.exec_driver_sql(f"PRAGMA busy_timeout={timeout}")
                    else:
                        # PostgreSQL: a row another transaction holds is waited for this long at most.
                        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{timeout}ms'")
                    for token_id, at in sorted(batch.items()):
                        connection.execute(
                            update(ApiToken)
                            .where(
                                ApiToken.id == token_id,
                                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < at),
                            )
                            .values(last_used_at=at)
                        )
                    connection.commit()
                except SQLAlchemyError:
                    connection.rollback()
                    raise
                finally:
                    if self.db.is_sqlite:
                        # The connection goes back to the pool: other users expect the usual busy timeout.
                        connection.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
                        connection.rollback()
        except SQLAlchemyError as exc:
            log.debug("api_token.last_used_deferred", error=str(exc).splitlines()[0], tokens=len(batch))
            return False
        return True

    def _run(self) -> None:
        policy = self.policy
        delay = policy.flush_delay
        failures = 0
        while True:
            time.sleep(delay)
            if self.flush():
                failures, delay = 0, policy.flush_delay
            else:
                failures += 1
                delay = min(policy.max_delay, delay * 2)
            with self._lock:
                if failures >= policy.max_attempts and self._pending:
                    log.warning("api_token.last_used_dropped", tokens=len(self._pending), attempts=failures)
                    for token_id in self._pending:
                        # Noted again by the next request that uses the token.
                        self._known.pop(token_id, None)
                    self._pending.clear()
                if not self._pending:
                    self._thread = None
                    return


_recorders: weakref.WeakKeyDictionary[Database, LastUsedRecorder] = weakref.WeakKeyDictionary()
_recorders_lock = threading.Lock()


def usage_recorder(db: Database) -> LastUsedRecorder:
    """The one recorder of token uses for ``db`` in this process."""
    with _recorders_lock:
        recorder = _recorders.get(db)
        if recorder is None:
            recorder = _recorders[db] = LastUsedRecorder(db)
        return recorder

"""A mailbox's OAuth tokens on its database row, shared by every worker that signs in to it.

:class:`MailboxTokenStore` is the :class:`~postroom.sources.oauth.TokenStore` of one mailbox: the
access token, its expiry and the refresh token live encrypted in ``mailboxes``
(``oauth_access_token_enc``, ``oauth_access_expires_at``, ``oauth_refresh_token_enc``). Every worker
of every process reads the same token, so a mailbox costs one refresh per token lifetime however
many threads sign in to it, and a refresh token that the provider rotated is never lost to a worker
that still holds the old one.

The refresh lock is a write transaction held around the token request: on PostgreSQL it takes an
advisory transaction lock on :func:`token_refresh_lock` (``postroom.jobs.locks``), on SQLite the
transaction's ``BEGIN IMMEDIATE`` is the lock. The token request is bounded (15 s by default,
``postroom.sources.oauth.DEFAULT_TIMEOUT``) because on SQLite every other writer waits meanwhile.

:func:`token_manager` builds the :class:`~postroom.sources.oauth.TokenManager` of a stored mailbox.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Final

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from postroom.errors import NotFound
from postroom.jobs.locks import ADVISORY_XACT_LOCK, lock_key
from postroom.sources.oauth import DEFAULT_TOKEN_URI, AccessToken, OAuthClient, StoredTokens, TokenManager
from postroom.store.db import Database
from postroom.store.models import Mailbox
from postroom.store.secretbox import SecretBox

__all__ = ["MailboxTokenStore", "token_manager", "token_refresh_lock"]

# How long a worker waits on PostgreSQL for another's refresh of the same mailbox: that one's token
# request (15 s at most) and a margin. On SQLite the busy timeout of the database bounds the wait.
DEFAULT_LOCK_WAIT: Final = 20.0


def token_refresh_lock(mailbox_id: int) -> str:
    """The name of the lock that one refresh of a mailbox's OAuth token holds."""
    return f"oauth-token-refresh:mailbox:{mailbox_id}"


class MailboxTokenStore:
    """The OAuth tokens of mailbox ``mailbox_id``; :meth:`load`/:meth:`save` use the lock's transaction inside it."""

    def __init__(
        self, db: Database, secrets: SecretBox, mailbox_id: int, *, lock_wait: float = DEFAULT_LOCK_WAIT
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.mailbox_id = mailbox_id
        self.lock_wait = lock_wait
        # The session of the refresh lock, per thread: only the thread holding the lock reads and
        # writes through it; on SQLite a second transaction beside it would wait for its own lock.
        self._held = threading.local()

    def load(self) -> StoredTokens:
        session = self._session()
        if session is not None:
            return self._load(session)
        with self.db.read() as reading:
            return self._load(reading)

    def save(self, access: AccessToken, rotated_refresh_token: str | None) -> None:
        values: dict[str, object] = {
            "oauth_access_token_enc": self.secrets.encrypt(access.token),
            "oauth_access_expires_at": access.expires_at,
        }
        if rotated_refresh_token:
            values["oauth_refresh_token_enc"] = self.secrets.encrypt(rotated_refresh_token)
        statement = update(Mailbox).where(Mailbox.id == self.mailbox_id).values(**values)
        session = self._session()
        if session is not None:
            session.execute(statement)
            return
        with self.db.write() as writing:
            writing.execute(statement)

    @contextmanager
    def refresh_lock(self) -> Iterator[None]:
        """A write transaction that only one refresh of this mailbox holds at a time, in any process."""
        if self._session() is not None:
            raise RuntimeError("the refresh lock is not re-entrant")
        with self.db.write() as session:
            try:
                self._acquire(session)
            except OperationalError as error:
                # PostgreSQL's lock_timeout, or SQLite's busy timeout ("database is locked").
                raise TimeoutError(f"the token refresh lock of mailbox {self.mailbox_id} was not granted") from error
            self._held.session = session
            try:
                yield
            finally:
                self._held.session = None

    def _acquire(self, session: Session) -> None:
        if self.db.is_sqlite:
            # The first statement opens the transaction with BEGIN IMMEDIATE (store.db): that takes
            # SQLite's single write lock, which is the refresh lock.
            session.connection()
            return
        # Bounded, so that a worker stuck in its refresh holds the others up for a while, not for ever;
        # set_config(..., true) lasts until the transaction ends, like SET LOCAL.
        session.execute(select(func.set_config("lock_timeout", f"{int(self.lock_wait * 1000)}ms", True)))
        session.execute(ADVISORY_XACT_LOCK, {"k": lock_key(token_refresh_lock(self.mailbox_id))})

    def _session(self) -> Session | None:
        session: Session | None = getattr(self._held, "session", None)
        return session

    def _load(self, session: Session) -> StoredTokens:
        row = session.execute(
            select(
                Mailbox.oauth_access_token_enc,
                Mailbox.oauth_access_expires_at,
                Mailbox.oauth_refresh_token_enc,
            ).where(Mailbox.id == self.mailbox_id)
        ).first()
        if row is None:
            raise NotFound(f"mailbox {self.mailbox_id} does not exist")
        access_enc, expires_at, refresh_enc = row
        access: AccessToken | None = None
        if access_enc and isinstance(expires_at, datetime):
            access = AccessToken(self.secrets.decrypt(access_enc), expires_at)
        return StoredTokens(access, self.secrets.decrypt(refresh_enc))


def token_manager(
    db: Database,
    secrets: SecretBox,
    mailbox: Mailbox,
    *,
    http: httpx.Client | None = None,
) -> TokenManager:
    """The token manager of a stored mailbox: its client registration and its row as the store."""
    client = OAuthClient(
        client_id=mailbox.oauth_client_id,
        client_secret=secrets.decrypt(mailbox.oauth_client_secret_enc),
        # An empty token endpoint means Google's.
        token_uri=mailbox.oauth_token_uri or DEFAULT_TOKEN_URI,
    )
    return TokenManager(mailbox.address, client, MailboxTokenStore(db, secrets, mailbox.id), http=http)

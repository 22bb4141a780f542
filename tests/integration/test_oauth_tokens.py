"""OAuth tokens on the mailbox row (channels/oauth_tokens.py), on SQLite and PostgreSQL.

Several workers (threads with stores and managers of their own, as separate processes would have)
share one mailbox: they refresh once between them, take each other's token, and keep a refresh
token the provider rotated. The provider is the local OAuthTestServer; Dovecot checks the tokens.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from postroom.channels.oauth_tokens import MailboxTokenStore, token_manager
from postroom.errors import ConnectError, ReauthorizationRequired
from postroom.sources.imap import ImapSource
from postroom.sources.oauth import TokenManager, imap_xoauth2
from postroom.store.db import Database
from postroom.store.models import Mailbox
from postroom.store.secretbox import SecretBox
from postroom.testing.certs import Certificates
from postroom.testing.dovecot import DovecotServer, find_dovecot
from postroom.testing.mails import make_mail
from postroom.testing.memory import MemoryEventLog, MemorySink
from postroom.testing.oauth import OAuthTestServer

TEMPLATE = Path(__file__).parents[1] / "dovecot" / "dovecot.conf.in"
ADDRESS = "oauth@example.test"
MakeWorker = Callable[[], TokenManager]


@pytest.fixture
def provider() -> Iterator[OAuthTestServer]:
    with OAuthTestServer() as server:
        yield server


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def add_mailbox(
    db: Database, secrets: SecretBox, connection_id: int, provider: OAuthTestServer, address: str = ADDRESS
) -> int:
    """An OAuth mailbox on the fixture's connection, with a fresh grant and no access token yet."""
    with db.write() as session:
        mailbox = Mailbox(
            connection_id=connection_id,
            position=1,
            address=address,
            oauth_client_id=provider.client_id,
            oauth_client_secret_enc=secrets.encrypt(provider.client_secret),
            oauth_refresh_token_enc=secrets.encrypt(provider.grant(address)),
            oauth_token_uri=provider.token_uri,
        )
        session.add(mailbox)
        session.flush()
        return mailbox.id


def stored(db: Database, mailbox_id: int) -> Mailbox:
    with db.read() as session:
        mailbox = session.get(Mailbox, mailbox_id)
        assert mailbox is not None
        return mailbox


@pytest.fixture
def mailbox_id(db: Database, secrets: SecretBox, connection_id: int, provider: OAuthTestServer) -> int:
    return add_mailbox(db, secrets, connection_id, provider)


@pytest.fixture
def worker(db: Database, secrets: SecretBox, mailbox_id: int, http: httpx.Client) -> MakeWorker:
    """A new worker's manager for the mailbox: its own store, built from the stored row."""
    return lambda: token_manager(db, secrets, stored(db, mailbox_id), http=http)


def test_refreshed_token_is_stored_encrypted_and_shared(
    db: Database, secrets: SecretBox, mailbox_id: int, provider: OAuthTestServer, worker: MakeWorker
) -> None:
    before = datetime.now(UTC)
    token = worker().access_token()

    row = stored(db, mailbox_id)
    assert row.oauth_access_token_enc and token not in row.oauth_access_token_enc
    assert secrets.decrypt(row.oauth_access_token_enc) == token
    assert row.oauth_access_expires_at is not None
    assert before + timedelta(seconds=3590) < row.oauth_access_expires_at < datetime.now(UTC) + timedelta(hours=1)

    # Another worker takes the stored token instead of refreshing again.
    assert worker().access_token() == token
    assert provider.refreshes == 1


def test_rotated_refresh_token_is_saved_for_every_worker(
    db: Database, secrets: SecretBox, mailbox_id: int, provider: OAuthTestServer, worker: MakeWorker
) -> None:
    provider.rotate_refresh_tokens = True
    first = worker().access_token()

    [current] = provider.refresh_tokens(ADDRESS)
    assert secrets.decrypt(stored(db, mailbox_id).oauth_refresh_token_enc) == current

    # A second worker's forced refresh presents the rotated token (the first one is retired).
    second = worker()
    assert second.access_token() == first
    assert second.access_token(force=True) != first
    assert provider.refreshes == 2


def test_two_workers_refresh_once(provider: OAuthTestServer, worker: MakeWorker) -> None:
    provider.refresh_delay = 0.3
    workers = [worker(), worker()]
    tokens: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(workers))

    def sign_in(manager: TokenManager) -> None:
        start.wait()
        try:
            tokens.append(manager.access_token())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=sign_in, args=(m,)) for m in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    # The second waited on the lock, read the store again and took the first one's token.
    assert provider.refreshes == 1
    assert len(tokens) == 2 and tokens[0] == tokens[1]


def test_two_workers_told_the_token_was_refused_refresh_once(provider: OAuthTestServer, worker: MakeWorker) -> None:
    workers = [worker(), worker()]
    refused = workers[0].access_token()
    assert workers[1].access_token() == refused
    provider.revoke_access_tokens(ADDRESS)
    provider.refresh_delay = 0.3
    tokens: list[str] = []
    start = threading.Barrier(len(workers))

    def force(manager: TokenManager) -> None:
        start.wait()
        tokens.append(manager.access_token(force=True))

    threads = [threading.Thread(target=force, args=(m,)) for m in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert provider.refreshes == 2  # the first token, then one replacement for both
    assert len(tokens) == 2 and tokens[0] == tokens[1] != refused


def test_invalid_grant_is_reauthorization_required(
    db: Database, mailbox_id: int, secrets: SecretBox, provider: OAuthTestServer, worker: MakeWorker
) -> None:
    provider.revoke_grant(secrets.decrypt(stored(db, mailbox_id).oauth_refresh_token_enc))

    with pytest.raises(ReauthorizationRequired) as caught:
        worker().access_token()

    assert ADDRESS in str(caught.value) and "re-authorisation required" in str(caught.value)
    assert provider.client_secret not in str(caught.value)
    row = stored(db, mailbox_id)
    assert row.oauth_access_token_enc == "" and row.oauth_access_expires_at is None


def test_waiting_for_a_stuck_refresh_is_bounded(
    db: Database, secrets: SecretBox, mailbox_id: int, provider: OAuthTestServer, http: httpx.Client
) -> None:
    if db.is_sqlite:
        pytest.skip("SQLite bounds the wait with the database's busy timeout (30 s), too long for a test")
    holder = MailboxTokenStore(db, secrets, mailbox_id)
    row = stored(db, mailbox_id)
    waiting = token_manager(db, secrets, row, http=http)
    waiting.store = MailboxTokenStore(db, secrets, mailbox_id, lock_wait=0.2)

    with holder.refresh_lock(), pytest.raises(ConnectError, match="did not finish in time") as caught:
        waiting.access_token()
    assert caught.value.temporary and caught.value.account == ADDRESS
    assert provider.refreshes == 0


def test_imap_signs_in_with_the_stored_mailbox(
    db: Database, secrets: SecretBox, connection_id: int, provider: OAuthTestServer, certs: Certificates
) -> None:
    binary = find_dovecot()
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Dovecot is not installed, and CI=true requires it")
        pytest.skip("Dovecot is not installed")
    with DovecotServer(TEMPLATE, certs, binary=binary, oauth2_introspection_url=provider.introspection_url) as dovecot:
        user = dovecot.add_user()
        dovecot.append(user, make_mail("stored grant"))
        mailbox_id = add_mailbox(db, secrets, connection_id, provider, address=user.address)
        manager = token_manager(db, secrets, stored(db, mailbox_id))
        try:
            account = dovecot.imap_account(user, "ssl", password="")
            sink = MemorySink()
            assert ImapSource(account, sink, MemoryEventLog(), authenticate=imap_xoauth2(manager)).sync_once() == 1
        finally:
            manager.close()
    assert sink.subjects() == ["stored grant"]
    assert secrets.decrypt(stored(db, mailbox_id).oauth_access_token_enc)

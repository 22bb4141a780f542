"""OAuth2 sign-in against real peers: Dovecot's oauth2 passdb (IMAP, POP3), aiosmtpd (SMTP), a token endpoint.

The provider (token endpoint and RFC 7662 introspection) is postroom.testing.oauth.OAuthTestServer on
loopback; Dovecot asks it about every token, so a token the provider revoked is refused by the real
IMAP and POP3 server, which is what makes the client refresh.
"""

from __future__ import annotations

import asyncio
import imaplib
import poplib
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from postroom.errors import AuthenticationError, ConnectError, ReauthorizationRequired
from postroom.mail.model import ComposedMail
from postroom.sources.base import ImapAccount
from postroom.sources.imap import ImapSource
from postroom.sources.oauth import (
    AccessToken,
    OAuthClient,
    TokenManager,
    imap_xoauth2,
    pop3_xoauth2,
    smtp_xoauth2,
    xoauth2_string,
)
from postroom.sources.pop3 import Pop3Account, Pop3Client
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.memory import MemoryEventLog, MemorySink
from postroom.testing.oauth import MemoryTokenStore, OAuthTestServer, XOAuth2SmtpHandler
from postroom.testing.smtp import SmtpTestServer
from postroom.transports.base import SendResult
from postroom.transports.smtp import send

MakeManager = Callable[..., tuple[TokenManager, MemoryTokenStore]]


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


@pytest.fixture
def make_manager(provider: OAuthTestServer, http: httpx.Client) -> MakeManager:
    """A manager for ``address`` with a fresh grant from the provider, over a store in memory."""

    def make(
        address: str, *, store: MemoryTokenStore | None = None, skew: float = 60.0
    ) -> tuple[TokenManager, MemoryTokenStore]:
        store = store or MemoryTokenStore(provider.grant(address))
        client = OAuthClient(provider.client_id, provider.client_secret, provider.token_uri)
        return TokenManager(address, client, store, http=http, skew=skew), store

    return make


def oauth_user(dovecot: DovecotServer) -> MailUser:
    return dovecot.add_user()


def failed_logins(dovecot: DovecotServer, user: MailUser) -> int:
    return sum(1 for line in dovecot.log_text().splitlines() if user.name in line and "oauth2 failed" in line)


def oauth_source(
    dovecot: DovecotServer,
    user: MailUser,
    manager: TokenManager,
    sink: MemorySink | None = None,
    encryption: str = "ssl",
) -> ImapSource:
    """An ImapSource that signs in with XOAUTH2 only: the account has no password."""
    account = dovecot.imap_account(user, encryption, password="")  # type: ignore[arg-type]
    return ImapSource(account, sink or MemorySink(), MemoryEventLog(), authenticate=imap_xoauth2(manager))


def cached(provider: OAuthTestServer, user: str, token: str, seconds: float) -> MemoryTokenStore:
    """A store with a fresh grant and ``token`` cached as expiring in ``seconds``."""
    return MemoryTokenStore(provider.grant(user), AccessToken(token, datetime.now(UTC) + timedelta(seconds=seconds)))


def deliver(server: SmtpTestServer, address: str, manager: TokenManager) -> SendResult:
    account = server.smtp_account(address, username="", password="")
    return asyncio.run(send(account, compose(address), authenticate=smtp_xoauth2(manager)))


# ── IMAP ───────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.dovecot
def test_imap_xoauth2_signs_in_and_imports(
    oauth_dovecot: DovecotServer, provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    user = oauth_user(oauth_dovecot)
    oauth_dovecot.append_all(user, [make_mail(f"oauth {n}") for n in range(3)])
    manager, store = make_manager(user.address)
    sink = MemorySink()

    imported = oauth_source(oauth_dovecot, user, manager, sink).sync_once()

    assert imported == 3
    assert sink.subjects() == ["oauth 0", "oauth 1", "oauth 2"]
    assert provider.refreshes == 1
    assert store.access is not None and store.saves == 1
    oauth_dovecot.wait_for_log(f"user=<{user.name}>, method=XOAUTH2")

    # A second sign-in uses the stored token: no refresh, no refused attempt.
    oauth_source(oauth_dovecot, user, manager).check_login()
    assert provider.refreshes == 1
    assert failed_logins(oauth_dovecot, user) == 0


@pytest.mark.dovecot
def test_imap_refused_token_forces_one_refresh_and_signs_in(
    oauth_dovecot: DovecotServer, provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    user = oauth_user(oauth_dovecot)
    oauth_dovecot.append(user, make_mail("after revocation"))
    # The store holds a token that looks valid for an hour, but the provider revoked it early.
    revoked = provider.issue_access_token(user.name)
    provider.revoke_access_tokens(user.name)
    store = cached(provider, user.name, revoked, 3600)
    manager, _ = make_manager(user.address, store=store)

    assert oauth_source(oauth_dovecot, user, manager, encryption="starttls").sync_once() == 1

    assert provider.refreshes == 1
    assert failed_logins(oauth_dovecot, user) == 1
    assert store.access is not None and store.access.token != revoked


@pytest.mark.dovecot
@pytest.mark.parametrize("expires_in", [-30, 30], ids=["expired", "within-skew"])
def test_imap_token_near_expiry_is_refreshed_before_signing_in(
    oauth_dovecot: DovecotServer, provider: OAuthTestServer, make_manager: MakeManager, expires_in: int
) -> None:
    user = oauth_user(oauth_dovecot)
    old = provider.issue_access_token(user.name, expires_in=max(expires_in, 1))
    store = cached(provider, user.name, old, expires_in)
    manager, _ = make_manager(user.address, store=store, skew=60.0)

    oauth_source(oauth_dovecot, user, manager).check_login()

    # Refreshed up front: the server never saw the old token.
    assert provider.refreshes == 1
    assert failed_logins(oauth_dovecot, user) == 0
    assert store.access is not None and store.access.token != old


@pytest.mark.dovecot
def test_imap_token_refused_twice_is_an_authentication_error(
    oauth_dovecot: DovecotServer, provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    user = oauth_user(oauth_dovecot)
    other = oauth_user(oauth_dovecot)
    # A grant for another account: every token it yields names that account, which Dovecot refuses.
    store = MemoryTokenStore(provider.grant(other.name))
    manager, _ = make_manager(user.address, store=store)

    source = oauth_source(oauth_dovecot, user, manager)
    with pytest.raises(AuthenticationError) as caught:
        source.check_login()

    assert caught.value.account == user.address
    assert caught.value.protocol == "imap"
    # One refresh for the first attempt, one forced after the refusal; then it gives up.
    assert provider.refreshes == 2
    assert store.access is not None and store.access.token not in str(caught.value)


@pytest.mark.dovecot
def test_imap_revoked_grant_is_reauthorization_required(
    oauth_dovecot: DovecotServer, provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    user = oauth_user(oauth_dovecot)
    manager, store = make_manager(user.address)
    provider.revoke_grant(store.refresh_token)

    source = oauth_source(oauth_dovecot, user, manager)
    with pytest.raises(ReauthorizationRequired) as caught:
        source.check_login()

    message = str(caught.value)
    assert user.address in message
    assert "OAuth2" in message and "re-authorisation required" in message and "invalid_grant" in message
    assert store.refresh_token not in message and provider.client_secret not in message
    assert not caught.value.temporary


@pytest.mark.dovecot
def test_password_users_still_sign_in_beside_oauth(oauth_dovecot: DovecotServer) -> None:
    user = oauth_user(oauth_dovecot)
    oauth_dovecot.append(user, make_mail("with a password"))
    sink = MemorySink()
    assert ImapSource(oauth_dovecot.imap_account(user, "ssl"), sink, MemoryEventLog()).sync_once() == 1
    oauth_dovecot.wait_for_log(f"user=<{user.name}>, method=PLAIN")


@pytest.mark.dovecot
def test_imap_oauthbearer_is_offered_and_accepted(oauth_dovecot: DovecotServer, provider: OAuthTestServer) -> None:
    user = oauth_user(oauth_dovecot)
    token = provider.issue_access_token(user.name)
    client = imaplib.IMAP4(oauth_dovecot.host, oauth_dovecot.ports.imap, timeout=5)
    try:
        assert "AUTH=OAUTHBEARER" in client.capabilities and "AUTH=XOAUTH2" in client.capabilities
        # RFC 7628 §3.1: a GS2 header naming the user, then key/value pairs separated by ^A.
        response = f"n,a={user.name},\x01auth=Bearer {token}\x01\x01".encode()
        status, _ = client.authenticate("OAUTHBEARER", lambda _challenge: response)
        assert status == "OK"
    finally:
        client.logout()


def test_plain_dovecot_offers_no_oauth(dovecot: DovecotServer, dovecot_user: MailUser) -> None:
    """Without oauth2_introspection_url nothing of OAuth is configured: the shared server is unchanged."""
    with dovecot.imap(dovecot_user) as client:
        capabilities = {c.decode() if isinstance(c, bytes) else c for c in client.capabilities()}
    assert not any("OAUTH" in capability for capability in capabilities)
    assert not (dovecot.workdir / "oauth2.conf").exists()


# ── POP3 ───────────────────────────────────────────────────────────────────────────────────────


def pop3_login(user: MailUser) -> Pop3Account:
    """What the POP3 authenticators read of an account: the login (the connection is the test's own)."""
    return Pop3Account(address=user.name, host="127.0.0.1", username=user.name)


@pytest.mark.dovecot
@pytest.mark.parametrize("token_bytes", [24, 600], ids=["initial-response", "after-challenge"])
def test_pop3_xoauth2_signs_in(
    oauth_dovecot: DovecotServer, provider: OAuthTestServer, make_manager: MakeManager, token_bytes: int
) -> None:
    # Tokens of 600 random bytes make the AUTH line too long for an initial response (RFC 5034 §4).
    provider.token_bytes = token_bytes
    user = oauth_user(oauth_dovecot)
    oauth_dovecot.append(user, make_mail("over pop3"))
    manager, _ = make_manager(user.address)

    client = Pop3Client(oauth_dovecot.host, oauth_dovecot.ports.pop3, timeout=5)
    try:
        pop3_xoauth2(manager)(client, pop3_login(user))
        assert client.stat()[0] == 1
    finally:
        client.quit()
    assert provider.refreshes == 1
    oauth_dovecot.wait_for_log(f"user=<{user.name}>, method=XOAUTH2")


@pytest.mark.dovecot
def test_pop3_refused_token_forces_one_refresh(
    oauth_dovecot: DovecotServer, provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    user = oauth_user(oauth_dovecot)
    revoked = provider.issue_access_token(user.name)
    provider.revoke_access_tokens(user.name)
    store = cached(provider, user.name, revoked, 3600)
    manager, _ = make_manager(user.address, store=store)

    client = Pop3Client(oauth_dovecot.host, oauth_dovecot.ports.pop3, timeout=5)
    try:
        pop3_xoauth2(manager)(client, pop3_login(user))
        assert client.stat() == (0, 0)
    finally:
        client.quit()
    assert provider.refreshes == 1
    assert failed_logins(oauth_dovecot, user) == 1


@pytest.mark.dovecot
def test_pop3_token_refused_twice_raises_the_err_line(
    oauth_dovecot: DovecotServer, provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    user = oauth_user(oauth_dovecot)
    manager, _ = make_manager(user.address, store=MemoryTokenStore(provider.grant("someone-else@postroom.test")))
    client = Pop3Client(oauth_dovecot.host, oauth_dovecot.ports.pop3, timeout=5)
    try:
        with pytest.raises(poplib.error_proto, match="-ERR"):
            pop3_xoauth2(manager)(client, pop3_login(user))
    finally:
        client.close()
    assert provider.refreshes == 2


# ── SMTP ───────────────────────────────────────────────────────────────────────────────────────


@pytest.fixture
def oauth_smtp(
    make_smtp_server: Callable[..., SmtpTestServer], provider: OAuthTestServer
) -> tuple[SmtpTestServer, XOAuth2SmtpHandler]:
    handler = XOAuth2SmtpHandler(provider)
    return make_smtp_server("starttls", handler=handler, auth_required=True), handler


def compose(address: str) -> ComposedMail:
    return ComposedMail(
        raw=make_mail("sent with a token", sender=address, to="customer@example.test"),
        message_id="oauth-1@postroom.test",
        envelope_from=address,
        recipients=("customer@example.test",),
        subject="sent with a token",
        references=(),
    )


def test_smtp_xoauth2_sends(
    oauth_smtp: tuple[SmtpTestServer, XOAuth2SmtpHandler], provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    server, handler = oauth_smtp
    address = "agent@postroom.test"
    manager, _ = make_manager(address)

    result = deliver(server, address, manager)

    assert result.reply.code == 250
    [received] = server.wait_for(1)
    assert received.login == address and received.tls
    assert [(a.mechanism, a.success) for a in handler.sign_ins] == [("XOAUTH2", True)]
    assert provider.refreshes == 1


def test_smtp_refused_token_forces_one_refresh(
    oauth_smtp: tuple[SmtpTestServer, XOAuth2SmtpHandler], provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    server, handler = oauth_smtp
    address = "agent@postroom.test"
    revoked = provider.issue_access_token(address)
    provider.revoke_access_tokens(address)
    manager, _ = make_manager(address, store=cached(provider, address, revoked, 3600))

    deliver(server, address, manager)

    assert [a.success for a in handler.sign_ins] == [False, True]
    assert len(server.wait_for(1)) == 1
    assert provider.refreshes == 1


def test_smtp_token_refused_twice_is_an_authentication_error(
    oauth_smtp: tuple[SmtpTestServer, XOAuth2SmtpHandler], provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    server, handler = oauth_smtp
    address = "agent@postroom.test"
    manager, _ = make_manager(address, store=MemoryTokenStore(provider.grant("someone-else@postroom.test")))

    with pytest.raises(AuthenticationError) as caught:
        deliver(server, address, manager)

    assert caught.value.account == address and caught.value.protocol == "smtp"
    assert "535" in str(caught.value)
    assert [a.success for a in handler.sign_ins] == [False, False]
    assert server.messages == []


def test_smtp_server_without_xoauth2_is_refused_without_a_refresh(
    make_smtp_server: Callable[..., SmtpTestServer], provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    server = make_smtp_server("starttls", users={"agent@postroom.test": "pw"})
    manager, _ = make_manager("agent@postroom.test")

    with pytest.raises(AuthenticationError, match="does not offer AUTH XOAUTH2"):
        deliver(server, "agent@postroom.test", manager)
    assert provider.refreshes == 0


# ── the token endpoint ─────────────────────────────────────────────────────────────────────────


def test_rotated_refresh_token_is_saved_and_used(provider: OAuthTestServer, make_manager: MakeManager) -> None:
    provider.rotate_refresh_tokens = True
    manager, store = make_manager("rotating@postroom.test")
    first_grant = store.refresh_token

    first = manager.access_token()
    assert store.refresh_token != first_grant
    assert provider.refresh_tokens("rotating@postroom.test") == [store.refresh_token]

    # A forced refresh presents the rotated token; the retired one would answer invalid_grant.
    second = manager.access_token(force=True)
    assert second != first
    assert provider.refreshes == 2
    assert store.saves == 2


def test_invalid_grant_names_the_mailbox(provider: OAuthTestServer, make_manager: MakeManager) -> None:
    manager, store = make_manager("revoked@postroom.test")
    provider.revoke_grant(store.refresh_token)

    with pytest.raises(ReauthorizationRequired) as caught:
        manager.access_token()

    assert caught.value.account == "revoked@postroom.test" and caught.value.protocol == "OAuth2"
    assert str(caught.value).startswith("OAuth2 revoked@postroom.test: re-authorisation required: ")
    assert store.saves == 0


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_are_temporary(provider: OAuthTestServer, make_manager: MakeManager, status: int) -> None:
    manager, store = make_manager("flaky@postroom.test")
    provider.fail_next(status=status)

    with pytest.raises(ConnectError) as caught:
        manager.access_token()
    assert caught.value.temporary and caught.value.account == "flaky@postroom.test"

    # The next attempt (the runner's retry) succeeds.
    token = manager.access_token()
    assert store.access is not None and token == store.access.token


def test_wrong_client_secret_is_an_authentication_error(provider: OAuthTestServer, http: httpx.Client) -> None:
    store = MemoryTokenStore(provider.grant("client@postroom.test"))
    manager = TokenManager(
        "client@postroom.test", OAuthClient(provider.client_id, "not-the-secret", provider.token_uri), store, http=http
    )
    with pytest.raises(AuthenticationError, match="invalid_client") as caught:
        manager.access_token()
    assert not caught.value.temporary
    assert "not-the-secret" not in str(caught.value) and store.refresh_token not in str(caught.value)


def test_unreachable_token_endpoint_is_temporary(http: httpx.Client) -> None:
    with OAuthTestServer() as gone:
        token_uri = gone.token_uri
    manager = TokenManager(
        "offline@postroom.test", OAuthClient("id", "secret", token_uri), MemoryTokenStore("rt-x"), http=http
    )
    with pytest.raises(ConnectError, match="unreachable") as caught:
        manager.access_token()
    assert caught.value.temporary


def test_a_second_worker_waits_and_takes_the_first_ones_token(
    provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    provider.refresh_delay = 0.3
    shared = MemoryTokenStore(provider.grant("busy@postroom.test"))
    workers = [make_manager("busy@postroom.test", store=shared)[0] for _ in range(2)]
    tokens: list[str] = []
    start = threading.Barrier(2)

    def sign_in(manager: TokenManager) -> None:
        start.wait()
        tokens.append(manager.access_token())

    threads = [threading.Thread(target=sign_in, args=(m,)) for m in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)

    assert provider.refreshes == 1
    assert len(tokens) == 2 and tokens[0] == tokens[1]


def test_forced_refresh_takes_a_token_another_worker_already_refreshed(
    provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    shared = MemoryTokenStore(provider.grant("two@postroom.test"))
    first, second = (make_manager("two@postroom.test", store=shared)[0] for _ in range(2))
    refused = first.access_token()
    assert second.access_token() == refused

    # Both saw the token refused; the first refreshes, the second finds the new token stored.
    renewed = first.access_token(force=True)
    assert second.access_token(force=True) == renewed != refused
    assert provider.refreshes == 2


def test_lock_timeout_is_a_temporary_error(provider: OAuthTestServer, make_manager: MakeManager) -> None:
    store = MemoryTokenStore(provider.grant("locked@postroom.test"), lock_wait=0.05)
    manager, _ = make_manager("locked@postroom.test", store=store)
    with store.refresh_lock(), pytest.raises(ConnectError, match="did not finish in time"):
        manager.access_token()


def test_secrets_stay_out_of_reprs() -> None:
    client = OAuthClient("client-id", "client-secret-value")
    token = AccessToken("access-token-value", datetime.now(UTC))
    assert "client-secret-value" not in repr(client) and "access-token-value" not in repr(token)
    assert xoauth2_string("u@x", "t") == "user=u@x\x01auth=Bearer t\x01\x01"


def test_imap_connection_lost_during_authenticate_is_no_refusal(
    provider: OAuthTestServer, make_manager: MakeManager
) -> None:
    """A server that drops the connection at AUTHENTICATE: a temporary ConnectError, no forced refresh."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_once() -> None:
        connection, _ = listener.accept()
        with connection, connection.makefile("rb") as lines:
            connection.sendall(b"* OK test server ready\r\n")
            tag = lines.readline().split(b" ", 1)[0]  # imaplib asks for CAPABILITY first
            connection.sendall(b"* CAPABILITY IMAP4rev1 AUTH=XOAUTH2\r\n" + tag + b" OK done\r\n")
            lines.readline()  # AUTHENTICATE XOAUTH2: hang up instead of answering

    server = threading.Thread(target=serve_once, daemon=True)
    server.start()
    manager, _ = make_manager("dropped@postroom.test")
    account = ImapAccount(address="dropped@postroom.test", host="127.0.0.1", port=port, encryption="none", timeout=5)
    try:
        with pytest.raises(ConnectError) as caught:
            ImapSource(account, MemorySink(), MemoryEventLog(), authenticate=imap_xoauth2(manager)).check_login()
    finally:
        server.join(5)
        listener.close()
    assert caught.value.protocol == "imap" and caught.value.temporary
    assert provider.refreshes == 1

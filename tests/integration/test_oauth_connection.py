"""OAuth connections end to end: a whole Postroom process signs in with XOAUTH2 everywhere, through the API.

The peers are real: Dovecot's oauth2 passdb (IMAP, POP3) and an aiosmtpd server with
``XOAuth2SmtpHandler`` both ask the local provider (``OAuthTestServer``, RFC 7662 introspection) about
every token, so a token the provider revoked is refused by the servers themselves. The provider rotates
refresh tokens on every refresh, as Microsoft's identity platform does, so each test also proves that the
rotated token is what the mailbox row keeps. The main paths run on SQLite and on PostgreSQL, whose token
refresh locks differ (``BEGIN IMMEDIATE`` against an advisory transaction lock).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from sqlalchemy import select

from postroom.service import Service
from postroom.store.models import Mailbox, Outbox
from postroom.testing.dovecot import DovecotError, DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.oauth import OAuthTestServer, XOAuth2SmtpHandler
from postroom.testing.smtp import SmtpTestServer
from support import Api, wait_until

CUSTOMER = "Cy Customer <cy@customer.example>"


@pytest.fixture
def provider() -> Iterator[OAuthTestServer]:
    with OAuthTestServer(rotate_refresh_tokens=True) as server:
        yield server


@pytest.fixture
def oauth_smtp(make_smtp_server: Callable[..., SmtpTestServer], provider: OAuthTestServer) -> SmtpTestServer:
    """An SMTP server that requires AUTH and offers only what the handler adds: XOAUTH2 against ``provider``."""
    server: SmtpTestServer = make_smtp_server("starttls", handler=XOAuth2SmtpHandler(provider), auth_required=True)
    return server


def oauth_body(
    dovecot: DovecotServer, user: MailUser, smtp: SmtpTestServer, provider: OAuthTestServer, **overrides: Any
) -> dict[str, Any]:
    """An IMAP connection that signs in with OAuth only: no password anywhere, a fresh grant for the mailbox."""
    body: dict[str, Any] = {
        "name": f"OAuth {user.address}",
        "mode": "imap",
        "address": user.address,
        "imap_server": dovecot.host,
        "imap_port": dovecot.ports.imaps,
        "imap_encryption": "ssl",
        "smtp_server": smtp.host,
        "smtp_port": smtp.port,
        "smtp_encryption": "starttls",
        "check_interval": 1,
        "oauth_enabled": True,
        "oauth_client_id": provider.client_id,
        "oauth_client_secret": provider.client_secret,
        "oauth_refresh_token": provider.grant(user.name),
        "oauth_token_uri": provider.token_uri,
    }
    body.update(overrides)
    return body


def pop3_oauth_body(
    dovecot: DovecotServer, user: MailUser, smtp: SmtpTestServer, provider: OAuthTestServer
) -> dict[str, Any]:
    body = oauth_body(dovecot, user, smtp, provider, mode="pop3")
    for field in ("imap_server", "imap_port", "imap_encryption"):
        del body[field]
    body.update(pop3_server=dovecot.host, pop3_port=dovecot.ports.pop3s, pop3_encryption="ssl")
    return body


def stored_mailbox(service: Service, connection_id: int) -> Mailbox:
    with service.db.read() as session:
        return session.scalars(select(Mailbox).where(Mailbox.connection_id == connection_id)).one()


def log_text(api: Api, connection_id: int) -> str:
    return "\n".join(entry["message"] for entry in api.items(f"/connections/{connection_id}/logs"))


def log_events(api: Api, connection_id: int) -> list[str]:
    return [entry["event"] for entry in api.items(f"/connections/{connection_id}/logs")]


def assert_no_secret_in(text: str, provider: OAuthTestServer) -> None:
    """Neither the client secret nor any refresh or access token the provider ever issued."""
    assert provider.client_secret not in text
    leaked = [token for token in provider.issued_tokens() if token in text]
    assert leaked == []


def xoauth2_logins(dovecot: DovecotServer, user: MailUser, service: str = "imap") -> int:
    """Successful XOAUTH2 logins of ``user`` to Dovecot's ``service`` ("imap" or "pop3"), from its log."""
    return sum(
        1
        for line in dovecot.log_text().splitlines()
        if f"{service}-login: Info: Login: user=<{user.name}>, method=XOAUTH2," in line
    )


def kick(dovecot: DovecotServer, user: MailUser) -> None:
    """Drop the user's IMAP session; doveadm says "no such user" until the session is fully logged in."""

    def kicked() -> bool:
        try:
            dovecot.kick(user)
        except DovecotError:
            return False
        return True

    wait_until(kicked)


def sent_folder(dovecot: DovecotServer, user: MailUser) -> list[bytes]:
    # Read with the user's password: Dovecot keeps password sign-in beside the oauth2 passdb.
    with dovecot.imap(user) as client:
        client.select_folder("Sent", readonly=True)
        fetched = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
    return [bytes(data[b"BODY[]"]) for _, data in sorted(fetched.items())]


def test_oauth_imap_connection_signs_in_imports_replies_and_files_in_sent(
    db_url: str,  # before make_service: the schema must outlive the service, which is closed first
    make_service: Callable[..., Service],
    oauth_dovecot: DovecotServer,
    oauth_smtp: SmtpTestServer,
    provider: OAuthTestServer,
) -> None:
    # On SQLite and PostgreSQL: the token refresh lock is a different thing on each (module docstring).
    service = make_service(db_url)
    api = Api(service)
    user = oauth_dovecot.add_user()
    body = oauth_body(oauth_dovecot, user, oauth_smtp, provider)
    first_grant = body["oauth_refresh_token"]
    created = api.post("/connections", body, expect=201)
    connection_id = created["id"]

    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")

    # Start signed in over IMAP and SMTP, both with XOAUTH2, and refreshed once (the token is shared).
    assert xoauth2_logins(oauth_dovecot, user) >= 1
    handler = oauth_smtp.handler
    assert [(a.mechanism, a.login, a.success) for a in handler.sign_ins] == [("XOAUTH2", user.name, True)]
    assert provider.refreshes_for(user.name) == 1
    # The provider rotated the refresh token: the row keeps the new one, encrypted, and the access token.
    [current_grant] = provider.refresh_tokens(user.name)
    assert current_grant != first_grant
    mailbox = stored_mailbox(service, connection_id)
    assert service.secrets.decrypt(mailbox.oauth_refresh_token_enc) == current_grant
    assert current_grant not in mailbox.oauth_refresh_token_enc
    assert service.secrets.decrypt(mailbox.oauth_access_token_enc) in provider.issued_tokens()

    # A customer's mail becomes a conversation.
    oauth_dovecot.append(user, make_mail("Token troubles", sender=CUSTOMER, to=user.address))
    conversation = wait_until(lambda: api.conversations(connection_id=connection_id), timeout=10)[0]
    assert conversation["subject"] == "Token troubles"

    # The agent's reply goes out over SMTP signed in with XOAUTH2, and its copy is filed in Sent over IMAP.
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Fixed, Cy."}, 201)
    [delivered] = oauth_smtp.wait_for(1, timeout=10)
    assert delivered.login == user.name
    assert delivered.recipients == ("cy@customer.example",)
    with service.db.read() as session:
        message_id = session.scalars(select(Outbox.message_id)).one()
    assert message_from_bytes(delivered.raw, policy=policy.default)["Message-ID"] == f"<{message_id}>"
    filed = wait_until(
        lambda: [e["message"] for e in api.items(f"/connections/{connection_id}/logs") if e["event"] == "sent_folder"],
        timeout=10,
    )
    assert filed == [f"<{message_id}> filed in Sent"]
    # Start's check, the reading session and the Sent copy signed in with XOAUTH2; the one password
    # sign-in is the test's own append of the customer's mail.
    assert xoauth2_logins(oauth_dovecot, user) >= 3
    assert oauth_dovecot.log_text().count(f"user=<{user.name}>, method=PLAIN") == 1
    assert sent_folder(oauth_dovecot, user) == [delivered.raw]
    last = api.get(f"/conversations/{conversation['id']}")["messages"][-1]
    assert last["delivery_status"] == "sent"
    # Every sign-in reused the stored token: SMTP and the Sent copy did not refresh again.
    assert all(a.success and a.mechanism == "XOAUTH2" for a in handler.sign_ins)
    assert provider.refreshes_for(user.name) == 1

    assert_no_secret_in(log_text(api, connection_id), provider)


def test_a_revoked_grant_is_an_error_until_a_new_refresh_token_is_given(
    db_url: str,  # before make_service: the schema must outlive the service, which is closed first
    make_service: Callable[..., Service],
    oauth_dovecot: DovecotServer,
    oauth_smtp: SmtpTestServer,
    provider: OAuthTestServer,
) -> None:
    # On SQLite and PostgreSQL: the token refresh lock is a different thing on each (module docstring).
    service = make_service(db_url)
    api = Api(service)
    user = oauth_dovecot.add_user()
    created = api.post("/connections", oauth_body(oauth_dovecot, user, oauth_smtp, provider), expect=201)
    connection_id = created["id"]
    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")

    # RUNNING comes after Start's sign-in check; the reading session is the second XOAUTH2 login.
    wait_until(lambda: xoauth2_logins(oauth_dovecot, user) >= 2)
    # The user withdraws consent: the grant answers invalid_grant and the access tokens stop working.
    # Dropping the IMAP session makes the running source sign in again, which is refused, refreshes, and fails.
    [grant] = provider.refresh_tokens(user.name)
    provider.revoke_grant(grant)
    provider.revoke_access_tokens(user.name)
    kick(oauth_dovecot, user)

    # A reconnect cut off by the kick may show a passing network error first; wait for the verdict.
    failed = api.wait_status(connection_id, "ERROR", timeout=15, message="re-authorisation required")
    message = failed["status_message"]
    assert "re-authorisation required" in message
    assert user.address in message
    assert "invalid_grant" in message
    assert grant not in message

    # The admin pastes a new refresh token: the connection restarts with it and runs again.
    new_grant = provider.grant(user.name)
    patched = api.client.patch(f"/api/v1/connections/{connection_id}", json={"oauth_refresh_token": new_grant})
    assert patched.status_code == 200, patched.text
    assert patched.json()["oauth_refresh_token"] == "********"
    api.wait_status(connection_id, "RUNNING", timeout=15)
    oauth_dovecot.append(user, make_mail("Back again", sender=CUSTOMER, to=user.address))
    assert wait_until(lambda: api.conversations(connection_id=connection_id), timeout=10)[0]["subject"] == "Back again"

    # The new grant was used and, rotated by the provider, replaced on the row.
    [rotated] = provider.refresh_tokens(user.name)
    assert rotated != new_grant
    assert service.secrets.decrypt(stored_mailbox(service, connection_id).oauth_refresh_token_enc) == rotated
    assert_no_secret_in(log_text(api, connection_id), provider)


def test_oauth_pop3_connection_signs_in_and_imports(
    make_service: Callable[..., Service],
    oauth_dovecot: DovecotServer,
    oauth_smtp: SmtpTestServer,
    provider: OAuthTestServer,
) -> None:
    service = make_service()
    api = Api(service)
    user = oauth_dovecot.add_user()
    oauth_dovecot.append(user, make_mail("Over POP3", sender=CUSTOMER, to=user.address))
    created = api.post("/connections", pop3_oauth_body(oauth_dovecot, user, oauth_smtp, provider), expect=201)
    connection_id = created["id"]

    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")
    conversation = wait_until(lambda: api.conversations(connection_id=connection_id), timeout=10)[0]

    assert conversation["subject"] == "Over POP3"
    assert [r["origin"] for r in api.items("/raw-messages")] == ["pop3"]
    assert xoauth2_logins(oauth_dovecot, user, "pop3") >= 2  # Start's check, then the reading session
    assert [(a.mechanism, a.success) for a in oauth_smtp.handler.sign_ins] == [("XOAUTH2", True)]
    [current_grant] = provider.refresh_tokens(user.name)
    assert service.secrets.decrypt(stored_mailbox(service, connection_id).oauth_refresh_token_enc) == current_grant
    assert_no_secret_in(log_text(api, connection_id), provider)


def test_start_after_the_grant_was_revoked_while_stopped_is_an_error_at_once(
    make_service: Callable[..., Service],
    oauth_dovecot: DovecotServer,
    oauth_smtp: SmtpTestServer,
    provider: OAuthTestServer,
) -> None:
    api = Api(make_service())
    user = oauth_dovecot.add_user()
    created = api.post("/connections", oauth_body(oauth_dovecot, user, oauth_smtp, provider), expect=201)
    connection_id = created["id"]
    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")
    api.post(f"/connections/{connection_id}/stop")
    api.wait_status(connection_id, "STOPPED")

    # Revoked while stopped: the stored access token still looks valid for an hour, but the server refuses it.
    [grant] = provider.refresh_tokens(user.name)
    provider.revoke_grant(grant)
    provider.revoke_access_tokens(user.name)
    api.post(f"/connections/{connection_id}/start")
    failed = api.wait_status(connection_id, "ERROR")

    assert failed["status_message"].startswith(f"OAuth2 {user.address}: re-authorisation required")
    entries = api.items(f"/connections/{connection_id}/logs")
    assert any(e["event"] == "start_failed" and "invalid_grant" in e["message"] for e in entries)
    assert_no_secret_in("\n".join(e["message"] for e in entries), provider)


def test_an_oauth_webhook_connection_signs_in_to_smtp_with_xoauth2(
    make_service: Callable[..., Service], oauth_smtp: SmtpTestServer, provider: OAuthTestServer
) -> None:
    # No mailbox to read: OAuth serves the SMTP sign-in alone (Start's check and every send).
    api = Api(make_service())
    address = "help@company.example"
    body = {
        "name": "OAuth webhook",
        "mode": "webhook",
        "address": address,
        "webhook_provider": "mailgun",
        "webhook_signing_key": "key-0123456789",
        "smtp_server": oauth_smtp.host,
        "smtp_port": oauth_smtp.port,
        "smtp_encryption": "starttls",
        "oauth_enabled": True,
        "oauth_client_id": provider.client_id,
        "oauth_client_secret": provider.client_secret,
        "oauth_refresh_token": provider.grant(address),
        "oauth_token_uri": provider.token_uri,
    }
    created = api.post("/connections", body, expect=201)
    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING")
    assert [(a.mechanism, a.login, a.success) for a in oauth_smtp.handler.sign_ins] == [("XOAUTH2", address, True)]

    # The agent writes first: the outbox signs in with the stored token (no refresh) and files no copy.
    started = {"connection_id": created["id"], "to": CUSTOMER, "subject": "Your order", "text": "It shipped."}
    api.post("/conversations", started, 201)
    [delivered] = oauth_smtp.wait_for(1, timeout=10)
    assert (delivered.login, delivered.envelope_from) == (address, address)
    assert [a.mechanism for a in oauth_smtp.handler.sign_ins] == ["XOAUTH2", "XOAUTH2"]
    assert provider.refreshes_for(address) == 1
    events = wait_until(lambda: "sent" in (e := log_events(api, created["id"])) and e)
    assert not any(event.startswith("sent_folder") for event in events)
    assert_no_secret_in(log_text(api, created["id"]), provider)


def test_two_oauth_mailboxes_each_sign_in_with_their_own_grant(
    make_service: Callable[..., Service],
    oauth_dovecot: DovecotServer,
    oauth_smtp: SmtpTestServer,
    provider: OAuthTestServer,
) -> None:
    # Dovecot and the SMTP server refuse a token issued to the other account, so a token manager shared
    # or swapped between the mailboxes would fail here.
    service = make_service()
    api = Api(service)
    first, second = oauth_dovecot.add_user(), oauth_dovecot.add_user()
    body = oauth_body(oauth_dovecot, first, oauth_smtp, provider)
    body.update(
        name="Two OAuth mailboxes",
        address=[first.address, second.address],
        oauth_refresh_token=[body["oauth_refresh_token"], provider.grant(second.name)],
    )
    created = api.post("/connections", body, expect=201)
    connection_id = created["id"]
    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")
    for user in (first, second):
        oauth_dovecot.append(user, make_mail(f"For {user.name}", sender=CUSTOMER, to=user.address))

    conversations = wait_until(lambda: len(c := api.conversations(connection_id=connection_id)) == 2 and c, timeout=10)
    for conversation in conversations:
        api.post(f"/conversations/{conversation['id']}/messages", {"text": "On it."}, 201)
    delivered = oauth_smtp.wait_for(2, timeout=10)

    # Each reply left from, and signed in as, the mailbox its conversation is on.
    assert sorted((m.login, m.envelope_from) for m in delivered) == sorted((u.name, u.address) for u in (first, second))
    assert all(a.success for a in oauth_smtp.handler.sign_ins)
    assert (provider.refreshes_for(first.name), provider.refreshes_for(second.name)) == (1, 1)
    with service.db.read() as session:
        boxes = session.scalars(select(Mailbox).where(Mailbox.connection_id == connection_id)).all()
        grants = {b.address: service.secrets.decrypt(b.oauth_refresh_token_enc) for b in boxes}
    assert grants == {u.address: provider.refresh_tokens(u.name)[0] for u in (first, second)}

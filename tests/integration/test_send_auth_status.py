"""A sign-in refused while sending shows on the connection, and the replies wait instead of failing.

The replies are parked without spending attempts, tried again at the retry policy's longest delay, and due at
once when the connection's settings are saved; another mailbox's successful send leaves the ERROR alone.

Whole Postroom processes against real peers: Dovecot reads the mailbox (its session stays up, so the runner
keeps the connection RUNNING), and the sends go to an aiosmtpd server, the SendGrid stand-in or, with OAuth,
an SMTP server asking the local OAuth provider about every token.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from postroom.jobs.outbox import SENDING_MARK, RetryPolicy
from postroom.service import Service
from postroom.store.models import Outbox, OutboxStatus
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.oauth import OAuthTestServer, XOAuth2SmtpHandler
from postroom.testing.sendgrid import SendgridTestServer
from postroom.testing.smtp import SmtpTestServer
from support import FAST, Api, connection_body, wait_until

# Enough attempts that the replies outlive the failures below; as quick as FAST otherwise.
PATIENT = replace(FAST, retry=RetryPolicy(first_delay=0.2, factor=2.0, max_delay=0.5, max_attempts=50))
# A refused sign-in parks a reply for max_delay: an hour here, so only saved settings can bring it back soon.
SLOW = replace(FAST, retry=RetryPolicy(first_delay=0.2, factor=2.0, max_delay=3600.0, max_attempts=4))


class CountingProvider(OAuthTestServer):
    """The OAuth provider, counting every request to its token endpoint (refused ones too)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.token_requests = 0
        self._count_lock = threading.Lock()

    def _token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict[str, Any]]:
        with self._count_lock:
            self.token_requests += 1
        return super()._token(form, basic)


@pytest.fixture
def provider() -> Iterator[CountingProvider]:
    with CountingProvider(rotate_refresh_tokens=True) as server:
        yield server


def logs(api: Api, connection_id: int, event: str) -> list[dict[str, Any]]:
    return [e for e in api.items(f"/connections/{connection_id}/logs") if e["event"] == event]


def open_conversation(api: Api, dovecot: DovecotServer, user: MailUser, body: dict[str, Any]) -> dict[str, Any]:
    created = api.post("/connections", body, expect=201)
    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING", timeout=15)
    dovecot.append(user, make_mail("Invoice question", sender="Cy <cy@customer.example>", to=user.address))
    conversation: dict[str, Any] = wait_until(lambda: api.conversations(connection_id=created["id"]), timeout=10)[0]
    return conversation


def reply(api: Api, conversation: dict[str, Any], text: str) -> int:
    message_id: int = api.post(f"/conversations/{conversation['id']}/messages", {"text": text}, 201)["id"]
    return message_id


def delivery(api: Api, conversation: dict[str, Any], message_id: int) -> tuple[str, str]:
    message = next(m for m in api.get(f"/conversations/{conversation['id']}")["messages"] if m["id"] == message_id)
    return message["delivery_status"], message["delivery_detail"]


def test_a_refused_sendgrid_key_while_sending_shows_on_the_connection_until_a_send_succeeds(
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
) -> None:
    with SendgridTestServer() as sendgrid_api:
        api = Api(make_service(policies=PATIENT))
        body = connection_body(
            dovecot,
            dovecot_user,
            smtp_server,
            outbound="sendgrid",
            sendgrid_api_key=sendgrid_api.api_key,
            sendgrid_api_url=sendgrid_api.url,
        )
        conversation = open_conversation(api, dovecot, dovecot_user, body)
        connection_id = conversation["connection_id"]
        # The key is revoked after Start checked it: the API answers 401 to the next sends.
        sendgrid_api.fail_next(4, 401)
        message_id = reply(api, conversation, "Here it is.")

        failed = api.wait_status(connection_id, "ERROR", message="authentication failed")
        assert failed["status_message"].lower().startswith(f"sendgrid {dovecot_user.address}: authentication failed")
        assert "HTTP 401" in failed["status_message"]
        assert failed["status_message"].endswith(SENDING_MARK)
        status, _ = delivery(api, conversation, message_id)
        assert status in ("queued", "sending")  # never failed: it waits for the key

        # The key works again: the reply goes out, once, and the connection is RUNNING again.
        wait_until(lambda: delivery(api, conversation, message_id)[0] == "sent", timeout=15)
        api.wait_status(connection_id, "RUNNING")
        sends = [r.status for r in sendgrid_api.requests if r.path == "/v3/mail/send"]
        assert sends == [401, 401, 401, 401, 202]
        # Logged once when the status changed, not at every retry.
        assert len(logs(api, connection_id, "send_sign_in_failed")) == 1
        assert len(logs(api, connection_id, "send_waiting")) == 4
        assert logs(api, connection_id, "send_retry") == []
        assert len(logs(api, connection_id, "send_sign_in_ok")) == 1
        assert all(sendgrid_api.api_key not in e["message"] for e in api.items(f"/connections/{connection_id}/logs"))


def test_a_refused_smtp_password_while_sending_keeps_the_reply_and_shows_on_the_connection(
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
) -> None:
    service = make_service(policies=PATIENT)
    api = Api(service)
    conversation = open_conversation(api, dovecot, dovecot_user, connection_body(dovecot, dovecot_user, smtp_server))
    connection_id = conversation["connection_id"]
    # The mailbox's password changes at the provider while the connection runs.
    smtp_server.add_user(dovecot_user.address, "changed-elsewhere")
    message_id = reply(api, conversation, "Soon.")

    failed = api.wait_status(connection_id, "ERROR", message="authentication failed")
    assert failed["status_message"].startswith(f"SMTP {dovecot_user.address}: authentication failed: 535")
    wait_until(lambda: len(logs(api, connection_id, "send_waiting")) >= 3, timeout=10)
    # Still ERROR, logged once, and the reply is still waiting.
    assert api.get(f"/connections/{connection_id}")["status"] == "ERROR"
    assert len(logs(api, connection_id, "send_sign_in_failed")) == 1
    assert delivery(api, conversation, message_id)[0] in ("queued", "sending")

    smtp_server.add_user(dovecot_user.address, dovecot_user.password)
    wait_until(lambda: delivery(api, conversation, message_id)[0] == "sent", timeout=15)
    api.wait_status(connection_id, "RUNNING")
    assert len(smtp_server.messages) == 1


def test_a_revoked_grant_while_sending_is_an_error_and_the_token_endpoint_is_left_alone(
    make_service: Callable[..., Service],
    make_smtp_server: Callable[..., SmtpTestServer],
    oauth_dovecot: DovecotServer,
    provider: CountingProvider,
) -> None:
    oauth_smtp = make_smtp_server("starttls", handler=XOAuth2SmtpHandler(provider), auth_required=True)
    service = make_service()
    api = Api(service)
    user = oauth_dovecot.add_user()
    body: dict[str, Any] = {
        "name": f"OAuth {user.address}",
        "mode": "imap",
        "address": user.address,
        "imap_server": oauth_dovecot.host,
        "imap_port": oauth_dovecot.ports.imaps,
        "imap_encryption": "ssl",
        "smtp_server": oauth_smtp.host,
        "smtp_port": oauth_smtp.port,
        "smtp_encryption": "starttls",
        "check_interval": 1,
        "oauth_enabled": True,
        "oauth_client_id": provider.client_id,
        "oauth_client_secret": provider.client_secret,
        "oauth_refresh_token": provider.grant(user.name),
        "oauth_token_uri": provider.token_uri,
    }
    conversation = open_conversation(api, oauth_dovecot, user, body)
    connection_id = conversation["connection_id"]

    # The user withdraws consent. The IMAP session stays up (Dovecot asked about the token at login only),
    # so the runner keeps the connection RUNNING: only the send finds out.
    [grant] = provider.refresh_tokens(user.name)
    provider.revoke_grant(grant)
    provider.revoke_access_tokens(user.name)
    first = reply(api, conversation, "First.")

    failed = api.wait_status(connection_id, "ERROR", message="re-authorisation required")
    message = failed["status_message"]
    assert message.startswith(f"OAuth2 {user.address}: re-authorisation required")
    assert "invalid_grant" in message
    assert grant not in message
    _, detail = wait_until(lambda: (d := delivery(api, conversation, first))[0] == "queued" and d)
    assert "re-authorisation required" in detail
    with service.db.read() as session:
        row = session.scalars(select(Outbox).where(Outbox.message_pk == first)).one()
    assert (row.status, row.attempts) == (OutboxStatus.QUEUED, 0)  # parked, never given up

    # Another reply to the same mailbox does not ask the token endpoint again: nothing changed.
    asked = provider.token_requests
    second = reply(api, conversation, "Second.")
    wait_until(lambda: "re-authorisation required" in delivery(api, conversation, second)[1])
    assert provider.token_requests == asked
    assert len(logs(api, connection_id, "send_sign_in_failed")) == 1

    # The admin pastes a new refresh token: the connection restarts and both replies go out at once.
    patched = api.client.patch(
        f"/api/v1/connections/{connection_id}", json={"oauth_refresh_token": provider.grant(user.name)}
    )
    assert patched.status_code == 200, patched.text
    wait_until(lambda: delivery(api, conversation, first)[0] == delivery(api, conversation, second)[0] == "sent")
    api.wait_status(connection_id, "RUNNING")
    assert len(oauth_smtp.messages) == 2


def outbox_row(service: Service, message_id: int) -> Outbox:
    with service.db.read() as session:
        row: Outbox = session.scalars(select(Outbox).where(Outbox.message_pk == message_id)).one()
    return row


def test_refused_credentials_outlast_the_retry_attempts_without_failing_the_reply(
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
) -> None:
    # FAST gives up a temporary failure after 4 attempts; a refused password is not one of those.
    service = make_service()
    api = Api(service)
    conversation = open_conversation(api, dovecot, dovecot_user, connection_body(dovecot, dovecot_user, smtp_server))
    connection_id = conversation["connection_id"]
    smtp_server.add_user(dovecot_user.address, "changed-elsewhere")
    message_id = reply(api, conversation, "Later.")

    wait_until(lambda: len(logs(api, connection_id, "send_waiting")) >= 6, timeout=30)
    row = outbox_row(service, message_id)
    assert (row.status, row.attempts) == (OutboxStatus.QUEUED, 0)
    status, detail = delivery(api, conversation, message_id)
    assert status in ("queued", "sending")
    assert "waiting for an admin to fix the credentials" in detail or status == "sending"
    assert logs(api, connection_id, "send_failed") == []

    smtp_server.add_user(dovecot_user.address, dovecot_user.password)
    wait_until(lambda: delivery(api, conversation, message_id)[0] == "sent", timeout=15)
    assert len(smtp_server.messages) == 1


def test_saving_fixed_credentials_sends_the_parked_replies_at_once(
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
) -> None:
    service = make_service(policies=SLOW)
    api = Api(service)
    conversation = open_conversation(api, dovecot, dovecot_user, connection_body(dovecot, dovecot_user, smtp_server))
    connection_id = conversation["connection_id"]
    # The provider now wants an app password for SMTP; the admin has not saved it yet.
    smtp_server.add_user(dovecot_user.address, "app-password-1")
    message_id = reply(api, conversation, "Parked.")
    api.wait_status(connection_id, "ERROR", message="authentication failed")
    wait_until(lambda: "fix the credentials" in delivery(api, conversation, message_id)[1])
    assert outbox_row(service, message_id).attempts == 0

    # Parked for an hour, unless saving the settings brings it back: it goes out within seconds.
    patched = api.client.patch(f"/api/v1/connections/{connection_id}", json={"smtp_password": "app-password-1"})
    assert patched.status_code == 200, patched.text
    wait_until(lambda: delivery(api, conversation, message_id)[0] == "sent", timeout=15)
    api.wait_status(connection_id, "RUNNING")
    assert len(smtp_server.messages) == 1


def test_another_mailboxs_successful_send_leaves_the_error_of_a_refused_one(
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    smtp_server: SmtpTestServer,
) -> None:
    service = make_service(policies=PATIENT)
    api = Api(service)
    refused, fine = dovecot.add_user(), dovecot.add_user()
    smtp_server.add_user(fine.address, fine.password)
    body = connection_body(
        dovecot,
        refused,
        smtp_server,
        address=f"{refused.address}, {fine.address}",
        password=[refused.password, fine.password],
    )
    first = open_conversation(api, dovecot, refused, body)
    connection_id = first["connection_id"]
    smtp_server.add_user(refused.address, "changed-elsewhere")
    stuck = reply(api, first, "From the refused mailbox.")
    failed = api.wait_status(connection_id, "ERROR", message="authentication failed")
    assert failed["status_message"].startswith(f"SMTP {refused.address}: authentication failed")

    dovecot.append(fine, make_mail("Other question", sender="Di <di@customer.example>", to=fine.address))
    second: dict[str, Any] = wait_until(
        lambda: [c for c in api.conversations(connection_id=connection_id) if c["id"] != first["id"]], timeout=10
    )[0]
    sent = reply(api, second, "From the working mailbox.")
    wait_until(lambda: delivery(api, second, sent)[0] == "sent", timeout=15)
    # The refused mailbox's password is still refused: the ERROR stays, and its reply still waits.
    still = api.get(f"/connections/{connection_id}")
    assert (still["status"], still["status_message"]) == ("ERROR", failed["status_message"])
    assert logs(api, connection_id, "send_sign_in_ok") == []
    assert delivery(api, first, stuck)[0] in ("queued", "sending")

    smtp_server.add_user(refused.address, refused.password)
    wait_until(lambda: delivery(api, first, stuck)[0] == "sent", timeout=15)
    api.wait_status(connection_id, "RUNNING")
    assert len(logs(api, connection_id, "send_sign_in_ok")) == 1

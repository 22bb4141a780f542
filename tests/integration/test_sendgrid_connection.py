"""SendGrid outbound connections end to end: Start checks the API key, replies go out through the v3 API.

A whole Postroom process driven through its API; the mailbox is a real Dovecot (IMAP, or POP3 as in
the README's example), SendGrid is its local stand-in (``postroom.testing.sendgrid``), and an aiosmtpd
server stays configured beside it to prove that nothing goes out over SMTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from postroom.jobs.outbox import RetryPolicy
from postroom.service import Service
from postroom.store.models import Outbox
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.sendgrid import SendgridTestServer
from postroom.testing.smtp import SmtpTestServer
from support import FAST, Api, connection_body, wait_until

SMTP_FIELDS = ("smtp_server", "smtp_port", "smtp_encryption")


@pytest.fixture
def sendgrid_api() -> Iterator[SendgridTestServer]:
    with SendgridTestServer() as server:
        yield server


def sendgrid_body(
    dovecot: DovecotServer, user: MailUser, smtp: SmtpTestServer, api: SendgridTestServer, **overrides: Any
) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "outbound": "sendgrid",
        "sendgrid_api_key": api.api_key,
        "sendgrid_api_url": api.url,
        "check_interval": 1,
    }
    return connection_body(dovecot, user, smtp, **{**settings, **overrides})


def scope_checks(api: SendgridTestServer) -> list[tuple[str, int]]:
    """(Authorization header, status) of every GET /v3/scopes the server answered."""
    return [(r.headers.get("authorization", ""), r.status) for r in api.requests if r.path == "/v3/scopes"]


def logs(api: Api, connection_id: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = api.items(f"/connections/{connection_id}/logs")
    return entries


def test_start_checks_the_key_and_a_reply_goes_out_through_the_api_only(
    db_url: str,  # SQLite and PostgreSQL; before make_service, so that the schema outlives the service
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    sendgrid_api: SendgridTestServer,
) -> None:
    service = make_service(db_url)
    api = Api(service)
    created = api.post("/connections", sendgrid_body(dovecot, dovecot_user, smtp_server, sendgrid_api), expect=201)
    connection_id = created["id"]
    assert created["sendgrid_api_key"] == "********"

    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")

    # Start asked SendGrid whether the key may send, and never signed in to the SMTP server.
    assert scope_checks(sendgrid_api) == [(f"Bearer {sendgrid_api.api_key}", 200)]
    assert smtp_server.handler.sign_ins == []
    signed_in = [e["message"] for e in logs(api, connection_id) if e["event"] == "signed_in"]
    assert f"SendGrid {dovecot_user.address}: signed in to {sendgrid_api.url}" in signed_in

    customer_id = "invoice-7@customer.example"
    dovecot.append(
        dovecot_user,
        make_mail("Invoice 7", sender="Cy <cy@customer.example>", to=dovecot_user.address, message_id=customer_id),
    )
    conversation = wait_until(lambda: api.conversations(connection_id=connection_id), timeout=10)[0]
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Attached, Cy."}, 201)

    def last_message() -> dict[str, Any]:
        message: dict[str, Any] = api.get(f"/conversations/{conversation['id']}")["messages"][-1]
        return message

    wait_until(lambda: last_message()["delivery_status"] == "sent", timeout=10)
    [accepted] = sendgrid_api.messages
    with service.db.read() as session:
        row = session.scalars(select(Outbox)).one()
    body = accepted.body
    assert accepted.headers["authorization"] == f"Bearer {sendgrid_api.api_key}"
    assert body["from"]["email"] == dovecot_user.address
    assert body["personalizations"][0]["to"] == [{"email": "cy@customer.example", "name": "Cy"}]
    assert body["subject"] == "Re: Invoice 7"
    # Our Message-ID and the reference to the customer's mail went out, so their answer threads.
    assert body["headers"]["Message-ID"] == f"<{row.message_id}>"
    assert body["headers"]["In-Reply-To"] == f"<{customer_id}>"
    assert f"X-Message-Id {accepted.message_id}" in row.smtp_reply
    # Nothing over SMTP, and the API key never reached the connection's log.
    assert smtp_server.messages == []
    assert smtp_server.handler.sign_ins == []
    assert all(sendgrid_api.api_key not in entry["message"] for entry in logs(api, connection_id))


def test_a_wrong_api_key_stops_start_naming_sendgrid_and_the_mailbox(
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    sendgrid_api: SendgridTestServer,
) -> None:
    api = Api(make_service())
    body = sendgrid_body(dovecot, dovecot_user, smtp_server, sendgrid_api, sendgrid_api_key="SG.wrong-key-123")
    created = api.post("/connections", body, expect=201)

    api.post(f"/connections/{created['id']}/start")
    failed = api.wait_status(created["id"], "ERROR")

    message = failed["status_message"]
    # ChannelError writes the protocol as people do ("SendGrid …"); compared without case all the same.
    assert message.lower().startswith(f"sendgrid {dovecot_user.address}: authentication failed")
    assert "401" in message
    assert "SG.wrong-key-123" not in message
    assert scope_checks(sendgrid_api) == [("Bearer SG.wrong-key-123", 401)]
    assert all("SG.wrong-key-123" not in entry["message"] for entry in logs(api, created["id"]))


def test_a_key_without_mail_send_is_refused_at_start(
    make_service: Callable[..., Service], dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    with SendgridTestServer(api_keys={"SG.read-only": ("scopes.read", "stats.read")}) as read_only:
        api = Api(make_service())
        body = sendgrid_body(dovecot, dovecot_user, smtp_server, read_only, sendgrid_api_key="SG.read-only")
        created = api.post("/connections", body, expect=201)
        api.post(f"/connections/{created['id']}/start")
        failed = api.wait_status(created["id"], "ERROR")
    assert "mail.send" in failed["status_message"]
    assert dovecot_user.address in failed["status_message"]


def test_a_pop3_mailbox_sending_through_sendgrid_needs_no_smtp_server(
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    sendgrid_api: SendgridTestServer,
) -> None:
    # The README's "Billing" example: POP3 in, SendGrid out, no SMTP server at all.
    body = sendgrid_body(dovecot, dovecot_user, smtp_server, sendgrid_api, mode="pop3")
    for field in ("imap_server", "imap_port", "imap_encryption", *SMTP_FIELDS):
        del body[field]
    body.update(pop3_server=dovecot.host, pop3_port=dovecot.ports.pop3s, pop3_encryption="ssl")
    dovecot.append(dovecot_user, make_mail("Billing", sender="Di <di@customer.example>", to=dovecot_user.address))
    api = Api(make_service())
    created = api.post("/connections", body, expect=201)

    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING")
    conversation = wait_until(lambda: api.conversations(connection_id=created["id"]), timeout=10)[0]
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Paid, thanks."}, 201)

    [accepted] = sendgrid_api.wait_for(1, timeout=10)
    assert accepted.body["personalizations"][0]["to"] == [{"email": "di@customer.example", "name": "Di"}]
    assert scope_checks(sendgrid_api) == [(f"Bearer {sendgrid_api.api_key}", 200)]
    assert smtp_server.messages == []


def test_send_to_sends_the_test_mail_through_the_api(
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    sendgrid_api: SendgridTestServer,
) -> None:
    api = Api(make_service(start=False))
    created = api.post("/connections", sendgrid_body(dovecot, dovecot_user, smtp_server, sendgrid_api), expect=201)

    response = api.client.post(
        f"/api/v1/connections/{created['id']}/test", params={"send_to": "ann@customer.example", "timeout": 5}
    )

    assert response.status_code == 200, response.text
    report = response.json()
    assert report["ok"], report
    [test_mail] = [s for s in report["steps"] if s["name"] == "test_mail"]
    assert test_mail["protocol"] == "SendGrid"
    assert test_mail["detail"].startswith(f"{sendgrid_api.url} accepted the test mail to ann@customer.example")
    [sent] = sendgrid_api.wait_for(1)
    assert sent.body["personalizations"][0]["to"] == [{"email": "ann@customer.example"}]
    assert smtp_server.messages == []


def test_replies_wait_while_the_api_key_is_wrong_and_go_out_once_it_is_fixed(
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    sendgrid_api: SendgridTestServer,
) -> None:
    # Enough attempts to outlive the admin's fix; FAST's four would be spent within two seconds.
    patient = replace(FAST, retry=RetryPolicy(first_delay=0.2, factor=2.0, max_delay=0.5, max_attempts=50))
    api = Api(make_service(policies=patient))
    created = api.post("/connections", sendgrid_body(dovecot, dovecot_user, smtp_server, sendgrid_api), expect=201)
    connection_id = created["id"]
    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")
    dovecot.append(dovecot_user, make_mail("Refund", sender="Cy <cy@customer.example>", to=dovecot_user.address))
    conversation = wait_until(lambda: api.conversations(connection_id=connection_id), timeout=10)[0]

    # A wrong key is saved (the QA's repro): Start refuses it, and a reply written meanwhile must not be lost.
    wrong = api.client.patch(f"/api/v1/connections/{connection_id}", json={"sendgrid_api_key": "SG.wrong-key-9"})
    assert wrong.status_code == 200, wrong.text
    api.wait_status(connection_id, "ERROR", message="authentication failed")
    reply = api.post(f"/conversations/{conversation['id']}/messages", {"text": "Refunded."}, 201)

    def delivery() -> str:
        messages = api.get(f"/conversations/{conversation['id']}")["messages"]
        status: str = next(m for m in messages if m["id"] == reply["id"])["delivery_status"]
        return status

    wait_until(lambda: [r.status for r in sendgrid_api.requests if r.path == "/v3/mail/send"].count(401) >= 2)
    assert delivery() in ("queued", "sending")

    fixed = api.client.patch(f"/api/v1/connections/{connection_id}", json={"sendgrid_api_key": sendgrid_api.api_key})
    assert fixed.status_code == 200, fixed.text
    api.wait_status(connection_id, "RUNNING")
    wait_until(lambda: delivery() == "sent", timeout=15)
    assert len(sendgrid_api.messages) == 1
    assert all("SG.wrong-key-9" not in entry["message"] for entry in logs(api, connection_id))

"""The durable outbox against a real SMTP server: retries, permanent failures, never twice, HTML."""

from __future__ import annotations

import email
import time
from datetime import timedelta
from email import policy
from typing import Any

from sqlalchemy import select, update

from postroom.service import Service
from postroom.store.models import Outbox, OutboxStatus, utcnow
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.smtp import SmtpTestServer
from support import Api, connection_body, wait_until


def conversation_with_mail(
    api: Api, dovecot: DovecotServer, user: MailUser, smtp: SmtpTestServer, **settings: Any
) -> dict[str, Any]:
    created = api.post("/connections", connection_body(dovecot, user, smtp, **settings), expect=201)
    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING")
    dovecot.append(user, make_mail("Invoice question", sender="Cy <cy@customer.example>"))
    conversation: dict[str, Any] = wait_until(lambda: api.conversations(connection_id=created["id"]))[0]
    return conversation


def last_message(api: Api, conversation_id: int) -> dict[str, Any]:
    message: dict[str, Any] = api.get(f"/conversations/{conversation_id}")["messages"][-1]
    return message


def test_a_temporary_failure_is_retried_and_delivered_once(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    conversation = conversation_with_mail(api, dovecot, dovecot_user, smtp_server)
    smtp_server.fail_next_data(1)  # 451 4.3.0 to the first attempt
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Here it is."}, 201)
    wait_until(lambda: last_message(api, conversation["id"])["delivery_status"] == "sent", timeout=10)
    time.sleep(0.5)
    assert len(smtp_server.messages) == 1
    with service.db.read() as session:
        row = session.scalars(select(Outbox)).one()
    assert row.attempts == 2
    assert row.status == OutboxStatus.SENT
    logs = api.items(f"/connections/{conversation['connection_id']}/logs")
    assert any(entry["event"] == "send_retry" and "451" in entry["message"] for entry in logs)


def test_a_permanent_failure_is_not_retried_and_the_agent_sees_why(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    conversation = conversation_with_mail(api, dovecot, dovecot_user, smtp_server)
    smtp_server.refuse_recipient("cy@customer.example")
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Hello?"}, 201)
    message = wait_until(
        lambda: (m := last_message(api, conversation["id"]))["delivery_status"] == "failed" and m, timeout=10
    )
    assert "550" in message["delivery_detail"]
    time.sleep(0.6)  # longer than the first retry delay of the test policy
    with service.db.read() as session:
        row = session.scalars(select(Outbox)).one()
    assert row.attempts <= 1
    assert smtp_server.messages == []


def test_a_message_is_never_sent_twice(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    conversation = conversation_with_mail(api, dovecot, dovecot_user, smtp_server)
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Once."}, 201)
    wait_until(lambda: last_message(api, conversation["id"])["delivery_status"] == "sent")
    # A second worker looking now finds nothing to do.
    assert service.outbox.claim() == []

    # A worker that died while sending leaves its claim behind: the message becomes "uncertain" and is
    # not sent again blindly.
    api.post(f"/connections/{conversation['connection_id']}/stop")
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Maybe."}, 201)
    with service.db.write() as session:
        session.execute(
            update(Outbox)
            .where(Outbox.status == OutboxStatus.QUEUED)
            .values(status=OutboxStatus.SENDING, claimed_by="dead-worker", claimed_until=utcnow() - timedelta(1))
        )
    api.post(f"/connections/{conversation['connection_id']}/start")
    wait_until(lambda: last_message(api, conversation["id"])["delivery_status"] == "uncertain")
    time.sleep(0.5)
    assert len(smtp_server.messages) == 1


def test_html_content_type_sends_both_alternatives(
    api: Api, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    conversation = conversation_with_mail(api, dovecot, dovecot_user, smtp_server, message_content_type="text/html")
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Line one\nline <two>"}, 201)
    sent = email.message_from_bytes(smtp_server.wait_for(1)[0].raw, policy=policy.default)
    assert sent.get_content_type() == "multipart/alternative"
    html = sent.get_body(("html",))
    plain = sent.get_body(("plain",))
    assert html is not None
    assert plain is not None
    assert "line &lt;two&gt;" in html.get_content()
    assert "line <two>" in plain.get_content()


def test_a_stopped_connection_keeps_its_replies_queued_until_started(
    api: Api, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    conversation = conversation_with_mail(api, dovecot, dovecot_user, smtp_server)
    api.post(f"/connections/{conversation['connection_id']}/stop")
    api.wait_status(conversation["connection_id"], "STOPPED")
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Later."}, 201)
    time.sleep(0.6)
    assert smtp_server.messages == []
    assert last_message(api, conversation["id"])["delivery_status"] == "queued"
    api.post(f"/connections/{conversation['connection_id']}/start")
    smtp_server.wait_for(1)

"""The outbox picks each connection's transport: SendGrid's API or SMTP, and SMTP mail is filed in Sent.

Whole Postroom processes against real peers: Dovecot for the mailbox, aiosmtpd for SMTP, and the local
stand-in of SendGrid's v3 API (``postroom.testing.sendgrid``).
"""

from __future__ import annotations

import asyncio
import email
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from email import policy
from typing import Any, cast

import pytest
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession
from sqlalchemy import select

from postroom.service import Service
from postroom.store.models import Outbox, OutboxStatus, RawMessage, RawStatus, SentCopyStatus
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.sendgrid import SendgridTestServer
from postroom.testing.smtp import RecordingHandler, SmtpTestServer
from support import FAST, Api, connection_body, wait_until


@pytest.fixture
def sendgrid_api() -> Iterator[SendgridTestServer]:
    with SendgridTestServer() as server:
        yield server


def start_conversation(
    api: Api, dovecot: DovecotServer, user: MailUser, smtp: SmtpTestServer, *, folder: str = "INBOX", **settings: Any
) -> dict[str, Any]:
    """A running connection and the conversation a customer's mail opened on it."""
    created = api.post("/connections", connection_body(dovecot, user, smtp, **settings), expect=201)
    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING")
    dovecot.append(user, make_mail("Invoice question", sender="Cy <cy@customer.example>"), folder=folder)
    conversation: dict[str, Any] = wait_until(lambda: api.conversations(connection_id=created["id"]))[0]
    return conversation


def through(server: SendgridTestServer) -> dict[str, Any]:
    """Connection settings that send through ``server`` (the SMTP fields stay set and must go unused)."""
    return {"outbound": "sendgrid", "sendgrid_api_key": server.api_key, "sendgrid_api_url": server.url}


def last_message(api: Api, conversation_id: int) -> dict[str, Any]:
    message: dict[str, Any] = api.get(f"/conversations/{conversation_id}")["messages"][-1]
    return message


def outbox_row(service: Service) -> Outbox:
    with service.db.read() as session:
        return session.scalars(select(Outbox)).one()


def folder_messages(dovecot: DovecotServer, user: MailUser, folder: str) -> list[tuple[bytes, frozenset[str]]]:
    with dovecot.imap(user) as client:
        client.select_folder(folder, readonly=True)
        response = client.fetch(client.search("ALL"), ["BODY.PEEK[]", "FLAGS"])
    return [
        (bytes(data[b"BODY[]"]), frozenset(f.decode() if isinstance(f, bytes) else f for f in data[b"FLAGS"]))
        for _, data in sorted(response.items())
    ]


def logs(api: Api, connection_id: int) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = api.items(f"/connections/{connection_id}/logs")
    return entries


# ── SendGrid ────────────────────────────────────────────────────────────────────────────────────


def test_a_reply_through_sendgrid_is_sent_threaded_and_not_filed_by_us(
    api: Api,
    service: Service,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    sendgrid_api: SendgridTestServer,
) -> None:
    conversation = start_conversation(api, dovecot, dovecot_user, smtp_server, **through(sendgrid_api))
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Here it is, Çy."}, 201)
    wait_until(lambda: last_message(api, conversation["id"])["delivery_status"] == "sent", timeout=10)

    [accepted] = sendgrid_api.messages
    row = outbox_row(service)
    body = accepted.body
    assert body["personalizations"][0]["to"] == [{"email": "cy@customer.example", "name": "Cy"}]
    assert body["from"]["email"] == dovecot_user.address
    assert body["subject"] == "Re: Invoice question"
    assert body["content"][0]["value"].startswith("Here it is, Çy.")
    # The customer's answer will thread: our Message-ID and the reference to their mail went out.
    assert body["headers"]["Message-ID"] == f"<{row.message_id}>"
    assert body["headers"]["In-Reply-To"].startswith("<")
    assert f"X-Message-Id {accepted.message_id}" in row.smtp_reply
    assert row.attempts == 1
    # Nothing went over SMTP, and SendGrid mail is not appended to the mailbox's Sent folder.
    assert row.sent_copy is None
    assert smtp_server.messages == []
    assert folder_messages(dovecot, dovecot_user, "Sent") == []
    # The API key never reaches the connection's log.
    assert all(sendgrid_api.api_key not in entry["message"] for entry in logs(api, conversation["connection_id"]))


def test_a_sendgrid_server_error_is_retried_until_accepted_once(
    api: Api,
    service: Service,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    sendgrid_api: SendgridTestServer,
) -> None:
    conversation = start_conversation(api, dovecot, dovecot_user, smtp_server, **through(sendgrid_api))
    sendgrid_api.fail_next(1, 500)
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Second try."}, 201)
    wait_until(lambda: last_message(api, conversation["id"])["delivery_status"] == "sent", timeout=10)
    time.sleep(0.3)  # longer than a further retry would wait under the test policy
    assert len(sendgrid_api.messages) == 1
    assert [r.status for r in sendgrid_api.requests if r.path == "/v3/mail/send"] == [500, 202]
    row = outbox_row(service)
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 2)
    assert any(
        entry["event"] == "send_retry" and "500" in entry["message"]
        for entry in logs(api, conversation["connection_id"])
    )


def test_sendgrid_throttling_waits_as_long_as_the_api_asks(
    api: Api,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    sendgrid_api: SendgridTestServer,
) -> None:
    conversation = start_conversation(api, dovecot, dovecot_user, smtp_server, **through(sendgrid_api))
    # The test policy would retry after 0.2 s; Retry-After asks for a whole second.
    sendgrid_api.fail_next(1, 429, retry_after=1)
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Patience."}, 201)
    wait_until(lambda: last_message(api, conversation["id"])["delivery_status"] == "sent", timeout=10)
    throttled, accepted = [r for r in sendgrid_api.requests if r.path == "/v3/mail/send"]
    assert (throttled.status, accepted.status) == (429, 202)
    assert accepted.at - throttled.at >= 0.95


def test_a_sendgrid_refusal_fails_the_message_at_once_with_the_apis_reason(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    with SendgridTestServer(verified_senders=["someone-else@example.test"]) as strict:
        conversation = start_conversation(api, dovecot, dovecot_user, smtp_server, **through(strict))
        api.post(f"/conversations/{conversation['id']}/messages", {"text": "Refused."}, 201)
        message = wait_until(
            lambda: (m := last_message(api, conversation["id"]))["delivery_status"] == "failed" and m, timeout=10
        )
        time.sleep(0.3)
        assert "403" in message["delivery_detail"]
        assert "verified Sender Identity" in message["delivery_detail"]
        assert outbox_row(service).attempts <= 1
        assert [r.status for r in strict.requests if r.path == "/v3/mail/send"] == [403]


# ── SMTP and the Sent folder ────────────────────────────────────────────────────────────────────


def test_a_reply_over_smtp_is_sent_and_filed_in_sent(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    conversation = start_conversation(api, dovecot, dovecot_user, smtp_server)
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Filed as well."}, 201)
    wait_until(lambda: last_message(api, conversation["id"])["delivery_status"] == "sent", timeout=10)

    [delivered] = smtp_server.wait_for(1)
    filed = wait_until(lambda: folder_messages(dovecot, dovecot_user, "Sent"), timeout=10)
    [(raw, flags)] = filed
    # The very bytes that went out, read (the agent wrote them), in the \Sent folder of the shared config.
    assert raw == delivered.raw
    assert "\\Seen" in flags
    assert email.message_from_bytes(raw, policy=policy.default)["Message-ID"] == f"<{outbox_row(service).message_id}>"
    assert any(entry["event"] == "sent_folder" for entry in logs(api, conversation["connection_id"]))
    row = wait_until(lambda: (r := outbox_row(service)).sent_copy is SentCopyStatus.FILED and r)
    assert (row.sent_copy_folder, row.sent_copy_attempts, row.sent_copy_next_at) == ("Sent", 1, None)
    # The agent sees it too: the message says its copy is in the Sent folder.
    assert last_message(api, conversation["id"])["sent_copy"] == "filed"


def test_save_to_sent_off_files_nothing(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    conversation = start_conversation(api, dovecot, dovecot_user, smtp_server, save_to_sent=False)
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Not filed."}, 201)
    wait_until(lambda: last_message(api, conversation["id"])["delivery_status"] == "sent", timeout=10)
    smtp_server.wait_for(1)
    time.sleep(0.3)
    assert folder_messages(dovecot, dovecot_user, "Sent") == []
    assert not any(entry["event"].startswith("sent_folder") for entry in logs(api, conversation["connection_id"]))
    assert outbox_row(service).sent_copy is None


def test_a_failed_append_is_logged_and_the_mail_stays_sent_once(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    # The copy is retried on the outbox's backoff (FAST: 4 attempts within about 2 s), then given up.
    conversation = start_conversation(api, dovecot, dovecot_user, smtp_server, sent_folder="No Such Folder")
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Sent, not filed."}, 201)
    row = wait_until(lambda: (r := outbox_row(service)).sent_copy is SentCopyStatus.FAILED and r, timeout=15)
    assert row.sent_copy_attempts == 4
    assert row.sent_copy_error.startswith("gave up after 4 attempts: ")
    assert "No Such Folder" in row.sent_copy_error

    entries = logs(api, conversation["connection_id"])
    retries = [e for e in entries if e["event"] == "sent_folder_retry"]
    [failure] = [e for e in entries if e["event"] == "sent_folder_failed"]
    assert len(retries) == 3
    assert all(e["level"] == "warning" for e in retries)
    assert failure["level"] == "error"
    assert dovecot_user.address in failure["message"]
    assert "No Such Folder" in failure["message"]
    assert "gave up after 4 attempts" in failure["message"]
    assert all(dovecot_user.password not in e["message"] for e in entries)
    # Whatever happened to the copy, the mail went out once and stays sent.
    assert last_message(api, conversation["id"])["delivery_status"] == "sent"
    assert (row.status, row.attempts) == (OutboxStatus.SENT, 1)
    assert len(smtp_server.messages) == 1
    assert folder_messages(dovecot, dovecot_user, "Sent") == []


def test_our_copy_in_a_folder_we_read_is_never_imported_as_customer_mail(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    # A misconfiguration on purpose: the connection reads the very folder its replies are filed in.
    conversation = start_conversation(api, dovecot, dovecot_user, smtp_server, folder="Sent", imap_mailbox="Sent")
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Echo?"}, 201)
    wait_until(lambda: last_message(api, conversation["id"])["delivery_status"] == "sent", timeout=10)

    def statuses() -> list[RawStatus]:
        with service.db.read() as session:
            return list(session.scalars(select(RawMessage.status).order_by(RawMessage.id)))

    # The customer's mail became the conversation; our filed copy was read back and ignored as our own.
    assert wait_until(lambda: (s := statuses()) == [RawStatus.DONE, RawStatus.IGNORED] and s, timeout=10)
    with service.db.read() as session:
        reason = session.scalars(select(RawMessage.error).where(RawMessage.status == RawStatus.IGNORED)).one()
    assert "our own outgoing mail" in reason
    assert len(api.conversations(connection_id=conversation["connection_id"])) == 1
    assert len(api.get(f"/conversations/{conversation['id']}")["messages"]) == 2


# ── shutdown with sends in flight ───────────────────────────────────────────────────────────────


class StallingHandler(RecordingHandler):
    """An SMTP server that, when told, holds a session at EHLO (before any sign-in) or at the end of DATA."""

    def __init__(self) -> None:
        super().__init__()
        self.stall_at: str | None = None
        self.stalled = threading.Event()

    async def _hold(self, command: str) -> None:
        if self.stall_at == command:
            self.stalled.set()
            while self.stall_at == command:
                await asyncio.sleep(0.05)

    async def handle_EHLO(
        self, server: SMTP, session: SmtpSession, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        await self._hold("EHLO")
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        await self._hold("DATA")
        return await super().handle_DATA(server, session, envelope)


# A short grace, so that the tests need not wait for the default one.
QUICK_STOP = replace(FAST, outbox=replace(FAST.outbox, shutdown_grace=0.5))


@pytest.fixture
def stalling_smtp(make_smtp_server: Callable[..., SmtpTestServer]) -> Iterator[SmtpTestServer]:
    server: SmtpTestServer = make_smtp_server("plain", handler=StallingHandler(), auth_required=True)
    yield server
    cast(StallingHandler, server.handler).stall_at = None  # let held sessions go before the server stops


@pytest.mark.parametrize("stall_at", ["EHLO", "DATA"])
def test_a_send_in_flight_at_shutdown_is_queued_again_only_if_it_never_reached_the_server(
    stall_at: str,
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    stalling_smtp: SmtpTestServer,
) -> None:
    handler = cast(StallingHandler, stalling_smtp.handler)
    service = make_service(policies=QUICK_STOP)
    api = Api(service)
    conversation = start_conversation(api, dovecot, dovecot_user, stalling_smtp)
    handler.stall_at = stall_at  # after Start's sign-in check: only the reply's session is held
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "In flight."}, 201)
    assert handler.stalled.wait(10)

    service.stop_workers()  # what SIGTERM does: the send gets the grace period, then it is cancelled

    row = outbox_row(service)
    entries = logs(api, conversation["connection_id"])
    [note] = [e for e in entries if e["event"] == "send_interrupted"]
    if stall_at == "EHLO":
        # Never past the sign-in: nothing reached the server, so it is sent again as if new.
        assert (row.status, row.attempts, row.claimed_by) == (OutboxStatus.QUEUED, 0, None)
        assert last_message(api, conversation["id"])["delivery_status"] == "queued"
        assert "queued again" in note["message"]
        handler.stall_at = None
        again = make_service(data_dir=service.settings.data_dir)
        wait_until(lambda: outbox_row(again).status is OutboxStatus.SENT, timeout=10)
        assert len(stalling_smtp.wait_for(1)) == 1
    else:
        # The server had the message: it may have been delivered, and the agent is told at once.
        assert row.status is OutboxStatus.UNCERTAIN
        assert "shut down" in row.last_error
        assert last_message(api, conversation["id"])["delivery_status"] == "uncertain"
        assert note["level"] == "warning"
        assert stalling_smtp.messages == []

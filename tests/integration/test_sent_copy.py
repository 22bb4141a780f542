"""The Sent-folder copy of a reply is durable: filed once, retried until it works, never filed twice.

Whole Postroom processes on SQLite and PostgreSQL against real peers (Dovecot for the mailbox, aiosmtpd for
SMTP), plus the claim of due copies on the database alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from postroom.jobs.outbox import OutboxWorker, RetryPolicy
from postroom.service import Service
from postroom.store.db import Database
from postroom.store.models import Connection, Outbox, OutboxStatus, SentCopyStatus, utcnow
from postroom.store.secretbox import SecretBox
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.smtp import SmtpTestServer
from support import FAST, Api, connection_body, wait_until

# Filing retried every 0.3 s for as long as a test needs: the folder can be fixed between two attempts.
PATIENT = replace(FAST, retry=RetryPolicy(first_delay=0.3, factor=1.0, max_delay=0.3, max_attempts=1000))


def reply(api: Api, dovecot: DovecotServer, user: MailUser, smtp: SmtpTestServer, **settings: Any) -> dict[str, Any]:
    """A running connection, the conversation a customer's mail opened on it, and the agent's reply queued."""
    created = api.post("/connections", connection_body(dovecot, user, smtp, **settings), expect=201)
    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING")
    dovecot.append(user, make_mail("Invoice question", sender="Cy <cy@customer.example>"))
    conversation: dict[str, Any] = wait_until(lambda: api.conversations(connection_id=created["id"]))[0]
    api.post(f"/conversations/{conversation['id']}/messages", {"text": "Here it is."}, 201)
    return conversation


def outbox_row(service: Service) -> Outbox:
    with service.db.read() as session:
        return session.scalars(select(Outbox)).one()


def copy_is(service: Service, status: SentCopyStatus) -> Outbox | None:
    row = outbox_row(service)
    return row if row.sent_copy is status else None


def folder_raws(dovecot: DovecotServer, user: MailUser, folder: str) -> list[bytes]:
    with dovecot.imap(user) as client:
        client.select_folder(folder, readonly=True)
        response = client.fetch(client.search("ALL"), ["BODY.PEEK[]"])
    return [bytes(data[b"BODY[]"]) for _, data in sorted(response.items())]


def events(api: Api, connection_id: int, name: str) -> list[dict[str, Any]]:
    return [e for e in api.items(f"/connections/{connection_id}/logs") if e["event"] == name]


def test_the_copy_is_filed_once_and_a_dead_workers_pending_copy_is_not_filed_again(
    db_url: str,  # before make_service, so that the schema outlives the service
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
) -> None:
    service = make_service(db_url)
    api = Api(service)
    conversation = reply(api, dovecot, dovecot_user, smtp_server)
    row = wait_until(lambda: copy_is(service, SentCopyStatus.FILED), timeout=15)
    [delivered] = smtp_server.wait_for(1)
    assert (row.status, row.sent_copy_folder, row.sent_copy_attempts) == (OutboxStatus.SENT, "Sent", 1)
    assert folder_raws(dovecot, dovecot_user, "Sent") == [delivered.raw]

    # As a worker that died after its APPEND and before recording it leaves the row, once its claim ran out.
    with service.db.write() as session:
        session.execute(
            update(Outbox).values(
                sent_copy=SentCopyStatus.PENDING,
                sent_copy_attempts=0,
                sent_copy_next_at=utcnow() - timedelta(seconds=1),
                sent_copy_folder="",
            )
        )
    row = wait_until(lambda: copy_is(service, SentCopyStatus.FILED), timeout=15)
    assert (row.sent_copy_folder, row.sent_copy_attempts) == ("Sent", 1)
    found = events(api, conversation["connection_id"], "sent_folder")
    # The log is newest first.
    assert found[0]["message"] == f"<{row.message_id}> was already in Sent; not filed again"
    assert folder_raws(dovecot, dovecot_user, "Sent") == [delivered.raw]
    assert len(smtp_server.messages) == 1


def test_a_copy_that_cannot_be_filed_is_retried_and_filed_once_the_folder_exists(
    db_url: str,
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
) -> None:
    service = make_service(db_url, policies=PATIENT)
    api = Api(service)
    conversation = reply(api, dovecot, dovecot_user, smtp_server, sent_folder="Answered")
    [delivered] = smtp_server.wait_for(1)
    retry = wait_until(lambda: events(api, conversation["connection_id"], "sent_folder_retry"), timeout=15)[0]
    assert retry["level"] == "warning"
    assert dovecot_user.address in retry["message"]
    assert "'Answered'" in retry["message"]
    assert dovecot_user.password not in retry["message"]
    pending = outbox_row(service)
    assert (pending.status, pending.sent_copy) == (OutboxStatus.SENT, SentCopyStatus.PENDING)
    assert "Answered" in pending.sent_copy_error

    dovecot.create_folder(dovecot_user, "Answered")
    row = wait_until(lambda: copy_is(service, SentCopyStatus.FILED), timeout=15)
    assert row.sent_copy_folder == "Answered"
    assert row.sent_copy_attempts >= 2
    assert row.sent_copy_error == ""
    assert folder_raws(dovecot, dovecot_user, "Answered") == [delivered.raw]
    assert folder_raws(dovecot, dovecot_user, "Sent") == []
    assert (row.status, row.attempts, len(smtp_server.messages)) == (OutboxStatus.SENT, 1, 1)


def test_a_stopped_connection_keeps_its_copy_pending_until_started(
    db_url: str,
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
) -> None:
    service = make_service(db_url, policies=PATIENT)
    api = Api(service)
    conversation = reply(api, dovecot, dovecot_user, smtp_server, sent_folder="Answered")
    connection_id = conversation["connection_id"]
    wait_until(lambda: events(api, connection_id, "sent_folder_retry"), timeout=15)
    api.post(f"/connections/{connection_id}/stop")
    api.wait_status(connection_id, "STOPPED")
    time.sleep(0.5)  # an attempt claimed before the stop finishes
    before = outbox_row(service).sent_copy_attempts
    dovecot.create_folder(dovecot_user, "Answered")
    time.sleep(1.0)  # three retry delays of the policy
    row = outbox_row(service)
    assert (row.sent_copy, row.sent_copy_attempts) == (SentCopyStatus.PENDING, before)
    assert folder_raws(dovecot, dovecot_user, "Answered") == []

    api.post(f"/connections/{connection_id}/start")
    wait_until(lambda: copy_is(service, SentCopyStatus.FILED), timeout=15)
    assert len(folder_raws(dovecot, dovecot_user, "Answered")) == 1


def test_the_last_attempt_marks_the_copy_failed_and_logs_why(
    db_url: str,
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
) -> None:
    service = make_service(db_url)  # FAST: 4 attempts within about 2 s
    api = Api(service)
    conversation = reply(api, dovecot, dovecot_user, smtp_server, sent_folder="Gone")
    row = wait_until(lambda: copy_is(service, SentCopyStatus.FAILED), timeout=15)
    assert row.sent_copy_attempts == 4
    assert row.sent_copy_next_at is None
    assert row.sent_copy_error.startswith("gave up after 4 attempts: ")
    [failure] = events(api, conversation["connection_id"], "sent_folder_failed")
    assert failure["level"] == "error"
    assert dovecot_user.address in failure["message"]
    assert "'Gone'" in failure["message"]
    assert dovecot_user.password not in failure["message"]
    # A failed copy is given up for good: the folder appearing later changes nothing.
    dovecot.create_folder(dovecot_user, "Gone")
    time.sleep(0.5)
    assert outbox_row(service).sent_copy is SentCopyStatus.FAILED
    assert folder_raws(dovecot, dovecot_user, "Gone") == []
    assert (row.status, row.attempts, len(smtp_server.messages)) == (OutboxStatus.SENT, 1, 1)


# ── claiming due copies, on the database alone ─────────────────────────────────────────────────


def pending_copy(db: Database, connection_id: int, *, due_in: float, copy: SentCopyStatus | None) -> int:
    with db.write() as session:
        row = Outbox(
            connection_id=connection_id,
            raw=b"Subject: x\r\n\r\nx\r\n",
            message_id=f"{time.monotonic_ns()}@support.example.test",
            envelope_from="support@example.test",
            recipients=["cy@customer.example"],
            status=OutboxStatus.SENT,
            sent_at=utcnow(),
            sent_copy=copy,
            sent_copy_next_at=utcnow() + timedelta(seconds=due_in),
        )
        session.add(row)
        session.flush()
        return row.id


def test_a_due_copy_is_claimed_by_one_worker_only(db: Database, secrets: SecretBox, connection_id: int) -> None:
    with db.write() as session:
        session.execute(update(Connection).values(enabled=True))
    due = pending_copy(db, connection_id, due_in=-1, copy=SentCopyStatus.PENDING)
    pending_copy(db, connection_id, due_in=60, copy=SentCopyStatus.PENDING)  # backing off
    pending_copy(db, connection_id, due_in=-1, copy=SentCopyStatus.FILED)
    pending_copy(db, connection_id, due_in=-1, copy=None)  # no copy wanted
    first = OutboxWorker(db, secrets, worker_id="first")
    second = OutboxWorker(db, secrets, worker_id="second")

    assert first.claim_sent_copies() == [due]
    assert second.claim_sent_copies() == []
    with db.read() as session:
        claimed = session.get(Outbox, due)
        assert claimed is not None and claimed.sent_copy_next_at is not None
        # Held for one claim length: should the first worker die, the copy is due again then.
        assert claimed.sent_copy_next_at > utcnow() + timedelta(seconds=first.limits.claim_seconds / 2)


def test_a_stopped_connections_due_copy_is_not_claimed(db: Database, secrets: SecretBox, connection_id: int) -> None:
    pending_copy(db, connection_id, due_in=-1, copy=SentCopyStatus.PENDING)
    assert OutboxWorker(db, secrets, worker_id="w").claim_sent_copies() == []


# SQLite has one writer at a time: there is no row lock to skip there.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_copy_locked_by_another_worker_is_skipped(
    db: Database, secrets: SecretBox, connection_id: int
) -> None:
    with db.write() as session:
        session.execute(update(Connection).values(enabled=True))
    locked = pending_copy(db, connection_id, due_in=-2, copy=SentCopyStatus.PENDING)
    free = pending_copy(db, connection_id, due_in=-1, copy=SentCopyStatus.PENDING)
    with db.write() as other:
        # Another worker in the middle of its claim holds the first row's lock.
        other.execute(select(Outbox.id).where(Outbox.id == locked).with_for_update())
        assert OutboxWorker(db, secrets, worker_id="w").claim_sent_copies() == [free]

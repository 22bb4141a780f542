"""The parser processes: an in-memory database's mail is sent to them, and a process that dies is replaced."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from sqlalchemy import select

from postroom.channels.sink import MailboxSink
from postroom.helpdesk.connections import ConnectionInput, ConnectionService
from postroom.mail.parse import ParseOptions
from postroom.pipeline.context import PipelineServices
from postroom.pipeline.parse import Prepared
from postroom.pipeline.pool import Failed, ParsePool, Work
from postroom.pipeline.runner import PipelineRunner, RunnerLimits
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.blobs import LocalBlobStore
from postroom.store.db import Database
from postroom.store.migrate import upgrade
from postroom.store.models import Message, RawMessage, RawStatus
from postroom.store.secretbox import SecretBox
from postroom.testing.mails import make_mail


def test_mail_of_an_in_memory_database_is_parsed_by_the_processes_with_its_bytes(
    secrets: SecretBox, tmp_path: Path
) -> None:
    db = Database("sqlite://")
    upgrade(db)
    with db.write() as session:
        connection = ConnectionService(secrets).create(
            session,
            ConnectionInput(name="S", address="support@example.test", password="pw", imap_server="i", smtp_server="s"),
        )
        connection_id, mailbox_id = connection.id, connection.mailboxes[0].id
    MailboxSink(db, connection_id, mailbox_id, on_stored=lambda count: None).store(
        [FetchedMail(uid=1, raw=make_mail("In memory"))], ImapCursor(uidvalidity=1, last_uid=1)
    )
    services = PipelineServices(blobs=LocalBlobStore(tmp_path / "blobs"), reply_token_key=b"k" * 32)
    runner = PipelineRunner(db, services, worker_id="w", workers=1, limits=RunnerLimits(parse_processes=1))
    try:
        assert runner.drain() == 1
        assert runner.parser_pids()  # parsed in a process, not in this thread
    finally:
        runner.stop()
    with db.read() as session:
        assert session.scalars(select(RawMessage.status)).all() == [RawStatus.DONE]
        assert session.scalars(select(Message.subject)).all() == ["In memory"]


def test_a_parser_process_killed_from_outside_costs_only_its_mail_a_degraded_parse() -> None:
    pool = ParsePool(1, None, budget_seconds=5.0)
    try:
        [warm] = pool.submit([Work(1, ParseOptions(), make_mail("warm"))], None)
        assert isinstance(warm.result(30), Prepared)
        [victim] = pool.pids()
        futures = pool.submit([Work(i, ParseOptions(), make_mail(f"m{i}")) for i in range(2, 6)], None)
        os.kill(victim, signal.SIGKILL)
        outcomes = [future.result(30) for future in futures]
    finally:
        pool.close()
    assert all(isinstance(outcome, Prepared | Failed) for outcome in outcomes)
    prepared = [outcome for outcome in outcomes if isinstance(outcome, Prepared)]
    # Every mail is understood; at most the one the process was on is degraded, with the reason.
    assert len(prepared) == 4
    degraded = [p.parsed.degraded_reason for p in prepared if p.parsed.degraded_reason]
    assert len(degraded) <= 1 and all("died" in reason for reason in degraded)
    assert victim not in pool.pids()

"""Claims left behind by a worker that died mid-batch, on SQLite and a real PostgreSQL.

A ``kill -9`` between claim and commit leaves raw messages ``processing`` with a claim that nobody
will settle. A running runner must give them back when the claim expires (not only at its next
start), and a mail that keeps killing its workers must end quarantined with a reason, not loop.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from postroom.channels.sink import MailboxSink
from postroom.helpdesk.connections import ConnectionInput, ConnectionService
from postroom.pipeline.context import PipelineServices
from postroom.pipeline.runner import PipelineRunner, RunnerLimits
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.blobs import LocalBlobStore
from postroom.store.db import Database
from postroom.store.models import RawMessage, RawStatus, utcnow
from postroom.store.secretbox import SecretBox
from postroom.testing.mails import make_mail
from support import wait_until


class Store:
    def __init__(self, db: Database, secrets: SecretBox, tmp_path: Path) -> None:
        self.db = db
        with db.write() as session:
            connection = ConnectionService(secrets).create(
                session,
                ConnectionInput(
                    name="Support", address="support@example.test", password="pw", imap_server="i", smtp_server="s"
                ),
            )
            connection_id, mailbox_id = connection.id, connection.mailboxes[0].id
        self.sink = MailboxSink(db, connection_id, mailbox_id, on_stored=lambda count: None)
        self.services = PipelineServices(blobs=LocalBlobStore(tmp_path / "blobs"), reply_token_key=b"k" * 32)

    def store(self, count: int) -> list[int]:
        mails = [FetchedMail(uid=i + 1, raw=make_mail(f"Question {i}")) for i in range(count)]
        self.sink.store(mails, ImapCursor(uidvalidity=1, last_uid=count))
        with self.db.read() as session:
            return list(session.scalars(select(RawMessage.id).order_by(RawMessage.id)))

    def runner(self, name: str, **limits: Any) -> PipelineRunner:
        limits = {"parse_processes": 0, "poll_seconds": 0.05, **limits}
        return PipelineRunner(self.db, self.services, worker_id=name, workers=1, limits=RunnerLimits(**limits))

    def expire_claims(self) -> None:
        """What the passing of the claim length does, without waiting for it."""
        with self.db.write() as session:
            session.execute(
                update(RawMessage)
                .where(RawMessage.status == RawStatus.PROCESSING)
                .values(claimed_until=utcnow() - timedelta(seconds=1))
            )

    def statuses(self) -> dict[int, tuple[RawStatus, int, str]]:
        with self.db.read() as session:
            rows = session.execute(select(RawMessage.id, RawMessage.status, RawMessage.attempts, RawMessage.error))
            return {raw_id: (status, attempts, error) for raw_id, status, attempts, error in rows}


@pytest.fixture
def store(db: Database, secrets: SecretBox, tmp_path: Path) -> Store:
    return Store(db, secrets, tmp_path)


def test_a_running_runner_takes_back_the_claims_of_a_worker_that_died(store: Store) -> None:
    ids = store.store(5)
    dead = store.runner("dead")
    assert dead.claim(64) == ids  # …and then the process is killed: nothing settles these claims
    # Started while the claims are still valid: the release at start() cannot take them.
    alive = store.runner("alive", claim_seconds=2.0)
    alive.start()
    try:
        assert all(status is RawStatus.PROCESSING for status, _, _ in store.statuses().values())
        store.expire_claims()
        done = wait_until(
            lambda: all(status is RawStatus.DONE for status, _, _ in store.statuses().values()), timeout=20
        )
        assert done
    finally:
        alive.stop()
    # Claimed twice (by the dead worker, then by this one), processed once.
    assert {attempts for _, attempts, _ in store.statuses().values()} == {2}


def test_a_mail_whose_claims_keep_expiring_is_quarantined_with_the_reason(store: Store) -> None:
    poison, innocent = store.store(2)
    worker = store.runner("worker", max_claims=3)
    for crash in range(1, 4):
        # Each time a worker takes the mail and dies before settling it.
        assert worker.claim_ids([poison]) == [poison]
        store.expire_claims()
        worker.release_expired_claims()
        status, attempts, error = store.statuses()[poison]
        assert attempts == crash
        if crash < 3:
            assert (status, error) == (RawStatus.PENDING, "")
    assert status is RawStatus.QUARANTINED
    assert "claimed 3 times and never finished" in error
    assert "worker worker" in error
    # The queue goes on, and the quarantined mail can be replayed like any other.
    assert worker.drain() == 1
    assert store.statuses()[innocent][:2] == (RawStatus.DONE, 1)
    assert worker.replay([poison]) == 1
    assert worker.drain() == 1
    assert store.statuses()[poison][:2] == (RawStatus.DONE, 4)


def test_a_processed_mail_counts_one_attempt_per_claim(store: Store) -> None:
    (raw_id,) = store.store(1)
    worker = store.runner("worker")
    assert worker.drain() == 1
    assert store.statuses()[raw_id] == (RawStatus.DONE, 1, "")

"""The store on SQLite and on a real PostgreSQL: migrations, secrets at rest, leases, claims."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, inspect, select, text

from postroom.helpdesk.connections import ConnectionInput, ConnectionService
from postroom.jobs import leases
from postroom.pipeline.context import PipelineServices
from postroom.pipeline.runner import PipelineRunner
from postroom.store.blobs import LocalBlobStore
from postroom.store.db import Database
from postroom.store.migrate import current_revision, head_revision, upgrade
from postroom.store.models import Base, ConnectionLog, Mailbox, RawMessage, RawStatus
from postroom.store.secretbox import SecretBox


def test_migrations_create_every_table_and_are_idempotent(db: Database) -> None:
    upgrade(db)  # a second run changes nothing
    assert current_revision(db) == head_revision()
    tables = set(inspect(db.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def test_migrations_keep_alembic_chatter_off_stderr_and_leave_logging_alone(
    db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Every CLI command runs the migrations; Alembic's INFO lines ("Context impl SQLiteImpl.") must not
    # follow each one. Nothing else about logging changes: the alembic logger is as it was after.
    alembic_logger = logging.getLogger("alembic")
    level_before = alembic_logger.level
    caplog.set_level(logging.INFO)
    database = Database(db_url)
    try:
        upgrade(database)  # a fresh database: every migration runs
        upgrade(database)  # and at head: nothing to do
        assert current_revision(database) == head_revision()
    finally:
        database.dispose()
    chatter = [r.getMessage() for r in caplog.records if r.name.startswith("alembic") and r.levelno < logging.WARNING]
    assert chatter == []
    assert alembic_logger.level == level_before
    assert logging.getLogger().getEffectiveLevel() == logging.INFO


def test_timestamps_come_back_as_aware_utc(db: Database, connection_id: int) -> None:
    moment = datetime(2026, 3, 1, 12, 30, 15, tzinfo=UTC)
    with db.write() as session:
        session.add(ConnectionLog(connection_id=connection_id, at=moment, level="info", event="x", message="m"))
    with db.read() as session:
        row = session.scalars(select(ConnectionLog).where(ConnectionLog.event == "x")).one()
    assert row.at == moment
    assert row.at.tzinfo is not None


def test_passwords_are_encrypted_at_rest(db: Database, secrets: SecretBox) -> None:
    service = ConnectionService(secrets)
    with db.write() as session:
        connection = service.create(
            session,
            ConnectionInput(
                name="Support",
                address="support@example.test",
                password="correct horse battery staple",
                imap_server="imap.example.test",
                smtp_server="smtp.example.test",
            ),
        )
        view = service.view(connection)
    with db.engine.connect() as conn:
        stored = conn.execute(text("SELECT password_enc FROM mailboxes")).scalar_one()
    assert "correct horse" not in stored
    assert secrets.decrypt(stored) == "correct horse battery staple"
    assert view["password"] == "********"
    assert view["mailboxes"][0]["password"] == "********"


def test_a_lease_has_one_owner_until_it_expires(db: Database) -> None:
    assert leases.acquire(db, "connection:1", "worker-a", 0.5)
    assert leases.acquire(db, "connection:1", "worker-a", 0.5)  # renewal by the owner
    assert not leases.acquire(db, "connection:1", "worker-b", 0.5)
    time.sleep(0.6)
    assert leases.acquire(db, "connection:1", "worker-b", 30)
    assert not leases.acquire(db, "connection:1", "worker-a", 30)
    leases.release(db, "connection:1", "worker-b")
    assert leases.acquire(db, "connection:1", "worker-a", 30)


def _raw_rows(db: Database, connection_id: int, count: int) -> None:
    with db.read() as session:
        mailbox_id = session.scalars(select(Mailbox.id).where(Mailbox.connection_id == connection_id)).first()
    with db.write() as session:
        session.execute(
            insert(RawMessage),
            [
                {
                    "connection_id": connection_id,
                    "mailbox_id": mailbox_id,
                    "dedupe_key": f"imap:1:{i}",
                    "origin": "imap",
                    "raw": b"Subject: x\r\n\r\nbody\r\n",
                    "size": 20,
                    "status": RawStatus.PENDING,
                    "error": "",
                    "attempts": 0,
                }
                for i in range(count)
            ],
        )


def test_concurrent_workers_never_claim_the_same_message(
    db: Database, connection_id: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _raw_rows(db, connection_id, 200)
    services = PipelineServices(blobs=LocalBlobStore(tmp_path_factory.mktemp("blobs")), reply_token_key=b"k" * 32)
    runners = [PipelineRunner(db, services, worker_id=f"w{i}") for i in range(4)]
    claimed: list[list[int]] = [[] for _ in runners]

    def work(i: int) -> None:
        while ids := runners[i].claim(7):
            claimed[i].extend(ids)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(runners))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    everything = [raw_id for ids in claimed for raw_id in ids]
    assert len(everything) == 200
    assert len(set(everything)) == 200


def test_expired_claims_are_released_to_other_workers(
    db: Database, connection_id: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    _raw_rows(db, connection_id, 3)
    services = PipelineServices(blobs=LocalBlobStore(tmp_path_factory.mktemp("blobs")), reply_token_key=b"k" * 32)
    from postroom.pipeline.runner import RunnerLimits

    dead = PipelineRunner(db, services, worker_id="dead", limits=RunnerLimits(claim_seconds=0.01))
    assert len(dead.claim(10)) == 3
    time.sleep(0.05)
    alive = PipelineRunner(db, services, worker_id="alive")
    assert alive.claim(10) == []
    assert alive.release_expired_claims() == 3
    assert len(alive.claim(10)) == 3

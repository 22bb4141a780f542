"""Database fixtures: every store test runs on SQLite and on a real PostgreSQL.

PostgreSQL is the server ``POSTROOM_TEST_DATABASE_URL`` names (default the local one, database
``test``); each test gets a private schema. When it cannot be reached the PostgreSQL cases are skipped
loudly, except under ``CI=true`` where that fails the run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from postroom.helpdesk.connections import ConnectionInput, ConnectionService
from postroom.store.db import Database
from postroom.store.migrate import upgrade
from postroom.store.secretbox import SecretBox
from postroom.testing.database import postgres_available, postgres_base_url, postgres_schema, sqlite_url

_pg_problem: str | bool | None = False  # False = not checked yet


def _postgres_problem() -> str | None:
    global _pg_problem
    if _pg_problem is False:
        _pg_problem = postgres_available()
    return _pg_problem if isinstance(_pg_problem, str) else None


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
        return
    problem = _postgres_problem()
    if problem is not None:
        message = f"PostgreSQL at {postgres_base_url()} is not reachable: {problem}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with postgres_schema() as url:
        yield url


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    upgrade(database)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def secrets() -> SecretBox:
    return SecretBox(Fernet.generate_key())


@pytest.fixture
def connection_id(db: Database, secrets: SecretBox) -> int:
    with db.write() as session:
        connection = ConnectionService(secrets).create(
            session,
            ConnectionInput(
                name="Fixture",
                address="support@example.test",
                password="secret-password",
                imap_server="127.0.0.1",
                smtp_server="127.0.0.1",
            ),
        )
        return connection.id

"""Migrations on SQLite and PostgreSQL: they build exactly the models' schema, and an old database upgrades in place."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from postroom.store.db import Database
from postroom.store.migrate import current_revision, upgrade
from postroom.store.models import Base


def test_migrations_match_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_a_database_of_the_first_schema_upgrades_with_its_rows(db_url: str) -> None:
    database = Database(db_url)
    try:
        upgrade(database, "0001")
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO connections (name, description, mode, enabled, status, status_message,"
                    " status_changed_at, revision, check_interval, mark_as_read, unread_only, smtp_signature,"
                    " max_attachment_bytes, extra, created_at, updated_at) VALUES ('Old', '', 'imap', false,"
                    " 'STOPPED', '', '2026-01-01', 1, 15, true, false, '', 10, '{}', '2026-01-01', '2026-01-01')"
                )
            )
        upgrade(database)
        assert current_revision(database) == "0002"
        with database.engine.connect() as connection:
            row = connection.execute(
                text("SELECT outbound, save_to_sent, oauth_enabled, inbound_key FROM connections WHERE name = 'Old'")
            ).one()
        assert row.outbound == "smtp"
        assert bool(row.save_to_sent) is True
        assert bool(row.oauth_enabled) is False
        assert row.inbound_key is None
    finally:
        database.dispose()

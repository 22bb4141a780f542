"""Migrations on SQLite and PostgreSQL: they build exactly the models' schema, and an old database upgrades in place."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from postroom.store.db import Database
from postroom.store.migrate import alembic_config, current_revision, upgrade
from postroom.store.models import Base


def downgrade(db: Database, revision: str) -> None:
    """Alembic's downgrade on the database's connection (the store itself only ever upgrades)."""
    config = alembic_config(db.url)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


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
        assert current_revision(database) == "0003"
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


def test_sent_mail_of_the_second_schema_keeps_its_row_and_wants_no_copy_filed_now(db_url: str) -> None:
    """0003 adds the Sent-copy columns; what was sent before it is left alone (NULL: no copy to file)."""
    database = Database(db_url)
    try:
        upgrade(database, "0002")
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO outbox (raw, message_id, envelope_from, recipients, status, attempts,"
                    " next_attempt_at, last_error, smtp_reply, created_at, sent_at) VALUES (:raw, 'old@example.test',"
                    " 'support@example.test', '[]', 'sent', 1, '2026-01-01', '', '250 OK', '2026-01-01', '2026-01-01')"
                ),
                {"raw": b"Subject: old\r\n\r\nbody\r\n"},
            )
        upgrade(database)
        assert current_revision(database) == "0003"
        with database.engine.connect() as connection:
            row = connection.execute(
                text(
                    "SELECT status, sent_copy, sent_copy_attempts, sent_copy_next_at, sent_copy_error,"
                    " sent_copy_folder FROM outbox WHERE message_id = 'old@example.test'"
                )
            ).one()
        assert row.status == "sent"
        assert row.sent_copy is None
        assert (row.sent_copy_attempts, row.sent_copy_next_at, row.sent_copy_error, row.sent_copy_folder) == (
            0,
            None,
            "",
            "",
        )
    finally:
        database.dispose()


def test_the_sent_copy_migration_downgrades_and_upgrades_again(db_url: str) -> None:
    database = Database(db_url)
    try:
        upgrade(database)
        downgrade(database, "0002")
        assert current_revision(database) == "0002"
        with database.engine.connect() as connection:
            columns = {column["name"] for column in inspect(connection).get_columns("outbox")}
        assert not any(name.startswith("sent_copy") for name in columns)
        upgrade(database)
        assert current_revision(database) == "0003"
    finally:
        database.dispose()

"""Migrations on SQLite and PostgreSQL: they build exactly the models' schema, and an old database upgrades in place."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select, text

from postroom.helpdesk.search import conversations_matching
from postroom.store.db import Database
from postroom.store.migrate import current_revision, downgrade, head_revision, upgrade
from postroom.store.models import Base, Conversation
from postroom.store.search_index import is_search_object


def _include_name(name: str | None, type_: str, parents: object) -> bool:
    return not (type_ == "table" and is_search_object(name))


def test_migrations_match_the_models(db: Database) -> None:
    with db.engine.connect() as connection:
        # The full-text tables are the migration's own DDL, outside the models: compared as Alembic
        # itself is told to (migrations/env.py), not left out by deleting them here.
        context = MigrationContext.configure(connection, opts={"compare_type": False, "include_name": _include_name})
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
        assert current_revision(database) == head_revision()
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
        assert current_revision(database) == head_revision()
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
        assert current_revision(database) == head_revision()
    finally:
        database.dispose()


def test_the_hardening_migration_keeps_connections_and_messages_and_downgrades(db_url: str) -> None:
    """0004: connections keep plaintext sign-in off, messages are not marked degraded, the replay table is new."""
    database = Database(db_url)
    try:
        upgrade(database, "0003")
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO connections (name, description, mode, enabled, status, status_message,"
                    " status_changed_at, revision, check_interval, mark_as_read, unread_only, smtp_signature,"
                    " max_attachment_bytes, extra, created_at, updated_at, outbound, sendgrid_api_key_enc,"
                    " sendgrid_api_url, oauth_enabled, webhook_provider, webhook_signing_key_enc,"
                    " delete_after_import, save_to_sent, response_delay_min, response_delay_max, rotation)"
                    " VALUES ('Old', '', 'imap', false, 'STOPPED', '', '2026-01-01', 1, 15, true, false, '', 10,"
                    " '{}', '2026-01-01', '2026-01-01', 'smtp', '', 'https://api.sendgrid.com', false, '', '',"
                    " false, true, 0, 0, 0)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO conversations (subject, description, status, created_at, updated_at,"
                    " last_message_at) VALUES ('Old', '', 'open', '2026-01-01', '2026-01-01', '2026-01-01')"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO messages (conversation_id, direction, author, from_email, from_name, "
                    ' "to", cc, reply_to, subject, "references", text, html, reply_text, signature, quoted_text,'
                    " classification, headers, delivery_detail, created_at) SELECT id, 'in', '', 'a@b.test', '',"
                    " '[]', '[]', '[]', 'Old', '[]', 'kept', '', 'kept', '', '', '{}', '[]', '', '2026-01-01'"
                    " FROM conversations WHERE subject = 'Old'"
                )
            )
        upgrade(database)
        assert current_revision(database) == head_revision()
        with database.engine.connect() as connection:
            allowed = connection.execute(text("SELECT allow_plaintext_auth FROM connections WHERE name = 'Old'")).one()
            message = connection.execute(text("SELECT text, degraded_reason FROM messages")).one()
            assert connection.execute(text("SELECT count(*) FROM webhook_replays")).scalar_one() == 0
        assert bool(allowed[0]) is False
        assert (message.text, message.degraded_reason) == ("kept", "")
        downgrade(database, "0003")
        with database.engine.connect() as connection:
            assert "webhook_replays" not in inspect(connection).get_table_names()
            columns = {column["name"] for column in inspect(connection).get_columns("connections")}
            assert "allow_plaintext_auth" not in columns
            assert connection.execute(text("SELECT text FROM messages")).scalar_one() == "kept"
        upgrade(database)
        assert current_revision(database) == head_revision()
    finally:
        database.dispose()


def test_the_team_migration_keeps_every_row_and_gives_old_tokens_to_an_administrator(db_url: str) -> None:
    """0005 rebuilds connections, conversations, messages and tokens on SQLite: no child row may go with them."""
    database = Database(db_url)
    try:
        upgrade(database, "0004")
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO connections (name, description, mode, enabled, status, status_message,"
                    " status_changed_at, revision, check_interval, mark_as_read, unread_only, smtp_signature,"
                    " max_attachment_bytes, extra, created_at, updated_at, outbound, sendgrid_api_key_enc,"
                    " sendgrid_api_url, oauth_enabled, webhook_provider, webhook_signing_key_enc,"
                    " delete_after_import, save_to_sent, response_delay_min, response_delay_max, rotation,"
                    " allow_plaintext_auth) VALUES ('Old', '', 'imap', false, 'STOPPED', '', '2026-01-01', 1, 15,"
                    " true, false, '', 10, '{}', '2026-01-01', '2026-01-01', 'smtp', '', 'https://api.sendgrid.com',"
                    " false, '', '', false, true, 0, 0, 0, false)"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO mailboxes (connection_id, position, address, email_name, message_content_type,"
                    " username, password_enc, imap_host, imap_port, imap_encryption, imap_folder,"
                    " validate_certificate, smtp_host, smtp_port, smtp_encryption, smtp_username, smtp_password_enc,"
                    " reply_to, sent_folder, oauth_client_id, oauth_client_secret_enc, oauth_refresh_token_enc,"
                    " oauth_token_uri, oauth_access_token_enc, last_uid) SELECT id, 0, 'a@old.test', '',"
                    " 'text/plain', '', '', 'imap.old.test', 993, 'ssl', 'INBOX', true, 'smtp.old.test', 587,"
                    " 'auto', '', '', '', '', '', '', '', '', '', 0 FROM connections"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO conversations (connection_id, subject, description, status, created_at,"
                    " updated_at, last_message_at) SELECT id, 'Old', '', 'open', '2026-01-01', '2026-01-02',"
                    " '2026-01-02' FROM connections"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO messages (conversation_id, direction, author, from_email, from_name, "
                    ' "to", cc, reply_to, subject, "references", text, html, reply_text, signature, quoted_text,'
                    " classification, headers, delivery_detail, degraded_reason, created_at) SELECT id, 'in', '',"
                    " 'a@b.test', '', '[]', '[]', '[]', 'Old', '[]', 'kept', '', 'kept', '', '', '{}', '[]', '', '',"
                    " '2026-01-01' FROM conversations"
                )
            )
            connection.execute(
                text(
                    "INSERT INTO api_tokens (name, token_sha256, prefix, is_admin, created_at)"
                    " VALUES ('old', 'abc', 'pr_abc', true, '2026-01-01')"
                )
            )
        upgrade(database)
        assert current_revision(database) == head_revision()
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT address FROM mailboxes")).scalar_one() == "a@old.test"
            assert connection.execute(text("SELECT text FROM messages")).scalar_one() == "kept"
            conversation = connection.execute(
                text("SELECT priority, assignee_id, last_activity_at FROM conversations")
            ).one()
            assert (conversation.priority, conversation.assignee_id) == ("normal", None)
            assert str(conversation.last_activity_at).startswith("2026-01-02")
            grouping = connection.execute(text("SELECT grouping, auto_assign FROM connections")).one()
            assert grouping.grouping == "contact"  # as they grouped before the choice existed
            assert bool(grouping.auto_assign) is False
            owner = connection.execute(
                text("SELECT users.email, users.role FROM api_tokens JOIN users ON users.id = api_tokens.user_id")
            ).one()
            assert (owner.email, owner.role) == ("admin@postroom.localhost", "admin")
        downgrade(database, "0004")
        with database.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM mailboxes")).scalar_one() == 1
            assert connection.execute(text("SELECT count(*) FROM messages")).scalar_one() == 1
    finally:
        database.dispose()


def test_the_search_key_migration_keeps_every_document_and_downgrades(db_url: str) -> None:
    """0008 re-keys SQLite's message documents by conversation (PostgreSQL: unchanged); search finds the same."""
    database = Database(db_url)
    try:
        upgrade(database, "0007")
        with database.engine.begin() as connection:
            conversations = [
                connection.execute(
                    text(
                        "INSERT INTO conversations (subject, description, status, priority, created_at, updated_at,"
                        " last_message_at, last_activity_at) VALUES (:s, '', 'open', 'normal', '2026-01-01',"
                        " '2026-01-01', '2026-01-01', :at) RETURNING id"
                    ),
                    {"s": subject, "at": f"2026-01-0{n + 1}"},
                ).scalar_one()
                for n, subject in enumerate(("First", "Second"))
            ]
            sqlite = connection.dialect.name == "sqlite"
            for conversation_id, body in zip(
                conversations * 2, ("walrus one", "walrus two", "narwhal", "gone"), strict=True
            ):
                message_id = connection.execute(
                    text(
                        'INSERT INTO messages (conversation_id, direction, author, from_email, from_name, "to", cc,'
                        ' reply_to, subject, "references", text, html, reply_text, signature, quoted_text,'
                        " classification, headers, delivery_detail, degraded_reason, created_at) VALUES (:c, 'in',"
                        " '', 'a@b.test', '', '[]', '[]', '[]', '', '[]', :t, '', '', '', '', '{}', '[]', '', '',"
                        " '2026-01-01') RETURNING id"
                    ),
                    {"c": conversation_id, "t": body},
                ).scalar_one()
                # A document as revision 0006 writes it.
                connection.execute(
                    text(
                        "INSERT INTO message_search (rowid, body, conversation_id) VALUES (:m, :t, :c)"
                        if sqlite
                        else "INSERT INTO message_search (message_id, conversation_id, document)"
                        " VALUES (:m, :c, to_tsvector('simple', :t))"
                    ),
                    {"m": message_id, "c": conversation_id, "t": body},
                )
        upgrade(database)

        def found(q: str) -> dict[int, list[int]]:
            with database.read() as session:
                return {
                    probe: list(
                        session.scalars(
                            select(Conversation.id)
                            .where(conversations_matching(session, q, probe))
                            .order_by(Conversation.last_activity_at.desc())
                        )
                    )
                    for probe in (1, 100)
                }

        first, second = conversations
        assert found("walrus") == {1: [second, first], 100: [second, first]}
        assert found("narwhal") == {1: [first], 100: [first]}
        with database.engine.begin() as connection:
            connection.execute(text("DELETE FROM messages WHERE text = 'gone'"))  # its document goes with it
        assert found("gone") == {1: [], 100: []}
        downgrade(database, "0007")
        if database.engine.dialect.name == "sqlite":
            with database.engine.connect() as connection:
                rows = connection.execute(
                    text("SELECT rowid, conversation_id FROM message_search ORDER BY rowid")
                ).all()
                messages = connection.execute(text("SELECT id, conversation_id FROM messages ORDER BY id")).all()
            assert [tuple(r) for r in rows] == [tuple(m) for m in messages]
        upgrade(database)
        assert found("walrus two") == {1: [second], 100: [second]}
    finally:
        database.dispose()

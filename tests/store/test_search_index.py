"""The full-text index: queries built from any input stay valid, and migration 0006 indexes what was there."""

from __future__ import annotations

from sqlalchemy import select, text

from postroom.helpdesk.search import Term, contacts_matching, fts5_query, matching, parse, tsquery
from postroom.store.db import Database
from postroom.store.migrate import downgrade, upgrade
from postroom.store.models import Contact, Conversation

HOSTILE = ['"', '"a', "*", "-x", "OR", "NEAR(a b)", "a:b", "'", "\\", "&|!<->", "()", "^", "日本語", "x" * 900]


def test_queries_are_words_only_whatever_was_typed() -> None:
    assert parse('Invoice "sign in" pass') == [
        Term(("invoice",)),
        Term(("sign", "in")),
        Term(("pass",), prefix=True),
    ]
    # An unbalanced quote is a separator like any other.
    assert parse('"open phrase') == [Term(("open",)), Term(("phrase",), prefix=True)]
    assert parse("a-b OR") == [Term(("a", "b")), Term(("or",), prefix=True)]
    assert parse("* - : ()") == []
    assert fts5_query(parse('near( "x y" z')) == '"near" "x y" "z"*'
    assert tsquery(parse("o'brien: x")) == "('o' <-> 'brien') & ('x':*)"
    assert len(parse(" ".join(f"w{i}" for i in range(40)))) == 12


def test_hostile_queries_run_on_both_engines(db: Database) -> None:
    dialect = db.engine.dialect.name
    with db.read() as session:
        for q in HOSTILE:
            session.scalars(select(Conversation.id).where(matching(q, dialect))).all()
            session.scalars(select(Contact.id).where(contacts_matching(q, dialect))).all()


def test_the_migration_indexes_existing_messages_and_contacts_and_downgrades(db_url: str) -> None:
    database = Database(db_url)
    try:
        upgrade(database, "0005")
        with database.engine.begin() as connection:
            contact_id = connection.execute(
                text(
                    "INSERT INTO contacts (email, name, phone, notes, created_at, updated_at) VALUES"
                    " ('old@acme.test', 'Oldtimer', '', '', '2026-01-01', '2026-01-01') RETURNING id"
                )
            ).scalar_one()
            conversation_id = connection.execute(
                text(
                    "INSERT INTO conversations (subject, description, status, priority, contact_id, created_at,"
                    " updated_at, last_message_at, last_activity_at) VALUES ('Old', '', 'open', 'normal', :c,"
                    " '2026-01-01', '2026-01-01', '2026-01-01', '2026-01-01') RETURNING id"
                ),
                {"c": contact_id},
            ).scalar_one()
            connection.execute(
                text(
                    'INSERT INTO messages (conversation_id, direction, author, from_email, from_name, "to", cc,'
                    ' reply_to, subject, "references", text, html, reply_text, signature, quoted_text,'
                    " classification, headers, delivery_detail, degraded_reason, created_at) VALUES (:c, 'in',"
                    " '', 'old@acme.test', 'Oldtimer', '[]', '[]', '[]', 'Old', '[]', 'archived walrus', '', '',"
                    " '', '', '{}', '[]', '', '', '2026-01-01')"
                ),
                {"c": conversation_id},
            )
        upgrade(database)
        dialect = database.engine.dialect.name
        with database.read() as session:
            for q in ("walrus", "oldtimer", "acme"):
                found = session.scalars(select(Conversation.id).where(matching(q, dialect))).all()
                assert found == [conversation_id], q
        downgrade(database, "0005")
        upgrade(database)
    finally:
        database.dispose()

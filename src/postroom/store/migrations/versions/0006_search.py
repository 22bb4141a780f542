"""full-text search: message and contact documents in each database's own engine (FTS5, tsvector + GIN)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Kept here rather than imported: a migration must build the same thing whatever the code becomes later.
_WORD = re.compile(r"[^\W_]+")
_MAX = 100_000
_BATCH = 2_000


def _document(*parts: str) -> str:
    return " ".join(w.lower() for w in _WORD.findall(" ".join(p or "" for p in parts)[:_MAX]))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "CREATE TABLE message_search (message_id INTEGER PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,"
            " conversation_id INTEGER NOT NULL, document TSVECTOR NOT NULL)"
        )
        op.execute("CREATE INDEX ix_message_search_document ON message_search USING GIN (document)")
        # A search for a common word tests conversations one by one (helpdesk.search): their documents.
        op.execute("CREATE INDEX ix_message_search_conversation ON message_search (conversation_id)")
        op.execute(
            "CREATE TABLE contact_search (contact_id INTEGER PRIMARY KEY REFERENCES contacts (id) ON DELETE CASCADE,"
            " document TSVECTOR NOT NULL)"
        )
        op.execute("CREATE INDEX ix_contact_search_document ON contact_search USING GIN (document)")
        insert_message = (
            "INSERT INTO message_search (message_id, conversation_id, document)"
            " VALUES (:id, :conversation_id, to_tsvector('simple', :body))"
        )
        insert_contact = "INSERT INTO contact_search (contact_id, document) VALUES (:id, to_tsvector('simple', :body))"
    else:
        # FTS5 keeps its own copy of the (word-reduced) text: external content would need the text in
        # one column of one table, and contentless tables cannot delete rows on SQLite before 3.43.
        op.execute(
            "CREATE VIRTUAL TABLE message_search USING fts5(body, conversation_id UNINDEXED,"
            " tokenize = 'unicode61 remove_diacritics 2')"
        )
        # The indexed words, for expanding a prefix into the words it stands for (helpdesk.search).
        op.execute("CREATE VIRTUAL TABLE message_search_vocab USING fts5vocab(message_search, 'row')")
        op.execute("CREATE VIRTUAL TABLE contact_search USING fts5(body, tokenize = 'unicode61 remove_diacritics 2')")
        # PostgreSQL's foreign keys cascade; here triggers do, so no document outlives its row.
        op.execute(
            "CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN"
            " DELETE FROM message_search WHERE rowid = old.id; END"
        )
        op.execute(
            "CREATE TRIGGER contact_search_delete AFTER DELETE ON contacts BEGIN"
            " DELETE FROM contact_search WHERE rowid = old.id; END"
        )
        insert_message = (
            "INSERT INTO message_search (rowid, body, conversation_id) VALUES (:id, :body, :conversation_id)"
        )
        insert_contact = "INSERT INTO contact_search (rowid, body) VALUES (:id, :body)"
    _backfill(
        bind,
        "SELECT id, subject, from_name, from_email, text, conversation_id FROM messages WHERE id > :after"
        " ORDER BY id LIMIT :n",
        insert_message,
        lambda row: {"body": _document(row[1], row[2], row[3], row[4]), "conversation_id": row[5]},
    )
    addresses: dict[int, list[str]] = {}
    for contact_id, email in bind.execute(sa.text("SELECT contact_id, email FROM contact_addresses")):
        addresses.setdefault(contact_id, []).append(email)
    _backfill(
        bind,
        "SELECT id, name, email FROM contacts WHERE id > :after ORDER BY id LIMIT :n",
        insert_contact,
        lambda row: {"body": _document(row[1], row[2], *addresses.get(row[0], []))},
    )


def _backfill(bind: sa.Connection, select: str, insert: str, values: Callable[[Any], dict[str, Any]]) -> None:
    # In batches by id: a large mail store is not read into memory at once.
    after = 0
    while True:
        rows = bind.execute(sa.text(select), {"after": after, "n": _BATCH}).all()
        if not rows:
            return
        bind.execute(sa.text(insert), [{"id": row[0], **values(row)} for row in rows])
        after = rows[-1][0]


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TRIGGER IF EXISTS message_search_delete")
        op.execute("DROP TRIGGER IF EXISTS contact_search_delete")
        op.execute("DROP TABLE IF EXISTS message_search_vocab")
    op.execute("DROP TABLE IF EXISTS message_search")
    op.execute("DROP TABLE IF EXISTS contact_search")

"""SQLite search index keyed by conversation: an FTS5 rowid of ``conversation_id << 32 | message_id``

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

FTS5 can answer a rowid (and a rowid range) from its index alone, but an UNINDEXED column only by reading
each matching document's row: with the conversation in the rowid's high bits, a search's matches are
conversation ids without a row read, and "does this conversation have a match" is one rowid range in
each word's list (see ``helpdesk.search``). PostgreSQL keeps its table as it is (``conversation_id``
under a B-tree index already does both), so this revision changes nothing there.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Kept here rather than imported: a migration must build the same thing whatever the code becomes later.
# The key is ``conversation_id << 32 | message_id`` (written out in the statements below).
_TOKENIZE = "tokenize = 'unicode61 remove_diacritics 2'"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _swap(columns: str, copy: str, trigger: str) -> None:
    """Rebuild ``message_search`` with ``columns`` from the old table's rows (``copy`` selects them)."""
    op.execute("DROP TABLE IF EXISTS message_search_vocab")
    op.execute("DROP TRIGGER IF EXISTS message_search_delete")
    op.execute(f"CREATE VIRTUAL TABLE message_search_rebuilt USING fts5({columns}, {_TOKENIZE})")
    # The documents are copied as the index holds them (no re-reading of the messages): in rowid order,
    # which is the order FTS5 writes its lists in fastest.
    op.execute(copy)
    op.execute("DROP TABLE message_search")
    op.execute("ALTER TABLE message_search_rebuilt RENAME TO message_search")
    op.execute("CREATE VIRTUAL TABLE message_search_vocab USING fts5vocab(message_search, 'row')")
    op.execute(trigger)


def upgrade() -> None:
    if not _sqlite():
        return
    _swap(
        "body",
        "INSERT INTO message_search_rebuilt (rowid, body)"
        " SELECT (conversation_id << 32) | rowid, body FROM message_search ORDER BY conversation_id, rowid",
        "CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN"
        " DELETE FROM message_search WHERE rowid = (old.conversation_id << 32) | old.id; END",
    )


def downgrade() -> None:
    if not _sqlite():
        return
    _swap(
        "body, conversation_id UNINDEXED",
        "INSERT INTO message_search_rebuilt (rowid, body, conversation_id)"
        " SELECT rowid & 4294967295, body, rowid >> 32 FROM message_search ORDER BY 1",
        "CREATE TRIGGER message_search_delete AFTER DELETE ON messages BEGIN"
        " DELETE FROM message_search WHERE rowid = old.id; END",
    )

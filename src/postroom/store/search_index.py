"""The full-text index: what it stores and the prepared statements that keep it in step with messages and contacts.

Two tables, created by migration 0006 in each database's own engine and kept out of the models (an FTS5
virtual table is not something SQLAlchemy's metadata can describe, nor Alembic compare):

- ``message_search``: one document per message (subject, sender's name and address, the whole text with
  what it quotes). SQLite: an FTS5 table whose rowid is :func:`sqlite_message_key` (the conversation id in
  the high bits, the message id in the low ones: migration 0007); PostgreSQL: ``message_id``,
  ``conversation_id`` and a ``tsvector`` under a GIN index.
- ``contact_search``: one document per contact (name, address and further addresses), rewritten when the
  contact changes, so that a renamed contact is found under its new name in all its conversations.

Documents are reduced to words (letters and digits, :func:`words`) before either engine sees them, and
queries are built from the same words: PostgreSQL's parser would otherwise keep ``ada@acme.test`` or
``acme.test`` as one lexeme that a search for ``acme`` never meets, while FTS5 splits them; one rule on
both sides makes both databases find the same things. PostgreSQL uses the ``simple`` configuration (no
stemming, no stop words): support mail comes in every language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import Column, Integer, MetaData, Table, Text, bindparam, delete, func, insert, literal_column
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.sql import ClauseElement, ColumnElement

MESSAGE_SEARCH = "message_search"
CONTACT_SEARCH = "contact_search"
SEARCH_TABLES = frozenset({MESSAGE_SEARCH, CONTACT_SEARCH})

# A document is cut here: the index is for finding a conversation, and a 10 MB mail must not cost 10 MB of index.
MAX_DOCUMENT_CHARS = 100_000

_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The searchable words of a text, lower-cased: runs of letters and digits (any script)."""
    return [w.lower() for w in _WORD.findall(text)]


def document(*parts: str) -> str:
    """The text handed to the engine: the parts' words, separated by single spaces."""
    return " ".join(words(" ".join(parts)[:MAX_DOCUMENT_CHARS]))


def is_search_object(name: str | None) -> bool:
    """Whether a table name belongs to the index (with FTS5's shadow tables, ``<name>_data`` and kin)."""
    if name is None:
        return False
    return name in SEARCH_TABLES or any(name.startswith(f"{table}_") for table in SEARCH_TABLES)


# Table shapes for building statements only; never created from here (see migration 0006).
_shapes = MetaData()
_SQLITE_MESSAGES = Table(MESSAGE_SEARCH, _shapes, Column("rowid", Integer), Column("body", Text))
_SQLITE_CONTACTS = Table(CONTACT_SEARCH, _shapes, Column("rowid", Integer), Column("body", Text))
_pg_shapes = MetaData()
_PG_MESSAGES = Table(
    MESSAGE_SEARCH,
    _pg_shapes,
    Column("message_id", Integer),
    Column("conversation_id", Integer),
    Column("document", TSVECTOR),
)
_PG_CONTACTS = Table(CONTACT_SEARCH, _pg_shapes, Column("contact_id", Integer), Column("document", TSVECTOR))

SIMPLE_CONFIG: ColumnElement[str] = literal_column("'simple'", Text)
_SIMPLE = SIMPLE_CONFIG


def _pg_vector() -> ClauseElement:
    return func.to_tsvector(_SIMPLE, bindparam("body", type_=Text))


# FTS5 answers a rowid, and a range of rowids, from its index alone (a column only by reading each matching
# document's row): with the conversation in the high bits, a search's matches are conversation ids as they
# come out of the index, and one conversation's matches are one rowid range (helpdesk.search). 32 bits for
# the message id, which only has to be unique within its conversation; 31 for the conversation.
CONVERSATION_SHIFT = 32


def sqlite_message_key(conversation_id: int, message_id: int) -> int:
    """The rowid of a message's document in SQLite's ``message_search``."""
    return (conversation_id << CONVERSATION_SHIFT) | message_id


# Prepared statements per dialect (``store.db.Prepared``): parameters ``id`` and ``body`` (and a message's
# ``conversation_id``: kept in the index so that a search needs no join through 500,000 messages; whatever
# ever moves messages between conversations must move their documents too, and on SQLite re-key them).
INSERT_MESSAGE: dict[str, ClauseElement] = {
    "sqlite": insert(_SQLITE_MESSAGES).values(
        rowid=bindparam("conversation_id", type_=Integer).op("<<")(CONVERSATION_SHIFT).op("|")(bindparam("id")),
        body=bindparam("body"),
    ),
    "postgresql": insert(_PG_MESSAGES).values(
        message_id=bindparam("id"), conversation_id=bindparam("conversation_id"), document=_pg_vector()
    ),
}
DELETE_CONTACT: dict[str, ClauseElement] = {
    "sqlite": delete(_SQLITE_CONTACTS).where(_SQLITE_CONTACTS.c.rowid == bindparam("id")),
    "postgresql": delete(_PG_CONTACTS).where(_PG_CONTACTS.c.contact_id == bindparam("id")),
}
INSERT_CONTACT: dict[str, ClauseElement] = {
    "sqlite": insert(_SQLITE_CONTACTS).values(rowid=bindparam("id"), body=bindparam("body")),
    "postgresql": insert(_PG_CONTACTS).values(contact_id=bindparam("id"), document=_pg_vector()),
}


def message_document(subject: str, from_name: str, from_email: str, text: str) -> str:
    return document(subject, from_name, from_email, text)


def contact_document(name: str, emails: Iterable[str]) -> str:
    return document(name, *emails)

"""Search of conversations: subjects, message text (new and quoted), senders, contact names and addresses.

The index lives in each database's own full-text engine (see :mod:`postroom.store.search_index`). A query
is a few words, all of which must occur (in one message, or in the conversation's contact); the last word
also matches as a prefix (``inv`` finds ``invoice``, for search as you type); ``"two words"`` matches as a
phrase. Every word the user typed is reduced to letters and digits and quoted before it reaches either
engine, so no input (``"``, ``*``, ``-``, ``OR``, ``NEAR(``, ``:``, ``&``, ``!``) can change the query's
syntax: such characters separate words, as they do in the indexed text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Integer, bindparam, false, or_, select, text
from sqlalchemy.orm import Session

from postroom.store.db import SqlCursor
from postroom.store.models import Contact, ContactAddress, Conversation, Message
from postroom.store.search_index import (
    DELETE_CONTACT,
    INSERT_CONTACT,
    INSERT_MESSAGE,
    contact_document,
    message_document,
    words,
)

# A query longer than this is cut: the engines' work grows with the number of terms.
MAX_TERMS = 12
MAX_QUERY_CHARS = 500

_TERM = re.compile(r'"([^"]*)"|(\S+)')


@dataclass(frozen=True, slots=True)
class Term:
    """Words that must occur in this order (one word, or a phrase); ``prefix``: the last may be cut short."""

    words: tuple[str, ...]
    prefix: bool = False


def parse(q: str) -> list[Term]:
    """The terms of a query: quoted phrases and bare words; the last bare word is a prefix."""
    terms: list[Term] = []
    last_bare = False
    for match in _TERM.finditer(q[:MAX_QUERY_CHARS]):
        phrase, bare = match.group(1), match.group(2)
        found = tuple(words(phrase if phrase is not None else bare))
        if found:
            terms.append(Term(found))
            last_bare = phrase is None
    terms = terms[:MAX_TERMS]
    if terms and last_bare:
        terms[-1] = Term(terms[-1].words, prefix=True)
    return terms


def fts5_query(terms: list[Term]) -> str:
    """The FTS5 MATCH string: each term a quoted string (a phrase), ANDed by juxtaposition."""
    # Words hold letters and digits only, so they need no escaping inside the quotes; FTS5 keywords
    # (AND, OR, NOT, NEAR) are plain strings once quoted.
    return " ".join(f'"{" ".join(t.words)}"' + ("*" if t.prefix else "") for t in terms)


def tsquery(terms: list[Term]) -> str:
    """The ``to_tsquery('simple', …)`` string: phrases with ``<->``, terms ANDed, ``:*`` for the prefix."""

    def one(term: Term) -> str:
        lexemes = [f"'{w}'" for w in term.words]
        if term.prefix:
            lexemes[-1] += ":*"
        return " <-> ".join(lexemes)

    return " & ".join(f"({one(t)})" for t in terms)


def matching(q: str, dialect: str) -> ColumnElement[bool]:
    """A condition on conversations: those whose messages or contact match the query ``q``.

    ``dialect`` is the database's dialect name (``session.get_bind().dialect.name``). A query without a
    single word (``"*"``, ``"--"``) matches nothing.
    """
    terms = parse(q)
    if not terms:
        return false()
    if dialect == "postgresql":
        value = tsquery(terms)
        messages = text(
            "SELECT conversation_id AS id FROM message_search WHERE document @@ to_tsquery('simple', :search_q)"
        ).bindparams(bindparam("search_q", value))
        contacts = text(
            "SELECT contact_id AS id FROM contact_search WHERE document @@ to_tsquery('simple', :search_q_c)"
        ).bindparams(bindparam("search_q_c", value))
    else:
        value = fts5_query(terms)
        messages = text(
            "SELECT conversation_id AS id FROM message_search WHERE message_search MATCH :search_q"
        ).bindparams(bindparam("search_q", value))
        contacts = text("SELECT rowid AS id FROM contact_search WHERE contact_search MATCH :search_q_c").bindparams(
            bindparam("search_q_c", value)
        )
    conversation_ids = messages.columns(id=Integer).subquery()
    contact_ids = contacts.columns(id=Integer).subquery()
    # Two conditions ORed rather than one IN over a UNION: each subquery runs once (a hashed set), and
    # the list keeps walking its own index (last activity) until the page is full.
    return or_(
        Conversation.id.in_(select(conversation_ids.c.id)),
        Conversation.contact_id.in_(select(contact_ids.c.id)),
    )


# -- keeping the index in step (inside the transaction that writes the row) ---------------------------


def index_message(
    sql: SqlCursor, message_id: int, conversation_id: int, subject: str, from_name: str, from_email: str, body: str
) -> None:
    """Add a new message's document (prepared: this runs on the import hot path)."""
    document = message_document(subject, from_name, from_email, body)
    sql.execute(
        INSERT_MESSAGE[sql.dialect.name], {"id": message_id, "conversation_id": conversation_id, "body": document}
    )


def index_message_row(session: Session, message: Message) -> None:
    """Add the document of a message written through the ORM (a reply, a note); flushed first for its id."""
    if message.id is None:
        session.flush()
    index_message(
        SqlCursor(session),
        message.id,
        message.conversation_id,
        message.subject,
        message.from_name,
        message.from_email,
        message.text,
    )


_CONTACT = select(Contact.name, Contact.email).where(Contact.id == bindparam("id"))
_CONTACT_ADDRESSES = select(ContactAddress.email).where(ContactAddress.contact_id == bindparam("id"))


def index_contact(sql: SqlCursor, contact_id: int) -> None:
    """(Re)write a contact's document from its row and its addresses, as they are in this transaction."""
    sql.execute(DELETE_CONTACT[sql.dialect.name], {"id": contact_id})
    row = sql.first(_CONTACT, {"id": contact_id})
    if row is None:
        return
    emails = [row[1], *(address for (address,) in sql.all(_CONTACT_ADDRESSES, {"id": contact_id}))]
    sql.execute(INSERT_CONTACT[sql.dialect.name], {"id": contact_id, "body": contact_document(row[0], emails)})


def index_new_contact(sql: SqlCursor, contact_id: int, name: str, email: str) -> None:
    """The document of a contact just created by the pipeline (no further addresses yet)."""
    sql.execute(INSERT_CONTACT[sql.dialect.name], {"id": contact_id, "body": contact_document(name, [email])})


def contacts_matching(q: str, dialect: str) -> ColumnElement[bool]:
    """A condition on contacts: those whose name or addresses hold every word of ``q`` (the last as a prefix)."""
    terms = parse(q)
    if not terms:
        return false()
    if dialect == "postgresql":
        found = text(
            "SELECT contact_id AS id FROM contact_search WHERE document @@ to_tsquery('simple', :contact_q)"
        ).bindparams(bindparam("contact_q", tsquery(terms)))
    else:
        found = text("SELECT rowid AS id FROM contact_search WHERE contact_search MATCH :contact_q").bindparams(
            bindparam("contact_q", fts5_query(terms))
        )
    ids = found.columns(id=Integer).subquery()
    return Contact.id.in_(select(ids.c.id))

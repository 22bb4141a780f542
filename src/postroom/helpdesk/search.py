"""Search of conversations: subjects, message text (new and quoted), senders, contact names and addresses.

The index lives in each database's own full-text engine (see :mod:`postroom.store.search_index`). A query
is a few words, all of which must occur (in one message, or in the conversation's contact); the last word
also matches as a prefix (``inv`` finds ``invoice``, for search as you type); ``"two words"`` matches as a
phrase. Every word the user typed is reduced to letters and digits and quoted before it reaches either
engine, so no input (``"``, ``*``, ``-``, ``OR``, ``NEAR(``, ``:``, ``&``, ``!``) can change the query's
syntax: such characters separate words, as they do in the indexed text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    TextClause,
    bindparam,
    column,
    exists,
    false,
    func,
    literal_column,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.orm import Session

from postroom.store.db import SqlCursor
from postroom.store.models import Contact, ContactAddress, Conversation, Message
from postroom.store.search_index import (
    CONVERSATION_SHIFT,
    DELETE_CONTACT,
    INSERT_CONTACT,
    INSERT_MESSAGE,
    SIMPLE_CONFIG,
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


# How many matches a search collects before it calls a query common (see :func:`conversations_matching`):
# fewer, and their conversations are fetched and the list is cut from them; as many, and the list walks
# its own order testing each conversation instead. Per database, from bench/bench_search.py at 100,000
# conversations: PostgreSQL counts messages and tests a conversation in microseconds (its few documents
# through an index); SQLite counts conversations (its probe yields them, search_index.sqlite_message_key)
# and an FTS5 test costs a fraction of a millisecond (it parses the query and looks each word up in every
# segment of the index anew), so the walk only wins there for a word in more than ~15,000 conversations
# (measured: 11,500 collect faster, 24,000 walk faster).
MATCH_PROBE: dict[str, int] = {"postgresql": 2_000, "sqlite": 15_000}


_MESSAGE_SEARCH = table("message_search", column("rowid"), column("conversation_id"), column("document"))


def _message_matches(query: str, dialect: str) -> TextClause:
    # PostgreSQL: message ids. SQLite: conversation ids, from the rowids alone (FTS5 answers them from its
    # index without reading a document's row; search_index.sqlite_message_key), each once: they come in
    # rowid order, so one conversation's matches are together.
    if dialect == "postgresql":
        return text(
            "SELECT message_id FROM message_search WHERE document @@ to_tsquery('simple', :search_q) LIMIT :search_n"
        ).bindparams(bindparam("search_q", query))
    return text(
        "SELECT DISTINCT rowid >> :search_shift FROM message_search WHERE message_search MATCH :search_q"
        " LIMIT :search_n"
    ).bindparams(bindparam("search_q", query), bindparam("search_shift", CONVERSATION_SHIFT))


def _message_conversations(query: str) -> TextClause:
    # PostgreSQL only: on SQLite the probe's rowids are the conversations (search_index.sqlite_message_key).
    return text(
        "SELECT DISTINCT conversation_id FROM message_search WHERE document @@ to_tsquery('simple', :search_q)"
    ).bindparams(bindparam("search_q", query))


# A prefix FTS5 cannot look up in its index is expanded to the words it stands for (below); one that
# stands for more than this many words keeps FTS5's own prefix search.
MAX_PREFIX_WORDS = 64
_ASCII_WORD = re.compile(r"[a-z0-9]+")


def _fts5_expanded(session: Session, terms: list[Term]) -> str:
    """The FTS5 query with its prefix spelt out as the words it stands for.

    FTS5 answers a prefix (``invoice*``) by merging the lists of every indexed word that starts with it
    before it returns a row, and does that anew for every query, however few rows it is restricted to:
    for a common word that is milliseconds per tested conversation. The words themselves come from
    ``message_search_vocab``, which reads the whole list of each word it returns (to count it): the
    prefix itself is therefore always an alternative, unread (a word no message holds matches nothing),
    and only the longer words are looked up, from ``prefix0`` on (no word character sorts below ``0``),
    so that ``invoice`` costs the lists of ``invoices`` and ``invoiced``, not its own. Only ASCII
    prefixes are expanded: the tokenizer folds other letters (diacritics), and the vocabulary holds the
    folded words, so a non-ASCII prefix would not find its words there.
    """
    last = terms[-1]
    prefix = last.words[-1]
    if not last.prefix or not _ASCII_WORD.fullmatch(prefix):
        return fts5_query(terms)
    # Every longer word that starts with ``prefix`` sorts between ``prefix0`` and the prefix with its
    # last letter advanced.
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    longer = session.scalars(
        text("SELECT term FROM message_search_vocab WHERE term >= :low AND term < :high LIMIT :n"),
        {"low": prefix + "0", "high": upper, "n": MAX_PREFIX_WORDS},
    ).all()
    if len(longer) >= MAX_PREFIX_WORDS:
        return fts5_query(terms)
    head = " ".join(last.words[:-1])
    alternatives = " OR ".join(f'"{head} {word}"' if head else f'"{word}"' for word in [prefix, *longer])
    return " AND ".join([*(fts5_query([t]) for t in terms[:-1]), f"({alternatives})"])


def _contact_ids(terms: list[Term], dialect: str) -> Select[tuple[int]]:
    if dialect == "postgresql":
        found = text(
            "SELECT contact_id AS id FROM contact_search WHERE document @@ to_tsquery('simple', :search_q_c)"
        ).bindparams(bindparam("search_q_c", tsquery(terms)))
    else:
        found = text("SELECT rowid AS id FROM contact_search WHERE contact_search MATCH :search_q_c").bindparams(
            bindparam("search_q_c", fts5_query(terms))
        )
    ids = found.columns(id=Integer).subquery()
    return select(ids.c.id)


def _message_exists(query: str, dialect: str) -> ColumnElement[bool]:
    """Whether one of the conversation's messages matches: a few index probes per conversation."""
    if dialect == "postgresql":
        # Through ix_message_search_conversation: the conversation's few documents, each tested. OFFSET 0
        # keeps the planner from turning the EXISTS into a hashed set of every matching message (its
        # choice for a common word, and the very cost this shape is here to avoid).
        return exists(
            select(literal_column("1"))
            .select_from(_MESSAGE_SEARCH)
            .where(
                _MESSAGE_SEARCH.c.conversation_id == Conversation.id,
                _MESSAGE_SEARCH.c.document.op("@@")(func.to_tsquery(SIMPLE_CONFIG, bindparam("search_q_x", query))),
            )
            .offset(0)
        )
    # The conversation's documents are one rowid range (search_index.sqlite_message_key), which FTS5 pushes
    # into the match itself: one seek in each word's list, no row read, no join through messages.
    key = _MESSAGE_SEARCH.c.rowid
    return exists(
        select(literal_column("1"))
        .select_from(_MESSAGE_SEARCH)
        .where(
            literal_column("message_search").op("MATCH")(bindparam("search_q_x", query)),
            key >= Conversation.id.op("<<")(CONVERSATION_SHIFT),
            key < (Conversation.id + 1).op("<<")(CONVERSATION_SHIFT),
        )
    )


def matching(q: str, dialect: str) -> ColumnElement[bool]:
    """A condition on conversations: those whose messages or contact match the query ``q``.

    ``dialect`` is the database's dialect name (``session.get_bind().dialect.name``). A query without a
    single word (``"*"``, ``"--"``) matches nothing. Tested conversation by conversation: right for a
    list that stops at a page; :func:`conversations_matching` picks the faster shape for a query.
    """
    terms = parse(q)
    if not terms:
        return false()
    return _tested(terms, dialect, tsquery(terms) if dialect == "postgresql" else fts5_query(terms))


def _tested(terms: list[Term], dialect: str, query: str | None) -> ColumnElement[bool]:
    """Conversation by conversation; ``query``: the engine's query string for messages, None when no
    message can match."""
    of_contacts = Conversation.contact_id.in_(_contact_ids(terms, dialect))
    if query is None:
        return of_contacts
    return or_(_message_exists(query, dialect), of_contacts)


def conversations_matching(session: Session, q: str, probe: int | None = None) -> ColumnElement[bool]:
    """The condition of :func:`matching`, in the shape that is fast for this query in this database.

    A list by last activity that keeps conversations with a match must either build the whole match set
    first (fast for a rare word, but a word in most messages costs hundreds of thousands of index
    entries whatever the page) or test conversations in list order until the page is full (fast for a
    common word, but a rare one makes it test every conversation). So the engine is first asked for at
    most ``probe`` matches (``MATCH_PROBE``; matching messages on PostgreSQL, conversations with one on
    SQLite): fewer came, and they are all there are, so the condition is their conversations' ids (and
    those of the matching contacts'); as many, and the conversations are tested one by one. Both shapes
    select the same conversations.
    """
    dialect = session.get_bind().dialect.name
    limit = MATCH_PROBE.get(dialect, MATCH_PROBE["sqlite"]) if probe is None else probe
    terms = parse(q)
    if not terms:
        return false()
    query = tsquery(terms) if dialect == "postgresql" else _fts5_expanded(session, terms)
    matches = session.scalars(_message_matches(query, dialect), {"search_n": limit}).all()
    if len(matches) >= limit:
        return _tested(terms, dialect, query)
    of_contacts = session.scalars(
        select(Conversation.id).where(Conversation.contact_id.in_(_contact_ids(terms, dialect))).limit(limit)
    ).all()
    if len(of_contacts) >= limit:
        return _tested(terms, dialect, query)
    if dialect == "postgresql":
        found = session.scalars(_message_conversations(query)).all() if matches else []
        ids = sorted({*found, *of_contacts})
        return Conversation.id.in_(ids) if ids else false()
    ids = sorted({*matches, *of_contacts})
    if not ids:
        return false()
    # One parameter however many ids (SQLite refuses more than 32,766), read back by SQLite's JSON functions.
    listed = select(column("value", Integer)).select_from(func.json_each(bindparam("search_ids", json.dumps(ids))))
    return Conversation.id.in_(listed)


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
    return Contact.id.in_(_contact_ids(terms, dialect))

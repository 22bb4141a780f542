"""Small reads for lists of conversations: snippets, inbox names, and marks that tell a list it changed.

Each helper answers for a whole page of conversations in one query, so a list costs the same number of
queries whatever its length (no query per row).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postroom.store.models import Connection, Conversation, Direction, Message

SNIPPET_CHARS = 160
# Read a little more than is shown: whitespace is collapsed after the database cut the text.
_SNIPPET_READ = 400


def snippets(session: Session, conversation_ids: Collection[int], length: int = SNIPPET_CHARS) -> dict[int, str]:
    """The start of the newest mail's new text (``reply_text``, else ``text``) per conversation.

    Notes are left out: a list row previews what the customer and the team wrote to each other, and a
    note's text is not part of that conversation by mail.
    """
    ids = list(conversation_ids)
    if not ids:
        return {}
    newest = (
        select(func.max(Message.id))
        .where(Message.conversation_id.in_(ids), Message.direction != Direction.NOTE)
        .group_by(Message.conversation_id)
    )
    rows = session.execute(
        select(
            Message.conversation_id,
            func.substr(Message.reply_text, 1, _SNIPPET_READ),
            func.substr(Message.text, 1, _SNIPPET_READ),
        ).where(Message.id.in_(newest))
    ).all()
    found: dict[int, str] = {}
    for conversation_id, reply_text, text in rows:
        words = " ".join((reply_text or "").split()) or " ".join((text or "").split())
        found[conversation_id] = words if len(words) <= length else words[: length - 1].rstrip() + "…"
    return found


def connection_names(session: Session, connection_ids: Collection[int | None]) -> dict[int, str]:
    """Connection (inbox) names by id."""
    ids = {i for i in connection_ids if i is not None}
    if not ids:
        return {}
    return {i: n for i, n in session.execute(select(Connection.id, Connection.name).where(Connection.id.in_(ids)))}


@dataclass(frozen=True, slots=True)
class ChangeMarks:
    """What open lists compare to learn that something changed, read with two cheap queries.

    ``conversations``: the newest activity and the highest id (every change made through the services,
    new mail included, moves ``last_activity_at``; both columns are indexed). ``connections``: the
    number of connections and the latest status change and edit (a few rows).
    """

    conversations: tuple[datetime | None, int | None]
    connections: tuple[int, datetime | None, datetime | None, int | None]


def change_marks(session: Session) -> ChangeMarks:
    # Two subqueries rather than two aggregates in one SELECT: SQLite answers a lone max() from the
    # index's end, but scans the whole table for a SELECT of several.
    conversations = session.execute(
        select(
            select(func.max(Conversation.last_activity_at)).scalar_subquery(),
            select(func.max(Conversation.id)).scalar_subquery(),
        )
    ).one()
    connections = session.execute(
        select(
            func.count(Connection.id),
            func.max(Connection.status_changed_at),
            func.max(Connection.updated_at),
            func.sum(Connection.revision),
        )
    ).one()
    return ChangeMarks(
        (conversations[0], conversations[1]),
        (int(connections[0] or 0), connections[1], connections[2], connections[3]),
    )

"""Mentions of a user in notes: what the user has been asked to look at, and marking it seen."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from postroom.errors import NotFound
from postroom.store.models import Mention, Message, User, utcnow

EXCERPT_CHARS = 200


@dataclass(frozen=True, slots=True)
class MentionView:
    id: int
    conversation_id: int
    message_id: int
    author_id: int | None
    author: str
    excerpt: str
    created_at: datetime
    seen_at: datetime | None


def query(user_id: int, *, unseen_only: bool = False) -> Select[Any]:
    """The mentions of ``user_id`` (the caller orders and pages them)."""
    stmt = select(Mention).where(Mention.user_id == user_id)
    return stmt.where(Mention.seen_at.is_(None)) if unseen_only else stmt


def views(session: Session, found: Sequence[Mention]) -> list[MentionView]:
    """The mentions with their notes and authors, read in two queries."""
    notes = {
        row.id: row
        for row in session.execute(
            select(Message.id, Message.conversation_id, Message.author_id, Message.author, Message.text).where(
                Message.id.in_([m.message_pk for m in found])
            )
        )
    }
    author_ids = {row.author_id for row in notes.values() if row.author_id is not None}
    names = dict(session.execute(select(User.id, User.name).where(User.id.in_(author_ids))).all()) if author_ids else {}
    out = []
    for mention in found:
        note = notes[mention.message_pk]
        out.append(
            MentionView(
                id=mention.id,
                conversation_id=note.conversation_id,
                message_id=mention.message_pk,
                author_id=note.author_id,
                author=names.get(note.author_id) or note.author,
                excerpt=" ".join(note.text.split())[:EXCERPT_CHARS],
                created_at=mention.created_at,
                seen_at=mention.seen_at,
            )
        )
    return out


def unseen_count(session: Session, user_id: int) -> int:
    unseen = select(func.count()).where(Mention.user_id == user_id, Mention.seen_at.is_(None))
    return int(session.scalar(unseen) or 0)


def mark_seen(session: Session, user_id: int, mention_id: int) -> Mention:
    """Mark one of ``user_id``'s mentions seen (another user's is not found, never shown to them)."""
    mention = session.get(Mention, mention_id)
    if mention is None or mention.user_id != user_id:
        raise NotFound(f"mention {mention_id} not found")
    if mention.seen_at is None:
        mention.seen_at = utcnow()
        session.flush()
    return mention


def mark_conversation_seen(session: Session, user_id: int, conversation_id: int) -> int:
    """Mark seen every mention of ``user_id`` in the conversation (they opened it); returns how many."""
    notes = select(Message.id).where(Message.conversation_id == conversation_id)
    result = session.execute(
        update(Mention)
        .where(Mention.user_id == user_id, Mention.seen_at.is_(None), Mention.message_pk.in_(notes))
        .values(seen_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)

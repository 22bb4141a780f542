"""Read state per user: which conversations have mail a user has not seen yet.

A conversation is unread for a user when a message came in after they last opened it (or they never
did). Only mail from outside counts (``last_message_at`` moves with customers' messages and replies
alike, so the check compares with the newest incoming message's time): a colleague's reply or note
does not make a conversation unread again.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postroom.store.models import ConversationRead, Direction, Message, utcnow


def mark_read(session: Session, user_id: int, conversation_id: int, at: datetime | None = None) -> None:
    """Record that ``user_id`` has read the conversation up to now (or ``at``)."""
    when = at or utcnow()
    row = session.get(ConversationRead, (user_id, conversation_id))
    if row is None:
        session.add(ConversationRead(user_id=user_id, conversation_id=conversation_id, read_at=when))
    elif row.read_at < when:
        row.read_at = when
    session.flush()


def mark_unread(session: Session, user_id: int, conversation_id: int) -> None:
    """Forget that ``user_id`` read the conversation: it shows as unread again."""
    row = session.get(ConversationRead, (user_id, conversation_id))
    if row is not None:
        session.delete(row)
        session.flush()


def unread_ids(session: Session, user_id: int, conversation_ids: Iterable[int]) -> set[int]:
    """Those of ``conversation_ids`` with incoming mail newer than ``user_id`` last read them (two queries)."""
    ids = list(conversation_ids)
    if not ids:
        return set()
    newest_in = dict(
        session.execute(
            select(Message.conversation_id, func.max(Message.created_at))
            .where(Message.conversation_id.in_(ids), Message.direction == Direction.IN)
            .group_by(Message.conversation_id)
        ).all()
    )
    read = dict(
        session.execute(
            select(ConversationRead.conversation_id, ConversationRead.read_at).where(
                ConversationRead.user_id == user_id, ConversationRead.conversation_id.in_(ids)
            )
        ).all()
    )
    return {cid for cid, newest in newest_in.items() if newest is not None and (cid not in read or read[cid] < newest)}

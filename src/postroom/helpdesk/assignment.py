"""Automatic assignment: round robin over a team's members who can take work, and snoozes that end.

Who can take a new conversation: an enabled member whose availability is ``available`` and who holds
fewer than ``max_open`` conversations that are not resolved (no cap when ``max_open`` is None). The
turn continues after ``Team.last_assigned_id`` in user id order, wrapping round: the state lives in
the database, so it survives restarts and is shared by every worker.

Two workers assigning for one team at once would read the same ``last_assigned_id`` and give both
conversations to the same member. So the choice and the write of the new ``last_assigned_id`` happen
under the team's lock (:func:`team_lock`; a PostgreSQL advisory transaction lock, taken by the pipeline
with the batch's other keys in ascending order; SQLite's single writer serialises by itself).

These statements are prepared Core statements: the pipeline runs them for each new conversation, on
its hot path (DESIGN §2), through :class:`postroom.store.db.SqlCursor`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from postroom.store.db import SqlCursor
from postroom.store.models import (
    Activity,
    Availability,
    Conversation,
    ConversationStatus,
    Team,
    TeamMember,
    User,
)


def team_lock(team_id: int) -> str:
    """The key held while a team's round robin turn is read and moved on."""
    return f"team:{team_id}"


_OPEN_OF_USER = (
    select(func.count())
    .select_from(Conversation)
    .where(Conversation.assignee_id == User.id, Conversation.status != ConversationStatus.RESOLVED)
    .correlate(User)
    .scalar_subquery()
)
# The members who may take a new conversation now, in the order of the turn.
_CANDIDATES = (
    select(User.id)
    .join(TeamMember, TeamMember.user_id == User.id)
    .where(
        TeamMember.team_id == bindparam("team_id"),
        User.enabled.is_(True),
        User.availability == Availability.AVAILABLE,
        or_(User.max_open.is_(None), User.max_open > _OPEN_OF_USER),
    )
    .order_by(User.id)
)
_LAST_ASSIGNED = select(Team.last_assigned_id).where(Team.id == bindparam("team_id"))
_MOVE_TURN = update(Team).where(Team.id == bindparam("team_id")).values(last_assigned_id=bindparam("user_id"))
_ASSIGN = (
    update(Conversation)
    .where(Conversation.id == bindparam("conversation_id"))
    .values(assignee_id=bindparam("user_id"), last_activity_at=bindparam("now"), updated_at=bindparam("now"))
)
_INSERT_ACTIVITY = insert(Activity).values(
    {column.name: bindparam(column.name) for column in Activity.__table__.columns if column.name != "id"}
)


def next_in_turn(candidates: list[int], last_assigned_id: int | None) -> int | None:
    """The first candidate after ``last_assigned_id`` in id order, wrapping round; None with nobody."""
    if not candidates:
        return None
    if last_assigned_id is not None:
        for user_id in candidates:
            if user_id > last_assigned_id:
                return user_id
    return candidates[0]


def assign_round_robin(sql: SqlCursor, team_id: int, conversation_id: int, now: datetime) -> int | None:
    """Give the conversation to the team's next member in turn; returns who, or None when nobody can take it.

    The caller holds :func:`team_lock` for the team (the pipeline's ``assign`` stage does).
    """
    candidates = [int(row[0]) for row in sql.all(_CANDIDATES, {"team_id": team_id})]
    chosen = next_in_turn(candidates, sql.scalar(_LAST_ASSIGNED, {"team_id": team_id}))
    if chosen is None:
        return None
    sql.execute(_ASSIGN, {"conversation_id": conversation_id, "user_id": chosen, "now": now})
    sql.execute(_MOVE_TURN, {"team_id": team_id, "user_id": chosen})
    sql.execute(
        _INSERT_ACTIVITY,
        {
            "conversation_id": conversation_id,
            "actor_id": None,
            "kind": "assignee",
            "data": {"from": None, "to": chosen, "team_id": team_id},
            "created_at": now,
        },
    )
    return chosen


def snoozes_due(session: Session, now: datetime) -> bool:
    """Whether some snoozed conversation is due to wake (an index probe on (status, snoozed_until))."""
    due = select(Conversation.id).where(
        Conversation.status == ConversationStatus.SNOOZED, Conversation.snoozed_until <= now
    )
    return session.scalar(due.limit(1)) is not None


def wake_snoozed(session: Session, now: datetime) -> list[int]:
    """Reopen every snoozed conversation whose ``snoozed_until`` has passed; returns their ids.

    One UPDATE on the (status, snoozed_until) index; the common case (nothing due) is an index probe
    that finds nothing.
    """
    woken = session.scalars(
        update(Conversation)
        .where(Conversation.status == ConversationStatus.SNOOZED, Conversation.snoozed_until <= now)
        .values(status=ConversationStatus.OPEN, snoozed_until=None, last_activity_at=now, updated_at=now)
        .returning(Conversation.id)
    ).all()
    for conversation_id in woken:
        session.add(
            Activity(
                conversation_id=conversation_id,
                actor_id=None,
                kind="status",
                data={"from": ConversationStatus.SNOOZED.value, "to": ConversationStatus.OPEN.value},
                created_at=now,
            )
        )
    return list(woken)

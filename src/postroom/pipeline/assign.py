"""Stage ``assign``: a new conversation of a connection with ``auto_assign`` goes to the next member of the
connection's team in turn (:mod:`postroom.helpdesk.assignment`).

A stage of its own after ``thread`` rather than a step of thread's creation path: threading decides where
mail belongs, this decides who works it, and it needs a lock of its own (the team's), which the runner
takes ahead with the batch's other keys. The team itself (``Conversation.team_id``) is set by ``thread``
when it creates the row, so that a conversation is in its team's queue even with nobody to assign.
"""

from __future__ import annotations

from postroom.helpdesk.assignment import assign_round_robin, team_lock
from postroom.pipeline.context import Context, Event, stage
from postroom.store.models import utcnow


def _team(ctx: Context) -> int | None:
    connection = ctx.connection
    if connection is None or not connection.auto_assign or connection.team_id is None:
        return None
    return connection.team_id


def _predicted_locks(ctx: Context) -> list[str]:
    # Whether the mail opens a conversation is known only once ``thread`` ran, so every mail of an
    # auto-assigning connection predicts the team's key: taking a key in the batch's order costs
    # little, taking it late (out of order) may deadlock with another worker and redo the batch.
    team_id = _team(ctx)
    return [] if team_id is None else [team_lock(team_id)]


@stage("assign", locks=_predicted_locks)
def assign(ctx: Context) -> None:
    team_id = _team(ctx)
    if team_id is None or not ctx.new_conversation or ctx.conversation is None:
        return
    ctx.batch.lock(team_lock(team_id))
    chosen = assign_round_robin(ctx.batch.sql, team_id, ctx.conversation.id, utcnow())
    if chosen is not None:
        ctx.events.append(Event("conversation.assigned", ctx.conversation.id, None, ctx.raw.connection_id))

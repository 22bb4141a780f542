"""An agent sends a reply again after its delivery failed (the "Retry" button of the conversation page).

The outbox gives a reply up as ``failed`` (a permanent refusal, or the retries ran out) or, when a worker
died in the middle of sending it, as ``uncertain``; neither is ever sent again on its own (see
``jobs.outbox``). Only the agent can decide that it should go out after all, usually once the cause is
fixed (a typo in an address, a server that is back). Retrying queues the very same outbox row again, due
at once, with a fresh count of attempts: the bytes (and the Message-ID the customer's client threads
by) are the ones composed at first, so a copy that did arrive is recognised as the same mail.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.errors import Conflict, NotFound
from postroom.pipeline.context import Event
from postroom.store.models import Activity, Message, Outbox, OutboxStatus, utcnow

# What may be sent again: given up for good, or perhaps never sent. A bounced reply was delivered to the
# customer's server and refused later; sending the same bytes again would be refused again.
RETRYABLE = frozenset({OutboxStatus.FAILED, OutboxStatus.UNCERTAIN})


def retry_delivery(
    session: Session, conversation_id: int, message_id: int, *, actor_id: int | None
) -> tuple[Message, list[Event]]:
    """Queue the failed (or uncertain) reply ``message_id`` of ``conversation_id`` to be sent now.

    Raises NotFound for a message that is not an outgoing mail of this conversation, and Conflict when
    its delivery is not in a state that may be retried (queued, being sent, sent or bounced).
    """
    message = session.get(Message, message_id)
    if message is None or message.conversation_id != conversation_id:
        raise NotFound(f"no message {message_id} in conversation {conversation_id}")
    row = session.scalar(select(Outbox).where(Outbox.message_pk == message.id))
    if row is None:
        raise NotFound(f"message {message_id} was not sent through the outbox")
    if row.status not in RETRYABLE:
        raise Conflict(f"message {message_id} is {row.status.value}: only failed or uncertain mail can be retried")
    now = utcnow()
    before = row.status.value
    row.status = OutboxStatus.QUEUED
    row.attempts = 0
    row.next_attempt_at = now
    row.last_error = ""
    row.claimed_by = None
    row.claimed_until = None
    message.delivery_status = OutboxStatus.QUEUED.value
    message.delivery_detail = ""
    session.add(
        Activity(
            conversation_id=conversation_id,
            actor_id=actor_id,
            kind="delivery_retry",
            data={"from": before, "to": OutboxStatus.QUEUED.value, "message_id": message.id},
            created_at=now,
        )
    )
    session.flush()
    return message, [Event("message.queued", conversation_id, message.id, row.connection_id)]

"""Read state per user, on SQLite and PostgreSQL: new incoming mail makes a conversation unread again."""

from __future__ import annotations

from datetime import timedelta

from postroom.helpdesk.reads import mark_read, mark_unread, unread_ids
from postroom.store.db import Database
from postroom.store.models import Conversation, Direction, Message, Role, User, utcnow


def _setup(db: Database) -> tuple[int, int, int, int]:
    with db.write() as session:
        ann = User(email="ann@example.test", name="Ann", role=Role.AGENT)
        bob = User(email="bob@example.test", name="Bob", role=Role.AGENT)
        first, second = Conversation(subject="one"), Conversation(subject="two")
        session.add_all([ann, bob, first, second])
        session.flush()
        earlier = utcnow() - timedelta(minutes=5)
        session.add_all(
            [
                Message(conversation_id=first.id, direction=Direction.IN, subject="one", created_at=earlier),
                Message(conversation_id=second.id, direction=Direction.IN, subject="two", created_at=earlier),
            ]
        )
        return ann.id, bob.id, first.id, second.id


def test_a_conversation_is_unread_until_opened_and_again_after_new_mail(db: Database) -> None:
    ann, bob, first, second = _setup(db)
    with db.write() as session:
        assert unread_ids(session, ann, [first, second]) == {first, second}
        mark_read(session, ann, first)
        assert unread_ids(session, ann, [first, second]) == {second}
        # Each user has their own state.
        assert unread_ids(session, bob, [first, second]) == {first, second}
    with db.write() as session:
        # An agent's reply does not make it unread; the customer's next mail does.
        session.add(Message(conversation_id=first, direction=Direction.OUT, subject="re"))
    with db.write() as session:
        assert unread_ids(session, ann, [first]) == set()
        session.add(
            Message(conversation_id=first, direction=Direction.IN, subject="again", created_at=utcnow() + timedelta(1))
        )
    with db.write() as session:
        assert unread_ids(session, ann, [first]) == {first}
        mark_read(session, ann, first, at=utcnow() + timedelta(days=2))
        assert unread_ids(session, ann, [first]) == set()
        mark_unread(session, ann, first)
        assert unread_ids(session, ann, [first]) == {first}
        assert unread_ids(session, ann, []) == set()

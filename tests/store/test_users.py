"""Users on SQLite and PostgreSQL: passwords, throttled sign-in, disabling."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from postroom.api.tokens import create_token, verify_token
from postroom.errors import Conflict, SignInFailed, SignInThrottled
from postroom.helpdesk.users import ThrottlePolicy, UserService
from postroom.store.db import Database
from postroom.store.models import Activity, Conversation, ConversationStatus, Role, User

# Cheap parameters: the tests check the logic, not argon2's cost.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
PASSWORD = "correct horse battery"


def _users(**policy: int) -> UserService:
    return UserService(ThrottlePolicy(**policy), FAST_HASHER)  # type: ignore[arg-type]


def test_create_lowercases_refuses_duplicates_and_hashes_with_argon2id(db: Database) -> None:
    users = _users()
    with db.write() as session:
        user = users.create(session, " Ann@Example.COM ", name="Ann", role=Role.AGENT, password=PASSWORD)
        assert user.email == "ann@example.com"
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
    with pytest.raises(Conflict, match="exists already"), db.write() as session:
        users.create(session, "ANN@example.com")


def test_sign_in_rehashes_a_password_hashed_under_old_parameters(db: Database) -> None:
    old = PasswordHasher(time_cost=1, memory_cost=512, parallelism=1)
    with db.write() as session:
        UserService(hasher=old).create(session, "ann@example.com", password=PASSWORD)
    signed = _users().authenticate(db, "ann@example.com", PASSWORD, "192.0.2.1")
    with db.read() as session:
        stored = session.get(User, signed.user_id)
        assert stored is not None and stored.last_sign_in_at is not None
        assert "m=1024" in stored.password_hash
        assert not FAST_HASHER.check_needs_rehash(stored.password_hash)


def test_account_is_locked_after_repeated_failures_even_for_the_right_password(db: Database) -> None:
    users = _users(account_failures=3)
    with db.write() as session:
        users.create(session, "ann@example.com", password=PASSWORD)
    for _ in range(3):
        with pytest.raises(SignInFailed):
            users.authenticate(db, "ann@example.com", "wrong password!", "192.0.2.1")
    with pytest.raises(SignInThrottled) as locked:
        users.authenticate(db, "ann@example.com", PASSWORD, "192.0.2.2")
    assert 0 < locked.value.retry_after <= 15 * 60
    # Another account from the same address is not locked by it.
    with db.write() as session:
        users.create(session, "bob@example.com", password=PASSWORD)
    assert users.authenticate(db, "bob@example.com", PASSWORD, "192.0.2.1").email == "bob@example.com"


def test_a_client_address_is_locked_across_accounts_and_unknown_ones_fail_alike(db: Database) -> None:
    users = _users(ip_failures=4)
    with db.write() as session:
        users.create(session, "ann@example.com", password=PASSWORD)
        users.create(session, "nopass@example.com")
    for address in ("nobody@example.com", "nopass@example.com", "x@example.com", "y@example.com"):
        with pytest.raises(SignInFailed, match="wrong email address or password"):
            users.authenticate(db, address, PASSWORD, "198.51.100.7")
    with pytest.raises(SignInThrottled):
        users.authenticate(db, "ann@example.com", PASSWORD, "198.51.100.7")
    assert users.authenticate(db, "ann@example.com", PASSWORD, "198.51.100.8").email == "ann@example.com"


def test_disable_unassigns_unresolved_conversations_and_revokes_every_token(db: Database) -> None:
    users = _users()
    with db.write() as session:
        admin = users.create(session, "boss@example.com", role=Role.ADMIN)
        agent = users.create(session, "ann@example.com", password=PASSWORD)
        open_ids = []
        for status in (ConversationStatus.OPEN, ConversationStatus.PENDING, ConversationStatus.RESOLVED):
            conversation = Conversation(subject=status.value, status=status, assignee_id=agent.id)
            session.add(conversation)
            session.flush()
            if status is not ConversationStatus.RESOLVED:
                open_ids.append(conversation.id)
        token = create_token(session, "script", user_id=agent.id)
        agent_id, admin_id = agent.id, admin.id
    with db.write() as session:
        report = users.disable(session, agent_id, actor_id=admin_id)
        assert report.unassigned == open_ids
        assert report.revoked_tokens == 1
    with db.read() as session:
        assignees = {s: a for s, a in session.execute(select(Conversation.subject, Conversation.assignee_id))}
        assert assignees == {"open": None, "pending": None, "resolved": agent_id}
        activities = session.scalars(select(Activity).order_by(Activity.conversation_id)).all()
        assert [(a.conversation_id, a.kind, a.actor_id) for a in activities] == [
            (i, "assignee", admin_id) for i in open_ids
        ]
        assert verify_token(session, token) is None
    with pytest.raises(SignInFailed):
        users.authenticate(db, "ann@example.com", PASSWORD, "192.0.2.1")
    with db.write() as session:
        users.enable(session, agent_id)
    # Enabling gives the password back, not the revoked tokens.
    assert users.authenticate(db, "ann@example.com", PASSWORD, "192.0.2.1").user_id == agent_id
    with db.read() as session:
        assert verify_token(session, token) is None


def test_the_last_enabled_administrator_stays(db: Database) -> None:
    users = _users()
    with db.write() as session:
        only = users.create(session, "boss@example.com", role=Role.ADMIN)
        # The first administrator of a fresh database counts too; take it out of the picture.
        session.execute(update(User).where(User.id != only.id).values(enabled=False))
        only_id = only.id
    with pytest.raises(Conflict, match="last enabled administrator"), db.write() as session:
        users.disable(session, only_id)
    with pytest.raises(Conflict, match="last enabled administrator"), db.write() as session:
        users.update(session, only_id, role=Role.AGENT)

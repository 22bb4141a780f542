"""Users: the people who work in Postroom, each an admin or an agent.

The first administrator exists from the start: a fresh database gets :data:`BOOTSTRAP_ADMIN_EMAIL` (no
password; it signs in with the token printed at first start, or is given a password later), and tokens
made before users existed were given to the same user by the migration that brought users.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.store.models import Role, User

BOOTSTRAP_ADMIN_EMAIL = "admin@postroom.localhost"


def ensure_bootstrap_admin(session: Session) -> User:
    """The first administrator, created when missing (in the caller's write transaction)."""
    user = session.scalar(select(User).where(User.email == BOOTSTRAP_ADMIN_EMAIL))
    if user is None:
        user = User(email=BOOTSTRAP_ADMIN_EMAIL, name="Administrator", role=Role.ADMIN)
        session.add(user)
        session.flush()
    return user

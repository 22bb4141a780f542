"""Users: the people who work in Postroom, each an admin or an agent.

The first administrator exists from the start: a fresh database gets :data:`BOOTSTRAP_ADMIN_EMAIL` (no
password; it signs in with the token printed at first start, or is given a password later), and tokens
made before users existed were given to the same user by the migration that brought users.

Passwords are stored as argon2id hashes (argon2-cffi's PHC strings, its recommended parameters) and never
logged. A hash made under older parameters is replaced at the next successful sign-in.

Failed sign-ins are counted in ``sign_in_throttle`` per account (``account:<email>``) and per client address
(``ip:<addr>``), in the database so that every process sees the same counts. A key with too many failures in
its window is locked for a while: every attempt on it, right or wrong, is refused with the time to wait.
"""

from __future__ import annotations

import enum
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Select, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from postroom.errors import Conflict, InvalidSetting, NotFound, SignInFailed, SignInThrottled
from postroom.store.db import Database
from postroom.store.models import (
    Activity,
    ApiToken,
    Availability,
    Conversation,
    ConversationStatus,
    Role,
    SignInThrottle,
    User,
    utcnow,
)

log = structlog.get_logger(__name__)

BOOTSTRAP_ADMIN_EMAIL = "admin@postroom.localhost"
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this only bounds the work a request can ask for


def ensure_bootstrap_admin(session: Session) -> User:
    """The first administrator, created when missing (in the caller's write transaction)."""
    user = session.scalar(select(User).where(User.email == BOOTSTRAP_ADMIN_EMAIL))
    if user is None:
        user = User(email=BOOTSTRAP_ADMIN_EMAIL, name="Administrator", role=Role.ADMIN)
        session.add(user)
        session.flush()
    return user


def normalize_email(email: str) -> str:
    address = email.strip().lower()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() or not c.isprintable() for c in address):
        raise InvalidSetting("email", "expected an email address such as ann@example.com")
    return address


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidSetting("password", f"needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidSetting("password", f"may have at most {MAX_PASSWORD_LENGTH} characters")


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many failed sign-ins a key may have within ``window`` before it is locked for ``lock``."""

    account_failures: int = 5
    # Higher: an office behind one address has many people, each of whom may mistype.
    ip_failures: int = 20
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class SignedIn:
    user_id: int
    email: str
    role: Role


@dataclass(frozen=True, slots=True)
class DisableReport:
    """What disabling a user did: conversations sent back to the queue, tokens revoked."""

    user: User
    unassigned: list[int] = field(default_factory=list)
    revoked_tokens: int = 0


class _Keep(enum.Enum):
    KEEP = "keep"


KEEP = _Keep.KEEP


class UserService:
    def __init__(self, throttle: ThrottlePolicy | None = None, hasher: PasswordHasher | None = None) -> None:
        self.throttle = throttle or ThrottlePolicy()
        # argon2id with argon2-cffi's recommended parameters (RFC 9106's second recommendation).
        self.hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None
        self._dummy_lock = threading.Lock()

    # -- people ------------------------------------------------------------------------------------

    def create(
        self,
        session: Session,
        email: str,
        *,
        name: str = "",
        role: Role = Role.AGENT,
        password: str | None = None,
    ) -> User:
        address = normalize_email(email)
        if session.scalar(select(User.id).where(User.email == address)) is not None:
            raise Conflict(f"a user with the address {address} exists already")
        user = User(email=address, name=name.strip(), role=Role(role))
        if password is not None:
            check_password(password)
            user.password_hash = self.hasher.hash(password)
        session.add(user)
        session.flush()
        log.info("user.created", user_id=user.id, role=user.role.value)
        return user

    def list_query(self) -> Select[Any]:
        """All users (for a keyset page in the API)."""
        return select(User)

    def list(self, session: Session) -> Sequence[User]:
        return session.scalars(select(User).order_by(User.id)).all()

    def get(self, session: Session, user_id: int) -> User:
        user = session.get(User, user_id)
        if user is None:
            raise NotFound(f"user {user_id} not found")
        return user

    def by_email(self, session: Session, email: str) -> User:
        user = session.scalar(select(User).where(User.email == email.strip().lower()))
        if user is None:
            raise NotFound(f"no user with the address {email.strip()}")
        return user

    def update(
        self,
        session: Session,
        user_id: int,
        *,
        name: str | None = None,
        role: Role | None = None,
        availability: Availability | None = None,
        max_open: int | _Keep | None = KEEP,
        password: str | None = None,
    ) -> User:
        """Change what is given; ``max_open=None`` removes the cap (leave it out to keep it)."""
        user = self.get(session, user_id)
        if name is not None:
            user.name = name.strip()
        if role is not None and Role(role) is not user.role:
            if user.role is Role.ADMIN:
                self._keep_an_admin(session, user)
            user.role = Role(role)
        if availability is not None:
            user.availability = Availability(availability)
        if max_open is not KEEP:
            if max_open is not None and (not isinstance(max_open, int) or max_open < 0):
                raise InvalidSetting("max_open", "expected a whole number, 0 or more, or null for no cap")
            user.max_open = max_open if isinstance(max_open, int) else None
        if password is not None:
            check_password(password)
            user.password_hash = self.hasher.hash(password)
        session.flush()
        return user

    def disable(self, session: Session, user_id: int, *, actor_id: int | None = None) -> DisableReport:
        """Disable the user: their conversations that are not resolved go back to the team queue (each
        with an ``assignee`` activity), and every token of theirs is revoked, so that nothing they hold
        works any more. Refused for the last enabled administrator."""
        user = self.get(session, user_id)
        if user.role is Role.ADMIN and user.enabled:
            self._keep_an_admin(session, user)
        now = utcnow()
        user.enabled = False
        user.disabled_at = user.disabled_at or now
        conversation_ids = list(
            session.scalars(
                select(Conversation.id)
                .where(Conversation.assignee_id == user.id, Conversation.status != ConversationStatus.RESOLVED)
                .order_by(Conversation.id)
                .with_for_update()
            )
        )
        if conversation_ids:
            session.execute(
                update(Conversation)
                .where(Conversation.id.in_(conversation_ids))
                .values(assignee_id=None, updated_at=now, last_activity_at=now)
            )
            session.add_all(
                Activity(
                    conversation_id=conversation_id,
                    actor_id=actor_id,
                    kind="assignee",
                    data={"from": user.id, "to": None, "reason": "user disabled"},
                    created_at=now,
                )
                for conversation_id in conversation_ids
            )
        revoked = len(
            session.execute(
                update(ApiToken)
                .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(ApiToken.id)
            ).all()
        )
        session.flush()
        log.info("user.disabled", user_id=user.id, unassigned=len(conversation_ids), revoked_tokens=revoked)
        return DisableReport(user, conversation_ids, revoked)

    def enable(self, session: Session, user_id: int) -> User:
        """Enable the user again; tokens revoked when they were disabled stay revoked."""
        user = self.get(session, user_id)
        user.enabled = True
        user.disabled_at = None
        session.flush()
        return user

    def _keep_an_admin(self, session: Session, leaving: User) -> None:
        others = session.scalar(
            select(func.count())
            .select_from(User)
            .where(User.role == Role.ADMIN, User.enabled.is_(True), User.id != leaving.id)
        )
        if not others:
            raise Conflict("this is the last enabled administrator: make another user an administrator first")

    # -- tokens ------------------------------------------------------------------------------------

    def tokens_query(self, user_id: int | None) -> Select[Any]:
        """Tokens of ``user_id`` (all users' when None), revoked ones too, for a keyset page."""
        query = select(ApiToken)
        return query if user_id is None else query.where(ApiToken.user_id == user_id)

    def revoke_token(self, session: Session, token_id: int, *, owner_id: int | None) -> ApiToken:
        """Revoke a token at once (every request reads the row); ``owner_id`` limits it to that user's
        tokens (another user's token is answered as not found, so that its existence is not told)."""
        token = session.get(ApiToken, token_id)
        if token is None or (owner_id is not None and token.user_id != owner_id):
            raise NotFound(f"token {token_id} not found")
        if token.revoked_at is None:
            token.revoked_at = utcnow()
            session.flush()
        return token

    # -- signing in --------------------------------------------------------------------------------

    def authenticate(self, db: Database, email: str, password: str, client_ip: str) -> SignedIn:
        """Check an address and password, counting failures; raises :class:`SignInThrottled` (429) while
        the account or the client address is locked, :class:`SignInFailed` (401) for wrong credentials.

        The password is checked outside any write transaction (argon2 takes tens of milliseconds on
        purpose; SQLite's one write lock must not wait for it). An unknown address, a disabled user and a
        user without a password are checked against a dummy hash, so the answer takes as long as for a
        wrong password and tells nothing of which addresses exist.
        """
        address = email.strip().lower()
        keys = (f"account:{address}"[:400], f"ip:{client_ip}"[:400])
        now = utcnow()
        with db.read() as session:
            self._refuse_locked(session, keys, now)
            user = session.scalar(select(User).where(User.email == address))
            stored = user.password_hash if user is not None and user.enabled else ""
            user_id = user.id if user is not None else None
        ok = self._verify(stored or self._dummy(), password) and bool(stored)
        if not ok:
            with db.write() as session:
                self._record_failure(session, keys, utcnow())
            log.info("user.sign_in_failed", known=user_id is not None)
            raise SignInFailed()
        signed_in: SignedIn | None = None
        with db.write() as session:
            user = session.get(User, user_id)
            # Disabled (or deleted) between the check and now: as good as a wrong password.
            if user is not None and user.enabled:
                user.last_sign_in_at = utcnow()
                if self.hasher.check_needs_rehash(user.password_hash):
                    user.password_hash = self.hasher.hash(password)
                # A success forgives the account's earlier mistakes, not the client address's.
                row = session.get(SignInThrottle, keys[0])
                if row is not None:
                    session.delete(row)
                signed_in = SignedIn(user.id, user.email, user.role)
        if signed_in is None:
            raise SignInFailed()
        log.info("user.signed_in", user_id=signed_in.user_id)
        return signed_in

    def _refuse_locked(self, session: Session, keys: tuple[str, ...], now: datetime) -> None:
        rows = session.scalars(select(SignInThrottle).where(SignInThrottle.key.in_(keys))).all()
        waits = [
            (row.locked_until - now).total_seconds() for row in rows if row.locked_until and row.locked_until > now
        ]
        if waits:
            raise SignInThrottled(max(1, math.ceil(max(waits))))

    def _record_failure(self, session: Session, keys: tuple[str, ...], now: datetime) -> None:
        policy = self.throttle
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        for key, limit in zip(keys, (policy.account_failures, policy.ip_failures), strict=True):
            # Insert-or-nothing, then lock the row: two failures at once both count, on every database.
            session.execute(
                insert(SignInThrottle)
                .values(key=key, failures=0, window_start=now, locked_until=None)
                .on_conflict_do_nothing(index_elements=["key"])
            )
            row = session.scalars(select(SignInThrottle).where(SignInThrottle.key == key).with_for_update()).one()
            session.refresh(row)
            if now - row.window_start > policy.window:
                row.failures, row.window_start = 0, now
            row.failures += 1
            if row.failures >= limit:
                row.locked_until = now + policy.lock
                row.failures, row.window_start = 0, now
                log.warning("user.sign_in_locked", key=key.split(":", 1)[0], minutes=policy.lock.total_seconds() / 60)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    def _dummy(self) -> str:
        with self._dummy_lock:
            if self._dummy_hash is None:
                self._dummy_hash = self.hasher.hash("not a password of anyone")
            return self._dummy_hash

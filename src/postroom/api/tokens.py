"""API bearer tokens: random, shown once, stored as SHA-256 only."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postroom.store.models import ApiToken, utcnow

TOKEN_PREFIX = "pr_"  # noqa: S105 (a prefix that makes tokens recognisable, not a secret)
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, name: str, *, admin: bool = True) -> str:
    """Make a new token and return it; this is the only time it can be seen."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_sha256=_digest(token), prefix=token[:10], is_admin=admin))
    session.flush()
    return token


def verify_token(session: Session, token: str) -> ApiToken | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _digest(token)))
    if row is None or row.revoked_at is not None:
        return None
    now = utcnow()
    # Record use at a coarse resolution so that reads do not turn into a write per request.
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now
    return row


def has_tokens(session: Session) -> bool:
    return bool(session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.revoked_at.is_(None))))

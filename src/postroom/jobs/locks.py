"""Transaction-scoped locks that serialise work on one key across workers.

On PostgreSQL these are advisory locks (released at commit or rollback). On SQLite every write
transaction already holds the database's single write lock (``BEGIN IMMEDIATE``), so there is
nothing more to take.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session


def lock_key(key: str) -> int:
    """A stable signed 64-bit number for a key (advisory locks take a bigint)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


def xact_lock(session: Session, key: str) -> None:
    """Wait until no other transaction holds ``key``, then hold it until this transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(key)})

"""Transaction-scoped locks that serialise work on one key across workers.

On PostgreSQL these are advisory locks (released at commit or rollback). On SQLite every write
transaction already holds the database's single write lock (``BEGIN IMMEDIATE``), so there is
nothing more to take.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import BigInteger, bindparam, func, select


def lock_key(key: str) -> int:
    """A stable signed 64-bit number for a key (advisory locks take a bigint)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


# PostgreSQL: wait until no other transaction holds key ``k``, then hold it until this one ends.
ADVISORY_XACT_LOCK = select(func.pg_advisory_xact_lock(bindparam("k", type_=BigInteger)))

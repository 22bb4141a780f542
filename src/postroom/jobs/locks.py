"""Transaction-scoped locks that serialise work on one key across workers.

On PostgreSQL these are advisory locks (released at commit or rollback, and by a rollback to a
savepoint taken before them). On SQLite every write transaction already holds the database's single
write lock (``BEGIN IMMEDIATE``), so there is nothing more to take.

Two transactions that each wait for a key the other holds deadlock; PostgreSQL then aborts one of
them. A transaction that needs several keys avoids that by taking them all at once, in ascending
order (:data:`ADVISORY_XACT_LOCK_ALL`): every transaction then waits in the same order, so none can
hold a key that another holds while waiting for one that the other holds.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import BigInteger, bindparam, func, select, text
from sqlalchemy.dialects.postgresql import ARRAY


def lock_key(key: str) -> int:
    """A stable signed 64-bit number for a key (advisory locks take a bigint)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


# PostgreSQL: wait until no other transaction holds key ``k``, then hold it until this one ends.
ADVISORY_XACT_LOCK = select(func.pg_advisory_xact_lock(bindparam("k", type_=BigInteger)))

# PostgreSQL: take every key of the array ``keys`` (pass them sorted, without repeats), one after
# the other in ascending order. The lock function is volatile, so PostgreSQL evaluates it above the
# sort, row by row in sorted order (EXPLAIN VERBOSE: Result over Sort over the Function Scan); the
# array being sorted already, the order holds even without that.
ADVISORY_XACT_LOCK_ALL = text("SELECT pg_advisory_xact_lock(k) FROM unnest(:keys) AS k ORDER BY k").bindparams(
    bindparam("keys", type_=ARRAY(BigInteger))
)

"""Leases: a named piece of work is owned by one worker until the lease expires (DESIGN §4).

A worker renews its leases on every heartbeat; when it dies, its leases expire and another worker
takes the work over. Works the same on SQLite and PostgreSQL: the conditional UPDATE is atomic, and a
missing row is created with an INSERT that loses cleanly to a concurrent one on the primary key.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError

from postroom.store.db import Database
from postroom.store.models import Lease, utcnow


def connection_lease(connection_id: int) -> str:
    """The lease that says which worker runs a connection (all its mailboxes)."""
    return f"connection:{connection_id}"


def acquire(db: Database, name: str, owner: str, seconds: float) -> bool:
    """Take or renew the lease; True when ``owner`` holds it for the next ``seconds``."""
    now = utcnow()
    expires = now + timedelta(seconds=seconds)
    with db.write() as session:
        result = session.execute(
            update(Lease)
            .where(Lease.name == name, (Lease.owner == owner) | (Lease.expires_at < now))
            .values(owner=owner, expires_at=expires)
        )
        if getattr(result, "rowcount", 0):
            return True
    try:
        with db.write() as session:
            session.add(Lease(name=name, owner=owner, expires_at=expires))
    except IntegrityError:
        # Someone else holds a live lease (or just took it).
        return False
    return True


def release(db: Database, name: str, owner: str) -> None:
    with db.write() as session:
        session.execute(delete(Lease).where(Lease.name == name, Lease.owner == owner))

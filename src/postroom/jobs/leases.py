"""Leases: a named piece of work is owned by one worker until the lease expires (DESIGN §4).

A worker renews its leases on every heartbeat; when it dies, its leases expire and another worker
takes the work over. Works the same on SQLite and PostgreSQL: the conditional UPDATE is atomic, and a
missing row is created with an INSERT that loses cleanly to a concurrent one on the primary key.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import ColumnElement, and_, delete, exists, literal, or_, update
from sqlalchemy.exc import IntegrityError

from postroom.store.db import Database
from postroom.store.models import Lease, utcnow

log = structlog.get_logger(__name__)


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


# -- worker leases: is the process that claimed a row still alive? -----------------------------


def worker_lease(worker_id: str) -> str:
    """The lease a running process renews while it lives (its heartbeat)."""
    return f"worker:{worker_id}"


_WORKER_LEASE_PREFIX = "worker:"


def claim_abandoned(owner: Any, claimed_until: Any, now: datetime) -> ColumnElement[bool]:
    """SQL: a claim (of a raw message, an outbox row) whose owner is gone.

    Its owner's worker lease has expired; or the owner holds no worker lease (a runner used on its
    own, a process of a version without them) and the claim's own expiry has passed. A claim of a
    process whose lease is alive is never abandoned, however long its work takes.
    """
    lease_of_owner = Lease.name == literal(_WORKER_LEASE_PREFIX).concat(owner)
    lease_expired = exists().where(lease_of_owner, Lease.expires_at < now)
    lease_alive = exists().where(lease_of_owner, Lease.expires_at >= now)
    return or_(lease_expired, and_(claimed_until < now, ~lease_alive))


class WorkerHeartbeat:
    """Keeps this process's worker lease alive: renewed every ``every`` seconds for ``seconds``.

    Claims of raw mail and outbox rows name the worker; when the process dies (``kill -9``, power)
    its lease expires within ``seconds`` and every other worker gives its claims back at once,
    instead of waiting for each claim's own, much longer, expiry. A renewal that fails (the
    database away for a moment) is retried at the next beat; ``seconds`` covers a few of them.
    On a clean stop the lease is deleted: the process settles or gives back its claims itself,
    and any it could not fall back to their own expiry.
    """

    def __init__(self, db: Database, worker_id: str, *, every: float = 2.0, seconds: float = 8.0) -> None:
        self.db = db
        self.worker_id = worker_id
        self.every = every
        self.seconds = seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def beat(self) -> bool:
        return acquire(self.db, worker_lease(self.worker_id), self.worker_id, self.seconds)

    def start(self) -> None:
        self._stop.clear()
        self.beat()
        self._thread = threading.Thread(target=self._loop, name="worker-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.beat()
            except Exception:
                log.exception("leases.heartbeat_failed", worker_id=self.worker_id)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        try:
            release(self.db, worker_lease(self.worker_id), self.worker_id)
        except Exception:
            log.exception("leases.heartbeat_release_failed", worker_id=self.worker_id)

    def forget_expired(self, older_than: float = 86_400.0) -> None:
        """Delete worker leases of processes dead for long: every claim they held has expired since."""
        cutoff = utcnow() - timedelta(seconds=older_than)
        with self.db.write() as session:
            session.execute(delete(Lease).where(Lease.name.startswith(_WORKER_LEASE_PREFIX), Lease.expires_at < cutoff))

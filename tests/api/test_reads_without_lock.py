"""API reads never wait for SQLite's write lock, and token use is still recorded once the lock is free."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from test_attachment_download import PDF, _mail_with_file

from postroom.api.tokens import LastUsedRecorder, UsagePolicy, VerifiedToken, create_token
from postroom.service import Service
from postroom.store.models import ApiToken, Role, utcnow
from support import Api, Desk, wait_until

# A read answers in a few milliseconds; the budget leaves room for a slow test machine, not for a wait.
FAST_ENOUGH = 0.3


def _last_used(service: Service, name: str) -> Any:
    with service.db.read() as session:
        return session.scalar(select(ApiToken.last_used_at).where(ApiToken.name == name))


def _timed_get(api: Api, path: str, token: str) -> tuple[int, float]:
    """GET in a thread: a request that waits for the lock must fail the test, not hang it for 30 s."""
    result: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        response = api.client.get(path, headers={"Authorization": f"Bearer {token}"})
        result["status"], result["seconds"] = response.status_code, time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(2.0)
    if thread.is_alive():
        return 0, float("inf")
    return int(result["status"]), float(result["seconds"])


@pytest.fixture
def desk(make_service: Callable[..., Service]) -> Desk:
    desk = Desk(Api(make_service(start=False)))
    desk.deliver(_mail_with_file('filename="a.pdf"'))
    return desk


def test_every_get_answers_while_another_connection_holds_the_write_lock(desk: Desk) -> None:
    api, service = desk.api, desk.api.service
    with service.db.write() as session:
        reader = create_token(session, "reader")
    [conversation] = api.conversations()
    [message] = api.get(f"/conversations/{conversation['id']}")["messages"]
    [raw] = api.items("/raw-messages")
    ids = {
        "connection_id": desk.connection["id"],
        "mailbox_id": desk.connection["mailboxes"][0]["id"],
        "conversation_id": conversation["id"],
        "attachment_id": message["attachments"][0]["id"],
        "raw_id": raw["id"],
        "team_id": api.post("/teams", {"name": "Readers"}, 201)["id"],
        "contact_id": conversation["contact"]["id"],
        "customer_id": api.post("/customers", {"name": "Acme", "domains": ["acme.test"]}, 201)["id"],
        "user_id": api.get("/users/me")["id"],
    }
    # Every GET of the API, found in the OpenAPI document, so that a new read route is covered too.
    paths = [path.format(**ids) for path, item in api.client.app.openapi()["paths"].items() if "get" in item]
    assert len(paths) >= 8

    database = make_url(service.db.url).database
    assert database is not None
    holder = sqlite3.connect(database, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")  # what a pipeline batch or any writer holds
    try:
        for path in paths:
            status, seconds = _timed_get(api, path, reader)
            assert status == 200, path
            assert seconds < FAST_ENOUGH, f"GET {path} took {seconds:.3f} s behind a writer"
        # The use is noted, but its write waits for the lock to be free: the reader never did. (The
        # recorder's thread may be holding the note in a write attempt just now, so ``pending`` can be 0.)
        assert _last_used(service, "reader") is None
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    recorded = wait_until(lambda: _last_used(service, "reader"), timeout=10)
    assert utcnow() - recorded < timedelta(minutes=1)
    # The downloads were real reads, not errors that happen to be fast.
    response = api.client.get(f"/api/v1/attachments/{ids['attachment_id']}")
    assert response.content == PDF


def test_recorder_notes_once_per_resolution_and_keeps_notes_when_busy(desk: Desk) -> None:
    service = desk.api.service
    with service.db.write() as session:
        create_token(session, "batch")
        token_id = session.scalar(select(ApiToken.id).where(ApiToken.name == "batch"))
    assert token_id is not None
    # A recorder without its thread's delay in the way: flush() is called by hand.
    recorder = LastUsedRecorder(service.db, UsagePolicy(flush_delay=60, lock_timeout_ms=50))
    now = utcnow()
    token = VerifiedToken(
        id=token_id,
        name="batch",
        is_admin=True,
        last_used_at=None,
        user_id=1,
        user_email="a@b.test",
        user_name="",
        role=Role.ADMIN,
    )
    recorder.used(token, now)
    recorder.used(token, now + timedelta(seconds=30))  # within the resolution: nothing new
    assert recorder.pending == 1
    database = make_url(service.db.url).database
    assert database is not None
    holder = sqlite3.connect(database, isolation_level=None, timeout=0)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        assert recorder.flush() is False  # gave up after its short lock timeout
        assert time.monotonic() - started < 1.0
        assert recorder.pending == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert recorder.flush() is True
    assert recorder.pending == 0
    assert _last_used(service, "batch") == now
    # A row already newer than a note is not moved back.
    recorder.used(token, now + timedelta(minutes=5))
    with service.db.write() as session:
        session.get_one(ApiToken, token_id).last_used_at = now + timedelta(minutes=10)
    assert recorder.flush() is True
    assert _last_used(service, "batch") == now + timedelta(minutes=10)

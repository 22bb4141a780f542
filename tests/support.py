"""Helpers for whole-process tests: fast policies, polling, the API client, connection bodies."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.api.tokens import create_token
from postroom.channels.sink import MailboxSink
from postroom.channels.supervisor import SupervisorPolicy
from postroom.jobs.outbox import OutboxLimits, RetryPolicy
from postroom.pipeline.runner import RunnerLimits
from postroom.service import Policies, Service
from postroom.sources.base import FetchedMail, ImapCursor, Source
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.smtp import SmtpTestServer


def shared_dir() -> Path:
    """The workplace's shared folder (corpora, bench generator): ``../shared`` beside the project.

    ``POSTROOM_SHARED_DIR`` overrides it, for a checkout that does not sit beside it.
    """
    if os.environ.get("POSTROOM_SHARED_DIR"):
        return Path(os.environ["POSTROOM_SHARED_DIR"])
    beside = Path(__file__).resolve().parents[1].parent / "shared"
    return beside if beside.is_dir() else Path("/work/shared")


CORPUS = shared_dir() / "corpus"


# Background work paced for tests: the same code, shorter waits.
FAST = Policies(
    retry=RetryPolicy(first_delay=0.2, factor=2.0, max_delay=1.0, max_attempts=4),
    outbox=OutboxLimits(poll_seconds=0.2),
    pipeline=RunnerLimits(poll_seconds=0.2),
    supervisor=SupervisorPolicy(poll_seconds=0.2, lease_seconds=10, restart_first_delay=0.5),
)


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until ``predicate()`` is truthy and return it; fail the test with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)


class Api:
    """The API over HTTP semantics (FastAPI's TestClient), authenticated with a fresh admin token."""

    def __init__(self, service: Service) -> None:
        with service.db.write() as session:
            token = create_token(session, "tests")
        self.service = service
        self.client = TestClient(create_app(service))
        self.client.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(f"/api/v1{path}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def items(self, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged list (``{items, next_cursor}``), following ``next_cursor`` to the end."""
        items: list[dict[str, Any]] = []
        while True:
            page = self.get(path, **params)
            items += page["items"]
            if page["next_cursor"] is None:
                return items
            params = {**params, "cursor": page["next_cursor"]}

    def post(self, path: str, body: Any = None, expect: int | None = None) -> Any:
        response = self.client.post(f"/api/v1{path}", json=body)
        if expect is not None:
            assert response.status_code == expect, response.text
        else:
            assert response.status_code in (200, 201), response.text
        return response.json()

    def conversations(self, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.get("/conversations", **params)["items"]
        return items

    def wait_status(
        self, connection_id: int, status: str, timeout: float = 10.0, *, message: str = ""
    ) -> dict[str, Any]:
        """Wait for ``status`` (and, when given, a status message containing ``message``)."""
        result: dict[str, Any] = wait_until(
            lambda: (
                (c := self.get(f"/connections/{connection_id}"))["status"] == status
                and message in c["status_message"]
                and c
            ),
            timeout,
        )
        return result


DESK_CONNECTION: dict[str, Any] = {
    "name": "Support",
    "address": "support@example.test",
    "password": "pw",
    "imap_server": "imap.example.test",
    "smtp_server": "smtp.example.test",
    "email_name": "Example Support",
}


class Desk:
    """An API with one connection (``DESK_CONNECTION``), into whose mailbox mail is delivered as a source would."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.connection = api.post("/connections", DESK_CONNECTION, expect=201)
        mailbox_id = self.connection["mailboxes"][0]["id"]
        self.sink = MailboxSink(api.service.db, self.connection["id"], mailbox_id, on_stored=lambda n: None)
        self.uid = 0

    def deliver(self, *raws: bytes) -> None:
        mails = []
        for raw in raws:
            self.uid += 1
            mails.append(FetchedMail(uid=self.uid, raw=raw))
        self.sink.store(mails, ImapCursor(1, self.uid))
        self.api.service.pipeline.drain()


def connection_body(dovecot: DovecotServer, user: MailUser, smtp: SmtpTestServer, **overrides: Any) -> dict[str, Any]:
    """A connection for a Dovecot user (IMAPS, certificate validated against the test CA) and an SMTP server.

    The SMTP server learns the user's credentials, so that sending signs in as a real mailbox would.
    """
    smtp.add_user(user.address, user.password)
    body: dict[str, Any] = {
        "name": f"Support {user.address}",
        "mode": "imap",
        "address": user.address,
        "password": user.password,
        "imap_server": dovecot.host,
        "imap_port": dovecot.ports.imaps,
        "imap_encryption": "ssl",
        "validate_certificate": True,
        "smtp_server": smtp.host,
        "smtp_port": smtp.port,
        "smtp_encryption": {"plain": "none", "starttls": "starttls", "ssl": "ssl"}[smtp.mode],
        "check_interval": 15,
    }
    body.update(overrides)
    return body


@contextmanager
def running(source: Source) -> Iterator[threading.Event]:
    """Run a mail source in a thread for the block; stop it after and prove it stopped."""
    stop = threading.Event()
    thread = threading.Thread(target=source.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(5)
        assert not thread.is_alive()


def free_port() -> int:
    """A loopback port nobody listens on (for "connection refused" and for servers started later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

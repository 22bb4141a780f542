"""A ``kill -9`` of ``postroom serve`` in the middle of an import, on PostgreSQL with a second process.

Before, the mail the dead process had claimed waited for its claims to expire (124 s), and every
crash left its parser processes behind. Now the dead process's worker lease expires within seconds
and the other process takes its claims back; its parser processes and fork server die with it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from postroom.channels.sink import MailboxSink
from postroom.helpdesk.connections import ConnectionInput, ConnectionService
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.db import Database
from postroom.store.migrate import upgrade
from postroom.store.models import Lease, Message, RawMessage, RawStatus
from postroom.store.secretbox import SecretBox
from postroom.testing.database import postgres_available, postgres_schema
from postroom.testing.mails import make_mail
from support import free_port, wait_until

POSTROOM = str(Path(sys.executable).with_name("postroom"))
MAILS = 400


@pytest.fixture
def shared_postgres() -> Iterator[str]:
    problem = postgres_available()
    if problem is not None:
        pytest.skip(f"PostgreSQL not reachable: {problem}")
    with postgres_schema() as url:
        yield url


def _stat(pid: int) -> tuple[int, str, str] | None:
    """(parent pid, state, start time) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), fields[0], fields[19]


def descendants(root: int) -> dict[int, str]:
    """Every process below ``root`` (pid → start time), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _stat(int(entry))) is not None:
            children.setdefault(found[0], []).append(int(entry))
    out: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found = _stat(child)
            if found is not None:
                out[child] = found[2]
                todo.append(child)
    return out


def alive(processes: dict[int, str]) -> list[int]:
    """Those still running (a zombie waiting for a reaper is not running)."""
    return [
        pid for pid, started in processes.items() if (s := _stat(pid)) is not None and s[2] == started and s[1] != "Z"
    ]


def worker_leases(db: Database) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).select_from(Lease).where(Lease.name.startswith("worker:"))) or 0)


def statuses(db: Database) -> dict[RawStatus, int]:
    with db.read() as session:
        rows = session.execute(select(RawMessage.status, func.count()).group_by(RawMessage.status)).all()
    return {status: count for status, count in rows}


def test_after_a_kill_9_the_rest_is_imported_within_seconds_and_nothing_is_left_running(
    shared_postgres: str, tmp_path: Path
) -> None:
    key = Fernet.generate_key()
    (tmp_path / "secret.key").write_bytes(key + b"\n")
    db = Database(shared_postgres)
    upgrade(db)
    with db.write() as session:
        connection = ConnectionService(SecretBox(key)).create(
            session,
            ConnectionInput(name="Support", mode="forwarding", address="support@company.example", smtp_server="x"),
        )
        connection_id, mailbox_id = connection.id, connection.mailboxes[0].id
    env = {
        **os.environ,
        "POSTROOM_DATA_DIR": str(tmp_path),
        "POSTROOM_DATABASE_URL": shared_postgres,
        "POSTROOM_HTTP_BIND": f"127.0.0.1:{free_port()}",
        "POSTROOM_SMTP_BIND": "",
        "POSTROOM_LOG_LEVEL": "WARNING",
    }
    serve = subprocess.Popen([POSTROOM, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker: subprocess.Popen[bytes] | None = None
    try:
        port = env["POSTROOM_HTTP_BIND"].rsplit(":", 1)[1]

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=30, interval=0.1)
        # The second process runs before the crash, as it would beside the first on PostgreSQL: what is
        # measured is the takeover, not how long a process takes to start.
        worker = subprocess.Popen([POSTROOM, "worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: worker_leases(db) >= 2, timeout=30, interval=0.1)
        sink = MailboxSink(db, connection_id, mailbox_id, on_stored=lambda count: None)
        mails = [
            FetchedMail(uid=i + 1, raw=make_mail(f"Order {i}", sender=f"C{i} <c{i}@customer.example>"))
            for i in range(MAILS)
        ]
        sink.store(mails, ImapCursor(uidvalidity=1, last_uid=MAILS))
        wait_until(lambda: statuses(db).get(RawStatus.DONE, 0) >= 20, timeout=30, interval=0.01)
        family = descendants(serve.pid)
        serve.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        serve.wait(10)
        left = statuses(db)
        assert left.get(RawStatus.PROCESSING, 0) > 0, f"the dead process held no claims: {left}"
        assert family, "serve ran no parser processes"

        wait_until(lambda: statuses(db) == {RawStatus.DONE: MAILS}, timeout=20, interval=0.1)
        recovered = time.monotonic() - killed
        # The parser processes and the fork server died with the process that started them.
        assert wait_until(lambda: not alive(family), timeout=5) is True
        assert recovered < 15, f"imported {recovered:.1f} s after the kill"
        print(f"recovered {recovered:.1f} s after the kill, {left.get(RawStatus.PROCESSING, 0)} claims left behind")
        with db.read() as session:
            assert session.scalar(select(func.count()).select_from(Message)) == MAILS
    finally:
        for process in (serve, worker):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    process.kill()
        db.dispose()

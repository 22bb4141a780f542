"""The ``postroom`` command as a user runs it: a real process, real files, a real HTTP port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from postroom.service import Service
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.smtp import SmtpTestServer
from support import CORPUS, connection_body, free_port, wait_until

POSTROOM = str(Path(sys.executable).with_name("postroom"))


def run(*args: str, data_dir: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSTROOM_DATA_DIR": str(data_dir), "POSTROOM_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [POSTROOM, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin.decode() if stdin is not None else None,
        check=False,
    )


def test_parse_prints_one_json_object_per_file(tmp_path: Path) -> None:
    mail = tmp_path / "a.eml"
    mail.write_bytes(
        b"From: Ada <ada@example.test>\r\nTo: support@example.test\r\nSubject: Re: Hello\r\n"
        b"Message-ID: <m1@example.test>\r\nIn-Reply-To: <m0@example.test>\r\n\r\n"
        b"Thanks!\r\n\r\nOn Mon, 1 Jan 2024, Support <support@example.test> wrote:\r\n> Hello\r\n"
    )
    second = tmp_path / "b.eml"
    second.write_bytes(b"Subject: second\r\n\r\nbody\r\n")
    result = run("parse", str(mail), str(second), data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    first = json.loads(lines[0])
    for key in (
        "subject",
        "from",
        "to",
        "cc",
        "date",
        "message_id",
        "in_reply_to",
        "references",
        "text",
        "html",
        "reply_text",
        "signature",
        "quoted_text",
        "attachments",
        "classification",
    ):
        assert key in first
    assert first["subject"] == "Re: Hello"
    assert first["from"]["email"] == "ada@example.test"
    assert first["message_id"] == "m1@example.test"
    assert first["in_reply_to"] == "m0@example.test"
    assert first["reply_text"] == "Thanks!"
    assert "Hello" in first["quoted_text"]
    assert json.loads(lines[1])["subject"] == "second"


def test_parse_reads_attachments_from_a_corpus_mail(tmp_path: Path) -> None:
    manifest = CORPUS / "imap_tools_messages" / "manifest.jsonl"
    if not manifest.exists():
        pytest.skip(f"corpus not found at {CORPUS}")
    case = next(
        json.loads(line)
        for line in manifest.read_text().splitlines()
        if json.loads(line)["expected"].get("attachments")
    )
    result = run("parse", str(CORPUS / "imap_tools_messages" / case["input"]), data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    expected = {a["sha256"] for a in case["expected"]["attachments"]}
    assert expected <= {a["sha256"] for a in parsed["attachments"]}
    assert {"filename", "content_type", "size", "sha256", "inline", "content_id"} <= set(parsed["attachments"][0])


def test_parse_body_splits_a_plain_text_body(tmp_path: Path) -> None:
    body = tmp_path / "body.txt"
    body.write_text(
        "Sounds good.\n\n-- \nBo\n\nOn Tue, Jan 2, 2024 at 9:00 AM Ada <ada@example.test> wrote:\n> Shall we?\n"
    )
    result = run("parse", "--body", str(body), data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    parsed = json.loads(result.stdout)
    assert parsed["reply_text"] == "Sounds good."
    assert "Bo" in parsed["signature"]
    assert "Shall we?" in parsed["quoted_text"]


def test_token_create_and_migrate_work_on_a_fresh_data_dir(tmp_path: Path) -> None:
    migrated = run("migrate", data_dir=tmp_path)
    assert migrated.returncode == 0, migrated.stderr
    assert "revision" in migrated.stdout
    token = run("token", "create", "--name", "ci", data_dir=tmp_path)
    assert token.returncode == 0, token.stderr
    assert token.stdout.strip().startswith("pr_")
    assert (tmp_path / "postroom.db").exists()
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    nothing = run("replay", data_dir=tmp_path)
    assert nothing.returncode == 0
    assert "nothing quarantined" in nothing.stdout
    # Named ids that cannot be replayed are each said so, and the command fails.
    unknown = run("replay", "99999", data_dir=tmp_path)
    assert unknown.returncode == 1
    assert unknown.stderr == "99999\tno such raw message\n"


def test_serve_starts_on_embedded_defaults_and_prints_a_token(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "POSTROOM_DATA_DIR": str(tmp_path / "data"),
        "POSTROOM_HTTP_BIND": f"127.0.0.1:{port}",
        "POSTROOM_SMTP_BIND": f"127.0.0.1:{free_port()}",
        "POSTROOM_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen([POSTROOM, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "postroom serve did not answer /health within 30 s"
            time.sleep(0.1)
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    token = next(word for word in out.split() if word.startswith("pr_"))
    assert "First start" in out
    # And how to make a user who signs in with a password.
    assert "postroom user create you@example.com" in out
    # uvicorn re-raises the SIGTERM it caught; serve takes it as the request it is and closes the service.
    assert process.returncode == 0, err
    assert "Traceback" not in err
    # The token printed on the first start is a working admin token.
    process = subprocess.Popen([POSTROOM, "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/connections", headers={"Authorization": f"Bearer {token}"}
                )
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 200
        assert response.json() == {"items": [], "next_cursor": None}
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=30)
    assert "First start" not in out  # a token exists now: no new one is printed


def test_a_wrong_setting_is_named_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "POSTROOM_DATA_DIR": str(tmp_path), "POSTROOM_HTTP_BIND": "localhost"}
    result = subprocess.run([POSTROOM, "migrate"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "POSTROOM_HTTP_BIND" in result.stderr
    assert "Traceback" not in result.stderr


def test_inbox_start_stop_and_list_work_on_the_stored_connection(tmp_path: Path) -> None:
    from postroom.helpdesk.connections import ConnectionInput
    from postroom.service import Service
    from postroom.settings import Settings

    service = Service(Settings(data_dir=tmp_path))
    service.migrate()
    with service.db.write() as session:
        service.connections.create(
            session,
            ConnectionInput(
                name="Help Desk",
                address="help@example.test",
                password="pw",
                imap_server="imap.example.test",
                smtp_server="smtp.example.test",
            ),
        )
    service.close()

    def stored() -> tuple[bool, str]:
        again = Service(Settings(data_dir=tmp_path))
        try:
            with again.db.read() as session:
                connection = again.connections.get_by_name(session, "Help Desk")
                return connection.enabled, connection.status.value
        finally:
            again.close()

    started = run("inbox", "start", "Help Desk", data_dir=tmp_path)
    assert started.returncode == 0, started.stderr
    assert stored() == (True, "STARTING")
    listed = run("inbox", "list", data_dir=tmp_path)
    assert "Help Desk" in listed.stdout
    assert "STARTING" in listed.stdout
    stopped = run("inbox", "stop", "Help Desk", data_dir=tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    # No worker owns it: the command itself records STOPPED.
    assert stored() == (False, "STOPPED")
    missing = run("inbox", "start", "No Such Inbox", data_dir=tmp_path)
    assert missing.returncode != 0
    assert "No Such Inbox" in missing.stdout + missing.stderr


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_sigterm_stops_the_connections_and_hands_them_over_at_once(
    command: str,
    tmp_path: Path,
    make_service: Callable[..., Service],
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    make_smtp_server: Callable[..., SmtpTestServer],
) -> None:
    from postroom.helpdesk.connections import ConnectionInput
    from postroom.jobs.leases import connection_lease
    from postroom.store.models import Connection, ConnectionLog, Lease

    smtp_server = make_smtp_server("plain", auth_required=True)
    data_dir = tmp_path / "data"
    # The installation the process will run: one connection, enabled, on a real Dovecot and SMTP server.
    setup = make_service(start=False, data_dir=data_dir)
    with setup.db.write() as session:
        spec = ConnectionInput.model_validate(connection_body(dovecot, dovecot_user, smtp_server))
        connection = setup.connections.create(session, spec)
        setup.connections.start(session, connection)
        connection_id = connection.id

    def status() -> str:
        with setup.db.read() as session:
            row = session.get(Connection, connection_id)
            return row.status.value if row else ""

    env = {
        **os.environ,
        "POSTROOM_DATA_DIR": str(data_dir),
        "POSTROOM_HTTP_BIND": f"127.0.0.1:{free_port()}",
        "POSTROOM_SMTP_BIND": f"127.0.0.1:{free_port()}",
        "POSTROOM_LOG_LEVEL": "WARNING",
        # Held without renewal for far longer than the test: only a release lets another worker in.
        "POSTROOM_LEASE_SECONDS": "600",
    }
    process = subprocess.Popen([POSTROOM, command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: status() == "RUNNING" or process.poll() is not None, timeout=30)
        assert process.poll() is None, process.communicate()
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "stopped" in out
    with setup.db.read() as session:
        entries = [(e.event, e.message) for e in session.query(ConnectionLog).filter_by(connection_id=connection_id)]
        lease = session.get(Lease, connection_lease(connection_id))
        enabled = session.get(Connection, connection_id).enabled  # type: ignore[union-attr]
    assert ("stopped", "stopped") in entries
    assert lease is None
    # A process shutdown is no Stop: the connection stays enabled for the next worker.
    assert enabled

    # Another worker takes the connection at once, not after the lease would have run out.
    other = make_service(data_dir=data_dir)
    wait_until(lambda: connection_id in other.supervisor.runners, timeout=10)
    wait_until(lambda: status() == "RUNNING", timeout=20)

"""``postroom inbox test NAME``: a real process testing a connection against real Dovecot and aiosmtpd."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from postroom.helpdesk.connections import ConnectionInput
from postroom.service import Service
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.smtp import SmtpTestServer
from support import connection_body

POSTROOM = str(Path(sys.executable).with_name("postroom"))


def run(*args: str, data_dir: Path, encoding: str = "utf-8") -> subprocess.CompletedProcess[str]:
    # SSL_CERT_FILE (the test CA, set for the session) reaches the process through os.environ.
    env = {
        **os.environ,
        "POSTROOM_DATA_DIR": str(data_dir),
        "POSTROOM_LOG_LEVEL": "WARNING",
        "PYTHONIOENCODING": encoding,
    }
    return subprocess.run(
        [POSTROOM, *args], env=env, capture_output=True, text=True, encoding=encoding, timeout=60, check=False
    )


@pytest.fixture
def installation(
    make_service: Callable[..., Service],
    tmp_path: Path,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    make_smtp_server: Callable[..., SmtpTestServer],
) -> Callable[..., Path]:
    """A data dir holding one connection named "Support" for the Dovecot user; returns the data dir."""

    def make(**overrides: Any) -> Path:
        data_dir = tmp_path / "data"
        service = make_service(start=False, data_dir=data_dir)
        smtp = make_smtp_server("starttls", auth_required=True)
        body = connection_body(dovecot, dovecot_user, smtp, name="Support", **overrides)
        with service.db.write() as session:
            service.connections.create(session, ConnectionInput(**body))
        return data_dir

    return make


def test_a_working_connection_prints_a_tick_per_step_and_exits_0(
    installation: Callable[..., Path], dovecot_user: MailUser
) -> None:
    data_dir = installation()

    result = run("inbox", "test", "Support", "--timeout", "5", data_dir=data_dir)

    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 10
    assert all(line.startswith(f"✓ {dovecot_user.address}  ") for line in lines[:9])
    assert lines[0].split()[2:5] == ["incoming", "IMAP", "dns"]
    assert "ms  127.0.0.1 is an IP address" in lines[0]
    assert lines[4].split()[2:5] == ["incoming", "IMAP", "folder"]
    assert lines[8].split()[2:5] == ["outgoing", "SMTP", "signin"]
    assert lines[9] == "OK: all 9 checks passed for 1 mailbox(es)"


def test_a_failing_step_is_marked_and_exits_1_in_plain_ascii_too(
    installation: Callable[..., Path], dovecot_user: MailUser
) -> None:
    data_dir = installation(password="Not-The-Password-1")

    result = run("inbox", "test", "Support", "--timeout", "5", data_dir=data_dir, encoding="ascii")

    assert result.returncode == 1
    lines = result.stdout.splitlines()
    signin = next(line for line in lines if line.split()[2:5] == ["incoming", "IMAP", "signin"])
    assert signin.startswith("FAIL ")
    assert signin.endswith("[AUTHENTICATIONFAILED] Authentication failed.")
    folder = next(line for line in lines if line.split()[2:5] == ["incoming", "IMAP", "folder"])
    assert folder.startswith("-    ") and folder.endswith("not run: signin failed")
    assert lines[0].startswith("OK   ")
    assert lines[-1].startswith("FAILED: 2 of 8 checks failed: ")
    assert "Not-The-Password-1" not in result.stdout + result.stderr


def test_roundtrip_and_timeout_options_reach_the_probe(installation: Callable[..., Path]) -> None:
    # The SMTP server accepts but delivers nowhere: the roundtrip gives up after --timeout.
    data_dir = installation()

    result = run("inbox", "test", "Support", "--roundtrip", "--timeout", "0.5", data_dir=data_dir)

    assert result.returncode == 1
    arrival = next(line for line in result.stdout.splitlines() if line.split()[2:5] == ["roundtrip", "IMAP", "arrival"])
    assert arrival.startswith("✗ ")
    assert "did not arrive in INBOX within 0.5 s" in arrival


def test_send_to_sends_a_test_mail(installation: Callable[..., Path], dovecot_user: MailUser) -> None:
    data_dir = installation()

    result = run("inbox", "test", "Support", "--send-to", "ann@customer.example", data_dir=data_dir)

    assert result.returncode == 0, result.stdout + result.stderr
    test_mail = next(line for line in result.stdout.splitlines() if " test_mail " in line)
    assert test_mail.startswith("✓ ")
    assert "accepted the test mail to ann@customer.example" in test_mail


def test_an_unknown_name_is_an_error(installation: Callable[..., Path]) -> None:
    data_dir = installation()

    result = run("inbox", "test", "Nobody", data_dir=data_dir)

    assert result.returncode == 1
    assert result.stderr.strip() == "error: no connection named 'Nobody'"

"""``postroom user`` and ``postroom token create --user`` as a user runs them: a real process, real files."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from postroom.api.tokens import verify_token
from postroom.helpdesk.users import UserService
from postroom.settings import Settings
from postroom.store.db import Database

POSTROOM = str(Path(sys.executable).with_name("postroom"))
PASSWORD = "correct horse battery"


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSTROOM_DATA_DIR": str(data_dir), "POSTROOM_LOG_LEVEL": "WARNING"}
    return subprocess.run(
        [POSTROOM, *args], env=env, capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL
    )


def test_user_create_list_disable_and_a_token_of_the_user(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text(PASSWORD + "\n")
    made = run(
        "user",
        "create",
        "Ann@Example.com",
        "--name",
        "Ann",
        "--role",
        "agent",
        "--password-file",
        str(secret),
        data_dir=tmp_path,
    )
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("created ") and "ann@example.com\tagent" in made.stdout
    assert PASSWORD not in made.stdout + made.stderr

    again = run("user", "create", "ann@example.com", "--password-file", str(secret), data_dir=tmp_path)
    assert again.returncode == 1
    assert again.stderr == "error: a user with the address ann@example.com exists already\n"
    short = tmp_path / "short"
    short.write_text("short\n")
    refused = run("user", "create", "bob@example.com", "--password-file", str(short), data_dir=tmp_path)
    assert refused.returncode == 1 and "at least 10 characters" in refused.stderr
    assert run("user", "create", "bob@example.com", "--role", "boss", data_dir=tmp_path).returncode == 2

    token = run("token", "create", "--name", "ann's script", "--user", "ann@example.com", data_dir=tmp_path)
    assert token.returncode == 0, token.stderr
    listed = run("user", "list", data_dir=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert ["ann@example.com", "agent", "enabled", "Ann"] in [row[1:] for row in rows]

    db = Database(Settings(data_dir=tmp_path).resolved_database_url)
    try:
        with db.read() as session:
            verified = verify_token(session, token.stdout.strip())
            assert verified is not None and verified.user_email == "ann@example.com" and not verified.is_admin
        assert UserService().authenticate(db, "ann@example.com", PASSWORD, "127.0.0.1").email == "ann@example.com"

        disabled = run("user", "disable", "ann@example.com", data_dir=tmp_path)
        assert disabled.returncode == 0, disabled.stderr
        assert "ann@example.com disabled: 0 conversation(s) back to the queue, 1 token(s) revoked" in disabled.stdout
        with db.read() as session:
            assert verify_token(session, token.stdout.strip()) is None
        assert "\tdisabled\t" in run("user", "list", data_dir=tmp_path).stdout
    finally:
        db.dispose()
    missing = run("user", "disable", "nobody@example.com", data_dir=tmp_path)
    assert missing.returncode == 1 and "no user with the address nobody@example.com" in missing.stderr

"""``postroom inbox create | update`` and where secrets go: the same rules as the API, from a shell and a file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from postroom.service import Service
from test_cli import run

SETTINGS = [
    "address=support@example.test",
    "imap_server=imap.example.test",
    "smtp_server=smtp.example.test",
    "password=pw-1",
]


@pytest.fixture
def data_dir(make_service: Callable[..., Service], tmp_path: Path) -> Path:
    directory = tmp_path / "installation"
    make_service(start=False, data_dir=directory)
    return directory


def test_plain_text_needs_allow_plaintext_auth_and_is_warned_about(data_dir: Path) -> None:
    refused = run("inbox", "create", "Support", *SETTINGS, "imap_encryption=none", data_dir=data_dir)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: imap_encryption: is none: the IMAP password would go unencrypted")

    created = run(
        "inbox", "create", "Support", *SETTINGS, "imap_encryption=none", "allow_plaintext_auth=true", data_dir=data_dir
    )
    assert created.returncode == 0, created.stderr
    view = json.loads(created.stdout)
    assert view["allow_plaintext_auth"] is True
    assert created.stderr == f"warning: {view['warnings'][0]}\n"


def test_an_env_file_that_moves_the_server_needs_the_password_again(data_dir: Path, tmp_path: Path) -> None:
    assert run("inbox", "create", "Support", *SETTINGS, data_dir=data_dir).returncode == 0
    same = tmp_path / "same.env"
    same.write_text("imap_server=imap.example.test\nimap_port=993\nimap_encryption=SSL\nEMAIL_NAME=Help\n")
    assert run("inbox", "update", "Support", "--from", str(same), data_dir=data_dir).returncode == 0

    moved = tmp_path / "moved.env"
    moved.write_text("imap_server=imap.example.test\nimap_port=11999\n")
    refused = run("inbox", "update", "Support", "--from", str(moved), data_dir=data_dir)
    assert refused.returncode == 1
    assert "imap_port changed: re-enter password" in refused.stderr

    done = run("inbox", "update", "Support", "--from", str(moved), "password=pw-2", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["imap_port"] == 11999

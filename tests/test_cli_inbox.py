"""``postroom inbox create | update | show | delete``: connections managed from a shell, as a real process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from postroom.service import Service
from test_cli import run

SETTINGS = [
    "address=support@example.test",
    "imap_server=imap.example.test",
    "smtp_server=smtp.example.test",
]


@pytest.fixture
def data_dir(make_service: Callable[..., Service], tmp_path: Path) -> Path:
    """An installation (migrated database, secret key) that the command's processes share."""
    directory = tmp_path / "installation"
    make_service(start=False, data_dir=directory)
    return directory


def stored(make_service: Callable[..., Service], data_dir: Path, name: str) -> Any:
    """The connection's first mailbox as stored, and the service that can decrypt its secrets."""
    service = make_service(start=False, data_dir=data_dir)
    with service.db.read() as session:
        connection = service.connections.get_by_name(session, name)
        return service, connection, connection.mailboxes[0]


def test_create_takes_settings_as_arguments_with_secrets_from_a_file(
    make_service: Callable[..., Service], data_dir: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "password.txt"
    secret.write_text("s3cret, with a comma\n")  # a file keeps it out of the shell history; commas stay

    result = run(
        "inbox", "create", "Support", *SETTINGS, f"password=@{secret}", "EMAIL_NAME=Acme, Inc.", data_dir=data_dir
    )

    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert (view["name"], view["address"], view["email_name"]) == ("Support", "support@example.test", "Acme, Inc.")
    assert view["password"] == "********"
    assert "s3cret" not in result.stdout
    service, _, box = stored(make_service, data_dir, "Support")
    assert service.secrets.decrypt(box.password_enc) == "s3cret, with a comma"

    shown = run("inbox", "show", "Support", data_dir=data_dir)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == view


def test_create_reads_a_file_of_seed_variables(make_service: Callable[..., Service], data_dir: Path) -> None:
    env_file = data_dir / "billing.env"
    env_file.write_text(
        "# Billing mailbox (seed 003 variable names)\n"
        "export IMAP_SERVER=imap.example.test\n"
        "ADDRESS=billing@example.test\n"
        "PASSWORD='pass word'\n"
        'SMTP_SERVER="smtp.example.test"\n'
        "IMAP_MAILBOX=Support/Billing\n"
        "CHECK_INTERVAL=30, 20\n"
    )

    result = run("inbox", "create", "Billing", "--from", str(env_file), "email_name=Billing", data_dir=data_dir)

    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert (view["imap_mailbox"], view["check_interval"], view["email_name"]) == ("Support/Billing", 20, "Billing")
    service, _, box = stored(make_service, data_dir, "Billing")
    assert service.secrets.decrypt(box.password_enc) == "pass word"


def test_bad_settings_are_named_and_nothing_is_created(data_dir: Path) -> None:
    unknown = run("inbox", "create", "Support", *SETTINGS, "password=x", "imap_prot=993", data_dir=data_dir)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: imap_prot: Extra inputs are not permitted")

    wrong = run("inbox", "create", "Support", *SETTINGS, "password=x", "smtp_port=70000", data_dir=data_dir)
    assert wrong.returncode == 1
    assert "smtp_port" in wrong.stderr

    malformed = run("inbox", "create", "Support", *SETTINGS, "password", data_dir=data_dir)
    assert malformed.returncode == 2
    assert "expected KEY=VALUE" in malformed.stderr

    assert run("inbox", "list", data_dir=data_dir).stdout == ""


def test_update_changes_what_is_given_and_removes_a_secret(
    make_service: Callable[..., Service], data_dir: Path
) -> None:
    created = run("inbox", "create", "Support", *SETTINGS, "password=one", "smtp_password=two", data_dir=data_dir)
    assert created.returncode == 0, created.stderr

    updated = run("inbox", "update", "Support", "EMAIL_NAME=Help", "--remove", "smtp_password", data_dir=data_dir)

    assert updated.returncode == 0, updated.stderr
    view = json.loads(updated.stdout)
    assert (view["email_name"], view["smtp_password"], view["password"]) == ("Help", "", "********")
    service, connection, box = stored(make_service, data_dir, "Support")
    assert box.smtp_password_enc == ""
    assert service.secrets.decrypt(box.password_enc) == "one"
    assert connection.revision == 2  # a running connection restarts with the change

    nothing = run("inbox", "update", "Support", data_dir=data_dir)
    assert nothing.returncode == 1
    assert "nothing to change" in nothing.stderr


def test_delete_needs_the_name_as_confirmation(data_dir: Path) -> None:
    assert run("inbox", "create", "Support", *SETTINGS, "password=x", data_dir=data_dir).returncode == 0

    refused = run("inbox", "delete", "Support", "--confirm", "support", data_dir=data_dir)
    assert refused.returncode == 1
    assert "does not match the connection name" in refused.stderr

    deleted = run("inbox", "delete", "Support", "--confirm", "Support", data_dir=data_dir)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == "Support: deleted\n"
    assert run("inbox", "show", "Support", data_dir=data_dir).returncode == 1


def test_remove_clears_a_setting_that_is_not_a_secret(make_service: Callable[..., Service], data_dir: Path) -> None:
    created = run(
        "inbox", "create", "Support", *SETTINGS, "password=one", "reply_to=help@example.test", data_dir=data_dir
    )
    assert created.returncode == 0, created.stderr

    updated = run("inbox", "update", "Support", "--remove", "reply_to", "--remove", "email_name", data_dir=data_dir)

    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["reply_to"] == ""
    service, _, box = stored(make_service, data_dir, "Support")
    assert box.reply_to == ""
    assert service.secrets.decrypt(box.password_enc) == "one"  # a secret is removed only when named


def test_values_the_database_cannot_hold_are_named_without_a_traceback(data_dir: Path) -> None:
    long_name = run("inbox", "create", "N" * 300, *SETTINGS, "password=x", data_dir=data_dir)
    assert long_name.returncode == 1
    assert long_name.stderr.startswith("error: name: is 300 characters long")
    assert "Traceback" not in long_name.stderr

    assert run("inbox", "create", "Support", *SETTINGS, "password=x", data_dir=data_dir).returncode == 0
    long_field = run("inbox", "update", "Support", "email_name=" + "E" * 300, data_dir=data_dir)
    assert long_field.returncode == 1
    assert long_field.stderr.startswith("error: email_name: is 300 characters long")
    header = run("inbox", "update", "Support", "email_name=Evil\r\nBcc: x@example.test", data_dir=data_dir)
    assert header.returncode == 1
    assert header.stderr.startswith("error: email_name: must not contain control characters")
    assert "Traceback" not in long_field.stderr + header.stderr


def test_env_files_with_a_bom_quotes_over_lines_and_escapes_are_read(
    make_service: Callable[..., Service], data_dir: Path
) -> None:
    env_file = data_dir / "support.env"
    env_file.write_bytes(
        "\ufeffADDRESS=support@example.test\n"
        "IMAP_SERVER=imap.example.test\n"
        "SMTP_SERVER=smtp.example.test\n"
        "PASSWORD='p\\w \"x\"'\n"
        'SMTP_SIGNATURE="-- \n{{ sender_name }}\\nCafé \\"Support\\"" # a comment after the value\n'.encode()
    )

    result = run("inbox", "create", "Support", "--from", str(env_file), data_dir=data_dir)

    assert result.returncode == 0, result.stderr
    view = json.loads(result.stdout)
    assert view["smtp_signature"] == '-- \n{{ sender_name }}\nCafé "Support"'
    service, _, box = stored(make_service, data_dir, "Support")
    assert service.secrets.decrypt(box.password_enc) == 'p\\w "x"'  # single quotes: as written


def test_env_files_that_are_not_utf8_or_never_close_a_quote_are_named(data_dir: Path) -> None:
    latin = data_dir / "latin.env"
    latin.write_bytes(b"EMAIL_NAME=Caf\xe9\n")
    open_quote = data_dir / "open.env"
    open_quote.write_text('SMTP_SIGNATURE="Regards\nnever closed\n')

    not_utf8 = run("inbox", "create", "A", "--from", str(latin), data_dir=data_dir)
    unclosed = run("inbox", "create", "B", "--from", str(open_quote), data_dir=data_dir)

    assert not_utf8.returncode == 2 and "Traceback" not in not_utf8.stderr
    assert "is not UTF-8 text" in not_utf8.stderr
    assert unclosed.returncode == 2
    assert "the quoted value of SMTP_SIGNATURE is never closed" in unclosed.stderr

"""A POP3 connection end to end: Start signs in over POP3 and SMTP, mail becomes conversations, deletion on request."""

from __future__ import annotations

from collections.abc import Callable

from postroom.service import Service
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.smtp import SmtpTestServer
from support import Api, connection_body, wait_until


def pop3_body(dovecot: DovecotServer, user: MailUser, smtp: SmtpTestServer, **overrides: object) -> dict[str, object]:
    body = connection_body(dovecot, user, smtp, mode="pop3", check_interval=1, **overrides)
    for field in ("imap_server", "imap_port", "imap_encryption"):
        del body[field]
    body.update(pop3_server=dovecot.host, pop3_port=dovecot.ports.pop3s, pop3_encryption="ssl")
    return body


def maildir_count(dovecot: DovecotServer, user: MailUser) -> int:
    root = dovecot.maildir(user)
    return sum(1 for sub in ("new", "cur") if (root / sub).exists() for _ in (root / sub).iterdir())


def test_pop3_mail_becomes_conversations_and_stays_on_the_server_by_default(
    make_service: Callable[..., Service], dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    api = Api(make_service())
    created = api.post("/connections", pop3_body(dovecot, dovecot_user, smtp_server), expect=201)
    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING")
    dovecot.append(dovecot_user, make_mail("Printer on fire", sender="Ann <ann@customer.example>"))
    conversations = wait_until(lambda: api.conversations(), timeout=10)
    assert conversations[0]["subject"] == "Printer on fire"
    logs = [line["message"] for line in api.items(f"/connections/{created['id']}/logs")]
    assert any("POP3" in line for line in logs)
    assert maildir_count(dovecot, dovecot_user) == 1


def test_delete_after_import_empties_the_mailbox_only_after_storing(
    make_service: Callable[..., Service], dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    dovecot.append(dovecot_user, make_mail("One", sender="Bob <bob@customer.example>"))
    api = Api(make_service())
    body = pop3_body(dovecot, dovecot_user, smtp_server, delete_after_import=True)
    created = api.post("/connections", body, expect=201)
    api.post(f"/connections/{created['id']}/start")
    wait_until(lambda: api.conversations(), timeout=10)
    wait_until(lambda: maildir_count(dovecot, dovecot_user) == 0, timeout=10)
    raws = api.items("/raw-messages")
    assert [r["origin"] for r in raws] == ["pop3"]


def test_a_wrong_pop3_password_stops_start_with_the_account_and_protocol(
    make_service: Callable[..., Service], dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    api = Api(make_service())
    body = pop3_body(dovecot, dovecot_user, smtp_server, password="wrong-password")
    created = api.post("/connections", body, expect=201)
    api.post(f"/connections/{created['id']}/start")
    failed = api.wait_status(created["id"], "ERROR")
    assert "POP3" in failed["status_message"]
    assert dovecot_user.address in failed["status_message"]
    assert "wrong-password" not in failed["status_message"]

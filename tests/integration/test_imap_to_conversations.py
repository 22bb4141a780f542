"""Issue 2 end to end: a real Dovecot mailbox becomes conversations; agents reply through a real SMTP server."""

from __future__ import annotations

import email
import time
from email import policy
from typing import Any

import pytest
from sqlalchemy import func, select

from postroom.service import Service
from postroom.store.models import Message, RawMessage, RawStatus
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.smtp import SmtpTestServer
from support import Api, connection_body, wait_until


def start_connection(api: Api, body: dict[str, Any]) -> int:
    created = api.post("/connections", body, expect=201)
    api.post(f"/connections/{created['id']}/start")
    api.wait_status(created["id"], "RUNNING")
    return int(created["id"])


def count(service: Service, model: Any, *where: Any) -> int:
    with service.db.read() as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def test_appended_mail_becomes_a_conversation_through_idle_within_two_seconds(
    api: Api, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    # A check interval of an hour: only IDLE can bring the mail in time.
    connection_id = start_connection(api, connection_body(dovecot, dovecot_user, smtp_server, check_interval=3600))
    time.sleep(0.3)  # let the source settle into IDLE after its first sync
    started = time.monotonic()
    dovecot.append(dovecot_user, make_mail("Where is my parcel?", sender="Ada <ada@customer.example>"))
    conversations = wait_until(lambda: api.conversations(connection_id=connection_id), timeout=2.0)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0
    assert conversations[0]["subject"] == "Where is my parcel?"
    assert conversations[0]["contact"]["email"] == "ada@customer.example"
    detail = api.get(f"/conversations/{conversations[0]['id']}")
    assert detail["description"].startswith("Hello,")
    assert [m["direction"] for m in detail["messages"]] == ["in"]


def test_reply_is_threaded_and_the_customers_answer_joins_the_conversation(
    api: Api, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    connection_id = start_connection(
        api,
        connection_body(
            dovecot,
            dovecot_user,
            smtp_server,
            email_name="Example Support",
            smtp_signature="-- \n{{ sender_name }} <{{ sender_email }}>",
        ),
    )
    dovecot.append(
        dovecot_user,
        make_mail("Re: Broken login", message_id="first@customer.example", sender="Bo <bo@customer.example>"),
    )
    conversation = wait_until(lambda: api.conversations(connection_id=connection_id))[0]

    reply = api.post(f"/conversations/{conversation['id']}/messages", {"text": "We reset it.", "author": "Alice"}, 201)
    assert reply["delivery_status"] in ("queued", "sending", "sent")
    received = smtp_server.wait_for(1)[0]
    sent = email.message_from_bytes(received.raw, policy=policy.default)
    assert received.recipients == ("bo@customer.example",)
    assert received.envelope_from == dovecot_user.address
    assert sent["Subject"] == "Re: Broken login"  # never "Re: Re:"
    assert sent["In-Reply-To"] == "<first@customer.example>"
    assert "<first@customer.example>" in sent["References"]
    assert sent["From"].addresses[0].display_name == "Example Support"
    assert sent["From"].addresses[0].addr_spec == dovecot_user.address
    assert sent["Message-ID"].endswith(f"@{dovecot_user.address.split('@')[1]}>")
    assert sent["Date"] is not None
    body = sent.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "We reset it." in text
    assert f"Alice <{dovecot_user.address}>" in text  # the signature with its placeholders filled
    wait_until(lambda: api.get(f"/conversations/{conversation['id']}")["messages"][-1]["delivery_status"] == "sent")

    # The customer answers with a new subject: In-Reply-To alone threads it.
    answer = make_mail(
        "something else entirely",
        sender="Bo <bo@customer.example>",
        headers=[("In-Reply-To", sent["Message-ID"]), ("References", sent["Message-ID"])],
    )
    dovecot.append(dovecot_user, answer)
    detail = wait_until(
        lambda: (d := api.get(f"/conversations/{conversation['id']}")) and len(d["messages"]) == 3 and d
    )
    assert [m["direction"] for m in detail["messages"]] == ["in", "out", "in"]
    assert len(api.conversations(connection_id=connection_id)) == 1


def test_mail_marked_seen_before_postroom_sees_it_is_still_imported(
    api: Api, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    dovecot.append(dovecot_user, make_mail("Read by a colleague first"), flags=[r"\Seen"])
    connection_id = start_connection(api, connection_body(dovecot, dovecot_user, smtp_server))
    conversations = wait_until(lambda: api.conversations(connection_id=connection_id))
    assert conversations[0]["subject"] == "Read by a colleague first"


@pytest.mark.parametrize("mark_as_read", [True, False])
def test_imported_mail_is_marked_seen_only_when_asked(
    api: Api, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer, mark_as_read: bool
) -> None:
    uid = dovecot.append(dovecot_user, make_mail("Flag me or not"))
    connection_id = start_connection(
        api, connection_body(dovecot, dovecot_user, smtp_server, mark_as_read=mark_as_read)
    )
    wait_until(lambda: api.conversations(connection_id=connection_id))
    if mark_as_read:
        wait_until(lambda: r"\Seen" in dovecot.flags(dovecot_user)[uid])
    else:
        time.sleep(0.3)
        assert r"\Seen" not in dovecot.flags(dovecot_user)[uid]


def test_restart_and_uidvalidity_change_import_nothing_twice(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    # mark_as_read off: only the cursor (not the \Seen flag) can prevent a second import.
    body = connection_body(dovecot, dovecot_user, smtp_server, mark_as_read=False)
    connection_id = start_connection(api, body)
    senders = [f"Customer {i} <c{i}@customer.example>" for i in range(3)]
    for sender in senders:
        dovecot.append(dovecot_user, make_mail(f"Question from {sender}", sender=sender))
    wait_until(lambda: len(api.conversations(connection_id=connection_id)) == 3)

    api.post(f"/connections/{connection_id}/stop")
    api.wait_status(connection_id, "STOPPED")
    dovecot.append(dovecot_user, make_mail("While stopped", sender="Dee <dee@customer.example>"))
    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")
    wait_until(lambda: len(api.conversations(connection_id=connection_id)) == 4)

    api.post(f"/connections/{connection_id}/stop")
    api.wait_status(connection_id, "STOPPED")
    old = dovecot.uidvalidity(dovecot_user)
    new = dovecot.change_uidvalidity(dovecot_user)
    assert new != old
    api.post(f"/connections/{connection_id}/start")
    api.wait_status(connection_id, "RUNNING")
    dovecot.append(dovecot_user, make_mail("After the renumbering", sender="Eve <eve@customer.example>"))
    wait_until(lambda: len(api.conversations(connection_id=connection_id)) == 5)
    time.sleep(0.5)  # anything imported twice would show up by now
    assert len(api.conversations(connection_id=connection_id)) == 5
    assert count(service, Message) == 5
    # The resync skipped the known mails by Message-ID instead of fetching them again.
    assert count(service, RawMessage) == 5
    assert count(service, RawMessage, RawMessage.status == RawStatus.DUPLICATE) == 0


def test_malformed_mail_is_quarantined_and_the_mails_after_it_are_imported(
    api: Api, service: Service, dovecot: DovecotServer, dovecot_user: MailUser, smtp_server: SmtpTestServer
) -> None:
    dovecot.append(dovecot_user, make_mail("Before", sender="A <a@customer.example>"))
    dovecot.append(dovecot_user, b"this is not an email at all\r\njust some words\r\n")
    dovecot.append(dovecot_user, make_mail("After", sender="B <b@customer.example>"))
    connection_id = start_connection(api, connection_body(dovecot, dovecot_user, smtp_server))
    wait_until(lambda: len(api.conversations(connection_id=connection_id)) == 2)
    quarantined = wait_until(lambda: api.items("/raw-messages", status="quarantined"))
    assert len(quarantined) == 1
    assert "parse" in quarantined[0]["error"]
    assert {c["subject"] for c in api.conversations(connection_id=connection_id)} == {"Before", "After"}
    # Replay runs it again and it stays quarantined with its reason; nothing else moves.
    assert api.post("/raw-messages/replay", {"ids": [quarantined[0]["id"]]})["queued"] == 1
    again = wait_until(lambda: api.items("/raw-messages", status="quarantined"))
    assert again[0]["attempts"] == 2
    assert count(service, RawMessage, RawMessage.status == RawStatus.DONE) == 2


@pytest.mark.parametrize(
    ("change", "protocol"),
    [
        ({"password": "wrong-password"}, "IMAP"),
        ({"imap_port": 1}, "IMAP"),
        ({"smtp_port": 1}, "SMTP"),
    ],
    ids=["wrong-password", "wrong-imap-port", "wrong-smtp-port"],
)
def test_bad_settings_give_error_naming_account_and_protocol(
    api: Api,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    smtp_server: SmtpTestServer,
    change: dict[str, Any],
    protocol: str,
) -> None:
    body = connection_body(dovecot, dovecot_user, smtp_server, **change)
    created = api.post("/connections", body, expect=201)
    api.post(f"/connections/{created['id']}/start")
    status = api.wait_status(created["id"], "ERROR")
    assert protocol in status["status_message"]
    assert dovecot_user.address in status["status_message"]
    logs = api.items(f"/connections/{created['id']}/logs")
    assert any(entry["level"] == "error" and protocol in entry["message"] for entry in logs)
    assert all(dovecot_user.password not in entry["message"] for entry in logs)

"""Internal notes never leave the house: with a real SMTP peer and the outbox running, only the reply
goes out, and nothing of the note is in it."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from postroom.channels.sink import MailboxSink
from postroom.service import Service
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.testing.mails import make_mail
from postroom.testing.smtp import SmtpTestServer
from support import Api, wait_until


def test_a_note_never_reaches_the_smtp_server(
    make_service: Callable[..., Service], make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    address = f"desk-{secrets.token_hex(4)}@postroom.test"
    password = secrets.token_urlsafe(12)
    smtp = make_smtp_server(users={address: password})
    service = make_service()
    api = Api(service)
    connection = api.post(
        "/connections",
        {
            "name": "Desk",
            "mode": "forwarding",
            "address": address,
            "password": password,
            "smtp_server": smtp.host,
            "smtp_port": smtp.port,
            "smtp_encryption": "none",
        },
        expect=201,
    )
    api.post(f"/connections/{connection['id']}/start")
    api.wait_status(connection["id"], "RUNNING")
    sink = MailboxSink(service.db, connection["id"], connection["mailboxes"][0]["id"], on_stored=lambda n: None)
    sink.store([FetchedMail(uid=1, raw=make_mail("Refund", message_id="m1@customer.example"))], ImapCursor(1, 1))
    service.pipeline.wake()
    [conversation] = wait_until(lambda: api.conversations())
    cid = conversation["id"]

    note = api.post(f"/conversations/{cid}/notes", {"text": "SECRET-NOTE: they were rude, refund anyway"}, 201)
    assert note["delivery_status"] is None
    api.post(f"/conversations/{cid}/messages", {"text": "Your refund is on its way."}, 201)
    [sent] = smtp.wait_for(1, timeout=10)
    time.sleep(0.5)  # a note queued by mistake would go out by now too
    assert len(smtp.handler.received()) == 1
    assert b"SECRET-NOTE" not in sent.raw
    assert b"refund is on its way" in sent.raw
    assert sent.recipients == ("ada@customer.example",)
    # The reply answers the customer's mail, not the note.
    assert b"In-Reply-To: <m1@customer.example>" in sent.raw

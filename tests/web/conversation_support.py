"""Helpers of the conversation page's browser tests: a desk whose replies reach a real SMTP server on loopback,
mail fed into it as a mailbox source would, and the pages of its conversations."""

from __future__ import annotations

import base64
import secrets
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from playwright.sync_api import Page, expect

from postroom.channels.sink import MailboxSink
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.testing.mails import make_mail
from postroom.testing.smtp import SmtpTestServer
from support import Api, wait_until

CUSTOMER = "Cy Customer <cy@customer.example>"

# A customer's answer as mail clients write it: the new text, a signature, the quoted history.
REPLY_WITH_HISTORY = (
    "Thanks, the parcel number is 42-17.\n"
    "\n"
    "-- \n"
    "Cy Customer\n"
    "Customer Corp\n"
    "\n"
    "On Mon, 3 Mar 2025 at 10:00, Example Support <desk@postroom.test> wrote:\n"
    "> Could you send us the parcel number?\n"
    "> We will look into it at once.\n"
)


class Desk:
    """A forwarding connection (no mailbox to read: mail is handed in directly) sending through ``smtp``."""

    def __init__(self, api: Api, smtp: SmtpTestServer, **settings: Any) -> None:
        self.api = api
        self.smtp = smtp
        self.address = f"desk-{secrets.token_hex(3)}@postroom.test"
        body = {
            "name": "Support",
            "mode": "forwarding",
            "address": self.address,
            "smtp_server": smtp.host,
            "smtp_port": smtp.port,
            "smtp_encryption": "none",
            "email_name": "Example Support",
            **settings,
        }
        self.connection = api.post("/connections", body, expect=201)
        api.post(f"/connections/{self.connection['id']}/start")
        api.wait_status(self.connection["id"], "RUNNING")
        self.sink = MailboxSink(
            api.service.db, self.connection["id"], self.connection["mailboxes"][0]["id"], on_stored=lambda n: None
        )
        self.uid = 0

    def deliver(self, raw: bytes) -> int:
        """Hand one mail in and wait until it is in a conversation; that conversation's id."""
        self.uid += 1
        message_id = message_from_bytes(raw)["Message-ID"].strip("<>")
        self.sink.store([FetchedMail(uid=self.uid, raw=raw)], ImapCursor(1, self.uid))
        self.api.service.pipeline.wake()

        def stored() -> int | None:
            for item in self.api.conversations(connection_id=self.connection["id"]):
                messages = self.api.get(f"/conversations/{item['id']}")["messages"]
                if any(m["message_id"] == message_id for m in messages):
                    return int(item["id"])
            return None

        found: int = wait_until(stored, timeout=10)
        return found

    def conversation(self, conversation_id: int) -> dict[str, Any]:
        found: dict[str, Any] = self.api.get(f"/conversations/{conversation_id}")
        return found


def make_desk(live_service: Any, make_smtp_server: Callable[..., SmtpTestServer], **settings: Any) -> Desk:
    return Desk(Api(live_service), make_smtp_server("plain"), **settings)


def customer_mail(subject: str = "Where is my parcel?", body: str = REPLY_WITH_HISTORY, **more: Any) -> bytes:
    return make_mail(subject, body=body, sender=CUSTOMER, message_id=f"{secrets.token_hex(6)}@customer.example", **more)


def html_mail(
    html: str,
    *,
    subject: str = "Newsletter",
    images: dict[str, bytes] | None = None,
    files: tuple[tuple[str, str, bytes], ...] = (),
) -> bytes:
    """A text/html mail (multipart/related when ``images`` maps Content-IDs to PNG bytes), with ``files``
    as (name, content type, bytes) attachments."""
    mail = EmailMessage(policy=policy.SMTP)
    mail["From"] = CUSTOMER
    mail["To"] = "desk@postroom.test"
    mail["Subject"] = subject
    mail["Message-ID"] = f"<{secrets.token_hex(6)}@customer.example>"
    mail.set_content(html, subtype="html")
    for cid, data in (images or {}).items():
        mail.add_related(data, "image", "png", cid=f"<{cid}>", filename=f"{cid}.png")
    for name, content_type, payload in files:
        maintype, _, subtype = content_type.partition("/")
        mail.add_attachment(payload, maintype, subtype, filename=name)
    return mail.as_bytes()


# A 1×1 red PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")


def open_conversation(page: Page, base_url: str, conversation_id: int) -> None:
    page.goto(f"{base_url}/conversations/{conversation_id}")
    expect(page.get_by_role("textbox", name="Reply", exact=True)).to_be_visible()


def received_mail(smtp: SmtpTestServer, count: int = 1) -> EmailMessage:
    """The ``count``-th mail the SMTP server accepted, parsed."""
    raw = smtp.wait_for(count, timeout=10)[count - 1].raw
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def settled(page: Page) -> None:
    """Wait until htmx has no request in flight and has finished settling what it swapped in (new elements
    answer to events only once settled, about 20 ms later; a person is never that quick, a test is)."""
    page.wait_for_function("!document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')")

"""The whole way through the browser: an inbox on the real Dovecot is started from Settings, a customer's mail
delivered to Dovecot appears in the open conversation list without a reload, and the agent answers it with a
file; the real SMTP server receives the answer threaded under the customer's mail."""

from __future__ import annotations

from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from conversation_support import received_mail, settled
from inbox_support import dovecot_connection, signing_in_smtp, wait_status
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.mails import make_mail
from postroom.testing.smtp import SmtpTestServer


def test_mail_from_dovecot_appears_live_and_the_answer_goes_out_threaded(
    admin_page: Page,
    live: LiveServer,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    make_smtp_server: Callable[..., SmtpTestServer],
    shot: Callable[[Page, str], Path],
) -> None:
    page = admin_page
    smtp = signing_in_smtp(make_smtp_server)
    connection_id = dovecot_connection(live.service, dovecot, dovecot_user, smtp, name="Help desk")
    page.goto(f"{live.url}/settings/inboxes")
    page.locator(f"#inbox-row-{connection_id}").get_by_role("button", name="Start").click()
    wait_status(live.service, connection_id, "RUNNING", timeout=30)

    page.goto(f"{live.url}/?view=all")
    # Marks this very page: a reload would lose it.
    page.evaluate("window.postroomTestMark = 'same page'")
    body = "Hello,\n\nthe blue mug arrived broken.\n\nOn Monday, Shop wrote:\n> Your order has shipped.\n"
    dovecot.append(dovecot_user, make_mail("Broken mug", sender="Cy Customer <cy@customer.example>", body=body))
    row = page.get_by_role("link", name="Broken mug")
    expect(row.first).to_be_visible(timeout=30_000)
    assert page.evaluate("window.postroomTestMark") == "same page"
    shot(page, "end-to-end-list")

    row.first.click()
    expect(page.get_by_text("the blue mug arrived broken.")).to_be_visible()
    # The quoted history is there, folded away.
    expect(page.get_by_text("Your order has shipped.")).to_be_hidden()
    page.get_by_role("textbox", name="Reply", exact=True).fill("A new mug is on its way.")
    page.get_by_label("Attach files").set_input_files(
        files=[{"name": "label.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4 label"}]
    )
    settled(page)
    page.get_by_role("button", name="Send", exact=True).click()
    sent = received_mail(smtp)
    with live.service.db.read() as session:
        from postroom.store.models import Direction, Message

        asked = session.query(Message).filter_by(direction=Direction.IN, subject="Broken mug").one().message_id
    assert sent["In-Reply-To"] == f"<{asked}>"
    assert sent["To"] == "Cy Customer <cy@customer.example>"
    files = [part for part in sent.iter_attachments() if isinstance(part, EmailMessage)]
    assert [(f.get_filename(), f.get_content()) for f in files] == [("label.pdf", b"%PDF-1.4 label")]
    shot(page, "end-to-end-answered")

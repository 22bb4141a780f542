"""Settings → Inboxes → New inbox: an IMAP connection to a real Dovecot, created in the form and started."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from inbox_support import announce_status_change, fill_imap_form, signing_in_smtp, wait_status
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.store.models import Connection
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.smtp import SmtpTestServer


def test_an_imap_inbox_made_in_the_form_starts_and_shows_running(
    admin_page: Page,
    live: LiveServer,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    make_smtp_server: Callable[..., SmtpTestServer],
    shot: Callable[[Page, str], Path],
) -> None:
    page = admin_page
    smtp_server = signing_in_smtp(make_smtp_server)
    page.goto(f"{live.url}/settings")
    expect(page).to_have_url(f"{live.url}/settings/inboxes")
    page.get_by_role("link", name="New inbox").first.click()
    expect(page.get_by_role("heading", name="New inbox")).to_be_visible()
    fill_imap_form(page, dovecot, dovecot_user, smtp_server, "Help desk")
    page.get_by_label("EMAIL_NAME").fill("Example Support")
    shot(page, "inbox-form-imap")
    page.get_by_role("button", name="Create inbox").click()

    expect(page.get_by_role("heading", name="Help desk")).to_be_visible()
    expect(page.get_by_role("status").filter(has_text="The inbox was created")).to_be_visible()
    expect(page.get_by_role("img", name="Status: STOPPED")).to_be_visible()
    # What was saved, per mailbox: the address, its name in From and its servers; the password masked.
    mailboxes = page.get_by_role("table", name="Mailboxes of Help desk")
    expect(mailboxes).to_contain_text(dovecot_user.address)
    expect(mailboxes).to_contain_text("Example Support")
    expect(mailboxes).to_contain_text(f"{dovecot.host}:{dovecot.ports.imaps}")
    expect(mailboxes).not_to_contain_text(dovecot_user.password)
    with live.service.db.read() as session:
        stored = session.query(Connection).filter_by(name="Help desk").one()
        connection_id = stored.id
        assert stored.mode.value == "imap" and stored.mailboxes[0].imap_encryption == "ssl"
        assert live.service.secrets.decrypt(stored.mailboxes[0].password_enc) == dovecot_user.password

    page.get_by_role("link", name="Inboxes", exact=True).first.click()
    row = page.locator(f"#inbox-row-{connection_id}")
    expect(row.get_by_role("img", name="Status: STOPPED")).to_be_visible()
    row.get_by_role("button", name="Start").click()
    expect(row.get_by_role("button", name="Stop")).to_be_visible()
    wait_status(live.service, connection_id, "RUNNING")
    announce_status_change(page)
    expect(page.get_by_role("img", name="Status: RUNNING")).to_be_visible()
    expect(page.locator(f"#inbox-row-{connection_id}")).to_contain_text("RUNNING")

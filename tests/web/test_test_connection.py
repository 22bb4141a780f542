"""Settings → Inboxes → "Test connection": every step with its time against a real Dovecot and SMTP
server, a test mail sent to an address, and a wrong password named with its account and protocol."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from inbox_support import announce_status_change, dovecot_connection, signing_in_smtp, wait_status
from playwright.sync_api import Locator, Page, expect
from web_support import LiveServer

from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.smtp import SmtpTestServer

MILLISECONDS = re.compile(r"^\d+ ms$")


def step(page: Page, part: str, name: str) -> Locator:
    """The result row of one step, e.g. ``step(page, "incoming IMAP", "signin")``."""
    steps = page.get_by_role("table", name="Steps of the connection test")
    named = page.locator("strong").filter(has_text=re.compile(f"^{name}$"))
    return steps.get_by_role("row").filter(has_text=part).filter(has=named)


def test_test_connection_shows_every_step_with_its_time_and_sends_a_test_mail(
    admin_page: Page,
    live: LiveServer,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    make_smtp_server: Callable[..., SmtpTestServer],
    shot: Callable[[Page, str], Path],
) -> None:
    smtp = signing_in_smtp(make_smtp_server)
    connection_id = dovecot_connection(live.service, dovecot, dovecot_user, smtp)
    page = admin_page
    page.goto(f"{live.url}/settings/inboxes/{connection_id}")
    page.get_by_role("button", name="Test connection").click()

    steps = page.get_by_role("table", name="Steps of the connection test")
    expect(steps).to_be_visible()
    expect(page.locator(".inbox-test-summary")).to_contain_text("Every check passed")
    for name in ("dns", "tcp", "tls", "signin", "folder"):
        row = step(page, "incoming IMAP", name)
        expect(row).to_contain_text("Passed")
        expect(row.locator(".inbox-step-time")).to_have_text(MILLISECONDS)
    expect(step(page, "outgoing SMTP", "signin")).to_contain_text("Passed")
    shot(page, "inbox-test-result")

    page.get_by_label("Send a test mail to").fill("ada@customer.example")
    page.get_by_role("button", name="Send test mail").click()
    expect(step(page, "outgoing SMTP", "test_mail")).to_contain_text("Passed")
    [received] = smtp.wait_for(1)
    assert received.recipients == ("ada@customer.example",)
    assert received.envelope_from == dovecot_user.address

    # Not an address: said next to the field, nothing sent.
    page.get_by_label("Send a test mail to").fill("not an address")
    page.get_by_role("button", name="Send test mail").click()
    expect(page.locator(".inbox-send-to-error")).to_contain_text("is not one email address")
    expect(page.get_by_label("Send a test mail to")).to_have_attribute("aria-invalid", "true")
    assert len(smtp.messages) == 1


def test_a_wrong_password_is_named_with_its_account_and_protocol(
    admin_page: Page,
    live: LiveServer,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    make_smtp_server: Callable[..., SmtpTestServer],
) -> None:
    smtp = signing_in_smtp(make_smtp_server)
    connection_id = dovecot_connection(live.service, dovecot, dovecot_user, smtp, password="not-the-password")
    page = admin_page
    page.goto(f"{live.url}/settings/inboxes/{connection_id}")
    page.get_by_role("button", name="Test connection").click()
    summary = page.locator(".inbox-test-summary")
    expect(summary).to_contain_text("A check failed")
    expect(summary).to_contain_text(f"{dovecot_user.address} incoming IMAP signin")
    signin = step(page, "incoming IMAP", "signin")
    expect(signin).to_contain_text("Failed")
    expect(signin).to_contain_text("AuthenticationError")

    # Started, the inbox shows ERROR next to its status, naming the account and protocol.
    page.get_by_role("button", name="Start").click()
    message = wait_status(live.service, connection_id, "ERROR")
    assert f"IMAP {dovecot_user.address}" in message
    announce_status_change(page)
    status = page.locator("#inbox-status")
    expect(status.get_by_role("img", name=f"Status: ERROR — {message}")).to_be_visible()
    expect(status).to_contain_text("ERROR")
    expect(status).to_contain_text(f"IMAP {dovecot_user.address}: authentication failed")

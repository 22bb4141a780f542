"""Settings → Inboxes, the form: secrets stay masked and kept, errors sit next to their field, only the
selected mode's fields show, and forwarding and webhook inboxes show where mail must be sent."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from inbox_support import make_connection
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.store.models import Connection


def field_error(page: Page, label: str) -> str:
    """The text the field's aria-describedby points at (its help and its error)."""
    field = page.get_by_label(label, exact=True)
    expect(field).to_have_attribute("aria-invalid", "true")
    ids = (field.get_attribute("aria-describedby") or "").split()
    return " ".join(page.locator(f"#{i}").inner_text() for i in ids)


def test_an_edit_keeps_the_masked_password_and_changes_the_rest(admin_page: Page, live: LiveServer) -> None:
    service = live.service
    connection_id = make_connection(service, email_name="Support")
    page = admin_page
    page.goto(f"{live.url}/settings/inboxes/{connection_id}")
    password = page.get_by_label("Password", exact=True)
    # Shown masked: the stored password never reaches the page.
    expect(password).to_have_value("********")
    assert "s3cret-pass" not in page.content()
    page.get_by_label("EMAIL_NAME").fill("Support team")
    page.get_by_label("IMAP_MAILBOX").fill("Help")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").filter(has_text="Your changes were saved")).to_be_visible()
    expect(page.get_by_label("EMAIL_NAME")).to_have_value("Support team")
    with service.db.read() as session:
        box = service.connections.get(session, connection_id).mailboxes[0]
        assert (box.email_name, box.imap_folder) == ("Support team", "Help")
        assert service.secrets.decrypt(box.password_enc) == "s3cret-pass"

    # A new port for the stored password needs the password again: said next to the Password field.
    page.get_by_label("Incoming port").fill("1993")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved")
    assert "re-enter password" in field_error(page, "Password")
    page.get_by_label("Password", exact=True).fill("n3w-pass")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").filter(has_text="Your changes were saved")).to_be_visible()
    with service.db.read() as session:
        box = service.connections.get(session, connection_id).mailboxes[0]
        assert box.imap_port == 1993 and service.secrets.decrypt(box.password_enc) == "n3w-pass"


def test_a_refused_setting_is_shown_next_to_its_field_and_the_form_keeps_what_was_typed(
    admin_page: Page, live: LiveServer
) -> None:
    page = admin_page
    page.goto(f"{live.url}/settings/inboxes/new")
    page.get_by_label("Name", exact=True).fill("Support")
    page.get_by_label("Addresses").fill("support@example.test")
    page.get_by_label("Password", exact=True).fill("pw")
    page.get_by_label("Incoming server").fill("imaps://imap.example.test")
    page.get_by_label("SMTP server").fill("smtp.example.test")
    page.get_by_role("button", name="Create inbox").click()
    expect(page.get_by_role("alert")).to_contain_text("The inbox was not created")
    assert "looks like a URL" in field_error(page, "Incoming server")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Support")
    expect(page.get_by_label("Incoming server")).to_have_value("imaps://imap.example.test")
    with live.service.db.read() as session:
        assert session.query(Connection).count() == 0

    page.get_by_label("Incoming server").fill("imap.example.test")
    page.get_by_label("EMAIL_MAX_ATTACHMENT_BYTES").fill("-1")
    page.get_by_role("button", name="Create inbox").click()
    assert "0 (no limit) or more" in field_error(page, "EMAIL_MAX_ATTACHMENT_BYTES largest file taken in, in bytes")


def test_a_forwarding_inbox_shows_only_its_fields_and_then_its_generated_address(
    admin_page: Page, live: LiveServer
) -> None:
    page = admin_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto(f"{live.url}/settings/inboxes/new")
    expect(page.get_by_label("Incoming server")).to_be_visible()
    page.get_by_label("Mode").select_option("forwarding")
    # No server to read: the incoming fields go; the SMTP ones stay, replies still go out.
    expect(page.get_by_label("Incoming server")).to_be_hidden()
    expect(page.get_by_label("Mark imported mail as read")).to_be_hidden()
    expect(page.get_by_label("SMTP server")).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Help")
    page.get_by_label("Addresses").fill("help@example.test")
    page.get_by_label("Password", exact=True).fill("app-password")
    page.get_by_label("SMTP server").fill("smtp.example.test")
    page.get_by_role("button", name="Create inbox").click()

    expect(page.get_by_role("heading", name="Help")).to_be_visible()
    with live.service.db.read() as session:
        connection = session.query(Connection).filter_by(name="Help").one()
        generated = live.service.connections.inbound_address(connection)
    assert generated and generated.endswith("@localhost")
    expect(page.get_by_text("Forward your support address to", exact=True)).to_be_visible()
    expect(page.locator("#inbound-address")).to_have_text(generated)
    page.get_by_role("button", name="Copy address").click()
    expect(page.locator("#toasts")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == generated


def test_a_webhook_inbox_shows_the_url_to_paste_into_the_provider(
    admin_page: Page, live: LiveServer, shot: Callable[[Page, str], Path]
) -> None:
    page = admin_page
    page.goto(f"{live.url}/settings/inboxes/new")
    page.get_by_label("Mode").select_option("webhook")
    page.get_by_label("Sends replies by").select_option("sendgrid")
    expect(page.get_by_label("Incoming server")).to_be_hidden()
    expect(page.get_by_label("SMTP server")).to_be_hidden()
    expect(page.get_by_label("Password", exact=True)).to_be_hidden()
    page.get_by_label("Name", exact=True).fill("Posted")
    page.get_by_label("Addresses").fill("posted@example.test")
    page.get_by_label("Provider").select_option("mailgun")
    page.get_by_label("Signing key").fill("key-mailgun-1")
    page.get_by_label("SendGrid API key").fill("SG.test-key")
    page.get_by_role("button", name="Create inbox").click()

    expect(page.get_by_role("heading", name="Posted")).to_be_visible()
    with live.service.db.read() as session:
        connection = session.query(Connection).filter_by(name="Posted").one()
        path = live.service.connections.webhook_path(connection)
    assert path is not None and path.startswith("/api/v1/inbound/mailgun/")
    expect(page.locator("#webhook-url")).to_have_text(f"{live.service.settings.base_url}{path}")
    expect(page.get_by_role("button", name="Copy URL")).to_be_visible()
    # Secrets come back masked, in the fields of this mode only.
    expect(page.get_by_label("Signing key")).to_have_value("********")
    expect(page.get_by_label("SendGrid API key")).to_have_value("********")
    expect(page.get_by_label("Incoming server")).to_be_hidden()
    shot(page, "inbox-webhook")

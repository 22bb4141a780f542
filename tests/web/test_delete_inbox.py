"""Settings → Inboxes → "Delete": a dialog names the inbox, warns that it cannot be undone and asks for
its name; deleting removes it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from inbox_support import make_connection
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.store.models import Connection


def test_delete_asks_in_a_dialog_naming_the_inbox_and_then_removes_it(
    admin_page: Page, live: LiveServer, shot: Callable[[Page, str], Path]
) -> None:
    service = live.service
    connection_id = make_connection(service, name="Billing", address="billing@example.test")
    kept = make_connection(service, name="Support", address="support@example.test")
    page = admin_page
    page.goto(f"{live.url}/settings/inboxes/{connection_id}")

    page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog", name="Delete the inbox “Billing”?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("This cannot be undone")
    expect(dialog.get_by_label("Type Billing to confirm")).to_be_focused()
    shot(page, "inbox-delete-dialog")
    # Escape (or Cancel) leaves everything as it was.
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.get_by_role("button", name="Delete", exact=True).click()
    dialog.get_by_label("Type Billing to confirm").fill("Billin")
    dialog.get_by_role("button", name="Delete permanently").click()
    # A mistyped name deletes nothing and says so next to the field.
    expect(page.get_by_label("Type Billing to confirm")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_text("That is not the inbox's name")).to_be_visible()
    with service.db.read() as session:
        assert session.get(Connection, connection_id) is not None

    page.get_by_label("Type Billing to confirm").fill("Billing")
    page.get_by_role("button", name="Delete permanently").click()
    expect(page).to_have_url(f"{live.url}/settings/inboxes?deleted=1")
    expect(page.get_by_role("status").filter(has_text="The inbox was deleted")).to_be_visible()
    expect(page.locator(f"#inbox-row-{connection_id}")).to_have_count(0)
    expect(page.locator(f"#inbox-row-{kept}")).to_be_visible()
    with service.db.read() as session:
        assert session.get(Connection, connection_id) is None

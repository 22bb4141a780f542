"""Settings → Inboxes → "Logs": a connection's log, newest first, following new entries by itself."""

from __future__ import annotations

from inbox_support import make_connection
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.channels.logs import ConnectionEventLog


def test_the_logs_list_entries_newest_first_and_follow_new_ones(admin_page: Page, live: LiveServer) -> None:
    service = live.service
    connection_id = make_connection(service)
    log = ConnectionEventLog(service.db, connection_id)
    log("info", "connect", "IMAP support@example.test: connecting to imap.example.test:993 (encryption ssl)")
    log("error", "start_failed", "IMAP support@example.test: authentication failed")
    page = admin_page
    page.goto(f"{live.url}/settings/inboxes")
    page.locator(f"#inbox-row-{connection_id}").get_by_role("link", name="Logs").click()
    expect(page.get_by_role("heading", name="Logs of Support")).to_be_visible()

    rows = page.get_by_role("table", name="Log of Support, newest first").locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("start_failed")
    expect(rows.nth(0)).to_contain_text("error")
    expect(rows.nth(1)).to_contain_text("connecting to imap.example.test:993")

    # A new entry shows at the top within the 2-second refresh, without reloading the page.
    log("info", "signed_in", "IMAP support@example.test: signed in")
    expect(rows).to_have_count(3, timeout=5000)
    expect(rows.nth(0)).to_contain_text("signed_in")

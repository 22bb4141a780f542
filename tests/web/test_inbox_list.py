"""Settings → Inboxes, the list: a status dot per inbox (with its status and message as text), mode and
mailboxes; Start and Stop; the list follows status changes by itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from inbox_support import (
    announce_status_change,
    dovecot_connection,
    make_connection,
    set_status,
    sign_in_admin,
    signing_in_smtp,
    wait_status,
)
from playwright.sync_api import Page, expect
from web_support import LiveServer, serve

from postroom.service import Service
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.smtp import SmtpTestServer

AUTH_ERROR = "IMAP support@example.test: authentication failed: [AUTHENTICATIONFAILED] Authentication failed."


@pytest.fixture
def still(make_service: Callable[..., Service]) -> Iterator[LiveServer]:
    """The app of a service without workers: statuses stay as a test writes them."""
    server = serve(make_service(start=False))
    yield server
    server.stop()


def four_inboxes(service: Service) -> dict[str, int]:
    ids = {
        "Support": make_connection(service),
        "Billing": make_connection(
            service,
            name="Billing",
            mode="pop3",
            address="billing@example.test, invoices@example.test",
            imap_server=None,
            pop3_server="pop.example.test",
        ),
        "Help": make_connection(service, name="Help", mode="forwarding", address="help@example.test", password=None),
        "Sales": make_connection(
            service,
            name="Sales",
            mode="webhook",
            address="sales@example.test",
            password=None,
            webhook_provider="mailgun",
            webhook_signing_key="key-1",
        ),
    }
    set_status(service, ids["Support"], "ERROR", AUTH_ERROR)
    set_status(service, ids["Billing"], "RUNNING")
    set_status(service, ids["Help"], "STARTING")
    return ids


def test_each_inbox_shows_a_status_dot_named_by_its_status_and_message(
    page: Page, still: LiveServer, shot: Callable[[Page, str], Path]
) -> None:
    ids = four_inboxes(still.service)
    sign_in_admin(page, still)
    page.goto(f"{still.url}/settings/inboxes")

    support = page.locator(f"#inbox-row-{ids['Support']}")
    dot = support.get_by_role("img", name=f"Status: ERROR — {AUTH_ERROR}")
    expect(dot).to_be_visible()
    expect(dot).to_have_attribute("title", f"Status: ERROR — {AUTH_ERROR}")
    # The status is text too, not only a colour, and the message names the account and protocol.
    expect(support).to_contain_text("ERROR")
    expect(support).to_contain_text(AUTH_ERROR)
    expect(support).to_contain_text("IMAP")
    expect(support.get_by_role("button", name="Start")).to_be_visible()

    billing = page.locator(f"#inbox-row-{ids['Billing']}")
    expect(billing.get_by_role("img", name="Status: RUNNING")).to_be_visible()
    expect(billing.get_by_role("button", name="Stop")).to_be_visible()
    expect(billing.get_by_role("button", name="Start")).to_have_count(0)
    expect(billing).to_contain_text("POP3")
    expect(billing).to_contain_text("billing@example.test")
    expect(billing).to_contain_text("invoices@example.test")
    expect(page.locator(f"#inbox-row-{ids['Help']}").get_by_role("img", name="Status: STARTING")).to_be_visible()
    expect(page.locator(f"#inbox-row-{ids['Help']}")).to_contain_text("Forwarding")
    sales = page.locator(f"#inbox-row-{ids['Sales']}")
    expect(sales.get_by_role("img", name="Status: STOPPED")).to_be_visible()
    expect(sales).to_contain_text("Webhook")
    expect(sales.get_by_role("button", name="Start")).to_be_visible()
    expect(sales.get_by_role("link", name="Logs")).to_be_visible()
    shot(page, "inbox-list")

    # A phone: every inbox still readable and operable, nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    expect(support.get_by_role("button", name="Start")).to_be_visible()
    # (The top bar is the layout's own; the list is what this page puts on the screen.)
    widest = page.locator("#inbox-list").evaluate(
        "list => Math.max(...Array.from(list.querySelectorAll('*')).map(e => e.getBoundingClientRect().right))"
    )
    assert widest <= 390
    shot(page, "inbox-list-390")


def test_the_list_follows_status_changes_without_taking_the_focus(page: Page, still: LiveServer) -> None:
    connection_id = make_connection(still.service)
    sign_in_admin(page, still)
    page.goto(f"{still.url}/settings/inboxes")
    row = page.locator(f"#inbox-row-{connection_id}")
    expect(row.get_by_role("img", name="Status: STOPPED")).to_be_visible()
    logs = row.get_by_role("link", name="Logs")
    logs.focus()
    # Nothing changed: the refresh swaps nothing, so the keyboard stays where it was.
    with page.expect_response(lambda r: "/settings/inboxes/rows" in r.url) as answer:
        announce_status_change(page)
    assert answer.value.status == 204
    expect(logs).to_be_focused()

    set_status(still.service, connection_id, "RUNNING")
    announce_status_change(page)
    expect(row.get_by_role("img", name="Status: RUNNING")).to_be_visible()
    expect(row).to_contain_text("RUNNING")


def test_stop_stops_a_running_inbox(
    admin_page: Page,
    live: LiveServer,
    dovecot: DovecotServer,
    dovecot_user: MailUser,
    make_smtp_server: Callable[..., SmtpTestServer],
) -> None:
    service = live.service
    connection_id = dovecot_connection(service, dovecot, dovecot_user, signing_in_smtp(make_smtp_server))
    with service.db.write() as session:
        service.connections.start(session, service.connections.get(session, connection_id))
    service.connections_changed()
    wait_status(service, connection_id, "RUNNING")
    page = admin_page
    page.goto(f"{live.url}/settings/inboxes")
    row = page.locator(f"#inbox-row-{connection_id}")
    expect(row.get_by_role("img", name="Status: RUNNING")).to_be_visible()
    row.get_by_role("button", name="Stop").click()
    expect(row.get_by_role("button", name="Start")).to_be_visible()
    wait_status(service, connection_id, "STOPPED")
    announce_status_change(page)
    expect(page.locator(f"#inbox-row-{connection_id}").get_by_role("img", name="Status: STOPPED")).to_be_visible()
    with service.db.read() as session:
        assert not service.connections.get(session, connection_id).enabled

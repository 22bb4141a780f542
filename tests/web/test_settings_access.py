"""Settings are for administrators: an agent gets the 403 page on every Settings page and sees no
Settings link; /settings opens the Inboxes."""

from __future__ import annotations

from inbox_support import make_connection
from playwright.sync_api import Page, expect
from web_support import LiveServer


def test_an_agent_gets_the_403_page_on_every_settings_page_and_no_settings_link(
    agent_page: Page, live: LiveServer
) -> None:
    connection_id = make_connection(live.service)
    page = agent_page
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings")).to_have_count(0)
    for path in (
        "/settings",
        "/settings/inboxes",
        "/settings/inboxes/new",
        f"/settings/inboxes/{connection_id}",
        f"/settings/inboxes/{connection_id}/logs",
        f"/settings/inboxes/{connection_id}/delete",
    ):
        answer = page.goto(f"{live.url}{path}")
        assert answer is not None and answer.status == 403, path
        expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
        expect(page.get_by_text("Settings are for administrators")).to_be_visible()
    # Nor can an agent act behind the page's back, with a valid CSRF value.
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "postroom_csrf")
    for action in ("start", "delete"):
        refused = page.request.post(
            f"{live.url}/settings/inboxes/{connection_id}/{action}",
            headers={"X-CSRF-Token": csrf},
            form={"confirm_name": "Support"},
        )
        assert refused.status == 403, action
    with live.service.db.read() as session:
        assert not live.service.connections.get(session, connection_id).enabled


def test_settings_opens_the_inboxes_for_an_administrator(admin_page: Page, live: LiveServer) -> None:
    page = admin_page
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page).to_have_url(f"{live.url}/settings/inboxes")
    expect(page.get_by_role("heading", name="Inboxes")).to_be_visible()
    expect(page.get_by_role("navigation", name="Settings").get_by_role("link", name="Inboxes")).to_have_attribute(
        "aria-current", "page"
    )
    expect(page.get_by_text("No inboxes yet")).to_be_visible()

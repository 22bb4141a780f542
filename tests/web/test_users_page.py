"""Settings → Users: the list, a user's page (role, availability, cap), disabling and enabling, and
what agents are refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from admin_support import assignee_of, conversation_of, desk, second_browser
from playwright.sync_api import Browser, Page, expect
from web_support import LiveServer

from postroom.store.models import Availability, Role, User


def test_disabling_a_user_unassigns_their_conversations_and_ends_their_session(
    admin_page: Page,
    live: LiveServer,
    browser: Browser,
    make_user: Callable[..., int],
    shot: Callable[[Page, str], Path],
) -> None:
    service = live.service
    ann_id = make_user("ann@example.test", "Ann Agent")
    ann = second_browser(browser, live, "ann@example.test")
    conversation_id = conversation_of(service, desk(service), "Where is my parcel?", assignee_id=ann_id)
    assert assignee_of(service, conversation_id) == ann_id

    page = admin_page
    page.goto(f"{live.url}/settings/users")
    row = page.get_by_role("row").filter(has_text="ann@example.test")
    expect(row).to_contain_text("Agent")
    expect(row).to_contain_text("Enabled")
    expect(row).to_contain_text("Available")
    expect(row.locator("time")).to_have_text("now")  # Ann signed in a moment ago
    shot(page, "settings-users")

    row.get_by_role("button", name="Disable").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Disable Ann Agent?")
    shot(page, "settings-users-disable-dialog")
    dialog.get_by_role("button", name="Disable user").click()
    expect(page.get_by_role("status").first).to_have_text(
        "Ann Agent is disabled. 1 conversation went back to the team queue; 1 session or token stopped working."
    )
    expect(page.get_by_role("row").filter(has_text="ann@example.test")).to_contain_text("Disabled")
    assert assignee_of(service, conversation_id) is None
    # Ann's session stopped working: her cookie opens nothing any more.
    cookie = next(c["value"] for c in ann.context.cookies() if c["name"] == "postroom_session")
    answer = httpx.get(f"{live.url}/account/tokens", cookies={"postroom_session": cookie}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    ann.context.close()

    page.get_by_role("row").filter(has_text="ann@example.test").get_by_role("button", name="Enable").click()
    expect(page.get_by_role("status").first).to_contain_text("Ann Agent is enabled again.")
    with service.db.read() as session:
        assert session.get(User, ann_id).enabled  # type: ignore[union-attr]


def test_a_users_page_changes_role_availability_and_cap_and_refuses_bad_input(
    admin_page: Page, live: LiveServer, make_user: Callable[..., int], shot: Callable[[Page, str], Path]
) -> None:
    ann_id = make_user("ann@example.test", "Ann Agent")
    page = admin_page
    page.goto(f"{live.url}/settings/users")
    page.get_by_role("link", name="Ann Agent").click()
    expect(page.get_by_role("heading", name="Ann Agent")).to_be_visible()
    page.get_by_label("Cap of open conversations").fill("-2")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#max_open-error")).to_have_text("Expected a whole number, 0 or more, or null for no cap.")
    page.get_by_label("Role").select_option("admin")
    page.get_by_label("Availability").select_option("away")
    page.get_by_label("Cap of open conversations").fill("3")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_have_text("Saved.")
    shot(page, "settings-user-edit")
    with live.service.db.read() as session:
        ann = session.get(User, ann_id)
        assert ann is not None
        assert (ann.role, ann.availability, ann.max_open) == (Role.ADMIN, Availability.AWAY, 3)

    # An administrator cannot change their own role, nor disable themselves.
    page.goto(f"{live.url}/settings/users")
    own = page.get_by_role("row").filter(has_text="admin@example.test")
    expect(own.get_by_role("button", name="Disable")).to_have_count(0)
    own.get_by_role("link", name="Edit").click()
    page.get_by_label("Role").select_option("agent")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#role-error")).to_have_text("You cannot change your own role: another administrator must.")


def test_agents_get_the_403_page_in_settings(agent_page: Page, live: LiveServer) -> None:
    for path in ("users", "users/invite", "teams", "customers", "tokens", "quarantine"):
        response = agent_page.goto(f"{live.url}/settings/{path}")
        assert response is not None and response.status == 403, path
    expect(agent_page.get_by_role("heading", name="Not allowed")).to_be_visible()


def test_the_users_page_is_usable_at_390_px(
    admin_page: Page, live: LiveServer, make_user: Callable[..., int], shot: Callable[[Page, str], Path]
) -> None:
    make_user("ann@example.test", "Ann Agent")
    page = admin_page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live.url}/settings/users")
    row = page.get_by_role("row").filter(has_text="ann@example.test")
    expect(row.get_by_role("button", name="Disable")).to_be_visible()
    shot(page, "settings-users-390")
    # Nothing wider than the screen: no sideways scrolling.
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

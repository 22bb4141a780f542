"""API tokens: made in the browser and shown once, working against /api/v1 as a bearer token, revoked
and refused; administrators see everyone's in Settings, every user their own under /account/tokens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from admin_support import bearer
from playwright.sync_api import Page, expect
from sqlalchemy import select
from web_support import LiveServer

from postroom.api.tokens import create_token
from postroom.store.models import ApiToken


def test_a_token_is_shown_once_works_as_a_bearer_and_is_refused_once_revoked(
    admin_page: Page, live: LiveServer, shot: Callable[[Page, str], Path]
) -> None:
    page = admin_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live.url)
    page.goto(f"{live.url}/settings/tokens")
    page.get_by_label("Expires on (optional)").fill("2001-01-01")
    page.get_by_role("button", name="Create token").click()
    expect(page.locator("#name-error")).to_have_text("Give the token a name, e.g. the program that will use it.")
    expect(page.locator("#expires_on-error")).to_have_text("Choose a day in the future.")
    page.get_by_label("Name").fill("CRM sync")
    page.get_by_label("Expires on (optional)").fill("")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_text("Copy it now: it will not be shown again.")).to_be_visible()
    secret = page.get_by_label("New token").input_value()
    assert secret.startswith("pr_")
    page.get_by_role("button", name="Copy token").click()
    expect(page.locator("#toasts")).to_contain_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    row = page.get_by_role("row").filter(has_text="CRM sync")
    expect(row).to_contain_text("Ada Admin")  # the owner, in Settings
    expect(row).to_contain_text(secret[:10])
    shot(page, "settings-tokens")

    with bearer(live, secret) as api:
        me = api.get("/users/me")
        assert me.status_code == 200 and me.json()["email"] == "admin@example.test"

    # Shown once: the page does not have it any more.
    page.goto(f"{live.url}/settings/tokens")
    assert secret not in page.content()
    page.get_by_role("row").filter(has_text="CRM sync").get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Revoke the token “CRM sync”?")
    dialog.get_by_role("button", name="Revoke token").click()
    expect(page.get_by_role("status").first).to_contain_text("The token is revoked")
    expect(page.get_by_role("row").filter(has_text="CRM sync")).to_have_count(0)
    with bearer(live, secret) as api:
        assert api.get("/users/me").status_code == 401
    page.get_by_role("link", name="Show revoked and expired tokens too").click()
    expect(page.get_by_role("row").filter(has_text="CRM sync")).to_contain_text("Revoked")


def test_an_agent_manages_only_their_own_tokens(
    agent_page: Page, live: LiveServer, make_user: Callable[..., int], shot: Callable[[Page, str], Path]
) -> None:
    boss_id = make_user("boss@example.test", "Boss")
    with live.service.db.write() as session:
        create_token(session, "boss's script", user_id=boss_id)
        boss_token = session.scalars(select(ApiToken.id).where(ApiToken.user_id == boss_id)).one()
    page = agent_page
    page.get_by_role("link", name="API tokens").click()
    expect(page).to_have_url(f"{live.url}/account/tokens")
    expect(page.get_by_text("No active token yet.")).to_be_visible()  # nobody else's
    page.get_by_label("Name").fill("my laptop")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("New token").input_value()
    expect(page.get_by_role("row").filter(has_text="my laptop")).to_be_visible()
    expect(page.get_by_role("columnheader", name="Owner")).to_have_count(0)
    shot(page, "account-tokens")
    with bearer(live, secret) as api:
        assert api.get("/users/me").json()["email"] == "agent@example.test"
        # The agent's role comes with the token: administrators' routes refuse it.
        assert api.get("/users").status_code == 403
    # Another user's token cannot be revoked from here (not found, so its existence is not told).
    response = page.request.post(
        f"{live.url}/account/tokens/{boss_token}/revoke", headers={"X-CSRF-Token": _csrf(page)}, max_redirects=0
    )
    assert response.status == 404
    with live.service.db.read() as session:
        assert session.get(ApiToken, boss_token).revoked_at is None  # type: ignore[union-attr]
    page.get_by_role("row").filter(has_text="my laptop").get_by_role("button", name="Revoke").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke token").click()
    expect(page.get_by_text("No active token yet.")).to_be_visible()
    with bearer(live, secret) as api:
        assert api.get("/users/me").status_code == 401


def _csrf(page: Page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "postroom_csrf")

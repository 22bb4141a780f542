"""Signing in at /login, signing out, and what protects every page (session cookie, CSRF, CSP)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from web_support import PASSWORD, LiveServer, sign_in

from postroom.store.models import Role


def test_sign_in_with_email_and_password_opens_the_conversations(
    page: Page, live: LiveServer, make_user: Callable[..., int], shot: Callable[[Page, str], Path]
) -> None:
    make_user("ann@example.test", "Ann Agent", Role.AGENT)
    page.goto(f"{live.url}/")
    # Not signed in: the home page sends the browser to the sign-in page.
    expect(page).to_have_url(f"{live.url}/login")
    shot(page, "login")
    page.get_by_label("Email").fill("ann@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
    expect(page.get_by_text("Ann Agent")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "postroom_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"


def test_a_wrong_password_says_so_and_keeps_the_address(
    page: Page, live: LiveServer, make_user: Callable[..., int], shot: Callable[[Page, str], Path]
) -> None:
    make_user("ann@example.test")
    page.goto(f"{live.url}/login")
    page.get_by_label("Email").fill("ann@example.test")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong email address or password", ignore_case=True)
    expect(page.get_by_label("Email")).to_have_value("ann@example.test")
    expect(page.get_by_label("Password")).to_have_value("")
    shot(page, "login-error")
    assert not any(c["name"] == "postroom_session" for c in page.context.cookies())


def test_sign_out_ends_the_session_for_good(page: Page, live: LiveServer, make_user: Callable[..., int]) -> None:
    make_user("ann@example.test")
    sign_in(page, live.url, "ann@example.test")
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "postroom_session")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{live.url}/login")
    # The old cookie, replayed, opens nothing: the session was revoked, not only forgotten by the browser.
    answer = httpx.get(f"{live.url}/", cookies={"postroom_session": token}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


def test_after_sign_in_the_browser_goes_back_where_it_was_but_never_to_another_site(
    page: Page, live: LiveServer, make_user: Callable[..., int]
) -> None:
    make_user("ann@example.test")
    page.goto(f"{live.url}/?view=all")
    expect(page).to_have_url(f"{live.url}/login?next=/%3Fview%3Dall")
    page.get_by_label("Email").fill("ann@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live.url}/?view=all")
    # Leave the list first: its event stream would reconnect without a session and get the sign-in page.
    page.goto("about:blank")
    page.context.clear_cookies()
    page.goto(f"{live.url}/login?next=//evil.test/")
    page.get_by_label("Email").fill("ann@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{live.url}/")


def test_every_page_carries_a_strict_content_security_policy(live: LiveServer) -> None:
    answer = httpx.get(f"{live.url}/login")
    policy = answer.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["x-frame-options"] == "DENY"
    assert "<script>" not in answer.text and " style=" not in answer.text


def test_a_form_post_without_the_pages_csrf_value_is_refused(live: LiveServer, make_user: Callable[..., int]) -> None:
    make_user("ann@example.test")
    with httpx.Client(base_url=live.url) as client:
        page = client.get("/login")
        csrf = client.cookies["postroom_csrf"]
        assert csrf in page.text
        # Another site can make the browser post the form, but cannot know the value.
        refused = client.post("/login", data={"email": "ann@example.test", "password": PASSWORD})
        assert refused.status_code == 403
        forged = client.post(
            "/login",
            data={"email": "ann@example.test", "password": PASSWORD, "csrf_token": csrf},
            headers={"Origin": "https://evil.test"},
        )
        assert forged.status_code == 403
        accepted = client.post("/login", data={"email": "ann@example.test", "password": PASSWORD, "csrf_token": csrf})
        assert accepted.status_code == 303 and "postroom_session" in accepted.cookies


def test_an_invitation_link_opens_a_page_to_choose_name_and_password(
    page: Page, live: LiveServer, make_user: Callable[..., int], shot: Callable[[Page, str], Path]
) -> None:
    admin_id = make_user("admin@example.test", "Ada", Role.ADMIN)
    invitations = live.service.invitations()
    with live.service.db.write() as session:
        from postroom.store.models import User

        invited = invitations.create(
            session,
            "new@example.test",
            role=Role.AGENT,
            name="",
            connection_id=None,
            invited_by=session.get(User, admin_id),
        )
    page.goto(invited.accept_url.replace(live.service.settings.base_url, live.url))
    expect(page.get_by_text("new@example.test")).to_be_visible()
    shot(page, "accept-invitation")
    page.get_by_label("Name", exact=True).fill("Nina New")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again").fill(PASSWORD)
    page.get_by_role("button", name="Create my account").click()
    expect(page.get_by_role("heading", name="Conversations")).to_be_visible()
    expect(page.get_by_text("Nina New")).to_be_visible()
    # Used once: the link now says so.
    page.goto(invited.accept_url.replace(live.service.settings.base_url, live.url))
    expect(page.get_by_role("alert")).to_contain_text("used already")

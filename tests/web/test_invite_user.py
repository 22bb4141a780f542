"""Settings → Users → Invite a user: the form, the link shown once, accepting it in another browser."""

from __future__ import annotations

import quopri
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from admin_support import desk, second_browser
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from web_support import LiveServer, sign_in

from postroom.store.models import Invitation, Outbox, User


def test_an_invitation_link_lets_the_person_in_once(
    admin_page: Page, live: LiveServer, browser: Browser, shot: Callable[[Page, str], Path]
) -> None:
    page = admin_page
    desk(live.service)  # a connection named "Support" to send the invitation from
    page.goto(f"{live.url}/settings/users")
    page.get_by_role("link", name="Invite a user").click()
    # An address that is a user already is refused beside the field, and the form keeps what was typed.
    page.get_by_label("Email").fill("admin@example.test")
    page.get_by_role("button", name="Invite").click()
    expect(page.locator("#email-error")).to_have_text("A user with the address admin@example.test exists already.")
    expect(page.get_by_label("Email")).to_have_attribute("aria-invalid", "true")

    page.get_by_label("Email").fill("nina@example.test")
    page.get_by_label("Name (optional)").fill("Nina New")
    page.get_by_label("Role").select_option("agent")
    page.get_by_label("Send the invitation mail from").select_option(label="Support")
    shot(page, "settings-invite")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_role("heading", name="Invitation made")).to_be_visible()
    expect(page.get_by_text("A mail with the link was queued")).to_be_visible()
    link = page.get_by_label("Invitation link").input_value()
    expect(page.get_by_role("button", name="Copy link")).to_have_attribute("data-copy", link)
    shot(page, "settings-invited")
    with live.service.db.read() as session:
        queued = session.scalars(select(Outbox)).all()
        assert [row.recipients for row in queued] == [["nina@example.test"]]
        # The mail's text is quoted-printable: the link is in it once decoded.
        assert link.split("?", 1)[1].encode() in quopri.decodestring(queued[0].raw)

    # Pending until accepted, with Revoke.
    page.get_by_role("link", name="Done").click()
    row = page.get_by_role("row").filter(has_text="nina@example.test")
    expect(row.get_by_role("button", name="Revoke")).to_be_visible()

    # Nina opens the link in her own browser: no session of the admin's there.
    token = parse_qs(urlsplit(link).query)["token"][0]
    nina = second_browser(browser, live)
    nina.goto(f"{live.url}/accept-invitation?token={token}")
    expect(nina.get_by_text("You were invited as nina@example.test")).to_be_visible()
    nina.get_by_label("Name").fill("Nina New")
    nina.get_by_label("Password", exact=True).fill("a long new password")
    nina.get_by_label("Password again").fill("a long new password")
    nina.get_by_role("button", name="Create my account").click()
    expect(nina.get_by_role("button", name="Sign out")).to_be_visible()
    nina.get_by_role("button", name="Sign out").click()
    # Signing in works with the password she chose …
    sign_in(nina, live.url, "nina@example.test", "a long new password")
    expect(nina.get_by_text("Nina New")).to_be_visible()
    # … and the link is refused the second time.
    response = nina.goto(f"{live.url}/accept-invitation?token={token}")
    assert response is not None and response.status == 409
    expect(nina.get_by_role("alert")).to_contain_text("This invitation was used already")
    nina.context.close()

    page.reload()
    expect(page.get_by_role("link", name="Nina New")).to_be_visible()
    expect(page.get_by_text("No invitation is waiting to be accepted.")).to_be_visible()
    with live.service.db.read() as session:
        user = session.scalars(select(User).where(User.email == "nina@example.test")).one()
        assert user.name == "Nina New"


def test_a_revoked_invitation_link_no_longer_works(admin_page: Page, live: LiveServer, browser: Browser) -> None:
    page = admin_page
    page.goto(f"{live.url}/settings/users/invite")
    page.get_by_label("Email").fill("omar@example.test")
    page.get_by_label("Role").select_option("admin")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_text("No mail was sent.")).to_be_visible()
    link = page.get_by_label("Invitation link").input_value()
    page.goto(f"{live.url}/settings/users")
    row = page.get_by_role("row").filter(has_text="omar@example.test")
    expect(row).to_contain_text("Admin")
    row.get_by_role("button", name="Revoke").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Revoke the invitation of omar@example.test?")
    dialog.get_by_role("button", name="Revoke invitation").click()
    expect(page.get_by_role("status").first).to_contain_text("The invitation is revoked")
    with live.service.db.read() as session:
        assert session.scalars(select(Invitation)).one().revoked_at is not None

    omar = second_browser(browser, live)
    response = omar.goto(f"{live.url}/accept-invitation?{link.split('?', 1)[1]}")
    assert response is not None and response.status == 410
    expect(omar.get_by_role("alert")).to_contain_text("This invitation was revoked")
    omar.context.close()

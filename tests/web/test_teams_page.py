"""Settings → Teams: create (a name is needed, and unique), members added and removed, rename, delete."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import select
from web_support import LiveServer

from postroom.store.models import Team, TeamMember


def test_create_a_team_add_and_remove_members_rename_and_delete_it(
    admin_page: Page, live: LiveServer, make_user: Callable[..., int], shot: Callable[[Page, str], Path]
) -> None:
    service = live.service
    ann_id = make_user("ann@example.test", "Ann Agent")
    bob_id = make_user("bob@example.test", "Bob Agent")
    page = admin_page
    page.goto(f"{live.url}/settings/teams")
    expect(page.get_by_text("No team yet.")).to_be_visible()
    page.get_by_role("button", name="Create team").click()
    expect(page.locator("#name-error")).to_have_text("Give the team a name.")
    page.get_by_label("Team name").fill("Billing")
    page.get_by_role("button", name="Create team").click()
    expect(page.get_by_role("heading", name="Billing")).to_be_visible()
    expect(page.get_by_text("No members yet.")).to_be_visible()

    for name in ("Ann Agent", "Bob Agent"):
        page.get_by_label("Add a member").select_option(label=f"{name} ({name.split()[0].lower()}@example.test)")
        page.get_by_role("button", name="Add", exact=True).click()
        expect(page.get_by_role("status").first).to_have_text("The member is added.")
    members = page.get_by_role("table", name="Members")
    expect(members.get_by_role("row")).to_have_count(3)  # the header and two people
    shot(page, "settings-team")
    with service.db.read() as session:
        team = session.scalars(select(Team)).one()
        assert set(session.scalars(select(TeamMember.user_id))) == {ann_id, bob_id}

    members.get_by_role("row").filter(has_text="Bob Agent").get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status").first).to_have_text("The member is removed from the team.")
    with service.db.read() as session:
        assert list(session.scalars(select(TeamMember.user_id))) == [ann_id]

    page.get_by_label("Team name").fill("Billing and invoices")
    page.get_by_role("button", name="Rename").click()
    expect(page.get_by_role("heading", name="Billing and invoices")).to_be_visible()

    # The list shows the team with its members; a second team of the same name is refused beside the field.
    page.get_by_role("link", name="← Teams").click()
    row = page.get_by_role("row").filter(has_text="Billing and invoices")
    expect(row).to_contain_text("Ann Agent")
    page.get_by_label("Team name").fill("Billing and invoices")
    page.get_by_role("button", name="Create team").click()
    expect(page.locator("#name-error")).to_have_text("A team named 'Billing and invoices' exists already.")
    shot(page, "settings-teams")

    page.get_by_role("link", name="Billing and invoices").click()
    page.get_by_role("button", name="Delete team").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text("Delete the team Billing and invoices?")
    dialog.get_by_role("button", name="Delete team").click()
    expect(page.get_by_role("status").first).to_contain_text("The team is deleted.")
    with service.db.read() as session:
        assert session.get(Team, team.id) is None

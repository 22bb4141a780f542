"""Settings → Quarantine: mail that failed the pipeline, listed with its reason, downloaded, replayed."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from admin_support import desk, failing_stage, quarantined
from playwright.sync_api import Page, expect
from web_support import LiveServer

from postroom.testing.mails import make_mail


def test_quarantined_mail_is_listed_downloaded_and_replayed(
    admin_page: Page, live: LiveServer, shot: Callable[[Page, str], Path]
) -> None:
    service = live.service
    the_desk = desk(service)
    page = admin_page
    page.goto(f"{live.url}/settings/quarantine")
    expect(page.get_by_text("Nothing is quarantined")).to_be_visible()

    # Two failures: bytes that are no mail at all, and a mail a stage refuses until its cause is fixed.
    mail = make_mail("Refund please", sender="Rae <rae@customer.example>")
    with failing_stage(service, "Refund please", "the refund service is down"):
        the_desk.deliver(b"\x00\x01 not a mail", mail)
        garbage, refund = quarantined(service, 2)
    page.reload()
    rows = page.get_by_role("table", name="Quarantined mail").get_by_role("row")
    refund_row = rows.filter(has_text=f"Mail {refund.id}")
    expect(refund_row).to_contain_text("explode: ValueError: the refund service is down")
    expect(refund_row).to_contain_text("Support")  # the connection
    expect(rows.filter(has_text=f"Mail {garbage.id}")).to_contain_text("parse: not an email: no header fields found")
    shot(page, "settings-quarantine")

    # The .eml is the mail as received, offered as a file of type message/rfc822.
    with page.expect_download() as info:
        refund_row.get_by_role("link", name="Download .eml").click()
    download = info.value
    assert download.suggested_filename == f"{refund.id}.eml"
    assert Path(download.path()).read_bytes() == mail
    response = page.request.get(f"{live.url}/settings/quarantine/{refund.id}.eml")
    assert response.headers["content-type"] == "message/rfc822"
    assert response.headers["content-disposition"].startswith("attachment")

    # The cause is fixed (the failing stage is gone): Replay makes it a conversation.
    refund_row.get_by_role("button", name="Replay").click()
    result = page.locator("#replay-result")
    expect(result).to_contain_text(f"Replayed: mail {refund.id} went through the pipeline.")
    expect(result.get_by_role("link", name="conversation")).to_be_visible()
    shot(page, "settings-quarantine-replayed")
    expect(page.get_by_role("table", name="Quarantined mail").get_by_role("row")).to_have_count(2)

    # Bytes that are no mail fail again, and the page says why.
    page.get_by_role("row").filter(has_text=f"Mail {garbage.id}").get_by_role("button", name="Replay").click()
    expect(result).to_contain_text(f"Replayed, and mail {garbage.id} failed again (attempt 2)")
    expect(result).to_contain_text("parse: not an email: no header fields found")

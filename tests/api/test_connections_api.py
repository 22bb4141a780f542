"""The connections API: validation with clear errors, masked secrets, changes, deletion, auth."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from postroom.service import Service
from support import Api

BODY: dict[str, Any] = {
    "name": "Support",
    "address": "support@example.test",
    "password": "s3cret-pass",
    "imap_server": "imap.example.test",
    "smtp_server": "smtp.example.test",
}


@pytest.fixture
def api(make_service: Callable[..., Service]) -> Api:
    # No workers: these tests are about the API and the stored settings only.
    return Api(make_service(start=False))


def test_defaults_are_those_of_the_issue_and_secrets_are_masked(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    assert created["status"] == "STOPPED"
    assert created["mode"] == "imap"
    assert created["imap_port"] == 993
    assert created["imap_encryption"] == "ssl"
    assert created["smtp_port"] == 587
    assert created["smtp_encryption"] == "auto"
    assert created["imap_mailbox"] == "INBOX"
    assert created["validate_certificate"] is True
    assert created["check_interval"] == 15
    assert created["mark_as_read"] is True
    assert created["unread_only"] is False
    assert created["message_content_type"] == "text/plain"
    assert created["max_attachment_bytes"] == 10_485_760
    assert created["password"] == "********"
    assert "s3cret-pass" not in api.client.get(f"/api/v1/connections/{created['id']}").text


def test_patch_keeps_a_masked_secret_and_changes_the_rest(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    response = api.client.patch(
        f"/api/v1/connections/{created['id']}",
        json={"password": "********", "imap_mailbox": "Help", "email_name": "Support", "check_interval": "30, 20"},
    )
    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["imap_mailbox"] == "Help"
    assert changed["email_name"] == "Support"
    assert changed["check_interval"] == 20  # several values: the smallest (seed 003)
    with api.service.db.read() as session:
        connection = api.service.connections.get(session, created["id"])
        assert api.service.secrets.decrypt(connection.mailboxes[0].password_enc) == "s3cret-pass"


def test_several_mailboxes_take_positional_values_with_the_last_repeating(api: Api) -> None:
    body = {
        **BODY,
        "address": "sales@example.test, support@example.test, billing@example.test",
        "email_name": "Sales, Support",
        "password": ["pw-1", "pw,2", "pw-3"],
        "imap_mailbox": "INBOX",
    }
    created = api.post("/connections", body, expect=201)
    boxes = created["mailboxes"]
    assert [b["address"] for b in boxes] == ["sales@example.test", "support@example.test", "billing@example.test"]
    assert [b["email_name"] for b in boxes] == ["Sales", "Support", "Support"]
    assert [b["imap_server"] for b in boxes] == ["imap.example.test"] * 3
    with api.service.db.read() as session:
        stored = api.service.connections.get(session, created["id"]).mailboxes
        assert [api.service.secrets.decrypt(b.password_enc) for b in stored] == ["pw-1", "pw,2", "pw-3"]


def test_seed_variable_names_are_accepted(api: Api) -> None:
    created = api.post(
        "/connections",
        {**BODY, "env": {"EMAIL_NAME": "Helpdesk", "IMAP_MAILBOX": "Support", "EMAIL_MAX_ATTACHMENT_BYTES": "0"}},
        expect=201,
    )
    assert created["email_name"] == "Helpdesk"
    assert created["imap_mailbox"] == "Support"
    assert created["max_attachment_bytes"] == 0


def test_other_spellings_of_encryption_are_understood(api: Api) -> None:
    created = api.post(
        "/connections", {**BODY, "imap_encryption": "StartTLS", "smtp_encryption": "SSL/TLS"}, expect=201
    )
    assert created["imap_encryption"] == "starttls"
    assert created["smtp_encryption"] == "ssl"


@pytest.mark.parametrize(
    ("settings", "imap", "smtp"),
    [
        # Seed 002's Gmail guide: IMAP 993 "SSL", SMTP 587 "TLS" — the latter is STARTTLS.
        ({"imap_encryption": "TLS", "smtp_encryption": "TLS"}, ("ssl", 993), ("starttls", 587)),
        (
            {"imap_encryption": "tls", "imap_port": 993, "smtp_encryption": "tls", "smtp_port": 465},
            ("ssl", 993),
            ("ssl", 465),
        ),
        (
            {"imap_encryption": "TLS", "imap_port": 143, "smtp_encryption": "TLS", "smtp_port": 25},
            ("starttls", 143),
            ("starttls", 25),
        ),
        (
            {"imap_encryption": "TCP", "smtp_encryption": "None", "smtp_port": 25, "allow_plaintext_auth": True},
            ("none", 143),
            ("none", 25),
        ),
    ],
)
def test_a_bare_tls_means_starttls_on_upgrade_ports_and_implicit_tls_elsewhere(
    api: Api, settings: dict[str, Any], imap: tuple[str, int], smtp: tuple[str, int]
) -> None:
    created = api.post("/connections", {**BODY, **settings}, expect=201)
    assert (created["imap_encryption"], created["imap_port"]) == imap
    assert (created["smtp_encryption"], created["smtp_port"]) == smtp


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"imap_port": 70000}, "imap_port", "port range"),
        ({"smtp_port": "abc"}, "smtp_port", "not a port"),
        ({"imap_encryption": "quantum"}, "imap_encryption", "unknown encryption"),
        ({"address": "not-an-address"}, "address", "not an email address"),
        ({"password": ""}, "password", "required"),
        ({"message_content_type": "text/markdown"}, "message_content_type", "text/plain"),
        ({"check_interval": 0}, "check_interval", "outside"),
        ({"address": "a@x.test, b@x.test", "email_name": "A, B, C"}, "email_name", "3 values for 2"),
        ({"env": {"NO_SUCH_VARIABLE": "1"}}, "env.NO_SUCH_VARIABLE", "unknown variable"),
    ],
)
def test_bad_settings_are_refused_with_the_field_named(
    api: Api, change: dict[str, Any], field: str, words: str
) -> None:
    response = api.client.post("/api/v1/connections", json={**BODY, **change})
    assert response.status_code == 422, response.text
    detail = response.json()
    assert detail["field"] == field
    assert words in detail["detail"]


def test_names_are_unique(api: Api) -> None:
    api.post("/connections", BODY, expect=201)
    response = api.client.post("/api/v1/connections", json={**BODY, "address": "other@example.test"})
    assert response.status_code == 409
    assert "already exists" in response.json()["detail"]


def test_delete_needs_the_name_as_confirmation(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    wrong = api.client.delete(f"/api/v1/connections/{created['id']}", params={"confirm": "support"})
    assert wrong.status_code == 409
    missing = api.client.delete(f"/api/v1/connections/{created['id']}")
    assert missing.status_code == 422
    done = api.client.delete(f"/api/v1/connections/{created['id']}", params={"confirm": "Support"})
    assert done.status_code == 204
    assert api.client.get(f"/api/v1/connections/{created['id']}").status_code == 404


def test_start_and_stop_without_a_worker(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    started = api.post(f"/connections/{created['id']}/start")
    assert started["status"] == "STARTING"
    assert started["enabled"] is True
    stopped = api.post(f"/connections/{created['id']}/stop")
    assert stopped["status"] == "STOPPED"
    assert stopped["enabled"] is False


def test_every_endpoint_needs_a_valid_token(api: Api) -> None:
    anonymous = api.client.get("/api/v1/connections", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    wrong = api.client.get("/api/v1/connections", headers={"Authorization": "Bearer pr_nope"})
    assert wrong.status_code == 401
    assert api.client.get("/health").status_code == 200
    assert api.client.get("/docs").status_code == 200
    paths = api.client.get("/openapi.json").json()["paths"]
    assert "/api/v1/connections/{connection_id}/start" in paths
    assert "/api/v1/conversations/{conversation_id}/messages" in paths


# -- editing the addresses of a connection with several mailboxes (QA: values were merged by position) --

THREE: dict[str, Any] = {
    **BODY,
    "address": "sales@example.test, support@example.test, billing@example.test",
    "email_name": "Sales, Support, Billing",
    "password": ["pw-sales", "pw-support", "pw-billing"],
    "reply_to": "sales-reply@example.test, support-reply@example.test, billing-reply@example.test",
}


def stored_boxes(api: Api, connection_id: int) -> list[tuple[int, str, str, str, str]]:
    with api.service.db.read() as session:
        boxes = api.service.connections.get(session, connection_id).mailboxes
        return [(b.id, b.address, b.email_name, b.reply_to, api.service.secrets.decrypt(b.password_enc)) for b in boxes]


def patch(api: Api, connection_id: int, body: dict[str, Any]) -> Any:
    return api.client.patch(f"/api/v1/connections/{connection_id}", json=body)


def test_reordering_addresses_keeps_each_mailbox_its_own_settings_and_row(api: Api) -> None:
    created = api.post("/connections", THREE, expect=201)
    before = {box[1]: box for box in stored_boxes(api, created["id"])}
    response = patch(api, created["id"], {"address": "billing@example.test, sales@example.test, support@example.test"})
    assert response.status_code == 200, response.text
    after = stored_boxes(api, created["id"])
    assert after == [before["billing@example.test"], before["sales@example.test"], before["support@example.test"]]


def test_removing_a_mailbox_drops_its_values_instead_of_refusing_the_count(api: Api) -> None:
    created = api.post("/connections", THREE, expect=201)
    before = {box[1]: box for box in stored_boxes(api, created["id"])}
    response = patch(api, created["id"], {"address": "sales@example.test, billing@example.test"})
    assert response.status_code == 200, response.text  # was: "email_name: has 3 values for 2 address(es)"
    assert stored_boxes(api, created["id"]) == [before["sales@example.test"], before["billing@example.test"]]


def test_an_address_replaced_in_place_is_a_rename_of_that_mailbox(api: Api) -> None:
    created = api.post("/connections", THREE, expect=201)
    old = stored_boxes(api, created["id"])
    response = patch(api, created["id"], {"address": "sales@example.test, help@example.test, billing@example.test"})
    assert response.status_code == 200, response.text
    renamed = stored_boxes(api, created["id"])[1]
    # Same row (its cursor and conversations stay), same display name, reply-to and password.
    assert renamed == (old[1][0], "help@example.test", "Support", "support-reply@example.test", "pw-support")


def test_a_new_address_takes_the_last_settings_but_needs_its_own_password(api: Api) -> None:
    created = api.post("/connections", THREE, expect=201)
    addresses = "sales@example.test, support@example.test, billing@example.test, new@example.test"
    refused = patch(api, created["id"], {"address": addresses})
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "password"
    assert "new@example.test" in refused.json()["detail"]
    response = patch(api, created["id"], {"address": addresses, "password": ["********"] * 3 + ["pw-new"]})
    assert response.status_code == 200, response.text
    boxes = stored_boxes(api, created["id"])
    assert boxes[3][1:] == ("new@example.test", "Billing", "billing-reply@example.test", "pw-new")
    assert [b[4] for b in boxes[:3]] == ["pw-sales", "pw-support", "pw-billing"]


def test_the_match_of_stored_mailboxes_to_new_addresses() -> None:
    from postroom.helpdesk.connections import match_mailboxes

    old = ["a@x.test", "b@x.test", "c@x.test"]
    assert match_mailboxes(old, ["C@x.test", "a@x.test"]) == [2, 0]  # moved, case-insensitively; b removed
    assert match_mailboxes(old, ["a@x.test", "bee@x.test", "c@x.test"]) == [0, 1, 2]  # b renamed in place
    assert match_mailboxes(old, ["b@x.test", "new@x.test"]) == [1, None]  # c@ is gone, but a@ moved away: new
    assert match_mailboxes(old, ["new@x.test", "a@x.test"]) == [None, 0]  # a@ stays (moved): not a rename
    assert match_mailboxes(old, ["a@x.test", "b@x.test", "c@x.test", "d@x.test"]) == [0, 1, 2, None]


def test_a_reply_in_a_conversation_whose_mailbox_was_removed_says_so(api: Api) -> None:
    created = api.post("/connections", THREE, expect=201)
    first = api.post(
        "/conversations",
        {"connection_id": created["id"], "to": "ada@customer.test", "subject": "Hi", "text": "Hello."},
        expect=201,
    )
    assert first["messages"][0]["from"]["email"] == "sales@example.test"
    assert patch(api, created["id"], {"address": "support@example.test, billing@example.test"}).status_code == 200
    response = api.client.post(f"/api/v1/conversations/{first['id']}/messages", json={"text": "More."})
    assert response.status_code == 409
    assert "mailbox was removed from its connection" in response.json()["detail"]


# -- values the database or a mail header cannot take --


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email_name": "Evil\r\nBcc: victim@example.test"}, "email_name"),
        ({"reply_to": "a@example.test\r\nBcc: b@example.test"}, "reply_to"),
        ({"sent_folder": "Sent\nItems"}, "sent_folder"),
        ({"imap_mailbox": "INBOX\r\nA1 DELETE INBOX"}, "imap_mailbox"),
        ({"username": "user\x00name"}, "username"),
        ({"smtp_username": "user\tname"}, "smtp_username"),
        ({"password": ["pass\r\nword"]}, "password"),
    ],
)
def test_control_characters_are_refused_when_saved(api: Api, change: dict[str, Any], field: str) -> None:
    response = api.client.post("/api/v1/connections", json={**BODY, **change})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_a_line_break_in_an_address_is_refused_on_update_too(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    response = patch(api, created["id"], {"address": "support@example.test\r\nBcc: x@y.test"})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "address"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": "N" * 300}, "name"),
        ({"email_name": "E" * 300}, "email_name"),
        ({"imap_mailbox": "F" * 300}, "imap_mailbox"),
        ({"imap_server": "h" * 300}, "imap_server"),
        ({"oauth_token_uri": "https://" + "t" * 600}, "oauth_token_uri"),
    ],
)
def test_a_value_longer_than_its_column_is_refused_with_the_field_named(
    api: Api, change: dict[str, Any], field: str
) -> None:
    response = api.client.post("/api/v1/connections", json={**BODY, **change})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert "characters long" in response.json()["detail"]
    created = api.post("/connections", BODY, expect=201)
    assert patch(api, created["id"], change).status_code == 422


@pytest.mark.parametrize("server", ["imaps://imap.example.test:993", "imap example.test", "imap.example.test/"])
def test_a_server_given_as_a_url_or_with_spaces_is_refused(api: Api, server: str) -> None:
    for field in ("imap_server", "smtp_server"):
        response = api.client.post("/api/v1/connections", json={**BODY, field: server})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == field
        assert "host name only" in response.json()["detail"]
    pop3 = {**BODY, "mode": "pop3", "imap_server": None, "pop3_server": server}
    response = api.client.post("/api/v1/connections", json=pop3)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "pop3_server"


def test_the_content_type_is_case_insensitive(api: Api) -> None:
    created = api.post("/connections", {**BODY, "message_content_type": "Text/HTML"}, expect=201)
    assert created["message_content_type"] == "text/html"


# -- what 422 answers show --


def test_a_validation_error_does_not_echo_what_was_sent(api: Api) -> None:
    response = api.client.post("/api/v1/connections", json={**BODY, "passwd": "hunter2-secret"})
    assert response.status_code == 422
    assert "hunter2-secret" not in response.text
    problem = response.json()
    assert response.headers["content-type"] == "application/problem+json"
    assert problem["errors"] == [{"field": "body.passwd", "message": "Extra inputs are not permitted"}]
    assert problem["field"] == "body.passwd"
    wrong_type = api.client.post("/api/v1/connections", json={**BODY, "mode": "hunter2-secret"})
    assert wrong_type.status_code == 422
    assert "hunter2-secret" not in wrong_type.text


# -- what restarts a running connection --


def test_renaming_a_connection_does_not_restart_it_but_a_setting_does(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)

    def revision() -> int:
        with api.service.db.read() as session:
            return api.service.connections.get(session, created["id"]).revision

    first = revision()
    assert patch(api, created["id"], {"name": "Helpdesk", "description": "The front door"}).status_code == 200
    assert revision() == first
    assert patch(api, created["id"], {"email_name": "Helpdesk"}).status_code == 200
    assert revision() == first + 1


def test_deleting_a_connection_fails_its_queued_replies_visibly(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    conversation = api.post(
        "/conversations",
        {"connection_id": created["id"], "to": "ada@customer.test", "subject": "Hi", "text": "Hello."},
        expect=201,
    )
    assert conversation["messages"][0]["delivery_status"] == "queued"  # no workers here: it stays queued
    done = api.client.delete(f"/api/v1/connections/{created['id']}", params={"confirm": "Support"})
    assert done.status_code == 204
    message = api.get(f"/conversations/{conversation['id']}")["messages"][0]
    assert message["delivery_status"] == "failed"
    assert "connection Support was deleted before it was sent" in message["delivery_detail"]
    from sqlalchemy import select

    from postroom.store.models import Outbox

    with api.service.db.read() as session:
        row = session.scalars(select(Outbox)).one()
        assert (row.status.value, row.last_error) == ("failed", "connection Support was deleted before it was sent")


def test_removing_a_mailbox_fails_its_queued_replies_visibly_and_leaves_the_others(api: Api) -> None:
    created = api.post("/connections", THREE, expect=201)
    start = {"connection_id": created["id"], "subject": "Hi", "text": "Hello."}
    # New conversations take the mailboxes in turn: one reply queued from sales@, one from support@.
    sales = api.post("/conversations", {**start, "to": "ada@customer.test"}, expect=201)
    support = api.post("/conversations", {**start, "to": "bob@customer.test"}, expect=201)
    assert sales["messages"][0]["from"]["email"] == "sales@example.test"
    assert support["messages"][0]["from"]["email"] == "support@example.test"

    assert patch(api, created["id"], {"address": "support@example.test, billing@example.test"}).status_code == 200
    gone = api.get(f"/conversations/{sales['id']}")["messages"][0]
    reason = "mailbox sales@example.test was removed from connection Support before it was sent"
    assert (gone["delivery_status"], gone["delivery_detail"]) == ("failed", reason)
    assert api.get(f"/conversations/{support['id']}")["messages"][0]["delivery_status"] == "queued"
    from sqlalchemy import select

    from postroom.store.models import Outbox, OutboxStatus

    with api.service.db.read() as session:
        rows = {row.message_pk: row for row in session.scalars(select(Outbox))}
    assert (rows[gone["id"]].status, rows[gone["id"]].last_error) == (OutboxStatus.FAILED, reason)
    assert rows[support["messages"][0]["id"]].status is OutboxStatus.QUEUED


def test_a_new_address_carries_neither_smtp_username_nor_smtp_password(api: Api) -> None:
    created = api.post(
        "/connections", {**BODY, "smtp_username": "relay-user", "smtp_password": "relay-pass"}, expect=201
    )
    addresses = "support@example.test, new@example.test"
    response = patch(api, created["id"], {"address": addresses, "password": ["********", "pw-new"]})
    assert response.status_code == 200, response.text
    with api.service.db.read() as session:
        boxes = api.service.connections.get(session, created["id"]).mailboxes
        logins = [(b.address, b.smtp_username, bool(b.smtp_password_enc)) for b in boxes]
    # The new mailbox signs in to SMTP as itself (its username and password), not as half of another's login.
    assert logins == [("support@example.test", "relay-user", True), ("new@example.test", "", False)]

    # Given in the same PATCH, they are taken.
    addresses += ", third@example.test"
    response = patch(
        api,
        created["id"],
        {
            "address": addresses,
            "password": ["********", "********", "pw-third"],
            "smtp_username": ["relay-user", "", "third-relay"],
            "smtp_password": ["********", "", "third-pass"],
        },
    )
    assert response.status_code == 200, response.text
    with api.service.db.read() as session:
        third = api.service.connections.get(session, created["id"]).mailboxes[2]
        assert (third.smtp_username, api.service.secrets.decrypt(third.smtp_password_enc)) == (
            "third-relay",
            "third-pass",
        )


def test_saved_settings_make_replies_that_failed_due_at_once_but_not_scheduled_ones(api: Api) -> None:
    from datetime import timedelta

    from sqlalchemy import select

    from postroom.store.models import Outbox, utcnow

    created = api.post("/connections", BODY, expect=201)
    start = {"connection_id": created["id"], "subject": "Hi", "text": "Hello."}
    failed = api.post("/conversations", {**start, "to": "ada@customer.test"}, expect=201)["messages"][0]["id"]
    later = api.post("/conversations", {**start, "to": "bob@customer.test"}, expect=201)["messages"][0]["id"]
    hour = utcnow() + timedelta(hours=1)
    with api.service.db.write() as session:
        for row in session.scalars(select(Outbox)):
            # One parked after a refused sign-in (as jobs.outbox leaves it), one merely scheduled for later.
            row.next_attempt_at = hour
            if row.message_pk == failed:
                row.last_error = "SMTP support@example.test: authentication failed: 535 5.7.8 no"
    assert patch(api, created["id"], {"smtp_password": "fixed"}).status_code == 200
    with api.service.db.read() as session:
        due = {row.message_pk: row.next_attempt_at for row in session.scalars(select(Outbox))}
    assert due[failed] <= utcnow()
    assert due[later] == hour

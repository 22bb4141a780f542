"""The conversation as a work item over the API: status, snooze, priority, assignee, team, tags, notes,
mentions, the timeline, list filters with cursor pages, teams, and unknown fields refused."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from test_attachment_download import _mail_with_file

from postroom.api.tokens import create_token
from postroom.pipeline.context import Event
from postroom.service import Service
from postroom.store.models import Conversation, Outbox, Role, User
from postroom.testing.mails import make_mail
from support import Api, Desk


def add_user(service: Service, name: str, email: str, *, role: Role = Role.AGENT, **more: Any) -> int:
    with service.db.write() as session:
        user = User(name=name, email=email, role=role, **more)
        session.add(user)
        session.flush()
        return user.id


def client_of(service: Service, user_id: int) -> TestClient:
    from postroom.api.app import create_app

    with service.db.write() as session:
        token = create_token(session, "test", user_id=user_id)
    client = TestClient(create_app(service))
    client.headers["Authorization"] = f"Bearer {token}"
    return client


class Work:
    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self.api = desk.api
        self.service = desk.api.service
        self.events: list[Event] = []
        self.service.events.subscribe(self.events.append)
        self.ann = add_user(self.service, "Ann Agent", "ann@support.example")
        self.ann_client = client_of(self.service, self.ann)

    def patch(self, conversation_id: int, body: dict[str, Any], expect: int = 200) -> Any:
        response = self.ann_client.patch(f"/api/v1/conversations/{conversation_id}", json=body)
        assert response.status_code == expect, response.text
        return response.json()

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


@pytest.fixture
def work(make_service: Callable[..., Service]) -> Work:
    return Work(Desk(Api(make_service(start=False))))


def test_patch_each_field_records_activity_and_publishes_an_event(work: Work) -> None:
    work.desk.deliver(make_mail("Printer on fire"))
    [conversation] = work.api.conversations()
    cid = conversation["id"]
    team = work.api.post("/teams", {"name": "Billing"}, 201)
    before = conversation["last_activity_at"]
    work.events.clear()

    view = work.patch(cid, {"priority": "urgent"})
    assert view["priority"] == "urgent"
    assert view["last_activity_at"] > before
    view = work.patch(cid, {"assignee_id": work.ann})
    assert view["assignee"] == {"id": work.ann, "name": "Ann Agent", "email": "ann@support.example"}
    view = work.patch(cid, {"team_id": team["id"]})
    assert view["team"] == {"id": team["id"], "name": "Billing"}
    view = work.patch(cid, {"tags": ["VIP", "refund", "vip"]})
    assert view["tags"] == ["refund", "VIP"]  # one tag per spelling, the first spelling kept
    view = work.patch(cid, {"status": "pending"})
    assert view["status"] == "pending"
    view = work.patch(cid, {"assignee_id": None})
    assert view["assignee"] is None
    assert work.kinds() == [
        "conversation.priority_changed",
        "conversation.assigned",
        "conversation.team_changed",
        "conversation.tags_changed",
        "conversation.status_changed",
        "conversation.assigned",
    ]
    activities = [(a["kind"], a["data"]["from"], a["data"]["to"], a["actor"]["id"]) for a in view["activities"]]
    assert activities == [
        ("priority", "normal", "urgent", work.ann),
        ("assignee", None, work.ann, work.ann),
        ("team", None, team["id"], work.ann),
        ("tags", [], ["refund", "VIP"], work.ann),
        ("status", "open", "pending", work.ann),
        ("assignee", work.ann, None, work.ann),
    ]
    # The timeline: the mail first, then each change in order.
    assert [e["type"] for e in view["timeline"]] == ["message"] + ["activity"] * 6
    # Setting what is already there changes nothing and says nothing.
    work.events.clear()
    work.patch(cid, {"priority": "urgent", "tags": ["vip", "Refund"]})
    assert work.events == []
    # Tags are created once and found in any case.
    assert [c["id"] for c in work.api.conversations(tag="REFUND")] == [cid]


def test_patch_refuses_unknown_fields_and_bad_values(work: Work) -> None:
    work.desk.deliver(make_mail("Hello"))
    [conversation] = work.api.conversations()
    cid = conversation["id"]
    for body, field in (
        ({"internal": True}, "internal"),
        ({"assignee": "Ann"}, "assignee"),
        ({"status": "closed"}, "status"),
        ({"priority": "whenever"}, "priority"),
    ):
        detail = work.patch(cid, body, expect=422)["detail"]
        assert field in str(detail), detail
    assert "assignee_id" in str(work.patch(cid, {"assignee_id": 999}, expect=422))
    disabled = add_user(work.service, "Gone", "gone@support.example", enabled=False)
    assert "assignee_id" in str(work.patch(cid, {"assignee_id": disabled}, expect=422))
    assert "team_id" in str(work.patch(cid, {"team_id": 999}, expect=422))
    assert "snoozed_until" in str(work.patch(cid, {"status": "snoozed"}, expect=422))
    # Every conversation request refuses what it does not know.
    client = work.ann_client
    for path, body in (
        (f"/api/v1/conversations/{cid}/messages", {"text": "Hi", "internal": True}),
        (f"/api/v1/conversations/{cid}/notes", {"text": "Hi", "visibility": "team"}),
        ("/api/v1/conversations", {"connection_id": 1, "to": "a@b.example", "subject": "s", "text": "t", "x": 1}),
        ("/api/v1/teams", {"name": "T", "colour": "red"}),
    ):
        response = (work.api.client if "teams" in path else client).post(path, json=body)
        assert response.status_code == 422, (path, response.text)
    assert work.service.db is not None
    with work.service.db.read() as session:
        assert session.scalars(select(Outbox)).all() == []


def test_snooze_wakes_up_by_itself_and_when_the_customer_writes(work: Work) -> None:
    work.desk.deliver(make_mail("Later please", message_id="m1@customer.example"))
    [conversation] = work.api.conversations()
    cid = conversation["id"]
    until = datetime.now(UTC) + timedelta(hours=1)
    view = work.patch(cid, {"status": "snoozed", "snoozed_until": until.isoformat()})
    assert view["status"] == "snoozed"
    assert view["snoozed_until"] is not None
    assert work.service.pipeline.wake_snoozed() == []
    # The time passes.
    with work.service.db.write() as session:
        session.execute(update(Conversation).values(snoozed_until=datetime.now(UTC) - timedelta(seconds=1)))
    work.events.clear()
    assert work.service.pipeline.wake_snoozed() == [cid]
    view = work.api.get(f"/conversations/{cid}")
    assert (view["status"], view["snoozed_until"]) == ("open", None)
    assert view["activities"][-1]["actor"] is None  # automatic
    assert work.kinds() == ["conversation.status_changed"]
    # Snoozed again; the customer's next mail ends the snooze.
    work.patch(cid, {"status": "snoozed", "snoozed_until": until.isoformat()})
    work.desk.deliver(make_mail("Re: Later please", headers=[("In-Reply-To", "<m1@customer.example>")]))
    view = work.api.get(f"/conversations/{cid}")
    assert (view["status"], view["snoozed_until"]) == ("open", None)


def test_notes_with_mentions_are_in_the_timeline_and_never_queued(work: Work) -> None:
    work.desk.deliver(make_mail("Invoice", message_id="m1@customer.example"))
    [conversation] = work.api.conversations()
    cid = conversation["id"]
    bob = add_user(work.service, "Bob Builder", "bob.b@support.example")
    carl = add_user(work.service, "Carl", "carl@support.example")
    response = work.ann_client.post(
        f"/api/v1/conversations/{cid}/notes",
        json={"text": "@bob.b and @Carl: customer is angry. Mail ann@support.example.", "mention_ids": []},
    )
    assert response.status_code == 201, response.text
    note = response.json()
    assert note["direction"] == "note"
    assert note["author_id"] == work.ann
    assert note["author"] == "Ann Agent"
    assert [m["id"] for m in note["mentions"]] == [bob, carl]
    assert "note.created" in work.kinds()
    by_id = work.ann_client.post(f"/api/v1/conversations/{cid}/notes", json={"text": "fyi", "mention_ids": [bob]})
    assert [m["id"] for m in by_id.json()["mentions"]] == [bob]
    assert (
        work.ann_client.post(f"/api/v1/conversations/{cid}/notes", json={"text": "x", "mention_ids": [999]}).status_code
        == 422
    )
    # A reply after the note answers the customer's mail, never the note.
    reply = work.api.post(f"/conversations/{cid}/messages", {"text": "On it."}, 201)
    assert reply["in_reply_to"] == "m1@customer.example"
    assert "angry" not in reply["text"]
    view = work.api.get(f"/conversations/{cid}")
    assert [e["type"] for e in view["timeline"] if e["type"] != "activity"] == ["message", "note", "note", "message"]
    with work.service.db.read() as session:
        [outbox] = session.scalars(select(Outbox)).all()
        assert b"angry" not in outbox.raw


def test_reply_with_cc_bcc_and_files(work: Work) -> None:
    work.desk.deliver(_mail_with_file('filename="contract.pdf"'))
    [conversation] = work.api.conversations()
    cid = conversation["id"]
    [incoming] = work.api.get(f"/conversations/{cid}")["messages"]
    [file] = incoming["attachments"]
    response = work.ann_client.post(
        f"/api/v1/conversations/{cid}/messages",
        json={
            "text": "Signed.",
            "cc": "Boss <boss@customer.example>",
            "bcc": "audit@support.example",
            "attachment_ids": [file["id"]],
        },
    )
    assert response.status_code == 201, response.text
    reply = response.json()
    assert reply["author_id"] == work.ann
    assert reply["author"] == "Ann Agent"
    assert reply["cc"] == [{"email": "boss@customer.example", "name": "Boss"}]
    assert reply["bcc"] == [{"email": "audit@support.example", "name": ""}]
    assert [a["filename"] for a in reply["attachments"]] == ["contract.pdf"]
    with work.service.db.read() as session:
        outbox = session.scalars(select(Outbox)).one()
        assert "audit@support.example" in outbox.recipients
        assert b"audit@support.example" not in outbox.raw  # a blind copy stays out of the headers
        assert b'filename="contract.pdf"' in outbox.raw
    # multipart/form-data with an uploaded file.
    response = work.ann_client.post(
        f"/api/v1/conversations/{cid}/messages",
        data={"text": "And the invoice.", "author": "Ann from Billing"},
        files=[("files", ("invoice.txt", b"total: 42", "text/plain"))],
    )
    assert response.status_code == 201, response.text
    assert [a["filename"] for a in response.json()["attachments"]] == ["invoice.txt"]
    assert response.json()["author"] == "Ann from Billing"
    # Over the connection's limit: refused with the reason, nothing queued.
    work.api.client.patch(f"/api/v1/connections/{work.desk.connection['id']}", json={"max_attachment_bytes": 10})
    response = work.ann_client.post(
        f"/api/v1/conversations/{cid}/messages",
        data={"text": "Too big."},
        files=[("files", ("big.bin", b"x" * 11, "application/octet-stream"))],
    )
    assert response.status_code == 413
    assert "max_attachment_bytes" in response.text
    other = add_user(work.service, "x", "x@x.example")
    assert other
    response = work.ann_client.post(
        f"/api/v1/conversations/{cid}/messages", json={"text": "Foreign file", "attachment_ids": [99999]}
    )
    assert response.status_code == 422
    with work.service.db.read() as session:
        assert len(session.scalars(select(Outbox)).all()) == 2


def test_list_filters_and_cursor_pages_stay_stable_while_mail_arrives(work: Work) -> None:
    work.desk.deliver(*(make_mail(f"Question {i}", sender=f"C{i} <c{i}@customer.example>") for i in range(7)))
    everything = work.api.conversations()
    ids = [c["id"] for c in everything]
    assert ids == sorted(ids, reverse=True)  # newest activity first
    team = work.api.post("/teams", {"name": "Tier 2"}, 201)
    work.patch(ids[0], {"assignee_id": work.ann, "priority": "high", "team_id": team["id"], "tags": ["bug"]})
    work.patch(ids[1], {"status": "resolved"})
    client = work.ann_client

    def listed(**params: Any) -> list[int]:
        response = client.get("/api/v1/conversations", params=params)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert listed(assignee_id="me") == [ids[0]]
    assert listed(assignee_id=str(work.ann)) == [ids[0]]
    assert ids[0] not in listed(assignee_id="none")
    assert listed(team_id=team["id"]) == listed(priority="high") == listed(tag="BUG") == [ids[0]]
    assert listed(status="resolved") == [ids[1]]
    contact_id = everything[2]["contact"]["id"]
    assert listed(contact_id=contact_id) == [ids[2]]
    assert set(listed(connection_id=work.desk.connection["id"])) == set(ids)
    assert client.get("/api/v1/conversations", params={"assignee_id": "someone"}).status_code == 422

    # Pages of two, with new mail arriving between pages: no conversation twice, none of the old ones lost.
    seen: list[int] = []
    response = client.get("/api/v1/conversations", params={"limit": 2})
    while True:
        body = response.json()
        seen.extend(c["id"] for c in body["items"])
        if body["next_cursor"] is None:
            assert "Link" not in response.headers
            break
        assert body["next_cursor"] in response.headers["Link"]
        work.desk.deliver(make_mail("Brand new", sender=f"N{len(seen)} <n{len(seen)}@customer.example>"))
        response = client.get("/api/v1/conversations", params={"limit": 2, "cursor": body["next_cursor"]})
    assert len(seen) == len(set(seen))
    assert set(ids) <= set(seen)
    assert client.get("/api/v1/conversations", params={"cursor": "garbage"}).status_code == 422


def test_teams_admin_changes_and_everyone_reads(work: Work) -> None:
    api = work.api
    bob = add_user(work.service, "Bob", "bob@support.example")
    team = api.post("/teams", {"name": "Support", "member_ids": [work.ann]}, 201)
    assert [m["id"] for m in team["members"]] == [work.ann]
    assert api.post(f"/teams/{team['id']}/members", {"user_id": bob})["members"][1]["id"] == bob
    assert api.post(f"/teams/{team['id']}/members", {"user_id": 999}, 422)
    assert api.post("/teams", {"name": "Support"}, 409)
    renamed = api.client.patch(f"/api/v1/teams/{team['id']}", json={"name": "Front line"})
    assert renamed.json()["name"] == "Front line"
    # An agent reads, but changes nothing.
    agent = work.ann_client
    assert [t["name"] for t in agent.get("/api/v1/teams").json()["items"]] == ["Front line"]
    assert agent.get(f"/api/v1/teams/{team['id']}").status_code == 200
    assert agent.post("/api/v1/teams", json={"name": "Mine"}).status_code == 403
    assert agent.delete(f"/api/v1/teams/{team['id']}/members/{bob}").status_code == 403
    assert api.client.delete(f"/api/v1/teams/{team['id']}/members/{bob}").status_code == 204
    assert api.client.delete(f"/api/v1/teams/{team['id']}/members/{bob}").status_code == 404
    # Connections name their team; an unknown team or grouping is refused.
    cid = work.desk.connection["id"]
    changed = api.client.patch(
        f"/api/v1/connections/{cid}", json={"team_id": team["id"], "auto_assign": True, "grouping": "contact"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["team_id"], changed.json()["auto_assign"], changed.json()["grouping"]) == (
        team["id"],
        True,
        "contact",
    )
    assert api.client.patch(f"/api/v1/connections/{cid}", json={"team_id": 999}).status_code == 422
    assert api.client.patch(f"/api/v1/connections/{cid}", json={"grouping": "subject"}).status_code == 422
    assert api.client.delete(f"/api/v1/teams/{team['id']}").status_code == 204
    assert api.get(f"/connections/{cid}")["team_id"] is None


def test_an_upload_far_over_the_limit_is_refused_before_it_is_read(work: Work) -> None:
    work.desk.deliver(make_mail("Send me the file"))
    [conversation] = work.api.conversations()
    work.api.client.patch(f"/api/v1/connections/{work.desk.connection['id']}", json={"max_attachment_bytes": 1000})
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    # Declared 3 MB against a 1 KB limit: answered from the headers alone.
    huge = b"x" * (3 * 1024 * 1024)
    response = work.ann_client.post(url, data={"text": "x"}, files=[("files", ("huge.bin", huge, "text/plain"))])
    assert response.status_code == 413 and "limit of 1000 bytes" in response.text
    # Just over the limit, within the form allowance: the spooled sizes are counted before any file is read.
    response = work.ann_client.post(url, data={"text": "x"}, files=[("files", ("a.bin", b"y" * 1001, "text/plain"))])
    assert response.status_code == 413 and "1001 bytes" in response.text
    with work.service.db.read() as session:
        assert session.scalars(select(Outbox)).all() == []

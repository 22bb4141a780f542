"""The conversations API: filters, detail, status changes, replies queued, attachments, the raw store."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from postroom.service import Service
from postroom.testing.mails import make_mail
from support import Api, Desk


@pytest.fixture
def desk(make_service: Callable[..., Service]) -> Desk:
    return Desk(Api(make_service(start=False)))


def test_list_filters_by_connection_status_and_contact(desk: Desk) -> None:
    desk.deliver(
        make_mail("One", sender="Ada <ada@customer.example>"),
        make_mail("Two", sender="Bo <bo@customer.example>"),
    )
    api = desk.api
    assert len(api.get("/conversations")["items"]) == 2
    assert len(api.conversations(connection_id=desk.connection["id"])) == 2
    assert api.conversations(connection_id=desk.connection["id"] + 1) == []
    [ada] = api.conversations(contact="ADA@customer.example")
    assert ada["subject"] == "One"
    assert api.conversations(contact=str(ada["contact"]["id"]))[0]["id"] == ada["id"]
    response = api.client.patch(f"/api/v1/conversations/{ada['id']}", json={"status": "resolved"})
    assert response.status_code == 200
    assert [c["subject"] for c in api.conversations(status="resolved")] == ["One"]
    assert [c["subject"] for c in api.conversations(status="open")] == ["Two"]
    assert api.client.get("/api/v1/conversations", params={"status": "nonsense"}).status_code == 422
    first = api.get("/conversations", limit=1)
    second = api.get("/conversations", limit=1, cursor=first["next_cursor"])
    assert [c["subject"] for c in first["items"] + second["items"]] == ["One", "Two"]  # newest activity first
    assert second["next_cursor"] is None


def test_detail_has_messages_in_order_with_the_new_text_apart(desk: Desk) -> None:
    desk.deliver(
        make_mail(
            "Login",
            message_id="m1@customer.example",
            body="It broke again.\n\nOn Mon, 1 Jan 2024 at 10:00, Support <support@example.test> wrote:\n> Fixed?\n",
        )
    )
    [conversation] = desk.api.conversations()
    reply = desk.api.post(f"/conversations/{conversation['id']}/messages", {"text": "Looking.", "author": "Al"}, 201)
    assert reply["direction"] == "out"
    assert reply["delivery_status"] == "queued"  # no worker runs in this test
    assert reply["from"] == {"email": "support@example.test", "name": "Example Support"}
    assert reply["to"] == [{"email": "ada@customer.example", "name": "Ada Customer"}]
    assert reply["in_reply_to"] == "m1@customer.example"
    assert reply["subject"] == "Re: Login"
    detail = desk.api.get(f"/conversations/{conversation['id']}")
    assert [m["direction"] for m in detail["messages"]] == ["in", "out"]
    first = detail["messages"][0]
    assert first["reply_text"] == "It broke again."
    assert "Fixed?" in first["quoted_text"]
    assert detail["status"] == "pending"  # waiting for the customer after our reply


def test_an_empty_reply_is_refused(desk: Desk) -> None:
    desk.deliver(make_mail("Hi"))
    [conversation] = desk.api.conversations()
    response = desk.api.client.post(f"/api/v1/conversations/{conversation['id']}/messages", json={"text": "   "})
    assert response.status_code == 422
    assert desk.api.client.post("/api/v1/conversations/999/messages", json={"text": "x"}).status_code == 404


def test_conversations_stay_readable_after_their_connection_is_deleted(desk: Desk) -> None:
    desk.deliver(make_mail("Keep me"))
    [conversation] = desk.api.conversations()
    response = desk.api.client.delete(f"/api/v1/connections/{desk.connection['id']}", params={"confirm": "Support"})
    assert response.status_code == 204
    detail = desk.api.get(f"/conversations/{conversation['id']}")
    assert detail["subject"] == "Keep me"
    assert len(detail["messages"]) == 1
    refused = desk.api.client.post(f"/api/v1/conversations/{conversation['id']}/messages", json={"text": "hello?"})
    assert refused.status_code == 409
    assert "no mailbox" in refused.json()["detail"]


def test_attachments_and_raw_mail_can_be_downloaded(desk: Desk) -> None:
    pdf = b"%PDF-1.4 a small file"
    raw = (
        "From: Ada <ada@customer.example>\r\nTo: support@example.test\r\nSubject: File\r\n"
        "Message-ID: <file@customer.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nHere.\r\n'
        '--B\r\nContent-Type: application/pdf; name="a.pdf"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        f"{base64.b64encode(pdf).decode()}\r\n--B--\r\n"
    ).encode()
    desk.deliver(raw)
    [conversation] = desk.api.conversations()
    [attachment] = desk.api.get(f"/conversations/{conversation['id']}")["messages"][0]["attachments"]
    assert attachment["filename"] == "a.pdf"
    assert attachment["stored"] is True
    download = desk.api.client.get(f"/api/v1/attachments/{attachment['id']}")
    assert download.status_code == 200
    assert download.content == pdf
    assert download.headers["content-disposition"] == "attachment; filename=\"a.pdf\"; filename*=UTF-8''a.pdf"
    [stored] = desk.api.items("/raw-messages", status="done")
    assert stored["header_message_id"] == "file@customer.example"
    eml = desk.api.client.get(f"/api/v1/raw-messages/{stored['id']}/eml")
    assert eml.content == raw

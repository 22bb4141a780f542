"""Invitations: mailed through a connection's outbox, accepted once, refused when expired or forged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes
from email.message import Message

from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.service import Service
from postroom.store.models import Invitation, utcnow
from postroom.testing.smtp import SmtpTestServer
from support import Api

PASSWORD = "correct horse battery"


def _public(api: Api) -> TestClient:
    return TestClient(create_app(api.service))


def _text(mail: Message) -> str:
    part = next(p for p in mail.walk() if p.get_content_type() == "text/plain")
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode(part.get_content_charset() or "utf-8")


def test_invitation_mail_carries_the_link_which_works_once(
    make_service: Callable[..., Service], make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    smtp = make_smtp_server("plain")
    api = Api(make_service())
    connection = api.post(
        "/connections",
        {
            "name": "Help",
            "mode": "forwarding",
            "address": "help@example.test",
            "smtp_server": "127.0.0.1",
            "smtp_port": smtp.port,
            "smtp_encryption": "none",
        },
        201,
    )
    api.post(f"/connections/{connection['id']}/start")
    api.wait_status(connection["id"], "RUNNING")

    invited = api.post(
        "/invitations", {"email": "Ann@Example.com", "role": "agent", "connection_id": connection["id"]}, 201
    )
    assert invited["mail_queued"] is True and invited["state"] == "pending"
    url = invited["accept_url"]
    assert url.startswith("http://127.0.0.1:8025/accept-invitation?token=")
    [sent] = smtp.wait_for(1, timeout=10)
    assert sent.recipients == ("ann@example.com",)
    mail = message_from_bytes(sent.raw)
    assert mail["Subject"] == "Your invitation to Postroom"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert url in _text(mail)

    token = url.split("token=", 1)[1]
    client = _public(api)
    accepted = client.post("/api/v1/invitations/accept", json={"token": token, "name": "Ann", "password": PASSWORD})
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["email"] == "ann@example.com" and accepted.json()["role"] == "agent"
    signed_in = client.post("/api/v1/auth/token", data={"username": "ann@example.com", "password": PASSWORD})
    assert signed_in.status_code == 200

    again = client.post("/api/v1/invitations/accept", json={"token": token, "name": "Eve", "password": PASSWORD})
    assert again.status_code == 409, again.text
    assert "used already" in again.json()["detail"]
    [listed] = api.get("/invitations")["items"]
    assert listed["state"] == "accepted" and listed["user_id"] == accepted.json()["id"]


def test_expired_forged_and_revoked_invitations_are_refused(make_service: Callable[..., Service]) -> None:
    api = Api(make_service(start=False))
    client = _public(api)

    def accept(token: str) -> tuple[int, str]:
        answer = client.post("/api/v1/invitations/accept", json={"token": token, "password": PASSWORD})
        return answer.status_code, answer.json()["detail"]

    # Without a connection no mail is sent; the link is still given, to pass on by hand.
    first = api.post("/invitations", {"email": "ann@example.com"}, 201)
    assert first["mail_queued"] is False
    token = first["accept_url"].split("token=", 1)[1]
    with api.service.db.write() as session:
        row = session.get(Invitation, first["id"])
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
    status, detail = accept(token)
    assert status == 410 and "expired" in detail

    second = api.post("/invitations", {"email": "bob@example.com", "role": "admin"}, 201)
    good = second["accept_url"].split("token=", 1)[1]
    invitation_id, nonce, mac = good.split(".")
    forged_mac = ("A" if mac[0] != "A" else "B") + mac[1:]
    for forged in (f"{invitation_id}.{nonce}.{forged_mac}", f"{first['id']}.{nonce}.{mac}", "garbage", good[:-3]):
        status, detail = accept(forged)
        assert (status, detail) == (400, "this invitation link is not valid: copy the whole link from the mail")

    revoked = api.client.delete(f"/api/v1/invitations/{second['id']}")
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    status, detail = accept(good)
    assert status == 410 and "revoked" in detail
    assert [i["state"] for i in api.get("/invitations")["items"]] == ["expired", "revoked"]
    assert api.client.post("/api/v1/invitations", json={"email": "c@example.com", "extra": 1}).status_code == 422

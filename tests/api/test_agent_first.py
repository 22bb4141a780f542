"""The agent writes first (seed 003): mailbox rotation, sticky sender per customer, Reply-To, response delay."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes
from typing import Any

import pytest
from sqlalchemy import select

from postroom.service import Service
from postroom.store.models import Outbox, utcnow
from support import Api

CONNECTION: dict[str, Any] = {
    "name": "Sales",
    "address": "one@example.test, two@example.test, three@example.test",
    "email_name": "Team One, Team Two, Team Three",
    "password": "pw",
    "imap_server": "imap.example.test",
    "smtp_server": "smtp.example.test",
}


@pytest.fixture
def api(make_service: Callable[..., Service]) -> Api:
    # No workers: the outbox keeps what was queued, so the tests can read it.
    return Api(make_service(start=False))


def start(api: Api, connection_id: int, to: str, **extra: Any) -> dict[str, Any]:
    body = {"connection_id": connection_id, "to": to, "subject": "Hello", "text": "A first message.", **extra}
    result: dict[str, Any] = api.post("/conversations", body, expect=201)
    return result


def outbox_rows(api: Api) -> list[Outbox]:
    with api.service.db.read() as session:
        return list(session.scalars(select(Outbox).order_by(Outbox.id)).all())


def test_new_conversations_rotate_and_each_customer_keeps_its_sender(api: Api) -> None:
    connection = api.post("/connections", CONNECTION, expect=201)
    senders = [start(api, connection["id"], f"c{i}@customer.test")["messages"][0]["from"]["email"] for i in range(4)]
    assert senders == ["one@example.test", "two@example.test", "three@example.test", "one@example.test"]
    # c1 was written from two@: a second conversation with c1 comes from two@ again, and the rotation goes on.
    again = start(api, connection["id"], "Customer One <C1@customer.test>")
    assert again["messages"][0]["from"]["email"] == "two@example.test"
    assert again["contact"]["email"] == "c1@customer.test"
    fresh = start(api, connection["id"], "new@customer.test")
    assert fresh["messages"][0]["from"]["email"] == "two@example.test"
    raw = message_from_bytes(outbox_rows(api)[0].raw)
    assert raw["From"] == "Team One <one@example.test>"
    assert raw["To"] == "c0@customer.test"
    assert fresh["status"] == "pending"


def test_reply_to_setting_puts_a_reply_to_header_on_outgoing_mail(api: Api) -> None:
    connection = api.post("/connections", {**CONNECTION, "reply_to": "replies@example.test"}, expect=201)
    created = start(api, connection["id"], "c@customer.test")
    assert created["messages"][0]["reply_to"] == [{"email": "replies@example.test", "name": ""}]
    assert message_from_bytes(outbox_rows(api)[0].raw)["Reply-To"] == "replies@example.test"
    without = api.post("/connections", {**CONNECTION, "name": "Plain"}, expect=201)
    start(api, without["id"], "d@customer.test")
    assert message_from_bytes(outbox_rows(api)[1].raw)["Reply-To"] is None


def test_response_delay_holds_the_mail_back_between_min_and_max(api: Api) -> None:
    delayed = api.post("/connections", {**CONNECTION, "response_delay_min": 30, "response_delay_max": 120}, expect=201)
    before = utcnow()
    for i in range(5):
        start(api, delayed["id"], f"c{i}@customer.test")
    after = utcnow()
    for row in outbox_rows(api):
        assert before + timedelta(seconds=30) <= row.next_attempt_at <= after + timedelta(seconds=120)
    instant = api.post("/connections", {**CONNECTION, "name": "Instant"}, expect=201)
    start(api, instant["id"], "x@customer.test")
    assert outbox_rows(api)[-1].next_attempt_at <= utcnow()


def test_bad_starts_are_refused(api: Api) -> None:
    connection = api.post("/connections", CONNECTION, expect=201)
    bad = api.client.post(
        "/api/v1/conversations", json={"connection_id": connection["id"], "to": "nobody", "subject": "s", "text": "t"}
    )
    assert bad.status_code == 422
    missing = api.client.post(
        "/api/v1/conversations", json={"connection_id": 999, "to": "a@b.test", "subject": "s", "text": "t"}
    )
    assert missing.status_code == 404

"""A reply carries the whole known thread in References (RFC 5322 §3.6.4), even when the customer's
client wrote only In-Reply-To."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from postroom.service import Service
from postroom.testing.mails import make_mail
from support import Api, Desk


@pytest.fixture
def desk(make_service: Callable[..., Service]) -> Desk:
    return Desk(Api(make_service(start=False)))


def test_a_reply_to_mail_with_in_reply_to_only_carries_the_chain_we_know(desk: Desk) -> None:
    desk.deliver(make_mail("Printer", message_id="c1@customer.example"))
    [conversation] = desk.api.conversations()
    first = desk.api.post(f"/conversations/{conversation['id']}/messages", {"text": "Which model?"}, 201)
    assert first["references"] == ["c1@customer.example"]
    # The customer's client answers with In-Reply-To alone, no References.
    desk.deliver(
        make_mail(
            "Re: Printer",
            message_id="c2@customer.example",
            headers=[("In-Reply-To", f"<{first['message_id']}>")],
        )
    )
    [conversation] = desk.api.conversations()
    assert len(desk.api.get(f"/conversations/{conversation['id']}")["messages"]) == 3
    second = desk.api.post(f"/conversations/{conversation['id']}/messages", {"text": "Thanks."}, 201)
    assert second["in_reply_to"] == "c2@customer.example"
    assert second["references"] == ["c1@customer.example", first["message_id"], "c2@customer.example"]


def test_in_reply_to_of_an_unknown_message_starts_the_references(desk: Desk) -> None:
    # RFC 5322 §3.6.4: no References in the parent, one id in its In-Reply-To: that id, then the parent's.
    desk.deliver(
        make_mail(
            "Re: Old thread",
            message_id="c3@customer.example",
            headers=[("In-Reply-To", "<elsewhere@customer.example>")],
        )
    )
    [conversation] = desk.api.conversations()
    reply = desk.api.post(f"/conversations/{conversation['id']}/messages", {"text": "Hello."}, 201)
    assert reply["references"] == ["elsewhere@customer.example", "c3@customer.example"]

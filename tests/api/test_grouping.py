"""Grouping per connection: the same mail makes conversations by thread (the default) or by contact."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select

from postroom.service import Service
from postroom.store.models import RawMessage, RawStatus
from postroom.testing.mails import make_mail
from support import Api, Desk

ADA = "Ada <ada@customer.example>"


def _sequence(desk: Desk) -> None:
    desk.deliver(
        # An out-of-office from somebody with no conversation opens nothing, in either mode.
        make_mail("Out of office", sender="Bo <bo@customer.example>", headers=[("Auto-Submitted", "auto-replied")]),
        make_mail("Order 1", sender=ADA, message_id="m1@customer.example"),
        make_mail("Printer broken", sender=ADA, message_id="m2@customer.example"),
    )
    desk.deliver(
        make_mail("Re: Order 1", sender=ADA),
        make_mail("Re: Printer broken", sender=ADA, headers=[("In-Reply-To", "<m2@customer.example>")]),
    )


@pytest.mark.parametrize("grouping", ["thread", "contact"])
def test_the_same_mail_grouped_by_thread_or_by_contact(
    make_service: Callable[..., Service], db_url: str, grouping: str
) -> None:
    desk = Desk(Api(make_service(db_url, start=False)))
    response = desk.api.client.patch(f"/api/v1/connections/{desk.connection['id']}", json={"grouping": grouping})
    assert response.status_code == 200, response.text
    _sequence(desk)
    conversations = sorted(desk.api.conversations(), key=lambda c: c["id"])
    subjects = {
        c["subject"]: [m["subject"] for m in desk.api.get(f"/conversations/{c['id']}")["messages"]]
        for c in conversations
    }
    if grouping == "thread":
        assert subjects == {
            "Order 1": ["Order 1", "Re: Order 1"],
            "Printer broken": ["Printer broken", "Re: Printer broken"],
        }
    else:
        assert subjects == {"Order 1": ["Order 1", "Printer broken", "Re: Order 1", "Re: Printer broken"]}
    with desk.api.service.db.read() as session:
        statuses = list(session.scalars(select(RawMessage.status).order_by(RawMessage.id)))
    assert statuses[0] is RawStatus.IGNORED
    # Once resolved, a new subject from Ada opens a new conversation in both modes.
    for c in conversations:
        desk.api.client.patch(f"/api/v1/conversations/{c['id']}", json={"status": "resolved"})
    desk.deliver(make_mail("Something else", sender=ADA))
    assert len(desk.api.conversations()) == len(conversations) + 1

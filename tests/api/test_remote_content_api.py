"""The message view serves HTML that loads nothing by itself, and says how much it holds back."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from postroom.service import Service
from postroom.store.models import Message
from support import Api, Desk

NEWSLETTER = (
    b"From: Shop <news@shop.example>\r\nTo: support@example.test\r\nSubject: Sale\r\n"
    b"Message-ID: <sale@shop.example>\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b'<p style="color:red;width:e\\78pression(alert(1))">Sale!</p>'
    b'<img src="https://track.shop.example/open.gif" width="1" height="1">\r\n'
)


@pytest.fixture
def desk(make_service: Callable[..., Service]) -> Desk:
    return Desk(Api(make_service(start=False)))


def test_tracking_pixel_is_held_back_and_counted(desk: Desk) -> None:
    desk.deliver(NEWSLETTER)
    [conversation] = desk.api.conversations()
    [message] = desk.api.get(f"/conversations/{conversation['id']}")["messages"]
    assert 'data-remote-src="https://track.shop.example/open.gif"' in message["html"]
    assert ' src="https://' not in message["html"]
    assert "pression" not in message["html"]
    assert message["remote_references"] == 1


def test_a_body_stored_by_an_older_version_is_held_back_when_served(desk: Desk) -> None:
    desk.deliver(NEWSLETTER)
    with desk.api.service.db.write() as session:
        stored = session.query(Message).one()
        # As sanitising stored it before remote images were always held back.
        stored.html = '<p>Sale!</p><img src="https://track.shop.example/open.gif" width="1">'
        conversation_id = stored.conversation_id
    [message] = desk.api.get(f"/conversations/{conversation_id}")["messages"]
    assert message["html"] == '<p>Sale!</p><img data-remote-src="https://track.shop.example/open.gif" width="1">'
    assert message["remote_references"] == 1

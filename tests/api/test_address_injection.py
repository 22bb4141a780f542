"""Address fields refuse control characters and line separators: no request can add a recipient or a header."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from postroom.errors import HeaderInjectionError, InvalidSetting
from postroom.mail.compose import _check_header_lines, compose
from postroom.mail.model import Address, OutgoingMail
from postroom.service import Service
from postroom.testing.smtp import SmtpTestServer
from support import Api, wait_until

INJECTION = "victim@cust.test\r\nBcc: toleak@evil.test"
# C0 (CR, LF, NUL, VT), DEL, C1 (NEL is a line break to some readers), the Unicode line and paragraph separators.
BAD = ["\r\n", "\n", "\r", "\x00", "\x0b", "\x7f", "\x85", "\u2028", "\u2029"]
CONNECTION: dict[str, Any] = {
    "name": "Help",
    "mode": "forwarding",
    "address": "help@example.test",
    "email_name": "Help Desk",
    "smtp_server": "127.0.0.1",
}


def _start(api: Api, connection_id: int, **fields: str) -> Any:
    body = {"connection_id": connection_id, "to": "ok@cust.test", "subject": "Hello", "text": "Hi.", **fields}
    return api.client.post("/api/v1/conversations", json=body)


def _refused_field(response: Any) -> str:
    assert response.status_code == 422, response.text
    problem = response.json()
    # The message names the field and the character, but never echoes the value sent.
    assert "toleak" not in response.text
    [error] = problem["errors"]
    # A request field is a dotted path (body.to); a setting the service refused is named as it is.
    return str(error["field"]).rsplit(".", 1)[-1]


@pytest.fixture
def idle_api(make_service: Callable[..., Service]) -> Api:
    return Api(make_service(start=False))


def test_injected_recipient_is_refused_and_nothing_is_sent(
    make_service: Callable[..., Service], make_smtp_server: Callable[..., SmtpTestServer]
) -> None:
    smtp = make_smtp_server("plain")
    api = Api(make_service())
    connection = api.post("/connections", {**CONNECTION, "smtp_port": smtp.port, "smtp_encryption": "none"}, 201)
    api.post(f"/connections/{connection['id']}/start")
    api.wait_status(connection["id"], "RUNNING")

    assert _refused_field(_start(api, connection["id"], to=INJECTION)) == "to"
    assert _refused_field(_start(api, connection["id"], cc=INJECTION)) == "cc"
    assert _refused_field(_start(api, connection["id"], subject="Hi\r\nBcc: toleak@evil.test")) == "subject"
    assert api.conversations() == []

    # The outbox works: a clean request right after is the one and only mail the server ever sees.
    assert _start(api, connection["id"], to="Ok <ok@cust.test>").status_code == 201
    [sent] = smtp.wait_for(1)
    assert sent.recipients == ("ok@cust.test",)
    wait_until(lambda: api.conversations()[0]["status"] == "pending")
    assert len(smtp.messages) == 1
    assert all(b"evil.test" not in m.raw and "toleak@evil.test" not in m.recipients for m in smtp.messages)


def test_every_control_character_and_line_separator_is_refused_in_address_fields(idle_api: Api) -> None:
    connection = idle_api.post("/connections", CONNECTION, 201)
    for bad in BAD:
        value = f"victim@cust.test{bad}Bcc: toleak@evil.test"
        assert _refused_field(_start(idle_api, connection["id"], to=value)) == "to", repr(bad)
        assert _refused_field(_start(idle_api, connection["id"], to="ok@cust.test", cc=value)) == "cc", repr(bad)
        # Connection mailbox addresses: the mailbox address and its Reply-To.
        made = idle_api.client.post("/api/v1/connections", json={**CONNECTION, "name": "Other", "address": value})
        assert _refused_field(made) == "address", repr(bad)
        changed = idle_api.client.patch(f"/api/v1/connections/{connection['id']}", json={"reply_to": value})
        assert _refused_field(changed) == "reply_to", repr(bad)
    assert idle_api.conversations() == []


def test_service_layer_refuses_what_the_api_model_would(idle_api: Api) -> None:
    service = idle_api.service
    connection = idle_api.post("/connections", CONNECTION, 201)
    with pytest.raises(InvalidSetting) as refused, service.db.write() as session:
        service.conversations.start(session, connection["id"], to=INJECTION, subject="Hi", text="Hello")
    assert refused.value.field == "to"


MAIL = OutgoingMail(
    from_=Address("support@example.com", "Support"),
    to=(Address("ann@example.org", "Ann"),),
    subject="Hello",
    text="Hi.\n",
    date=datetime(2024, 3, 4, 10, 0, tzinfo=UTC),
)


@pytest.mark.parametrize("bad", BAD, ids=[repr(b) for b in BAD])
def test_compose_refuses_an_address_that_could_break_a_header(bad: str) -> None:
    for change in (
        {"to": (Address(f"victim@cust.test{bad}Bcc: toleak@evil.test"),)},
        {"cc": (Address(f"x@cust.test{bad}"),)},
        {"bcc": (Address(f"{bad}x@cust.test"),)},
        {"reply_to": (Address(f"r@cust.test{bad}"),)},
        {"from_": Address(f"support@example.com{bad}")},
    ):
        with pytest.raises(HeaderInjectionError):
            compose(replace(MAIL, **change))  # type: ignore[arg-type]


def test_names_with_separators_are_encoded_not_broken() -> None:
    raw = compose(replace(MAIL, to=(Address("ann@example.org", "Ann\u2028Bcc: x@evil.test\x85"),))).raw
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc" not in head and b"Bcc:" not in head
    assert all(line[:1] in (b" ", b"\t") or b":" in line for line in head.split(b"\r\n"))


@pytest.mark.parametrize(
    "block",
    [
        ["To: a@b.test\r\nBcc: evil@x.test"],  # a second field inside one
        ["To: a@b.test\nBcc: evil@x.test"],  # a bare LF
        ["Subject: a\rb"],  # a bare CR
        ["Subject: a\u2028b"],
        ["Subject: a\x00b"],
        ["No colon here"],
        ["Bad Name: x"],
    ],
)
def test_last_guard_refuses_any_header_line_that_is_not_one_field(block: list[str]) -> None:
    with pytest.raises(HeaderInjectionError):
        _check_header_lines(block)


def test_last_guard_accepts_folding_and_tabs() -> None:
    _check_header_lines(["Subject: a long\r\n subject\twith a tab", "To: a@b.test,\r\n\tc@d.test"])

"""POST /api/v1/connections/{id}/test: the report of "Test connection", against real Dovecot and aiosmtpd."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from postroom.service import Service
from postroom.testing.dovecot import DovecotServer, MailUser
from postroom.testing.smtp import SmtpTestServer
from support import Api, connection_body


@pytest.fixture
def api(make_service: Callable[..., Service]) -> Api:
    # No workers: the probe must work on a stopped connection, and must leave it stopped.
    return Api(make_service(start=False))


@pytest.fixture
def smtp(make_smtp_server: Callable[..., SmtpTestServer]) -> SmtpTestServer:
    return make_smtp_server("starttls", auth_required=True)


def probe(api: Api, connection_id: int, **params: Any) -> Any:
    response = api.client.post(f"/api/v1/connections/{connection_id}/test", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_working_connection_reports_every_step_passed(
    api: Api, dovecot: DovecotServer, dovecot_user: MailUser, smtp: SmtpTestServer
) -> None:
    created = api.post("/connections", connection_body(dovecot, dovecot_user, smtp), expect=201)

    report = probe(api, created["id"])

    assert report["ok"] is True
    assert report["connection_id"] == created["id"]
    assert report["mode"] == "imap"
    assert report["roundtrip"] is False
    assert report["summary"] == "all 9 checks passed for 1 mailbox(es)"
    steps = [(s["part"], s["protocol"], s["name"], s["ok"]) for s in report["steps"]]
    assert steps == [
        ("incoming", "IMAP", "dns", True),
        ("incoming", "IMAP", "tcp", True),
        ("incoming", "IMAP", "tls", True),
        ("incoming", "IMAP", "signin", True),
        ("incoming", "IMAP", "folder", True),
        ("outgoing", "SMTP", "dns", True),
        ("outgoing", "SMTP", "tcp", True),
        ("outgoing", "SMTP", "tls", True),
        ("outgoing", "SMTP", "signin", True),
    ]
    assert all(s["mailbox"] == dovecot_user.address and s["error"] is None for s in report["steps"])
    # The connection is as it was, and its log has the probe's line.
    assert api.get(f"/connections/{created['id']}")["status"] == "STOPPED"
    logs = api.items(f"/connections/{created['id']}/logs")
    assert [(row["event"], row["message"]) for row in logs] == [
        ("probe", "connection test: all 9 checks passed for 1 mailbox(es)")
    ]


def test_a_failing_step_is_still_a_200_report_that_says_what_failed(
    api: Api, dovecot: DovecotServer, dovecot_user: MailUser, smtp: SmtpTestServer
) -> None:
    body = connection_body(dovecot, dovecot_user, smtp, password="Not-The-Password-1")
    created = api.post("/connections", body, expect=201)

    response = api.client.post(f"/api/v1/connections/{created['id']}/test")

    assert response.status_code == 200
    report = response.json()
    assert report["ok"] is False
    failed = [(s["part"], s["name"], s["error"]) for s in report["steps"] if not s["ok"]]
    assert failed == [("incoming", "signin", "AuthenticationError"), ("outgoing", "signin", "AuthenticationError")]
    assert "[AUTHENTICATIONFAILED] Authentication failed." in report["summary"]
    assert "Not-The-Password-1" not in response.text
    assert dovecot_user.password not in response.text
    assert api.get(f"/connections/{created['id']}")["status"] == "STOPPED"


def test_roundtrip_is_asked_for_with_a_query_parameter(
    api: Api, dovecot: DovecotServer, dovecot_user: MailUser, smtp: SmtpTestServer
) -> None:
    # This SMTP server delivers nowhere: the roundtrip runs and reports that the mail never arrived.
    created = api.post("/connections", connection_body(dovecot, dovecot_user, smtp), expect=201)

    report = probe(api, created["id"], roundtrip="true", timeout=0.5)

    assert report["roundtrip"] is True
    roundtrip = [(s["protocol"], s["name"], s["ok"], s["error"]) for s in report["steps"] if s["part"] == "roundtrip"]
    assert roundtrip == [
        ("SMTP", "send", True, None),
        ("IMAP", "arrival", False, "NotArrived"),
        ("IMAP", "cleanup", True, None),
    ]
    assert len(smtp.wait_for(1)) == 1


def test_an_unknown_connection_is_404_and_bad_parameters_are_422(api: Api) -> None:
    assert api.client.post("/api/v1/connections/4242/test").status_code == 404
    assert api.client.post("/api/v1/connections/4242/test", params={"timeout": 0}).status_code == 422
    assert api.client.post("/api/v1/connections/4242/test", params={"roundtrip": "perhaps"}).status_code == 422
    refused = api.client.post("/api/v1/connections/4242/test", params={"send_to": "two words"})
    assert refused.status_code == 422
    assert "send_to" in refused.text


def test_the_endpoint_needs_a_token(api: Api) -> None:
    response = api.client.post("/api/v1/connections/1/test", headers={"Authorization": ""})
    assert response.status_code == 401

"""Stored secrets stay where the admin sent them: a changed destination needs the secret again, no secret goes
unencrypted to another machine unless allowed, and API and token URLs are https (http on loopback only).

Whoever may change a connection cannot read its secrets (the API masks them); without these rules they could
point the connection at a server of their own and read the password at the next sign-in or "Test connection".
"""

from __future__ import annotations

import asyncio
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import httpx
import pytest

from postroom.channels.accounts import mailbox_auth
from postroom.errors import TlsError
from postroom.service import Service
from postroom.sources.base import ImapAccount
from postroom.sources.oauth import OAuthClient, TokenManager
from postroom.store.models import Connection, Mailbox
from postroom.testing.oauth import MemoryTokenStore
from postroom.tls import is_loopback, secret_url_problem
from postroom.transports import sendgrid
from postroom.transports.base import SmtpAccount
from support import Api

BODY: dict[str, Any] = {
    "name": "Support",
    "address": "support@example.test",
    "password": "imap-secret",
    "imap_server": "imap.example.test",
    "smtp_server": "smtp.example.test",
    "smtp_password": "smtp-secret",
}
OAUTH: dict[str, Any] = {
    **{k: v for k, v in BODY.items() if k not in ("password", "smtp_password")},
    "oauth_enabled": True,
    "oauth_client_id": "client-1",
    "oauth_client_secret": "client-secret",
    "oauth_refresh_token": "refresh-1",
}
SENDGRID: dict[str, Any] = {**BODY, "outbound": "sendgrid", "sendgrid_api_key": "SG.key"}
SECRET_COLUMNS = ("password_enc", "smtp_password_enc", "oauth_client_secret_enc", "oauth_refresh_token_enc")


@pytest.fixture
def api(make_service: Callable[..., Service]) -> Api:
    # Api signs in with an admin token: the rules hold for admins too.
    return Api(make_service(start=False))


def patch(api: Api, connection_id: int, body: dict[str, Any]) -> httpx.Response:
    return api.client.patch(f"/api/v1/connections/{connection_id}", json=body)


def stored(api: Api, connection_id: int) -> list[dict[str, Any]]:
    """Each mailbox's endpoint columns and decrypted secrets, and the connection's SendGrid settings."""
    decrypt = api.service.secrets.decrypt
    with api.service.db.read() as session:
        connection = api.service.connections.get(session, connection_id)
        return [
            {
                "imap": (b.imap_host, b.imap_port, b.imap_encryption),
                "smtp": (b.smtp_host, b.smtp_port, b.smtp_encryption),
                "token_uri": b.oauth_token_uri,
                **{column: decrypt(getattr(b, column)) if getattr(b, column) else "" for column in SECRET_COLUMNS},
                "sendgrid": (connection.sendgrid_api_url, decrypt(connection.sendgrid_api_key_enc)),
            }
            for b in connection.mailboxes
        ]


# ── 1. a new destination needs the secret again ───────────────────────────────────────────────────────────


def test_a_new_port_alone_is_refused_and_nothing_changes(api: Api) -> None:
    created = api.post("/connections", BODY, expect=201)
    before = stored(api, created["id"])

    response = patch(api, created["id"], {"imap_port": 11999})

    assert response.status_code == 422, response.text
    problem = response.json()
    reason = "imap_port changed: re-enter password, the stored one is not sent to a new server " + (
        "(mailbox support@example.test)"
    )
    assert (problem["type"], problem["status"]) == ("urn:postroom:problem:invalid-setting", 422)
    assert problem["detail"] == f"password: {reason}"
    assert problem["field"] == "password"
    assert problem["errors"] == [{"field": "password", "message": reason}]
    assert stored(api, created["id"]) == before


@pytest.mark.parametrize(
    ("body", "change", "field", "words"),
    [
        (BODY, {"imap_server": "evil.example.test"}, "password", "imap_server changed"),
        (BODY, {"imap_encryption": "starttls"}, "password", "imap_port and imap_encryption changed"),
        (BODY, {"username": "someone-else"}, "password", "username changed"),
        (BODY, {"validate_certificate": False}, "password", "validate_certificate changed"),
        (BODY, {"smtp_server": "evil.example.test"}, "smtp_password", "smtp_server changed"),
        (BODY, {"smtp_port": 2525}, "smtp_password", "smtp_port changed"),
        (BODY, {"smtp_encryption": "ssl"}, "smtp_password", "smtp_encryption changed"),
        (BODY, {"smtp_username": "relay"}, "smtp_password", "smtp_username changed"),
        # smtp_password empty: SMTP signs in with the mailbox password, which must not follow the SMTP server.
        ({**BODY, "smtp_password": None}, {"smtp_server": "evil.example.test"}, "smtp_password", "or password"),
        (BODY, {"smtp_server": "evil.example.test", "smtp_password": None}, "smtp_password", "or password"),
        (
            {**BODY, "mode": "pop3", "imap_server": None, "pop3_server": "pop.example.test"},
            {"pop3_port": 1110},
            "password",
            "pop3_port changed",
        ),
        (SENDGRID, {"sendgrid_api_url": "https://evil.example.test"}, "sendgrid_api_key", "sendgrid_api_url changed"),
        (OAUTH, {"oauth_token_uri": "https://evil.example.test/token"}, "oauth_client_secret", "oauth_token_uri"),
        (
            OAUTH,
            {"oauth_token_uri": "https://evil.example.test/token", "oauth_client_secret": "client-secret"},
            "oauth_refresh_token",
            "oauth_token_uri changed",
        ),
        # XOAUTH2 sends access tokens minted from the refresh token to the mail servers.
        (OAUTH, {"imap_server": "evil.example.test"}, "oauth_refresh_token", "imap_server changed"),
        (OAUTH, {"smtp_port": 2525}, "oauth_refresh_token", "smtp_port changed"),
    ],
)
def test_every_destination_of_a_secret_needs_it_again(
    api: Api, body: dict[str, Any], change: dict[str, Any], field: str, words: str
) -> None:
    created = api.post("/connections", {k: v for k, v in body.items() if v is not None}, expect=201)
    before = stored(api, created["id"])

    response = patch(api, created["id"], change)

    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert words in response.json()["detail"]
    assert "re-enter" in response.json()["detail"]
    assert stored(api, created["id"]) == before


@pytest.mark.parametrize(
    ("body", "change", "column", "value"),
    [
        (BODY, {"imap_port": 11999, "password": "new-imap"}, "password_enc", "new-imap"),
        (BODY, {"smtp_server": "smtp2.example.test", "smtp_password": "new-smtp"}, "smtp_password_enc", "new-smtp"),
        # The fallback: giving the mailbox password again is enough for SMTP to keep using it.
        (
            {**BODY, "smtp_password": None},
            {"smtp_server": "smtp2.example.test", "password": "new-imap"},
            "password_enc",
            "new-imap",
        ),
        (
            OAUTH,
            {"imap_server": "imap2.example.test", "oauth_refresh_token": "refresh-2"},
            "oauth_refresh_token_enc",
            "refresh-2",
        ),
        (
            OAUTH,
            {
                "oauth_token_uri": "https://login.example.test/token",
                "oauth_client_secret": "secret-2",
                "oauth_refresh_token": "refresh-2",
            },
            "oauth_client_secret_enc",
            "secret-2",
        ),
    ],
)
def test_a_new_destination_with_its_secret_given_again_is_saved(
    api: Api, body: dict[str, Any], change: dict[str, Any], column: str, value: str
) -> None:
    created = api.post("/connections", {k: v for k, v in body.items() if v is not None}, expect=201)
    response = patch(api, created["id"], change)
    assert response.status_code == 200, response.text
    assert stored(api, created["id"])[0][column] == value


def test_a_new_sendgrid_url_with_its_key_given_again_is_saved(api: Api) -> None:
    created = api.post("/connections", SENDGRID, expect=201)
    change = {"sendgrid_api_url": "https://api.eu.sendgrid.com", "sendgrid_api_key": "SG.eu-key"}
    assert patch(api, created["id"], change).status_code == 200
    assert stored(api, created["id"])[0]["sendgrid"] == ("https://api.eu.sendgrid.com", "SG.eu-key")


@pytest.mark.parametrize("body", [BODY, OAUTH, SENDGRID], ids=["password", "oauth", "sendgrid"])
def test_the_same_values_in_other_spellings_are_no_change(api: Api, body: dict[str, Any]) -> None:
    created = api.post("/connections", body, expect=201)
    before = stored(api, created["id"])
    same = {
        "imap_server": "IMAP.Example.Test",
        "imap_port": "993",
        "imap_encryption": "SSL",
        "smtp_server": "smtp.example.test",
        "smtp_port": 587,
        "smtp_encryption": "auto",
        "username": "",
        "validate_certificate": "true",
        "sendgrid_api_url": "https://api.sendgrid.com/",
        "password": "********",
    }
    if body is OAUTH:
        # The view shows the default token endpoint; sending it back names the same one.
        same = {**same, "oauth_token_uri": "https://oauth2.googleapis.com/token"}
    response = patch(api, created["id"], same)
    assert response.status_code == 200, response.text
    after = stored(api, created["id"])
    assert [{k: v for k, v in box.items() if k not in ("imap", "token_uri")} for box in after] == [
        {k: v for k, v in box.items() if k not in ("imap", "token_uri")} for box in before
    ]


def test_only_the_mailbox_whose_server_changed_needs_its_password(api: Api) -> None:
    three = {**BODY, "address": "a@example.test, b@example.test, c@example.test", "password": ["pa", "pb", "pc"]}
    created = api.post("/connections", three, expect=201)

    refused = patch(api, created["id"], {"imap_port": "993, 1993, 993"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == "password"
    assert "(mailbox b@example.test)" in refused.json()["detail"]

    done = patch(api, created["id"], {"imap_port": "993, 1993, 993", "password": ["********", "pb-2", "********"]})
    assert done.status_code == 200, done.text
    boxes = stored(api, created["id"])
    assert [b["imap"][1] for b in boxes] == [993, 1993, 993]
    assert [b["password_enc"] for b in boxes] == ["pa", "pb-2", "pc"]


def test_a_renamed_mailbox_keeps_its_password_but_a_new_server_for_it_does_not(api: Api) -> None:
    two = {**BODY, "address": "a@example.test, b@example.test", "password": ["pa", "pb"]}
    created = api.post("/connections", two, expect=201)
    renamed = patch(api, created["id"], {"address": "a@example.test, bee@example.test"})
    assert renamed.status_code == 200, renamed.text
    moved = patch(
        api,
        created["id"],
        {"address": "a@example.test, bee2@example.test", "imap_server": "imap.example.test, evil.example.test"},
    )
    assert moved.status_code == 422, moved.text
    assert "(mailbox bee2@example.test)" in moved.json()["detail"]


def test_the_cli_update_from_an_env_file_follows_the_same_rule(api: Api, tmp_path: Any) -> None:
    """``postroom inbox update --from`` builds the same ConnectionInput and goes through the same service."""
    from postroom.errors import InvalidSetting
    from postroom.helpdesk.connections import ConnectionInput

    created = api.post("/connections", BODY, expect=201)
    service = api.service
    unchanged = ConnectionInput.model_validate({"imap_server": "imap.example.test", "imap_port": "993"})
    moved = ConnectionInput.model_validate({"imap_server": "imap.example.test", "imap_port": "11999"})
    with service.db.write() as session:
        service.connections.update(session, created["id"], unchanged)
    with pytest.raises(InvalidSetting) as refused, service.db.write() as session:
        service.connections.update(session, created["id"], moved)
    assert refused.value.field == "password"


# ── the attack itself: Test connection never reaches the attacker's server ────────────────────────────────


class _Capture(socketserver.BaseRequestHandler):
    """A fake IMAP server that records what a client sends, up to the SASL PLAIN response."""

    received: list[bytes]

    def handle(self) -> None:
        self.request.settimeout(5)
        self.request.sendall(b"* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready\r\n")
        stream = self.request.makefile("rb")
        for _ in range(4):
            line = stream.readline()
            if not line:
                return
            self.server.received.append(line)  # type: ignore[attr-defined]
            tag = line.split(b" ", 1)[0]
            if b" CAPABILITY" in line.upper():
                self.request.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK done\r\n")
            elif b"AUTHENTICATE" in line.upper():
                self.request.sendall(b"+ \r\n")
            else:
                self.request.sendall(tag + b" NO no\r\n")


@pytest.fixture
def attacker() -> Iterator[tuple[int, list[bytes]]]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Capture)
    server.received = []  # type: ignore[attr-defined]
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.received  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_port_change_cannot_send_the_password_to_another_server(api: Api, attacker: tuple[int, list[bytes]]) -> None:
    port, received = attacker
    body = {**BODY, "imap_server": "127.0.0.1", "imap_port": _closed_port(), "imap_encryption": "none"}
    created = api.post("/connections", {**body, "smtp_server": "127.0.0.1", "smtp_port": _closed_port()}, 201)

    assert patch(api, created["id"], {"imap_port": port}).status_code == 422
    api.post(f"/connections/{created['id']}/test?timeout=5", {}, 200)

    assert received == []


def test_an_api_url_change_cannot_send_the_key_to_another_server(api: Api) -> None:
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(401)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        body = {
            **SENDGRID,
            "mode": "forwarding",
            "sendgrid_api_url": f"http://127.0.0.1:{_closed_port()}",
        }
        created = api.post("/connections", body, 201)
        moved = patch(api, created["id"], {"sendgrid_api_url": f"http://127.0.0.1:{server.server_address[1]}"})
        assert moved.status_code == 422
        assert moved.json()["field"] == "sendgrid_api_key"
        api.post(f"/connections/{created['id']}/test?timeout=5", {}, 200)
    finally:
        server.shutdown()
        server.server_close()
    assert seen == []


# ── 2. no secret in plain text to another machine unless allowed ─────────────────────────────────────────


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"imap_encryption": "none"}, "imap_encryption", "the IMAP password would go unencrypted to"),
        ({"smtp_encryption": "none"}, "smtp_encryption", "the SMTP password would go unencrypted"),
        ({"smtp_port": 25}, "smtp_encryption", "is auto, which is none on port 25"),
        (
            {"mode": "pop3", "imap_server": None, "pop3_server": "pop.example.test", "pop3_encryption": "none"},
            "pop3_encryption",
            "POP3 password",
        ),
    ],
)
def test_plain_text_to_another_host_is_refused_unless_allowed(
    api: Api, change: dict[str, Any], field: str, words: str
) -> None:
    body = {k: v for k, v in {**BODY, **change}.items() if v is not None}
    refused = api.client.post("/api/v1/connections", json=body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["field"] == field
    assert words in refused.json()["detail"]
    assert "allow_plaintext_auth" in refused.json()["detail"]

    allowed = api.post("/connections", {**body, "allow_plaintext_auth": True}, expect=201)
    assert allowed["allow_plaintext_auth"] is True
    assert len(allowed["warnings"]) == 1
    assert "goes unencrypted" in allowed["warnings"][0]
    logged = api.items(f"/connections/{allowed['id']}/logs")
    assert [(line["level"], line["event"]) for line in logged] == [("warning", "plaintext_auth")]
    assert logged[0]["message"] == allowed["warnings"][0]


def test_plain_text_to_loopback_or_without_a_secret_is_fine(api: Api) -> None:
    local = {**BODY, "imap_server": "127.0.0.1", "imap_encryption": "none", "smtp_server": "localhost"}
    created = api.post("/connections", {**local, "smtp_encryption": "none"}, expect=201)
    assert (created["allow_plaintext_auth"], created["warnings"]) == (False, [])
    # A forwarding connection relaying through port 25 without signing in sends no secret.
    relay = {"name": "Relay", "mode": "forwarding", "address": "help@example.test", "smtp_server": "mx.example.test"}
    assert api.post("/connections", {**relay, "smtp_port": 25}, expect=201)["warnings"] == []


def test_turning_the_permission_off_again_is_refused_while_plain_text_is_in_use(api: Api) -> None:
    body = {**BODY, "imap_encryption": "none", "allow_plaintext_auth": True}
    created = api.post("/connections", body, expect=201)
    refused = patch(api, created["id"], {"allow_plaintext_auth": False})
    assert refused.status_code == 422
    assert refused.json()["field"] == "imap_encryption"
    fixed = patch(api, created["id"], {"allow_plaintext_auth": False, "imap_encryption": "ssl", "password": "pw"})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["warnings"] == []


def _stored_pair(api: Api, allow: bool) -> tuple[Connection, Mailbox]:
    secrets = api.service.secrets
    box = Mailbox(
        address="support@example.test",
        imap_host="imap.example.test",
        imap_port=143,
        imap_encryption="none",
        smtp_host="smtp.example.test",
        smtp_port=25,
        smtp_encryption="auto",
        password_enc=secrets.encrypt("imap-secret"),
        smtp_password_enc="",
    )
    connection = Connection(name="Old row", oauth_enabled=False, allow_plaintext_auth=allow, mailboxes=[box])
    return connection, box


class _Client:
    """Stands in for IMAPClient and aiosmtplib.SMTP: records whether a sign-in was attempted."""

    def __init__(self) -> None:
        self.logins: list[str] = []

    def has_capability(self, name: str) -> bool:
        return name == "AUTH=PLAIN"

    def plain_login(self, login: str, password: str) -> None:
        self.logins.append(password)

    async def login(self, login: str, password: str) -> None:
        self.logins.append(password)


def test_the_sign_in_itself_refuses_plain_text_to_another_host(api: Api) -> None:
    """A row that escaped the save-time check (written before it) still never sends the password in clear."""
    connection, box = _stored_pair(api, allow=False)
    auth = mailbox_auth(connection, box, api.service.secrets, api.service.db)
    imap_account = ImapAccount(address=box.address, host=box.imap_host, port=143, encryption="none", password="pw")
    smtp_account = SmtpAccount(address=box.address, host=box.smtp_host, port=25, password="pw")
    client = _Client()

    with pytest.raises(TlsError, match="allow_plaintext_auth"):
        auth.imap(client, imap_account)
    with pytest.raises(TlsError, match="not encrypted"):
        asyncio.run(auth.smtp(client, smtp_account))  # type: ignore[arg-type]
    assert client.logins == []

    # Loopback, or the admin's explicit permission: the sign-in goes ahead.
    auth.imap(client, ImapAccount(address=box.address, host="127.0.0.1", encryption="none", password="pw"))
    allowed = mailbox_auth(_stored_pair(api, allow=True)[0], box, api.service.secrets, api.service.db)
    asyncio.run(allowed.smtp(client, smtp_account))  # type: ignore[arg-type]
    assert client.logins == ["pw", "pw"]


# ── 3. API and token URLs: https, or http on loopback ────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({**SENDGRID, "sendgrid_api_url": "http://api.sendgrid.com"}, "sendgrid_api_url"),
        ({**SENDGRID, "sendgrid_api_url": "http://127.0.0.1.evil.test"}, "sendgrid_api_url"),
        ({**OAUTH, "oauth_token_uri": "http://oauth.example.test/token"}, "oauth_token_uri"),
        ({**OAUTH, "oauth_token_uri": "http://localhost.evil.test/token"}, "oauth_token_uri"),
    ],
)
def test_plain_http_urls_for_secrets_are_refused(api: Api, change: dict[str, Any], field: str) -> None:
    response = api.client.post("/api/v1/connections", json=change)
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field
    assert "use https://" in response.json()["detail"]


def test_plain_http_urls_on_loopback_are_accepted(api: Api) -> None:
    sendgrid_body = {**SENDGRID, "sendgrid_api_url": "http://127.0.0.1:8080"}
    assert api.post("/connections", sendgrid_body, 201)["sendgrid_api_url"] == "http://127.0.0.1:8080"
    oauth_body = {**OAUTH, "name": "OAuth", "oauth_token_uri": "http://localhost:9000/token"}
    assert api.post("/connections", oauth_body, 201)["oauth_token_uri"] == "http://localhost:9000/token"


def test_the_transports_refuse_plain_http_before_any_request() -> None:
    requests: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"scopes": ["mail.send"], "access_token": "t"})

    account = sendgrid.SendgridAccount(address="a@example.test", api_key="SG.k", api_url="http://sendgrid.example.test")
    with pytest.raises(TlsError, match="use https"):
        asyncio.run(sendgrid.check(account, transport=httpx.MockTransport(record)))
    with pytest.raises(TlsError, match="use https"):
        asyncio.run(sendgrid.send(account, b"From: a@example.test\r\n\r\nx", "a@example.test", ["b@example.test"]))

    client = OAuthClient("id", "client-secret", "http://oauth.example.test/token")
    with httpx.Client(transport=httpx.MockTransport(record)) as http:
        manager = TokenManager("a@example.test", client, MemoryTokenStore("refresh"), http=http)
        with pytest.raises(TlsError, match="use https"):
            manager.access_token()
    assert requests == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.9.8.7", True),
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("localhost.evil.test", False),
        ("127.0.0.1.evil.test", False),
        ("10.0.0.1", False),
        ("0.0.0.0", False),
        ("mail.example.test", False),
        ("", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_which_urls_may_carry_a_secret() -> None:
    assert secret_url_problem("https://api.sendgrid.com") is None
    assert secret_url_problem("http://[::1]:8080/v3") is None
    assert "use https" in (secret_url_problem("http://api.sendgrid.com") or "")
    assert "not an http(s) URL" in (secret_url_problem("ftp://x") or "")
    assert "names no host" in (secret_url_problem("https:///path") or "")

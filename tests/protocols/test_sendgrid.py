"""SendGrid's v3 Mail Send API against the local stand-in: the JSON our MIME becomes, and every answer's meaning."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from postroom.errors import AuthenticationError, ConnectError, PermanentDeliveryError, TlsError
from postroom.mail.compose import compose
from postroom.mail.model import Address, ComposedMail, OutgoingAttachment, OutgoingMail
from postroom.testing.certs import Certificates
from postroom.testing.sendgrid import SendgridTestServer
from postroom.transports import sendgrid
from postroom.transports.sendgrid import SendgridAccount, SendgridTemporaryError, mail_request

PDF = b"%PDF-1.4 r\xc3\xa9sum\xc3\xa9 \x00\x01\x02"
PNG = b"\x89PNG\r\n\x1a\nlogo"


@pytest.fixture
def api() -> Iterator[SendgridTestServer]:
    with SendgridTestServer() as server:
        yield server


def account_for(server: SendgridTestServer, **changes: Any) -> SendgridAccount:
    return replace(SendgridAccount("support@example.test", server.api_key, server.url, timeout=5.0), **changes)


def reply(**changes: Any) -> ComposedMail:
    mail = OutgoingMail(
        from_=Address("support@example.test", "Zoë Ström, Support"),
        to=(Address("cy@customer.example", 'Çy "Q" Ünal'),),
        cc=(Address("boss@customer.example", "Bőss"),),
        bcc=(Address("audit@example.test"),),
        reply_to=(Address("help@example.test", "Help Désk"),),
        subject="Re: Grüße – your invoice",
        text="Hello Çy,\nhere it is.",
        html="<p>Hello Çy,<br>here it is. <img src='cid:logo@pr'></p>",
        in_reply_to="question@customer.example",
        references=("root@customer.example",),
        attachments=(
            OutgoingAttachment("résumé.pdf", "application/pdf", PDF),
            OutgoingAttachment("logo.png", "image/png", PNG, content_id="logo@pr", inline=True),
        ),
        extra_headers=(("X-Postroom-Conversation", "42"),),
    )
    return compose(replace(mail, **changes))


def send(account: SendgridAccount, mail: ComposedMail) -> Any:
    return asyncio.run(sendgrid.send(account, mail.raw, mail.envelope_from, mail.recipients))


def test_our_mime_becomes_the_documented_json() -> None:
    mail = reply()
    body = mail_request(mail.raw, mail.envelope_from, mail.recipients)

    assert body["personalizations"] == [
        {
            "to": [{"email": "cy@customer.example", "name": 'Çy "Q" Ünal'}],
            "cc": [{"email": "boss@customer.example", "name": "Bőss"}],
            # Bcc is never written into the headers; the envelope alone names it.
            "bcc": [{"email": "audit@example.test"}],
        }
    ]
    assert body["from"] == {"email": "support@example.test", "name": "Zoë Ström, Support"}
    assert body["reply_to"] == {"email": "help@example.test", "name": "Help Désk"}
    assert body["subject"] == "Re: Grüße – your invoice"
    # text/plain first, then text/html, as the API demands; line breaks as LF.
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert body["content"][0]["value"] == "Hello Çy,\nhere it is."
    assert body["content"][1]["value"] == "<p>Hello Çy,<br>here it is. <img src='cid:logo@pr'></p>"

    files = {a["filename"]: a for a in body["attachments"]}
    assert base64.b64decode(files["résumé.pdf"]["content"]) == PDF
    assert files["résumé.pdf"]["type"] == "application/pdf"
    assert files["résumé.pdf"]["disposition"] == "attachment"
    assert "content_id" not in files["résumé.pdf"]
    assert base64.b64decode(files["logo.png"]["content"]) == PNG
    assert files["logo.png"] | {"content": ""} == {
        "content": "",
        "filename": "logo.png",
        "type": "image/png",
        "disposition": "inline",
        "content_id": "logo@pr",
    }

    headers = body["headers"]
    # Threading survives: our Message-ID, In-Reply-To and References go out as we wrote them.
    assert headers["Message-ID"] == f"<{mail.message_id}>"
    assert headers["In-Reply-To"] == "<question@customer.example>"
    assert headers["References"] == "<root@customer.example> <question@customer.example>"
    assert headers["X-Postroom-Loop"] == "support@example.test"
    assert headers["X-Postroom-Conversation"] == "42"
    # Nothing SendGrid reserves or builds itself; every value one line and ASCII (still RFC 2047-encoded).
    assert not {h.lower() for h in headers} & (sendgrid.RESERVED_HEADERS | {"mime-version", "date"})
    assert all("\n" not in v and v.isascii() for v in headers.values())


def test_a_plain_text_mail_has_one_content_block_and_no_attachments() -> None:
    mail = reply(html=None, attachments=(), cc=(), bcc=(), reply_to=())
    body = mail_request(mail.raw, mail.envelope_from, mail.recipients)
    assert body["content"] == [{"type": "text/plain", "value": "Hello Çy,\nhere it is."}]
    assert "attachments" not in body
    assert "reply_to" not in body
    assert body["personalizations"] == [{"to": [{"email": "cy@customer.example", "name": 'Çy "Q" Ünal'}]}]


def test_bcc_only_recipients_each_get_a_personalization_of_their_own() -> None:
    mail = reply(to=(), cc=(), bcc=(Address("a@customer.example"), Address("b@customer.example")))
    body = mail_request(mail.raw, mail.envelope_from, mail.recipients)
    # Every personalization needs a "to"; one each keeps the hidden recipients hidden from each other.
    assert body["personalizations"] == [
        {"to": [{"email": "a@customer.example"}]},
        {"to": [{"email": "b@customer.example"}]},
    ]


def test_a_reply_is_accepted_and_keeps_the_providers_message_id(api: SendgridTestServer) -> None:
    mail = reply()
    result = send(account_for(api), mail)

    [accepted] = api.messages
    assert accepted.headers["authorization"] == f"Bearer {api.api_key}"
    assert accepted.headers["content-type"] == "application/json"
    assert result.reply.code == 202
    assert accepted.message_id is not None
    assert f"X-Message-Id {accepted.message_id}" in str(result.reply)
    # The stand-in validated it as SendGrid does and received the JSON of mail_request.
    assert accepted.body == mail_request(mail.raw, mail.envelope_from, mail.recipients)


def test_a_request_the_api_refuses_is_permanent_with_the_apis_words(api: SendgridTestServer) -> None:
    # A From address without a dotted domain: the API checks addresses, as SMTP servers would.
    raw = b"From: Support <support@localhost>\r\nTo: cy@customer.example\r\nSubject: x\r\n\r\nhello\r\n"
    with pytest.raises(PermanentDeliveryError) as caught:
        asyncio.run(sendgrid.send(account_for(api), raw, "support@example.test", ["cy@customer.example"]))
    error = caught.value
    assert error.code == 400
    assert "Does not contain a valid address. (from.email)" in str(error)
    assert "SendGrid support@example.test" in str(error)
    assert api.messages == []


def test_an_unverified_sender_is_refused_permanently() -> None:
    with (
        SendgridTestServer(verified_senders=["other@example.test"]) as server,
        pytest.raises(PermanentDeliveryError) as caught,
    ):
        send(account_for(server), reply())
    # About this message's From, not the key: it fails with SendGrid's words (the key works for other senders).
    assert caught.value.code == 403
    assert "verified Sender Identity" in str(caught.value)


def test_a_wrong_api_key_is_a_refused_sign_in_and_never_shown(api: SendgridTestServer) -> None:
    # Like SMTP's 535: the connection's fault, not the message's, so the outbox retries while the key is fixed.
    wrong = "SG.wrong-key-that-must-not-leak"
    with pytest.raises(AuthenticationError) as caught:
        send(account_for(api, api_key=wrong), reply())
    error = caught.value
    assert (error.protocol, error.account) == ("sendgrid", "support@example.test")
    assert not error.temporary  # nothing changes until an admin acts; the outbox retries all the same
    assert "HTTP 401" in str(error)
    assert "authorization grant is invalid" in str(error)
    assert str(error).startswith("SendGrid support@example.test: authentication failed")
    assert wrong not in str(error)
    assert wrong not in repr(account_for(api, api_key=wrong))
    assert api.messages == []


def test_server_errors_and_throttling_are_temporary_and_then_it_goes_through(api: SendgridTestServer) -> None:
    account = account_for(api)
    api.fail_next(1, 500)
    with pytest.raises(SendgridTemporaryError) as caught:
        send(account, reply())
    assert caught.value.code == 500
    assert caught.value.temporary
    assert caught.value.retry_after is None

    api.fail_next(1, 429, retry_after=7)
    with pytest.raises(SendgridTemporaryError) as throttled:
        send(account, reply())
    assert throttled.value.code == 429
    assert throttled.value.retry_after == 7.0

    assert send(account, reply()).reply.code == 202
    assert len(api.messages) == 1


def test_an_unreachable_api_is_temporary() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    account = SendgridAccount("support@example.test", "SG.key", f"http://127.0.0.1:{port}", timeout=2.0)
    with pytest.raises(SendgridTemporaryError) as caught:
        send(account, reply())
    assert "support@example.test" in str(caught.value)


def test_the_sign_in_check_reads_the_keys_scopes(api: SendgridTestServer) -> None:
    assert "mail.send" in asyncio.run(sendgrid.check(account_for(api)))

    with pytest.raises(AuthenticationError) as refused:
        asyncio.run(sendgrid.check(account_for(api, api_key="SG.nope")))
    assert refused.value.protocol == "sendgrid"
    assert refused.value.account == "support@example.test"
    assert "SG.nope" not in str(refused.value)

    with SendgridTestServer(api_keys={"SG.read-only": ["stats.read"]}) as server:
        with pytest.raises(AuthenticationError, match=r"mail\.send"):
            asyncio.run(sendgrid.check(account_for(server, api_key="SG.read-only")))
        # Such a key cannot send either: 403 from Mail Send, a refused sign-in as at Start, not the message's fault.
        with pytest.raises(AuthenticationError) as forbidden:
            send(account_for(server, api_key="SG.read-only"), reply())
        assert "HTTP 403" in str(forbidden.value)
        assert "access forbidden" in str(forbidden.value)

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectError):
        asyncio.run(sendgrid.check(account_for(api, api_url=f"http://127.0.0.1:{port}")))


def test_the_api_is_reached_over_validated_https(certs: Certificates) -> None:
    with SendgridTestServer(certs=certs) as trusted:
        assert trusted.url.startswith("https://")
        assert send(account_for(trusted), reply()).reply.code == 202
        assert len(trusted.messages) == 1

    with SendgridTestServer(certs=certs, untrusted=True) as untrusted:
        with pytest.raises(TlsError) as rejected:
            asyncio.run(sendgrid.check(account_for(untrusted)))
        assert "certificate" in str(rejected.value)
        assert rejected.value.account == "support@example.test"
        # Nothing reached the impostor: the handshake failed before the key was sent.
        with pytest.raises(SendgridTemporaryError):
            send(account_for(untrusted), reply())
        assert untrusted.requests == []


def test_the_stand_in_enforces_the_documented_content_order(api: SendgridTestServer) -> None:
    body = mail_request(reply().raw, "support@example.test", ["cy@customer.example"])
    body["content"].reverse()
    response = httpx.post(
        f"{api.url}/v3/mail/send", json=body, headers={"Authorization": f"Bearer {api.api_key}"}, timeout=5
    )
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "message": "If present, text/plain must be first, followed by text/html, followed by any other content.",
        "field": "content",
        "help": "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html#message.content",
    }

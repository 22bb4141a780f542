"""Forwarding mode end to end: mail forwarded to a generated address, over SMTP, becomes a conversation.

A real Postroom process (workers running), its SMTP listener on a free loopback port with the database
resolver and sink, and smtplib as the forwarding mail server of a company whose two support addresses
both forward to the connection's generated address. Also: the listener as the process settings make it
(STARTTLS required, validated against the test CA) and mail to its postmaster.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from postroom.helpdesk.connections import ConnectionInput
from postroom.service import Service
from postroom.settings import Settings
from postroom.sources.smtp_listener import SmtpListener
from postroom.store.models import Conversation, Mailbox, Message, RawBody, RawMessage, RawStatus
from postroom.testing.certs import Certificates
from postroom.testing.mails import make_mail
from support import FAST, Api, wait_until


@pytest.fixture
def service(make_service: Callable[..., Service]) -> Service:
    return make_service()


@pytest.fixture
def listener(service: Service) -> SmtpListener:
    # The service's own listener, on POSTROOM_SMTP_BIND (a free port in tests).
    started = service.start_listener()
    assert started is not None
    return started


def forwarding_address(service: Service) -> str:
    with service.db.write() as session:
        connection = service.connections.create(
            session,
            ConnectionInput(
                name="Company support",
                mode="forwarding",
                address="support@company.example, sales@company.example",
                smtp_server="127.0.0.1",
            ),
        )
        address = service.connections.inbound_address(connection)
    assert address is not None
    return address


def conversations(service: Service) -> list[tuple[str, str, int]]:
    """(subject, mailbox address, number of messages) of every conversation."""
    with service.db.read() as session:
        rows = session.execute(
            select(Conversation.subject, Mailbox.address, func.count(Message.id))
            .join(Mailbox, Mailbox.id == Conversation.mailbox_id)
            .join(Message, Message.conversation_id == Conversation.id)
            .group_by(Conversation.id, Conversation.subject, Mailbox.address)
            .order_by(Conversation.id)
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def test_forwarded_mail_twice_becomes_one_conversation_on_the_mailbox_it_was_for(
    service: Service, listener: SmtpListener
) -> None:
    address = forwarding_address(service)
    # The connection was never started: mail for it is accepted all the same and waits for nobody.
    original = make_mail(
        "Invoice 2024-117 is wrong", to="Sales <sales@company.example>", message_id="inv-117@customer.example"
    )
    # Two forwarding rules deliver it: Postfix's alias (Delivered-To) and a Gmail rule (X-Forwarded-For).
    by_postfix = b"Delivered-To: sales@company.example\r\n" + original
    by_gmail = f"X-Forwarded-For: sales@company.example {address}\r\nX-Forwarded-To: {address}\r\n".encode() + original
    support_mail = make_mail("Login does not work", to="support@company.example")

    with smtplib.SMTP(listener.host, listener.port, local_hostname="mx.company.example", timeout=10) as smtp:
        assert smtp.sendmail("ada@customer.example", [address], by_postfix) == {}
        assert smtp.sendmail("ada@customer.example", [address.upper()], by_gmail) == {}
        assert smtp.sendmail("bob@customer.example", [address], support_mail) == {}
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            smtp.sendmail("ada@customer.example", [f"nobody@{service.settings.inbound_domain}"], original)

    expected = [
        ("Invoice 2024-117 is wrong", "sales@company.example", 1),
        ("Login does not work", "support@company.example", 1),
    ]
    assert wait_until(lambda: conversations(service) == expected and conversations(service), timeout=15) == expected
    with service.db.read() as session:
        raws = session.execute(select(RawMessage.origin, RawMessage.status).order_by(RawMessage.id)).all()
    # The second copy was recognised by its Message-ID when it was stored.
    assert [(r.origin, r.status) for r in raws] == [("smtp", RawStatus.DONE), ("smtp", RawStatus.DONE)]


def test_a_reply_from_the_customer_threads_into_the_same_conversation(service: Service, listener: SmtpListener) -> None:
    address = forwarding_address(service)
    first = make_mail("Parcel missing", to="support@company.example", message_id="first@customer.example")
    reply = make_mail(
        "Re: Parcel missing",
        to="support@company.example",
        body="Any news?\n",
        headers=[("In-Reply-To", "<first@customer.example>"), ("References", "<first@customer.example>")],
    )

    with smtplib.SMTP(listener.host, listener.port, timeout=10) as smtp:
        smtp.sendmail("ada@customer.example", [address], first)
        wait_until(lambda: conversations(service), timeout=15)
        smtp.sendmail("ada@customer.example", [address], reply)

    assert wait_until(
        lambda: (found := conversations(service)) == [("Parcel missing", "support@company.example", 2)] and found,
        timeout=15,
    )


def test_mail_to_the_postmaster_is_kept_for_the_admin_and_makes_no_conversation(
    service: Service, listener: SmtpListener, api: Api
) -> None:
    address = forwarding_address(service)
    postmaster = f"postmaster@{service.settings.inbound_domain}"
    complaint = make_mail("Spam from your network?", to=postmaster, message_id="abuse-9@isp.example")
    customer = make_mail("Where is my order?", to="support@company.example")

    with smtplib.SMTP(listener.host, listener.port, timeout=10) as smtp:
        assert smtp.sendmail("abuse@isp.example", [postmaster.upper()], complaint) == {}
        assert smtp.sendmail("ada@customer.example", [address], customer) == {}

    # The customer's mail becomes a conversation; once it has, the pipeline has been through the queue.
    wait_until(lambda: conversations(service) == [("Where is my order?", "support@company.example", 1)], timeout=15)
    [kept] = api.items("/raw-messages", status="ignored")
    assert (kept["connection_id"], kept["mailbox_id"], kept["header_message_id"]) == (None, None, "abuse-9@isp.example")
    assert "postmaster" in kept["error"]
    eml = api.client.get(f"/api/v1/raw-messages/{kept['id']}/eml")
    assert eml.status_code == 200 and eml.content.endswith(complaint)
    assert eml.content.startswith(b"Return-Path: <abuse@isp.example>\r\n")


@pytest.fixture
def tls_service(tmp_path: Path, certs: Certificates) -> Iterator[Service]:
    """A process whose listener requires STARTTLS, configured as an admin would: by the process settings."""
    data_dir = tmp_path / "tls"
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'postroom.db'}",
        smtp_bind="127.0.0.1:0",
        smtp_tls_cert=certs.cert_file,
        smtp_tls_key=certs.key_file,
        smtp_require_tls=True,
    )
    service = Service(settings, FAST)
    try:
        service.migrate()
        service.start_workers()
        yield service
    finally:
        service.close()


def test_a_listener_that_requires_tls_takes_forwarded_mail_only_over_validated_starttls(
    tls_service: Service, certs: Certificates
) -> None:
    listener = tls_service.start_listener()
    assert listener is not None
    address = forwarding_address(tls_service)
    raw = make_mail("Refund please", to="sales@company.example")

    with smtplib.SMTP(listener.host, listener.port, local_hostname="mx.company.example", timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert smtp.mail("ada@customer.example") == (530, b"5.7.0 Must issue a STARTTLS command first")
        smtp.starttls(context=ssl.create_default_context(cafile=str(certs.ca_file)))
        assert smtp.sendmail("ada@customer.example", [address], raw) == {}

    assert wait_until(
        lambda: (found := conversations(tls_service)) == [("Refund please", "sales@company.example", 1)] and found,
        timeout=15,
    )
    with tls_service.db.read() as session:
        [data] = session.scalars(select(RawBody.data)).all()
    assert b" with ESMTPS id " in data and data.endswith(raw)


def test_after_the_inbound_domain_changed_mail_to_the_old_address_still_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # QA: admins copy the generated address into their forwarding rules; changing POSTROOM_INBOUND_DOMAIN
    # bounced every rule written before. The old domain stays accepted after the new one in the list.
    data_dir = tmp_path / "moved"
    monkeypatch.setenv("POSTROOM_INBOUND_DOMAIN", "inbound.old.example")
    first = Service(Settings(data_dir=data_dir, smtp_bind="127.0.0.1:0"), FAST)
    try:
        first.migrate()
        old_address = forwarding_address(first)
    finally:
        first.close()
    assert old_address.endswith("@inbound.old.example")

    monkeypatch.setenv("POSTROOM_INBOUND_DOMAIN", "Inbound.New.example, inbound.old.example")
    service = Service(Settings(data_dir=data_dir, smtp_bind="127.0.0.1:0", smtp_hostname="mx.new.example"), FAST)
    try:
        service.migrate()
        service.start_workers()
        listener = service.start_listener()
        assert listener is not None
        with service.db.read() as session:
            [connection] = service.connections.list_all(session)
            shown = service.connections.inbound_address(connection)
        local = old_address.split("@")[0]
        assert shown == f"{local}@inbound.new.example"  # new addresses are shown with the first domain

        with smtplib.SMTP(listener.host, listener.port, local_hostname="mx.company.example", timeout=10) as smtp:
            assert (
                smtp.sendmail(
                    "ada@customer.example", [old_address], make_mail("Old rule", to="support@company.example")
                )
                == {}
            )
            assert (
                smtp.sendmail("ada@customer.example", [shown], make_mail("New rule", to="sales@company.example")) == {}
            )
            smtp.mail("ada@customer.example")
            assert smtp.rcpt(f"{local}@inbound.elsewhere.example")[0] == 550
            smtp.rset()

        assert wait_until(lambda: len(found := conversations(service)) == 2 and found, timeout=15)
        with service.db.read() as session:
            data = session.scalars(select(RawBody.data)).all()
        assert all(b"\tby mx.new.example (Postroom) with ESMTP id " in d for d in data)
    finally:
        service.close()

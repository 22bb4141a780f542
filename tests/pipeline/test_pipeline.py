"""The inbound pipeline on SQLite and PostgreSQL: raw store → stages → conversations.

Mail enters through the real raw sink (as a source would hand it over) and is processed by the real
runner; only the IMAP server is left out, because none of this depends on it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select, update

from postroom.channels.sink import MailboxSink
from postroom.helpdesk.connections import ConnectionInput, ConnectionService
from postroom.helpdesk.conversations import ConversationService
from postroom.mail.threading import make_reply_token
from postroom.pipeline.context import Context, Event, NamedStage, PipelineServices
from postroom.pipeline.default import DEFAULT_STAGES
from postroom.pipeline.runner import PipelineRunner
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.blobs import LocalBlobStore
from postroom.store.db import Database
from postroom.store.models import (
    Attachment,
    Connection,
    Contact,
    Conversation,
    ConversationStatus,
    Customer,
    CustomerDomain,
    Grouping,
    Message,
    RawMessage,
    RawStatus,
)
from postroom.store.secretbox import SecretBox
from postroom.testing.mails import make_mail

KEY = b"k" * 32


@dataclass
class Inbox:
    db: Database
    runner: PipelineRunner
    sinks: list[MailboxSink]
    blobs: LocalBlobStore
    events: list[Event] = field(default_factory=list)
    uid: int = 0

    def deliver(self, *raws: bytes, mailbox: int = 0, process: bool = True) -> None:
        mails = []
        for raw in raws:
            self.uid += 1
            mails.append(FetchedMail(uid=self.uid, raw=raw))
        self.sinks[mailbox].store(mails, ImapCursor(uidvalidity=1, last_uid=self.uid))
        if process:
            self.runner.drain()

    def conversations(self) -> list[Conversation]:
        with self.db.read() as session:
            return list(session.scalars(select(Conversation).order_by(Conversation.id)))

    def messages(self, conversation_id: int) -> list[Message]:
        with self.db.read() as session:
            return list(
                session.scalars(select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id))
            )

    def raw_statuses(self) -> list[tuple[RawStatus, str]]:
        with self.db.read() as session:
            return [(r.status, r.error) for r in session.scalars(select(RawMessage).order_by(RawMessage.id))]


def make_inbox(
    db: Database, secrets: SecretBox, tmp_path: Path, *, addresses: str = "support@example.test", **settings: object
) -> Inbox:
    with db.write() as session:
        connection = ConnectionService(secrets).create(
            session,
            ConnectionInput.model_validate(
                {
                    "name": "Support",
                    "address": addresses,
                    "password": "pw",
                    "imap_server": "imap.example.test",
                    "smtp_server": "smtp.example.test",
                    **settings,
                }
            ),
        )
        ids = [(connection.id, box.id) for box in connection.mailboxes]
    blobs = LocalBlobStore(tmp_path / "blobs")
    events: list[Event] = []
    runner = PipelineRunner(
        db, PipelineServices(blobs=blobs, reply_token_key=KEY), worker_id="test", on_events=events.extend
    )
    sinks = [MailboxSink(db, cid, mid, on_stored=lambda n: None) for cid, mid in ids]
    return Inbox(db, runner, sinks, blobs, events)


@pytest.fixture
def inbox(db: Database, secrets: SecretBox, tmp_path: Path) -> Inbox:
    return make_inbox(db, secrets, tmp_path)


def test_a_new_mail_opens_a_conversation_with_subject_and_description(inbox: Inbox) -> None:
    inbox.deliver(make_mail("Printer on fire", body="It is on fire.\n\nRegards\nAda\n"))
    [conversation] = inbox.conversations()
    assert conversation.subject == "Printer on fire"
    assert conversation.description.startswith("It is on fire.")
    assert conversation.status == ConversationStatus.OPEN
    [message] = inbox.messages(conversation.id)
    assert message.from_email == "ada@customer.example"
    assert [e.kind for e in inbox.events] == ["conversation.created", "message.received"]


def test_further_mail_of_the_same_customer_joins_the_open_conversation_whatever_the_subject(inbox: Inbox) -> None:
    # Seed 003's rule is the connection's grouping "contact"; by thread (the default) see test_grouping.py.
    with inbox.db.write() as session:
        session.execute(update(Connection).values(grouping=Grouping.CONTACT))
    inbox.deliver(make_mail("First question"), make_mail("Completely different"))
    assert len(inbox.conversations()) == 1
    inbox.deliver(make_mail("From someone else", sender="Bo <bo@customer.example>"))
    assert len(inbox.conversations()) == 2


def test_a_reply_to_a_resolved_conversation_with_the_same_subject_reopens_it(inbox: Inbox) -> None:
    inbox.deliver(make_mail("Refund for order 42"))
    [conversation] = inbox.conversations()
    with inbox.db.write() as session:
        session.get(Conversation, conversation.id).status = ConversationStatus.RESOLVED  # type: ignore[union-attr]
    inbox.deliver(make_mail("RE: Refund for order 42"))
    [again] = inbox.conversations()
    assert again.status == ConversationStatus.OPEN
    assert len(inbox.messages(again.id)) == 2
    # A new subject from the same customer after resolution is a new conversation.
    with inbox.db.write() as session:
        session.get(Conversation, conversation.id).status = ConversationStatus.RESOLVED  # type: ignore[union-attr]
    inbox.deliver(make_mail("Another topic"))
    assert len(inbox.conversations()) == 2


def test_references_thread_a_reply_from_another_address(inbox: Inbox) -> None:
    inbox.deliver(make_mail("Question", message_id="q1@customer.example"))
    inbox.deliver(
        make_mail(
            "Re: Question",
            sender="Colleague <colleague@customer.example>",
            headers=[("References", "<unknown@x> <q1@customer.example>")],
        )
    )
    [conversation] = inbox.conversations()
    assert [m.from_email for m in inbox.messages(conversation.id)] == [
        "ada@customer.example",
        "colleague@customer.example",
    ]


def test_a_reply_token_threads_even_without_threading_headers(inbox: Inbox) -> None:
    inbox.deliver(make_mail("Question"))
    [conversation] = inbox.conversations()
    with inbox.db.write() as session:
        session.get(Conversation, conversation.id).status = ConversationStatus.RESOLVED  # type: ignore[union-attr]
    token = make_reply_token(conversation.id, KEY)
    inbox.deliver(make_mail("new words", sender="Other <other@elsewhere.example>", to=f"support+{token}@example.test"))
    assert len(inbox.conversations()) == 1
    assert len(inbox.messages(conversation.id)) == 2


def test_the_same_mail_in_two_mailboxes_of_one_connection_is_one_message(
    db: Database, secrets: SecretBox, tmp_path: Path
) -> None:
    inbox = make_inbox(db, secrets, tmp_path, addresses="sales@example.test, support@example.test")
    mail = make_mail(
        "To both of you", message_id="both@customer.example", to="sales@example.test, support@example.test"
    )
    inbox.deliver(mail, mailbox=0)
    inbox.deliver(mail, mailbox=1)
    assert len(inbox.conversations()) == 1
    assert [status for status, _ in inbox.raw_statuses()] == [RawStatus.DONE, RawStatus.DUPLICATE]
    assert "both@customer.example" in inbox.raw_statuses()[1][1]


def set_status(inbox: Inbox, conversation_id: int, status: ConversationStatus) -> None:
    with inbox.db.write() as session:
        session.get(Conversation, conversation_id).status = status  # type: ignore[union-attr]


def test_a_customers_answer_puts_a_pending_conversation_back_in_the_open_queue(inbox: Inbox) -> None:
    inbox.deliver(make_mail("Printer on fire"))
    [conversation] = inbox.conversations()
    set_status(inbox, conversation.id, ConversationStatus.PENDING)  # the agent answered: waiting for the customer
    inbox.events.clear()

    inbox.deliver(make_mail("Re: Printer on fire", body="Still burning.\n"))

    [again] = inbox.conversations()
    assert again.status == ConversationStatus.OPEN
    assert len(inbox.messages(again.id)) == 2
    assert [e.kind for e in inbox.events] == ["conversation.reopened", "message.received"]


OUT_OF_OFFICE = [("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All")]


def test_an_out_of_office_joins_the_latest_conversation_as_it_is_and_the_real_answer_reopens_it(
    inbox: Inbox,
) -> None:
    inbox.deliver(make_mail("Invoice a1", sender="Dan <dan@customer.example>"))
    [conversation] = inbox.conversations()
    set_status(inbox, conversation.id, ConversationStatus.RESOLVED)

    # No threading headers, another subject: before, this opened a conversation that then took Dan's answer.
    inbox.deliver(make_mail("Out of Office: Invoice a1", sender="Dan <dan@customer.example>", headers=OUT_OF_OFFICE))
    [still] = inbox.conversations()
    assert still.status == ConversationStatus.RESOLVED
    assert len(inbox.messages(still.id)) == 2

    inbox.deliver(make_mail("Re: Invoice a1", sender="Dan <dan@customer.example>", body="Paid now.\n"))
    [reopened] = inbox.conversations()
    assert reopened.status == ConversationStatus.OPEN
    assert [m.subject for m in inbox.messages(reopened.id)] == [
        "Invoice a1",
        "Out of Office: Invoice a1",
        "Re: Invoice a1",
    ]


def test_machine_answers_to_no_conversation_are_kept_but_open_none(inbox: Inbox) -> None:
    inbox.deliver(make_mail("Out of Office", sender="Eve <eve@customer.example>", headers=OUT_OF_OFFICE))
    report = (
        b"From: Mail Delivery System <mailer-daemon@mx.example>\r\nTo: support@example.test\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-9@mx.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
        b"Final-Recipient: rfc822; gone@elsewhere.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <not-ours@elsewhere.example>\r\n"
        b"--b--\r\n"
    )
    inbox.deliver(report)

    assert inbox.conversations() == []
    [(first, why_first), (second, why_second)] = inbox.raw_statuses()
    assert (first, second) == (RawStatus.IGNORED, RawStatus.IGNORED)
    assert why_first.startswith("an automatic reply that answers no conversation: ")
    assert why_second.startswith("a delivery report that answers no conversation: ")


def test_our_own_mail_coming_back_is_ignored(inbox: Inbox) -> None:
    inbox.deliver(
        make_mail(
            "Echo", sender="Support <support@example.test>", headers=[("X-Postroom-Loop", "support@example.test")]
        )
    )
    assert inbox.conversations() == []
    [(status, reason)] = inbox.raw_statuses()
    assert status == RawStatus.IGNORED
    assert "our own" in reason


def test_contacts_are_linked_to_customers_by_domain(inbox: Inbox) -> None:
    with inbox.db.write() as session:
        acme = Customer(name="ACME")
        acme.domains.append(CustomerDomain(domain="acme.example"))
        session.add(acme)
        session.flush()
        acme_id = acme.id
    inbox.deliver(make_mail("Hi", sender="Wile <wile@eu.acme.example>"))
    [conversation] = inbox.conversations()
    assert conversation.customer_id == acme_id
    with inbox.db.read() as session:
        contact = session.scalars(select(Contact)).one()
    assert (contact.email, contact.name, contact.customer_id) == ("wile@eu.acme.example", "Wile", acme_id)


def _with_attachment(size: int) -> bytes:
    payload = (b"%PDF-1.4 " + b"x" * size)[:size]
    encoded = base64.encodebytes(payload).decode().replace("\n", "\r\n")
    return (
        "From: Ada <ada@customer.example>\r\nTo: support@example.test\r\nSubject: Invoice\r\n"
        f"Message-ID: <att-{size}@customer.example>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n"
        '--B\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename="../../invoice.pdf"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{encoded}\r\n--B--\r\n"
    ).encode()


def test_attachments_go_to_the_blob_store_and_oversized_ones_are_recorded_not_lost(
    db: Database, secrets: SecretBox, tmp_path: Path
) -> None:
    inbox = make_inbox(db, secrets, tmp_path, max_attachment_bytes=1000)
    inbox.deliver(_with_attachment(500), _with_attachment(5000))
    with inbox.db.read() as session:
        small, large = session.scalars(select(Attachment).order_by(Attachment.size)).all()
    assert small.filename == "invoice.pdf"  # no path traversal
    assert small.blob_key is not None
    assert inbox.blobs.get(small.blob_key).startswith(b"%PDF-1.4")
    assert large.blob_key is None
    assert large.skipped_reason is not None
    assert "1000" in large.skipped_reason


def test_a_failing_stage_quarantines_only_its_message_and_replay_runs_it_again(inbox: Inbox) -> None:
    def explode_on_bad(ctx: Context) -> None:
        if ctx.parsed is not None and ctx.parsed.subject == "bad":
            raise ValueError("cannot handle this one")

    inbox.runner.stages = (*DEFAULT_STAGES[:2], NamedStage("explode", explode_on_bad), *DEFAULT_STAGES[2:])
    inbox.deliver(make_mail("good 1"), make_mail("bad", sender="Bo <bo@customer.example>"), make_mail("good 2"))
    statuses = inbox.raw_statuses()
    assert [s for s, _ in statuses] == [RawStatus.DONE, RawStatus.QUARANTINED, RawStatus.DONE]
    assert statuses[1][1] == "explode: ValueError: cannot handle this one"
    # Nothing of the failed message was kept: its contact and conversation were rolled back with it.
    with inbox.db.read() as session:
        assert session.scalar(select(Contact).where(Contact.email == "bo@customer.example")) is None
    inbox.runner.stages = DEFAULT_STAGES
    assert inbox.runner.replay() == 1
    inbox.runner.drain()
    assert [s for s, _ in inbox.raw_statuses()] == [RawStatus.DONE] * 3
    # Grouping by thread: the first customer's two subjects are two conversations, Bo's the third.
    assert len(inbox.conversations()) == 3


def test_a_failure_late_in_a_large_batch_rolls_back_only_that_message(inbox: Inbox) -> None:
    # Ten mails make one claim large enough for the parser processes; the failure comes after the
    # contact and the conversation were written, so only its savepoint can take them back.
    def explode_after_thread(ctx: Context) -> None:
        if ctx.parsed is not None and ctx.parsed.subject == "bad":
            raise RuntimeError("late failure")

    stages = list(DEFAULT_STAGES)
    after_thread = [s.name for s in stages].index("thread") + 1
    inbox.runner.stages = (*stages[:after_thread], NamedStage("late", explode_after_thread), *stages[after_thread:])
    mails = [make_mail(f"good {i}", sender=f"C{i} <c{i}@customer.example>") for i in range(9)]
    mails.insert(4, make_mail("bad", sender="Bo <bo@customer.example>"))
    inbox.deliver(*mails)
    statuses = [s for s, _ in inbox.raw_statuses()]
    assert statuses.count(RawStatus.DONE) == 9
    assert statuses[4] == RawStatus.QUARANTINED
    with inbox.db.read() as session:
        assert session.scalar(select(Contact).where(Contact.email == "bo@customer.example")) is None
        assert session.scalar(select(Conversation).where(Conversation.subject == "bad")) is None
    assert len(inbox.conversations()) == 9


def test_bytes_that_are_not_mail_are_quarantined_with_the_reason(inbox: Inbox) -> None:
    inbox.deliver(b"\x00\x01 not a mail", make_mail("fine"))
    statuses = inbox.raw_statuses()
    assert statuses[0] == (RawStatus.QUARANTINED, "parse: not an email: no header fields found")
    assert statuses[1][0] == RawStatus.DONE


def test_a_delivery_report_about_our_reply_marks_it_bounced(inbox: Inbox) -> None:
    inbox.deliver(make_mail("Question", sender="Ada <ada@customer.example>"))
    [conversation] = inbox.conversations()
    with inbox.db.write() as session:
        reply, _ = ConversationService(KEY).reply(session, conversation.id, text="Answer")
        reply_id, reply_message_id = reply.id, reply.message_id
    dsn = (
        "From: Mail Delivery System <MAILER-DAEMON@mx.example>\r\nTo: support@example.test\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn1@mx.example>\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example\r\n\r\n"
        "Final-Recipient: rfc822; ada@customer.example\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 no such user\r\n"
        f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{reply_message_id}>\r\nSubject: Re: Question\r\n"
        "--B--\r\n"
    ).encode()
    inbox.deliver(dsn)
    assert len(inbox.conversations()) == 1
    with inbox.db.read() as session:
        bounced = session.get(Message, reply_id)
    assert bounced is not None
    assert bounced.delivery_status == "bounced"
    assert "5.1.1" in bounced.delivery_detail
    assert "message.bounced" in [e.kind for e in inbox.events]

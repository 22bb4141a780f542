"""A mail built to make the parser work for minutes must not stall the service, on SQLite and PostgreSQL.

The hostile mail is 100,000 nested ``<div>``s (2.8 MB as sent): nh3 alone needed over a minute for
it, and it was parsed inside the write transaction on SQLite (the next SMTP sender got ``451`` after
30 s) or held both pipeline threads on PostgreSQL. Now its HTML is bounded before the sanitiser, every
mail is parsed outside the transaction, in parser processes, and a mail over its time budget is
killed there and parsed again in the degraded mode.
"""

from __future__ import annotations

import smtplib
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select

from postroom.channels.sink import MailboxSink
from postroom.helpdesk.connections import ConnectionInput, ConnectionService
from postroom.jobs.leases import WorkerHeartbeat
from postroom.mail.html_bounds import HtmlLimits
from postroom.pipeline.context import PipelineServices
from postroom.pipeline.runner import PipelineRunner, RunnerLimits
from postroom.service import Service
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.blobs import LocalBlobStore
from postroom.store.db import Database
from postroom.store.migrate import upgrade
from postroom.store.models import Attachment, Message, RawMessage, RawStatus
from postroom.store.secretbox import SecretBox
from postroom.testing.hostile import make_nested_html_mail
from postroom.testing.mails import make_mail
from support import Api, wait_until


def forwarding_address(service: Service) -> str:
    with service.db.write() as session:
        connection = service.connections.create(
            session,
            ConnectionInput(name="Support", mode="forwarding", address="support@company.example", smtp_server="x"),
        )
        address = service.connections.inbound_address(connection)
    assert address is not None
    return address


def message_count(db: Database, subject: str) -> int:
    with db.read() as session:
        return len(session.scalars(select(Message.id).where(Message.subject == subject)).all())


def test_a_deeply_nested_mail_stalls_neither_other_mail_nor_the_api(
    db_url: str, make_service: Callable[..., Service]
) -> None:
    service = make_service(db_url)
    listener = service.start_listener()
    assert listener is not None
    address = forwarding_address(service)
    api = Api(service)
    api.get("/conversations")  # the first request pays for the app's imports
    with smtplib.SMTP(listener.host, listener.port, timeout=30) as smtp:
        # …and the first mail for starting the parser processes.
        smtp.sendmail("ada@customer.example", [address], make_mail("Warm-up", to=address))
    wait_until(lambda: message_count(service.db, "Warm-up") == 1, timeout=20)
    reads: list[float] = []
    stop = threading.Event()

    def read_api() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            api.get("/conversations")
            reads.append(time.perf_counter() - started)
            stop.wait(0.02)

    reader = threading.Thread(target=read_api, daemon=True)
    latencies: list[float] = []
    with smtplib.SMTP(listener.host, listener.port, timeout=30) as smtp:
        assert smtp.sendmail("m@attacker.example", [address], make_nested_html_mail(100_000, subject="Hostile")) == {}
        reader.start()
        try:
            for n in range(4):
                subject = f"Normal {n}"
                sent = time.monotonic()
                assert smtp.sendmail("ada@customer.example", [address], make_mail(subject, to=address)) == {}
                wait_until(lambda subject=subject: message_count(service.db, subject) == 1, timeout=10)
                latencies.append(time.monotonic() - sent)
                time.sleep(0.2)
            wait_until(lambda: message_count(service.db, "Hostile") == 1, timeout=30)
        finally:
            stop.set()
            reader.join()
    # Normal mail arrives within a second, API reads within 100 ms (the figures in bench/RESULTS.md,
    # measured alone). On a 2-core machine shared with other tests running in parallel, a read or a
    # mail now and then loses the CPU for a while, so the test holds the typical case to the target and
    # the median read to 250 ms (100 ms measured alone; a parallel suite's PostgreSQL
    # reads once had a median of 105 ms) and the worst to a bound that the old behaviour (mail and reads
    # waiting 30 s and more) could never meet.
    assert statistics.median(latencies) < 1.0 and max(latencies) < 3.0, latencies
    reads.sort()
    assert statistics.median(reads) < 0.25 and reads[-1] < 5.0, (statistics.median(reads), reads[-5:])
    time.sleep(0.3)
    assert message_count(service.db, "Hostile") == 1
    with service.db.read() as session:
        [(status, attempts)] = session.execute(
            select(RawMessage.status, RawMessage.attempts)
            .join(Message, Message.id == RawMessage.message_pk)
            .where(Message.subject == "Hostile")
        ).all()
        [(text, degraded)] = session.execute(
            select(Message.text, Message.degraded_reason).where(Message.subject == "Hostile")
        ).all()
    assert (status, attempts) == (RawStatus.DONE, 1)
    # Bounded, not degraded: the text survived the tags dropped beyond the depth cap.
    assert (text, degraded) == ("deep", "")


def test_a_mail_over_its_budget_is_parsed_degraded_once_while_other_mail_flows(
    db_url: str, secrets: SecretBox, tmp_path: Path
) -> None:
    db = Database(db_url)
    upgrade(db)
    with db.write() as session:
        connection = ConnectionService(secrets).create(
            session,
            ConnectionInput(name="S", address="support@example.test", password="pw", imap_server="i", smtp_server="s"),
        )
        connection_id, mailbox_id = connection.id, connection.mailboxes[0].id
    sink = MailboxSink(db, connection_id, mailbox_id, on_stored=lambda count: None)
    # No depth cap, so that nh3 really takes seconds over 20,000 levels; a budget far below that; a
    # claim far shorter than the budget, kept alive only by the worker's lease.
    limits = RunnerLimits(
        parse_processes=2,
        parse_budget_seconds=1.5,
        html_limits=HtmlLimits(max_depth=10_000_000),
        claim_seconds=0.5,
        release_seconds=0.1,
        poll_seconds=0.05,
    )
    services = PipelineServices(blobs=LocalBlobStore(tmp_path / "blobs"), reply_token_key=b"k" * 32)
    runner = PipelineRunner(db, services, worker_id="w1", workers=2, limits=limits)
    heartbeat = WorkerHeartbeat(db, "w1", every=0.1, seconds=2.0)
    heartbeat.start()
    runner.start()
    try:
        # Warm the parser processes (the fork server's start is not what is measured here).
        sink.store([FetchedMail(uid=1, raw=make_mail("Warm-up"))], ImapCursor(uidvalidity=1, last_uid=1))
        wait_until(lambda: message_count(db, "Warm-up") == 1, timeout=20)
        sink.store(
            [FetchedMail(uid=2, raw=make_nested_html_mail(20_000, subject="Hostile"))],
            ImapCursor(uidvalidity=1, last_uid=2),
        )
        time.sleep(0.3)
        sent = time.monotonic()
        sink.store([FetchedMail(uid=3, raw=make_mail("Normal"))], ImapCursor(uidvalidity=1, last_uid=3))
        wait_until(lambda: message_count(db, "Normal") == 1, timeout=5)
        assert time.monotonic() - sent < 1.0
        wait_until(lambda: message_count(db, "Hostile") == 1, timeout=20)
        time.sleep(0.5)
    finally:
        runner.stop()
        heartbeat.stop()
    assert message_count(db, "Hostile") == 1
    with db.read() as session:
        message = session.scalars(select(Message).where(Message.subject == "Hostile")).one()
        raw = session.scalars(select(RawMessage).where(RawMessage.message_pk == message.id)).one()
        files = session.scalars(select(Attachment.filename).where(Attachment.message_pk == message.id)).all()
        reason, html, text = message.degraded_reason, message.html, message.text
        status, attempts = raw.status, raw.attempts
    assert "budget of 1.5 s" in reason
    assert html == ""  # never shown unsanitised
    assert "deep" in text
    assert files == ["body.html"]
    # Claimed once (the lease kept the claim although it is shorter than the work), processed once.
    assert (status, attempts) == (RawStatus.DONE, 1)
    assert runner._parse_pool is not None and runner._parse_pool.killed == 1
    db.dispose()

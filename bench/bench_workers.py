"""Pipeline throughput with several workers on one PostgreSQL, and how often they met in a deadlock.

    .venv/bin/python bench/bench_workers.py [--n 2000] [--workers 2] [--senders 100] [--database-url URL]

The raw store is filled first (no processing), with mail like a busy support inbox's: ``--senders``
customers writing many mails each, in interleaved order, and one mail in twenty delivered twice
(the same Message-ID in two places of the queue). Then one runner with ``--workers`` threads (and
its parser processes) drains the queue; the clock runs from its start until no raw message is
pending or being processed. Printed: mails/s, and the transactions redone because of a lock
conflict (a deadlock between workers makes PostgreSQL abort one of them; the runner redoes that
batch message by message).

Runs in a private schema of the server (default: the tests' ``POSTROOM_TEST_DATABASE_URL`` or the
local ``test`` database), dropped afterwards.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import structlog
from cryptography.fernet import Fernet
from sqlalchemy import func, select
from structlog.testing import capture_logs

from postroom.channels.sink import MailboxSink
from postroom.helpdesk.connections import ConnectionInput, ConnectionService
from postroom.pipeline.context import PipelineServices
from postroom.pipeline.runner import PipelineRunner
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.blobs import LocalBlobStore
from postroom.store.db import Database
from postroom.store.migrate import upgrade
from postroom.store.models import Conversation, Message, RawMessage, RawStatus
from postroom.store.secretbox import SecretBox
from postroom.testing.database import postgres_base_url, postgres_schema
from postroom.testing.mails import make_mail

# The runner's log lines for a transaction given up because of a lock conflict (before and after
# the runner counted them itself).
CONFLICT_EVENTS = {"pipeline.batch_failed_retrying_one_by_one", "pipeline.transaction_conflict_requeued"}


def corpus(n: int, senders: int, seed: int = 20250101) -> list[bytes]:
    rng = random.Random(seed)
    mails: list[bytes] = []
    for i in range(n):
        if mails and rng.random() < 0.05:
            # A copy of an earlier mail (another mailbox, a forwarding rule): same Message-ID.
            mails.append(rng.choice(mails))
            continue
        who = rng.randrange(senders)
        mails.append(
            make_mail(
                f"Order {i}",
                sender=f"Customer {who} <c{who}@customer{who % 7}.example>",
                message_id=f"bench-{seed}-{i}@customer.example",
            )
        )
    return mails


def run(url: str, n: int, workers: int, senders: int) -> None:
    db = Database(url)
    upgrade(db)
    with db.write() as session:
        connection = ConnectionService(SecretBox(Fernet.generate_key())).create(
            session,
            ConnectionInput(
                name="bench", address="support@example.test", password="pw", imap_server="i", smtp_server="s"
            ),
        )
        connection_id, mailbox_id = connection.id, connection.mailboxes[0].id
    sink = MailboxSink(db, connection_id, mailbox_id, on_stored=lambda count: None)
    mails = corpus(n, senders)
    for start in range(0, n, 500):
        chunk = [FetchedMail(uid=start + i + 1, raw=raw) for i, raw in enumerate(mails[start : start + 500])]
        sink.store(chunk, ImapCursor(uidvalidity=1, last_uid=start + len(chunk)))
    with tempfile.TemporaryDirectory() as blobs:
        runner = PipelineRunner(
            db,
            PipelineServices(blobs=LocalBlobStore(Path(blobs)), reply_token_key=b"k" * 32),
            worker_id="bench",
            workers=workers,
        )
        with capture_logs() as logs:
            started = time.perf_counter()
            runner.start()
            while True:
                with db.read() as session:
                    left = session.scalar(
                        select(func.count())
                        .select_from(RawMessage)
                        .where(RawMessage.status.in_([RawStatus.PENDING, RawStatus.PROCESSING]))
                    )
                if not left:
                    break
                time.sleep(0.05)
            seconds = time.perf_counter() - started
            runner.stop()
    with db.read() as session:
        messages = session.scalar(select(func.count()).select_from(Message))
        conversations = session.scalar(select(func.count()).select_from(Conversation))
        statuses = dict(
            (row[0], row[1])
            for row in session.execute(select(RawMessage.status, func.count()).group_by(RawMessage.status))
        )
    db.dispose()
    conflicts = sum(1 for entry in logs if entry.get("event") in CONFLICT_EVENTS)
    print("| mails | workers | seconds | mails/s | conflict retries | messages | conversations | raw outcomes |")
    print("|---|---|---|---|---|---|---|---|")
    outcomes = ", ".join(f"{status.value} {count}" for status, count in sorted(statuses.items()))
    print(
        f"| {n} | {workers} | {seconds:.2f} | {n / seconds:.0f} | {conflicts} | {messages} | {conversations} "
        f"| {outcomes} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--senders", type=int, default=100)
    parser.add_argument("--database-url", default=postgres_base_url())
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))
    with postgres_schema(args.database_url) as url:
        run(url, args.n, args.workers, args.senders)


if __name__ == "__main__":
    main()

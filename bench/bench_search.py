"""Search and list latency on a large mail store, SQLite and PostgreSQL.

    .venv/bin/python bench/bench_search.py [--conversations 100000] [--messages-per 5] [--samples 40]
                                           [--database sqlite,postgresql]

Fills a fresh database with conversations, messages (and their search documents), contacts, users and
teams by bulk inserts straight into the tables (the pipeline would take hours for 500,000 mails, and
what is measured here is the read side), then times API requests in-process (FastAPI's TestClient,
bearer token check included): one-word searches (a rare, a medium and a common word), the first page
of the open queue by last activity, and of a team's and an assignee's open queue. Prints p50/p95 in ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, text

from postroom.api.app import create_app
from postroom.api.tokens import create_token
from postroom.cli import settle_heap
from postroom.service import Service
from postroom.settings import Settings
from postroom.store.models import Contact, Conversation, Message, Team, TeamMember, User
from postroom.store.search_index import INSERT_MESSAGE, contact_document, message_document
from postroom.testing.database import postgres_schema

CHUNK = 5_000
# A vocabulary with a long tail, as mail has: the first words are everywhere, the last ones rare.
VOCABULARY = [f"w{i}" for i in range(20_000)]
COMMON = ["order", "please", "thanks", "account", "invoice", "delivery", "problem", "hello"]
RARE_WORD = "zeppelin"  # put in 1 message of 5,000
MEDIUM_WORD = "refund"  # 1 message of 50


def words_for(rng: random.Random, n: int) -> str:
    chosen = [
        COMMON[rng.randrange(len(COMMON))] if rng.random() < 0.3 else VOCABULARY[int(rng.paretovariate(1.1)) % 20_000]
        for _ in range(n)
    ]
    return " ".join(chosen)


@contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "postgresql":
        with postgres_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp / 'bench.db'}"


def fill(service: Service, conversations: int, messages_per: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    engine = service.db.engine
    dialect = engine.dialect.name
    now = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    with engine.begin() as conn:
        users = [
            {
                "email": f"agent{i}@support.test",
                "name": f"Agent {i}",
                "role": "agent",
                "password_hash": "",
                "enabled": True,
                "availability": "available",
                "max_open": None,
                "created_at": now,
            }
            for i in range(20)
        ]
        conn.execute(insert(User), users)
        user_ids = [r[0] for r in conn.execute(text("SELECT id FROM users WHERE email LIKE 'agent%'"))]
        conn.execute(insert(Team), [{"name": f"Team {i}", "created_at": now} for i in range(5)])
        team_ids = [r[0] for r in conn.execute(text("SELECT id FROM teams"))]
        conn.execute(insert(TeamMember), [{"team_id": team_ids[i % 5], "user_id": u} for i, u in enumerate(user_ids)])
    n_contacts = max(1, conversations // 3)
    with engine.begin() as conn:
        for start in range(0, n_contacts, CHUNK):
            rows = [
                {
                    "id": i + 1,
                    "email": f"person{i}@company{i % 997}.test",
                    "name": f"Person {i}",
                    "phone": "",
                    "notes": "",
                    "customer_id": None,
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(start, min(n_contacts, start + CHUNK))
            ]
            conn.execute(insert(Contact), rows)
            _documents(
                conn, dialect, "contact", [(r["id"], contact_document(r["name"], [r["email"]]), None) for r in rows]
            )
    message_id = 0
    statuses = ["open"] * 3 + ["pending", "resolved", "resolved", "snoozed"]
    with engine.begin() as conn:
        for start in range(0, conversations, CHUNK):
            conv_rows, msg_rows = [], []
            for cid in range(start + 1, min(conversations, start + CHUNK) + 1):
                at = now - timedelta(seconds=rng.randrange(365 * 86400))
                assignee = rng.choice(user_ids) if rng.random() < 0.7 else None
                contact_id = rng.randrange(n_contacts) + 1
                subject = words_for(rng, 5)
                conv_rows.append(
                    {
                        "id": cid,
                        "connection_id": None,
                        "mailbox_id": None,
                        "contact_id": contact_id,
                        "customer_id": None,
                        "subject": subject,
                        "description": "",
                        "status": rng.choice(statuses),
                        "snoozed_until": None,
                        "priority": "normal",
                        "assignee_id": assignee,
                        "team_id": rng.choice(team_ids),
                        "created_at": at,
                        "updated_at": at,
                        "last_message_at": at,
                        "last_activity_at": at,
                    }
                )
                for _ in range(messages_per):
                    message_id += 1
                    body = words_for(rng, 40)
                    if message_id % 5000 == 0:
                        body += f" {RARE_WORD}"
                    if message_id % 50 == 0:
                        body += f" {MEDIUM_WORD}"
                    msg_rows.append(
                        {
                            "id": message_id,
                            "conversation_id": cid,
                            "connection_id": None,
                            "direction": "in",
                            "author": "",
                            "author_id": None,
                            "from_email": f"person{contact_id - 1}@x.test",
                            "from_name": f"Person {contact_id - 1}",
                            "to": [],
                            "cc": [],
                            "reply_to": [],
                            "subject": subject,
                            "message_id": f"m{message_id}@x.test",
                            "in_reply_to": None,
                            "references": [],
                            "text": body,
                            "html": "",
                            "reply_text": body,
                            "signature": "",
                            "quoted_text": "",
                            "classification": {},
                            "headers": [],
                            "sent_at": at,
                            "delivery_status": None,
                            "delivery_detail": "",
                            "degraded_reason": "",
                            "created_at": at,
                        }
                    )
            conn.execute(insert(Conversation), conv_rows)
            conn.execute(insert(Message), msg_rows)
            _documents(
                conn,
                dialect,
                "message",
                [
                    (
                        m["id"],
                        message_document(m["subject"], m["from_name"], m["from_email"], m["text"]),
                        m["conversation_id"],
                    )
                    for m in msg_rows
                ],
            )
            print(
                f"  {min(conversations, start + CHUNK):>7} conversations ({time.perf_counter() - started:.0f} s)",
                file=sys.stderr,
            )
    with engine.begin() as conn:
        if dialect == "postgresql":
            # Sequences behind the explicit ids, and planner statistics as autovacuum would gather them.
            for table in ("contacts", "conversations", "messages"):
                conn.execute(
                    text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
                )
            conn.execute(text("ANALYZE"))
        else:
            conn.execute(text("ANALYZE"))
    print(f"filled in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _documents(conn: Any, dialect: str, kind: str, docs: list[tuple[int, str, int | None]]) -> None:
    if kind == "message":
        # The statement the content stage runs (SQLite's rowid holds the conversation: search_index).
        conn.execute(INSERT_MESSAGE[dialect], [{"id": i, "body": b, "conversation_id": c} for i, b, c in docs])
        return
    if dialect == "postgresql":
        sql = "INSERT INTO contact_search (contact_id, document) VALUES (:id, to_tsvector('simple', :body))"
    else:
        sql = "INSERT INTO contact_search (rowid, body) VALUES (:id, :body)"
    conn.execute(text(sql), [{"id": i, "body": b} for i, b, _ in docs])


def measure(client: TestClient, params: dict[str, Any], samples: int) -> tuple[float, float, int]:
    times = []
    count = 0
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get("/api/v1/conversations", params=params)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
        count = len(response.json()["items"])
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)], count


def run(kind: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        settings = Settings(data_dir=Path(tmp) / "data", database_url=url, smtp_bind="127.0.0.1:0")
        service = Service(settings)
        service.migrate()
        try:
            fill(service, args.conversations, args.messages_per)
            with service.db.write() as session:
                token = create_token(session, "bench")
                team_id, user_id = session.execute(
                    text("SELECT team_id, assignee_id FROM conversations WHERE assignee_id IS NOT NULL LIMIT 1")
                ).one()
            client = TestClient(create_app(service))
            settle_heap()  # as postroom serve does before it serves
            client.headers["Authorization"] = f"Bearer {token}"
            cases = [
                (f"search rare word ({RARE_WORD})", {"q": RARE_WORD}),
                (f"search medium word ({MEDIUM_WORD})", {"q": MEDIUM_WORD}),
                ("search common word (invoice)", {"q": "invoice"}),
                ("search two words (refund invoice)", {"q": "refund invoice"}),
                ("search contact name (person 123)", {"q": "person 123"}),
                ("list status=open", {"status": "open"}),
                ("list status=open, team", {"status": "open", "team_id": team_id}),
                ("list status=open, assignee", {"status": "open", "assignee_id": user_id}),
                ("list status=open, search medium word", {"status": "open", "q": MEDIUM_WORD}),
            ]
            print(
                f"\n{kind}: {args.conversations:,} conversations, {args.conversations * args.messages_per:,} messages"
            )
            print("| request | p50 ms | p95 ms | items |\n|---|---|---|---|")
            for name, params in cases:
                if any(skip and skip in name for skip in args.skip.split(",")):
                    continue
                measure(client, params, 2)  # warm the caches
                p50, p95, count = measure(client, params, args.samples)
                print(f"| {name} | {p50:.1f} | {p95:.1f} | {count} |")
        finally:
            service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages-per", type=int, default=5)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--database", default="sqlite,postgresql")
    parser.add_argument("--skip", default="", help="leave out the requests whose name contains one of these words")
    args = parser.parse_args()
    for kind in args.database.split(","):
        run(kind, args)


if __name__ == "__main__":
    main()

"""Server time of the conversation list page (GET /, the agents' home page) on a large store.

    .venv/bin/python bench/bench_web_list.py [--conversations 20000] [--messages-per 5] [--samples 30]
                                             [--database sqlite,postgresql]

Fills a fresh database the way bench_search.py does (bulk inserts: conversations, messages and their
search documents, contacts, 20 agents in 5 teams), signs one agent in with a session cookie, and times
whole page requests in-process (FastAPI's TestClient: session check, CSRF cookie, queries, template):
the All view, Mine, a status view, a search, the next page ("Older"), and the list part alone (what a
live update fetches), and, as a gauge of the machine's noise and of what the page adds, the same first page
from the API. Prints p50/p95 in ms. The target is under 200 ms at 100,000 conversations
(``--conversations 100000``).
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import text

from bench_search import MEDIUM_WORD, RARE_WORD, database, fill
from postroom.api.app import create_app
from postroom.api.tokens import create_token
from postroom.cli import settle_heap
from postroom.helpdesk import listing
from postroom.service import Service
from postroom.settings import Settings
from postroom.store.models import TokenKind, utcnow
from postroom.web.session import SESSION_COOKIE

_OLDER = re.compile(r'href="(/\?[^"]*cursor=[^"]*)" rel="next"')


def measure(client: TestClient, url: str, samples: int, headers: dict[str, str] | None = None) -> tuple[float, float]:
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        response = client.get(url, headers=headers or {})
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:500]
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def run(kind: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        settings = Settings(data_dir=Path(tmp) / "data", database_url=url, smtp_bind="127.0.0.1:0")
        service = Service(settings)
        service.migrate()
        try:
            fill(service, args.conversations, args.messages_per)
            with service.db.write() as session:
                # The agent with the most conversations: Mine is as long as it gets.
                user_id = session.execute(
                    text(
                        "SELECT assignee_id FROM conversations WHERE assignee_id IS NOT NULL "
                        "GROUP BY assignee_id ORDER BY count(*) DESC LIMIT 1"
                    )
                ).scalar_one()
                token = create_token(
                    session, "bench", user_id=user_id, kind=TokenKind.SESSION, expires_at=utcnow() + timedelta(hours=2)
                )
                api_token = create_token(session, "bench api")
            client = TestClient(create_app(service))
            settle_heap()  # as postroom serve does before it serves
            client.cookies.set(SESSION_COOKIE, token)
            first = client.get("/?view=all")
            assert first.status_code == 200, first.text[:500]
            older = _OLDER.search(first.text)
            assert older is not None, "the All view has no Older link"
            partial = {"HX-Request": "true", "HX-Target": "conversation-list"}
            api = {"Authorization": f"Bearer {api_token}"}
            cases: list[tuple[str, str, dict[str, str] | None]] = [
                ("All (open)", "/?view=all", None),
                ("All (any status)", "/?view=all&status=any", None),
                ("Mine (open)", "/?view=mine", None),
                ("Unassigned (open)", "/?view=unassigned", None),
                ("All, status pending", "/?view=all&status=pending", None),
                ("Team (open)", "/?view=team&team=1", None),
                (f"search medium word ({MEDIUM_WORD})", f"/?view=all&q={MEDIUM_WORD}", None),
                (f"search rare word ({RARE_WORD})", f"/?view=all&status=any&q={RARE_WORD}", None),
                ("search common word (invoice)", "/?view=all&q=invoice", None),
                ("All (open), Older page", older.group(1).replace("&amp;", "&"), None),
                ("All (open), list part (live update)", "/?view=all", partial),
                # The same first page from the API (JSON, no template): what the page adds to the queries.
                ("API /api/v1/conversations?status=open (gauge)", "/api/v1/conversations?status=open", api),
            ]
            messages = args.conversations * args.messages_per
            print(f"\n{kind}: {args.conversations:,} conversations, {messages:,} messages")
            print("| GET | p50 ms | p95 ms |\n|---|---|---|")
            for name, path, headers in cases:
                measure(client, path, 2, headers)  # warm the caches
                p50, p95 = measure(client, path, args.samples, headers)
                print(f"| {name} | {p50:.1f} | {p95:.1f} |")
            p50, p95 = _marks(service, args.samples)
            print(f"| (event stream poll: change marks) | {p50:.1f} | {p95:.1f} |")
        finally:
            service.close()


def _marks(service: Service, samples: int) -> tuple[float, float]:
    times: list[float] = []
    for _ in range(samples):
        started = time.perf_counter()
        with service.db.read() as session:
            listing.change_marks(session)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--messages-per", type=int, default=5)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--database", default="sqlite")
    args: Any = parser.parse_args()
    for kind in args.database.split(","):
        run(kind, args)


if __name__ == "__main__":
    main()

"""Import throughput, peak memory and pickup latency against a real Dovecot, beside bare-client baselines.

    .venv/bin/python bench/bench_import.py [--n 5000] [--samples 20] [--database-url URL] [--no-latency]

1. Fills a private Dovecot mailbox with the shared 5,000-mail corpus (``../shared/bench/make_corpus.py``,
   seed 20250101, generated into /tmp/postroom-corpus when missing).
2. Bare IMAP fetch of the same mailbox (IMAPClient, debug off, 200 messages per UID FETCH).
3. Postroom import in a child process (so its peak RSS is its own): a connection is created and started;
   the clock runs until every mail is a conversation message (or quarantined/duplicate).
4. Pickup latency: a mail is APPENDed while a bare IDLE client and Postroom watch the same mailbox; the
   bare client's time to see EXISTS is printed beside Postroom's time to commit the conversation and
   show it in the API.

Figures go to standard output as a Markdown table; copy them into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

ROOT = Path(__file__).resolve().parents[1]
MAKE_CORPUS = ROOT.parent / "shared" / "bench" / "make_corpus.py"
TEMPLATE = ROOT / "tests" / "dovecot" / "dovecot.conf.in"
BATCH = 200


def ensure_corpus(path: Path, n: int) -> None:
    manifest = path / "manifest.json"
    if manifest.exists():
        written = json.loads(manifest.read_text())
        # make_corpus.py writes the count under "summary".
        if written.get("summary", written).get("n") == n:
            return
    subprocess.run(
        [sys.executable, str(MAKE_CORPUS), "generate", "--n", str(n), "--seed", "20250101", "--out", str(path)],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def deliver(corpus: Path, maildir: Path, uid: int, limit: int) -> None:
    subprocess.run(
        [
            sys.executable,
            str(MAKE_CORPUS),
            "deliver",
            "--corpus",
            str(corpus),
            "--maildir",
            str(maildir),
            "--reset",
            "--uid",
            str(uid),
            "--limit",
            str(limit),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )


def bare_fetch(host: str, port: int, login: str, password: str) -> dict[str, float]:
    started = time.perf_counter()
    client = IMAPClient(host, port, ssl=False, timeout=60)
    client._imap.debug = 0
    client.login(login, password)
    client.select_folder("INBOX", readonly=True)
    uids = client.search("ALL")
    total = 0
    size = 0
    for i in range(0, len(uids), BATCH):
        for data in client.fetch(uids[i : i + BATCH], ["BODY.PEEK[]"]).values():
            total += 1
            size += len(data[b"BODY[]"])
    client.logout()
    seconds = time.perf_counter() - started
    return {"mails": total, "seconds": seconds, "rate": total / seconds, "mb": size / 1e6}


# ── the Postroom import, in a child process ─────────────────────────────────────────────────────


def descendants_cpu(seen: dict[int, float]) -> None:
    """Record the CPU seconds used so far by every process below this one.

    Parser processes start from a fork server, so the kernel's children counters miss them. Linux /proc only.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    mine = {os.getpid()}
    grew = True
    while grew:
        below = {pid for pid, parent in parents.items() if parent in mine} - mine
        grew = bool(below)
        mine |= below
    for pid in mine - {os.getpid()}:
        seen[pid] = max(seen.get(pid, 0.0), used[pid])


def child_import(config: dict[str, Any]) -> None:
    from sqlalchemy import func, select

    from postroom.helpdesk.connections import ConnectionInput
    from postroom.logconfig import configure
    from postroom.service import Service
    from postroom.settings import Settings
    from postroom.store.models import Connection, ConnectionStatus, RawMessage, RawStatus

    configure("WARNING")
    settings = Settings(data_dir=Path(config["data_dir"]), database_url=config["database_url"])
    service = Service(settings)
    service.migrate()
    with service.db.write() as session:
        connection = service.connections.create(
            session,
            ConnectionInput(
                name="bench",
                address=config["login"],
                password=config["password"],
                imap_server=config["host"],
                imap_port=config["port"],
                imap_encryption="none",
                smtp_server=config["smtp_host"],
                smtp_port=config["smtp_port"],
                smtp_encryption="none",
            ),
        )
        connection.enabled = True
    started = time.perf_counter()
    cpu_before = os.times()
    below: dict[int, float] = {}
    service.start_workers()
    expected = config["expected"]
    stored_at = None
    while True:
        with service.db.read() as session:
            counts = dict(session.execute(select(RawMessage.status, func.count()).group_by(RawMessage.status)).all())
            state = session.execute(select(Connection.status, Connection.status_message)).one()
        stored = sum(counts.values())
        if stored_at is None and stored >= expected:
            stored_at = time.perf_counter() - started
        if state.status == ConnectionStatus.ERROR:
            raise SystemExit(f"the connection failed: {state.status_message}")
        finished = sum(v for k, v in counts.items() if k not in (RawStatus.PENDING, RawStatus.PROCESSING))
        if finished >= expected:
            break
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    # Read once, while the parser processes still run (reading /proc on every poll cost the import).
    descendants_cpu(below)
    service.close()
    # After close(): the parser processes have been waited for, so their time is in children_*.
    cpu = os.times()
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "mails": expected,
                "seconds": seconds,
                "rate": expected / seconds,
                "stored_seconds": stored_at,
                "peak_rss_mb": peak_mb,
                "cpu_main": cpu.user + cpu.system - cpu_before.user - cpu_before.system,
                "cpu_children": sum(below.values()),
                "statuses": {str(k): v for k, v in counts.items()},
            }
        )
    )


# ── pickup latency ───────────────────────────────────────────────────────────────────────────────


class IdleWatcher(threading.Thread):
    """A bare IDLE client: records when each new EXISTS arrives."""

    def __init__(self, host: str, port: int, login: str, password: str) -> None:
        super().__init__(daemon=True)
        self.client = IMAPClient(host, port, ssl=False, timeout=30)
        self.client._imap.debug = 0
        self.client.login(login, password)
        self.client.select_folder("INBOX", readonly=True)
        self.seen: list[float] = []
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        self.client.idle()
        self.ready.set()
        while not self.stop.is_set():
            for response in self.client.idle_check(timeout=0.2):
                if len(response) > 1 and response[1] == b"EXISTS":
                    self.seen.append(time.perf_counter())
        self.client.idle_done()
        self.client.logout()


def latency(dovecot: Any, user: Any, smtp: Any, samples: int, database_url: str | None) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from postroom.api.app import create_app
    from postroom.api.tokens import create_token
    from postroom.helpdesk.connections import ConnectionInput
    from postroom.logconfig import configure
    from postroom.service import Service
    from postroom.settings import Settings
    from postroom.testing.mails import make_mail

    configure("WARNING")
    data_dir = Path(tempfile.mkdtemp(prefix="postroom-bench-latency-"))
    settings = Settings(data_dir=data_dir, database_url=database_url)
    service = Service(settings)
    service.migrate()
    committed: dict[int, float] = {}
    service.events.subscribe(
        lambda event: (
            committed.setdefault(event.conversation_id or 0, time.perf_counter())
            if event.kind == "conversation.created"
            else None
        )
    )
    with service.db.write() as session:
        connection = service.connections.create(
            session,
            ConnectionInput(
                name="latency",
                address=user.address,
                password=user.password,
                imap_server=dovecot.host,
                imap_port=dovecot.ports.imap,
                imap_encryption="none",
                smtp_server=smtp.host,
                smtp_port=smtp.port,
                smtp_encryption="none",
            ),
        )
        connection.enabled = True
        token = create_token(session, "bench")
    client = TestClient(create_app(service))
    client.headers["Authorization"] = f"Bearer {token}"
    service.start_workers()
    while client.get("/api/v1/connections/1").json()["status"] != "RUNNING":
        time.sleep(0.05)
    time.sleep(1.0)
    watcher = IdleWatcher(dovecot.host, dovecot.ports.imap, user.name, user.password)
    watcher.start()
    watcher.ready.wait()
    bare: list[float] = []
    ours: list[float] = []
    visible: list[float] = []
    for i in range(samples):
        time.sleep(0.7)  # let both sides settle back into IDLE
        before = len(watcher.seen)
        sent = time.perf_counter()
        dovecot.append(user, make_mail(f"latency {i}", sender=f"Sam {i} <sam{i}@customer.example>"))
        deadline = sent + 10
        while (len(watcher.seen) <= before or len(committed) <= i) and time.perf_counter() < deadline:
            time.sleep(0.001)
        conversation_id = max(committed) if committed else 0
        while time.perf_counter() < deadline:
            response = client.get(f"/api/v1/conversations/{conversation_id}")
            if response.status_code == 200 and response.json()["subject"] == f"latency {i}":
                visible.append(time.perf_counter() - sent)
                break
        bare.append(watcher.seen[before] - sent)
        ours.append(committed[conversation_id] - sent)
    watcher.stop.set()
    watcher.join()
    service.close()
    return {"bare_idle": bare, "postroom_commit": ours, "postroom_api": visible}


def median_p95(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"{statistics.median(ordered) * 1000:.0f} ms / {p95 * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--corpus", type=Path, default=Path("/tmp/postroom-corpus"))
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="default: SQLite in a temporary data dir")
    parser.add_argument("--no-latency", action="store_true", help="measure the import only (quicker iterations)")
    parser.add_argument("--child-import", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_import:
        child_import(json.loads(args.child_import))
        return

    from postroom.testing.certs import make_certificates
    from postroom.testing.dovecot import DovecotServer
    from postroom.testing.smtp import SmtpTestServer

    ensure_corpus(args.corpus, args.n)
    workdir = Path(tempfile.mkdtemp(prefix="postroom-bench-"))
    certs = make_certificates(workdir / "certs")
    with DovecotServer(TEMPLATE, certs) as dovecot, SmtpTestServer(auth_required=True) as smtp:
        user = dovecot.add_user()
        smtp.add_user(user.name, user.password)
        deliver(args.corpus, dovecot.maildir(user), dovecot.mail_uid, args.n)
        fetch = bare_fetch(dovecot.host, dovecot.ports.imap, user.name, user.password)
        deliver(args.corpus, dovecot.maildir(user), dovecot.mail_uid, args.n)
        config = {
            "data_dir": str(workdir / "data"),
            "database_url": args.database_url or f"sqlite:///{workdir / 'data' / 'postroom.db'}",
            "host": dovecot.host,
            "port": dovecot.ports.imap,
            "login": user.name,
            "password": user.password,
            "smtp_host": smtp.host,
            "smtp_port": smtp.port,
            "expected": fetch["mails"],
        }
        child = subprocess.run(
            [sys.executable, __file__, "--child-import", json.dumps(config)],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "POSTROOM_LOG_LEVEL": "WARNING"},
        )
        imported = json.loads(child.stdout.strip().splitlines()[-1])
        pickup = None
        if not args.no_latency:
            latency_user = dovecot.add_user()
            smtp.add_user(latency_user.name, latency_user.password)
            pickup = latency(dovecot, latency_user, smtp, args.samples, args.database_url)

    print(f"corpus: {fetch['mails']} mails, {fetch['mb']:.0f} MB; database: {args.database_url or 'SQLite'}")
    print()
    print("| measure | figure |")
    print("|---|---|")
    print(f"| bare IMAP fetch (IMAPClient, debug off) | {fetch['rate']:,.0f} mails/s ({fetch['seconds']:.1f} s) |")
    print(
        f"| Postroom import, fetched + stored + processed | {imported['rate']:,.0f} mails/s "
        f"({imported['seconds']:.1f} s; all raw stored after {imported['stored_seconds']:.1f} s) |"
    )
    print(f"| Postroom peak RSS during the import | {imported['peak_rss_mb']:.0f} MB |")
    print(
        f"| Postroom CPU time during the import, main process + parser processes | "
        f"{imported['cpu_main']:.1f} s + {imported['cpu_children']:.1f} s |"
    )
    print(f"| outcome | {imported['statuses']} |")
    if pickup is None:
        return
    print(f"| pickup, bare IDLE client sees EXISTS (median / p95) | {median_p95(pickup['bare_idle'])} |")
    print(f"| pickup, Postroom conversation committed (median / p95) | {median_p95(pickup['postroom_commit'])} |")
    print(f"| pickup, Postroom conversation visible in the API (median / p95) | {median_p95(pickup['postroom_api'])} |")
    gap = [o - b for o, b in zip(pickup["postroom_api"], pickup["bare_idle"], strict=False)]
    print(f"| pickup gap, API-visible minus bare IDLE (median / p95) | {median_p95(gap)} |")


if __name__ == "__main__":
    main()

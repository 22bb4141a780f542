"""A hostile mail (deeply nested HTML) against the parser and against a running service.

    .venv/bin/python bench/bench_hostile.py [--depths 1000,10000,40000,100000] [--service sqlite,postgresql]
                                            [--service-depth 100000] [--timeout 180]

Printed, first, for each nesting depth: the seconds nh3 needs to sanitise the bare HTML (the
sanitiser's own cost, before any bound; ``--skip-raw`` leaves it out), the bounding pass
(``mail/html_bounds.py``; 0 in a version without it), what ``sanitize_html`` and ``html_to_text``
cost on what the parser hands them, and ``parse_message`` on the whole mail.
Then, per database, a real service (its SMTP listener, its pipeline with the default limits, the
API in-process): the hostile mail is sent, then a normal mail every half second; printed are the
normal mails' latency (sent → conversation) and the API reads' latency (``GET /conversations``
every 50 ms) until the hostile mail is settled, and how that took and ended.
"""

from __future__ import annotations

import argparse
import contextlib
import smtplib
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import nh3
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from postroom.api.app import create_app
from postroom.api.tokens import create_token
from postroom.helpdesk.connections import ConnectionInput
from postroom.mail.html import html_to_text, sanitize_html
from postroom.mail.parse import parse_message
from postroom.service import Service
from postroom.settings import Settings
from postroom.store.models import Message, RawMessage
from postroom.testing.database import postgres_schema
from postroom.testing.hostile import make_nested_html_mail, nested_html
from postroom.testing.mails import make_mail


def timed(fn: object, *args: object) -> float:
    start = time.perf_counter()
    fn(*args)  # type: ignore[operator]
    return time.perf_counter() - start


def by_depth(depths: list[int], skip_raw: bool) -> None:
    """nh3 on the raw HTML; then what the parser does: bound (when this version has bounds), sanitise, render."""
    try:
        from postroom.mail.html_bounds import bound_html
    except ImportError:  # a version before the bounds: the parser hands the HTML over as it came

        def bound(html: str) -> str:
            return html
    else:

        def bound(html: str) -> str:
            return bound_html(html).html

    print("depth   html bytes   nh3.clean(raw) s   bound s   sanitize_html s   html_to_text s   parse_message s")
    for depth in depths:
        html = nested_html(depth)
        raw = "skipped" if skip_raw else f"{timed(nh3.clean, html):.3f}"
        start = time.perf_counter()
        bounded = bound(html)
        bounding = time.perf_counter() - start
        row = [
            f"{depth:>7}",
            f"{len(html):>10}",
            f"{raw:>16}",
            f"{bounding:>7.3f}",
            f"{timed(sanitize_html, bounded):>15.3f}",
            f"{timed(html_to_text, bounded):>14.3f}",
            f"{timed(parse_message, make_nested_html_mail(depth)):>15.3f}",
        ]
        print("   ".join(row), flush=True)


@contextlib.contextmanager
def database(kind: str, data_dir: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{data_dir / 'postroom.db'}"
    else:
        with postgres_schema() as url:
            yield url


def service_run(kind: str, depth: int, timeout: float) -> None:
    with tempfile.TemporaryDirectory() as tmp, database(kind, Path(tmp)) as url:
        settings = Settings(data_dir=Path(tmp), database_url=url, smtp_bind="127.0.0.1:0")
        service = Service(settings)
        service.migrate()
        service.start_workers()
        listener = service.start_listener()
        assert listener is not None
        try:
            with service.db.write() as session:
                connection = service.connections.create(
                    session,
                    ConnectionInput(
                        name="Bench", mode="forwarding", address="support@company.example", smtp_server="x"
                    ),
                )
                address = service.connections.inbound_address(connection)
                token = create_token(session, "bench")
            assert address is not None
            client = TestClient(create_app(service))
            client.headers["Authorization"] = f"Bearer {token}"
            reads: list[float] = []
            normal: list[float] = []
            stop = threading.Event()

            failed: list[float] = []

            def read_api() -> None:
                while not stop.is_set():
                    start = time.perf_counter()
                    try:
                        ok = client.get("/api/v1/conversations").status_code == 200
                    except Exception:  # a failed read (database locked) is a figure too
                        ok = False
                    (reads if ok else failed).append(time.perf_counter() - start)
                    stop.wait(0.05)

            def hostile_state() -> tuple[str, int]:
                with service.db.read() as session:
                    status = session.scalar(select(RawMessage.status).where(RawMessage.id == 1))
                    messages = session.scalar(
                        select(func.count()).select_from(Message).where(Message.subject == "Hostile")
                    )
                return (status.value if status is not None else "absent"), int(messages or 0)

            def has_subject(subject: str) -> bool:
                with service.db.read() as session:
                    return session.scalar(select(Message.id).where(Message.subject == subject)) is not None

            reader = threading.Thread(target=read_api, daemon=True)
            started = time.monotonic()
            with smtplib.SMTP(listener.host, listener.port, timeout=timeout) as smtp:
                smtp.sendmail("m@attacker.example", [address], make_nested_html_mail(depth, subject="Hostile"))
                accepted = time.monotonic() - started
                reader.start()
                n = 0
                while time.monotonic() - started < timeout:
                    status, _ = hostile_state()
                    if status not in ("pending", "processing") and n >= 3:
                        break
                    subject = f"Normal {n}"
                    sent = time.monotonic()
                    try:
                        smtp.sendmail(
                            "ada@customer.example", [address], make_mail(subject, to="support@company.example")
                        )
                    except smtplib.SMTPException as exc:
                        print(f"  normal mail {n} refused: {exc}")
                    while not has_subject(subject) and time.monotonic() - sent < timeout:
                        time.sleep(0.01)
                    normal.append(time.monotonic() - sent)
                    n += 1
                    time.sleep(max(0.0, 0.5 - (time.monotonic() - sent)))
            status, messages = hostile_state()
            stop.set()
            reader.join()
            settled = time.monotonic() - started
            print(
                f"{kind}: hostile mail ({depth} levels) accepted in {accepted:.2f} s, settled '{status}' "
                f"with {messages} message(s) after {settled:.1f} s"
            )
            print(
                f"  normal mail latency: n={len(normal)} median {statistics.median(normal):.3f} s, "
                f"max {max(normal):.3f} s (a mail still missing counts as the time waited)"
            )
            if reads:
                print(
                    f"  API read latency:    n={len(reads)} median {statistics.median(reads) * 1000:.0f} ms, "
                    f"max {max(reads) * 1000:.0f} ms"
                )
            if failed:
                print(f"  API reads FAILED:    n={len(failed)}, each after {statistics.median(failed):.1f} s (median)")
        finally:
            service.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--depths", default="1000,10000,40000,100000")
    parser.add_argument("--skip-raw", action="store_true", help="leave out nh3 on the unbounded HTML (80 s at 100k)")
    parser.add_argument("--service", default="sqlite,postgresql", help="databases to run the service on ('' = none)")
    parser.add_argument("--service-depth", type=int, default=100_000)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args()
    if args.depths:
        by_depth([int(d) for d in args.depths.split(",")], args.skip_raw)
    for kind in filter(None, args.service.split(",")):
        service_run(kind, args.service_depth, args.timeout)


if __name__ == "__main__":
    main()

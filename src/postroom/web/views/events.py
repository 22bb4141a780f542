"""Server-sent events: new mail and status changes pushed to open pages (``GET /events``).

One stream per open page (``static/js/live.js`` opens it with ``EventSource``). It says *that*
something changed, never what a user may see: the page fetches its own part again, through the
views and their access checks. Messages::

    event: conversations        a conversation was created or changed (new mail, a reply, a status…)
    data: {"at": "<newest activity, ISO 8601>"}

    event: connections          a connection was added, removed, edited, or its status changed
    data: {"count": <connections>}

and a comment line every 15 s so that proxies keep the connection open.

The pipeline may run in another process (``postroom worker``), so the stream polls the database:
cheap reads of indexed maxima (``helpdesk.listing.change_marks``) every ``POLL_SECONDS``. Events of this
process (``Service.events``) wake it at once. A stream ends when the browser goes away (Starlette
cancels it on the disconnect, and each turn checks too) and after ``MAX_SECONDS`` in any case: the
browser reconnects by itself, and the session is checked again then (a revoked one ends its pages'
updates within that time).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import weakref
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from postroom.helpdesk import listing
from postroom.pipeline.context import Event
from postroom.service import Service
from postroom.web.deps import ServiceDep, UserDep

router = APIRouter()

POLL_SECONDS = 1.5
HEARTBEAT_SECONDS = 15.0
MAX_SECONDS = 300.0
# After an in-process event, wait this long for its siblings (a batch of mail publishes one event per
# message) so that a burst is one message to the page, not fifty refreshes.
COALESCE_SECONDS = 0.15
# What the browser waits before it reconnects a stream that ended (the SSE ``retry`` field, ms).
RETRY_MS = 2000

_CONVERSATION_EVENTS = ("conversation.", "message.", "note.")

# Open streams per service: what a test (or a curious admin) reads to see that closed pages let go.
_open: weakref.WeakKeyDictionary[Service, int] = weakref.WeakKeyDictionary()


def open_streams(service: Service) -> int:
    """How many event streams of ``service`` are open now."""
    return _open.get(service, 0)


@router.get("/events")
async def events(request: Request, service: ServiceDep, user: UserDep) -> StreamingResponse:
    headers = {
        "Cache-Control": "no-store",
        # nginx buffers responses unless told otherwise; a buffered stream delivers nothing.
        "X-Accel-Buffering": "no",
    }
    return StreamingResponse(_stream(request, service), media_type="text/event-stream", headers=headers)


async def _stream(request: Request, service: Service) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    noted: set[str] = set()

    def note(kind: str) -> None:
        noted.add(kind)
        wake.set()

    def on_event(event: Event) -> None:
        # Called in the publishing thread (the pipeline's, a request's): hand over to this loop.
        if event.kind.startswith(_CONVERSATION_EVENTS):
            # A RuntimeError means the loop is closing: the stream is over anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(note, "conversations")

    unsubscribe = service.events.subscribe(on_event)
    _open[service] = _open.get(service, 0) + 1
    try:
        marks = await run_in_threadpool(_marks, service)
        yield f"retry: {RETRY_MS}\n: connected\n\n"
        started = last_sent = time.monotonic()
        while time.monotonic() - started < MAX_SECONDS:
            try:
                await asyncio.wait_for(wake.wait(), timeout=POLL_SECONDS)
                await asyncio.sleep(COALESCE_SECONDS)
            except TimeoutError:
                pass
            if await request.is_disconnected():
                break
            wake.clear()
            kinds = set(noted)
            noted.clear()
            fresh = await run_in_threadpool(_marks, service)
            if fresh.conversations != marks.conversations or "conversations" in kinds:
                at = fresh.conversations[0]
                yield _message("conversations", {"at": at.isoformat() if at else None})
                last_sent = time.monotonic()
            if fresh.connections != marks.connections:
                yield _message("connections", {"count": fresh.connections[0]})
                last_sent = time.monotonic()
            marks = fresh
            if time.monotonic() - last_sent >= HEARTBEAT_SECONDS:
                yield ": heartbeat\n\n"
                last_sent = time.monotonic()
    finally:
        unsubscribe()
        _open[service] = _open.get(service, 1) - 1


def _marks(service: Service) -> listing.ChangeMarks:
    with service.db.read() as session:
        return listing.change_marks(session)


def _message(event: str, data: dict[str, object]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"

"""/api/v1/connections: create, read, change, delete, start, stop, test, logs; the mailboxes of each."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from postroom.api.deps import ServiceDep
from postroom.api.pagination import (
    Order,
    Page,
    PageRequest,
    decode_cursor,
    encode_cursor,
    keyset_page,
    link_next,
    page_request,
)
from postroom.api.schemas import (
    ConnectionCreateIn,
    ConnectionLogOut,
    ConnectionOut,
    ConnectionUpdateIn,
    MailboxOut,
    MailboxPatchIn,
    ProbeReportOut,
)
from postroom.channels.probe import DEFAULT_TIMEOUT, probe_connection
from postroom.errors import NotFound
from postroom.store.models import Connection, ConnectionLog, Mailbox

router = APIRouter(tags=["connections"])


@router.post("/connections", status_code=status.HTTP_201_CREATED, response_model=ConnectionOut)
def create_connection(body: ConnectionCreateIn, service: ServiceDep) -> dict[str, Any]:
    with service.db.write() as session:
        connection = service.connections.create(session, body)
        return service.connections.view(connection)


@router.get("/connections", response_model=Page[ConnectionOut])
def list_connections(
    service: ServiceDep, request: Request, response: Response, page: Annotated[PageRequest, Depends(page_request)]
) -> dict[str, Any]:
    """Every connection, oldest first."""
    query = select(Connection).options(selectinload(Connection.mailboxes))
    with service.db.read() as session:
        rows, next_cursor = keyset_page(session, query, [Order(Connection.id)], page)
        items = [service.connections.view(c) for c in rows]
    link_next(request, response, next_cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.get("/connections/{connection_id}", response_model=ConnectionOut)
def get_connection(connection_id: int, service: ServiceDep) -> dict[str, Any]:
    with service.db.read() as session:
        return service.connections.view(service.connections.get(session, connection_id))


@router.patch("/connections/{connection_id}", response_model=ConnectionOut)
def update_connection(connection_id: int, body: ConnectionUpdateIn, service: ServiceDep) -> dict[str, Any]:
    with service.db.write() as session:
        connection = service.connections.update(session, connection_id, body)
        view = service.connections.view(connection)
    service.connections_changed()
    return view


@router.delete("/connections/{connection_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_connection(
    connection_id: int,
    service: ServiceDep,
    confirm: Annotated[str, Query(description="The connection's name, to confirm the permanent deletion.")],
) -> None:
    with service.db.write() as session:
        service.connections.delete(session, connection_id, confirm_name=confirm)
    service.connections_changed()


@router.post("/connections/{connection_id}/start", response_model=ConnectionOut)
def start_connection(connection_id: int, service: ServiceDep) -> dict[str, Any]:
    """Start: sign in to every mailbox over IMAP and SMTP, then read them (status STARTING → RUNNING or ERROR)."""
    with service.db.write() as session:
        connection = service.connections.get(session, connection_id)
        service.connections.start(session, connection)
        view = service.connections.view(connection)
    service.connections_changed()
    return view


@router.post("/connections/{connection_id}/stop", response_model=ConnectionOut)
def stop_connection(connection_id: int, service: ServiceDep) -> dict[str, Any]:
    """Stop reading the mailboxes; the worker that runs the connection sets STOPPED when it has stopped."""
    with service.db.write() as session:
        connection = service.connections.get(session, connection_id)
        service.connections.stop(session, connection)
        view = service.connections.view(connection)
    service.connections_changed()
    return view


@router.post("/connections/{connection_id}/test", response_model=ProbeReportOut)
def run_connection_test(
    connection_id: int,
    service: ServiceDep,
    roundtrip: Annotated[
        bool, Query(description="Also send a probe mail to each mailbox, wait for it and delete it.")
    ] = False,
    send_to: Annotated[
        str | None,
        Query(max_length=320, description="Also send a test mail from each mailbox to this address (Test SMTP)."),
    ] = None,
    timeout: Annotated[
        float, Query(gt=0, le=300, description="Seconds each network step, and the roundtrip's wait, may take.")
    ] = DEFAULT_TIMEOUT,
) -> dict[str, Any]:
    """Test connection: DNS, TCP, TLS, sign-in and folder of every mailbox, step by step.

    Always 200 with the report, which says what failed; the connection's status is not changed, and a
    stopped connection can be tested.
    """
    report = probe_connection(
        service.db, service.secrets, connection_id, roundtrip=roundtrip, send_to=send_to, timeout=timeout
    )
    return report.to_json()


@router.get("/connections/{connection_id}/logs", response_model=Page[ConnectionLogOut])
def connection_logs(
    connection_id: int,
    service: ServiceDep,
    request: Request,
    response: Response,
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """The connection's log, newest first."""
    query = select(ConnectionLog).where(ConnectionLog.connection_id == connection_id)
    with service.db.read() as session:
        service.connections.get(session, connection_id)  # 404 for an unknown connection
        rows, next_cursor = keyset_page(session, query, [Order(ConnectionLog.id, descending=True)], page)
        items = [
            {"id": r.id, "at": r.at.isoformat(), "level": r.level, "event": r.event, "message": r.message} for r in rows
        ]
    link_next(request, response, next_cursor)
    return {"items": items, "next_cursor": next_cursor}


# -- the mailboxes of a connection: one resource each, with typed fields --


def _mailbox(view: dict[str, Any], connection_id: int, mailbox_id: int) -> dict[str, Any]:
    for box in view["mailboxes"]:
        if box["id"] == mailbox_id:
            return dict(box)
    raise NotFound(f"no mailbox {mailbox_id} in connection {connection_id}")


@router.get("/connections/{connection_id}/mailboxes", response_model=Page[MailboxOut])
def list_mailboxes(
    connection_id: int,
    service: ServiceDep,
    request: Request,
    response: Response,
    page: Annotated[PageRequest, Depends(page_request)],
) -> dict[str, Any]:
    """The connection's mailboxes in their order (``position``), secrets masked."""
    with service.db.read() as session:
        view = service.connections.view(service.connections.get(session, connection_id))
    # A connection has a handful of mailboxes: the page is cut from the view, the cursor is the position.
    start = _position_cursor(page.cursor)
    boxes = [b for b in view["mailboxes"] if b["position"] > start][: page.limit + 1]
    next_cursor = None
    if len(boxes) > page.limit:
        boxes = boxes[: page.limit]
        next_cursor = encode_cursor([boxes[-1]["position"]])
    link_next(request, response, next_cursor)
    return {"items": boxes, "next_cursor": next_cursor}


def _position_cursor(cursor: str | None) -> int:
    if not cursor:
        return -1
    [position] = decode_cursor(cursor, [Order(Mailbox.position)])
    return int(position)


@router.get("/connections/{connection_id}/mailboxes/{mailbox_id}", response_model=MailboxOut)
def get_mailbox(connection_id: int, mailbox_id: int, service: ServiceDep) -> dict[str, Any]:
    with service.db.read() as session:
        view = service.connections.view(service.connections.get(session, connection_id))
    return _mailbox(view, connection_id, mailbox_id)


@router.patch("/connections/{connection_id}/mailboxes/{mailbox_id}", response_model=MailboxOut)
def update_mailbox(connection_id: int, mailbox_id: int, body: MailboxPatchIn, service: ServiceDep) -> dict[str, Any]:
    """Change one mailbox; the same rules as the connection's comma-separated fields (a running connection
    restarts with the new settings)."""
    with service.db.write() as session:
        connection = service.connections.update_mailbox(
            session, connection_id, mailbox_id, body.model_dump(exclude_unset=True)
        )
        view = service.connections.view(connection)
    service.connections_changed()
    return _mailbox(view, connection_id, mailbox_id)

"""/api/v1/connections: create, read, change, delete, start, stop, test, logs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from postroom.api.deps import ServiceDep
from postroom.api.schemas import ConnectionLogOut, ConnectionOut, ProbeReportOut
from postroom.channels.probe import DEFAULT_TIMEOUT, probe_connection
from postroom.helpdesk.connections import ConnectionInput

router = APIRouter(tags=["connections"])


@router.post("/connections", status_code=status.HTTP_201_CREATED, response_model=ConnectionOut)
def create_connection(body: ConnectionInput, service: ServiceDep) -> dict[str, Any]:
    with service.db.write() as session:
        connection = service.connections.create(session, body)
        return service.connections.view(connection)


@router.get("/connections", response_model=list[ConnectionOut])
def list_connections(service: ServiceDep) -> list[dict[str, Any]]:
    with service.db.read() as session:
        return [service.connections.view(c) for c in service.connections.list_all(session)]


@router.get("/connections/{connection_id}", response_model=ConnectionOut)
def get_connection(connection_id: int, service: ServiceDep) -> dict[str, Any]:
    with service.db.read() as session:
        return service.connections.view(service.connections.get(session, connection_id))


@router.patch("/connections/{connection_id}", response_model=ConnectionOut)
def update_connection(connection_id: int, body: ConnectionInput, service: ServiceDep) -> dict[str, Any]:
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


@router.get("/connections/{connection_id}/logs", response_model=list[ConnectionLogOut])
def connection_logs(
    connection_id: int,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    before_id: int | None = None,
) -> list[dict[str, Any]]:
    with service.db.read() as session:
        rows = service.connections.logs(session, connection_id, limit=limit, before_id=before_id)
        return [
            {"id": r.id, "at": r.at.isoformat(), "level": r.level, "event": r.event, "message": r.message} for r in rows
        ]

"""Settings → Inboxes: connections, their status, Start/Stop, Test connection, logs, the form, delete.

Every page here is for administrators (``AdminUserDep``: an agent gets the 403 page). The views call the
same :class:`~postroom.helpdesk.connections.ConnectionService` the API's routes call, in the same way
(one write transaction, then ``service.connections_changed()`` so the supervisor acts at once).

The form sends the API's settings: per-mailbox fields comma-separated, the six settings known by their
environment-variable names in ``env``, secrets shown as the mask (``********``) which the service reads
as "keep the stored one". An update sends only what the admin changed, so that saving an untouched form
restarts nothing and never trips the rule that a moved secret must be given again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.datastructures import FormData

from postroom.channels.probe import ProbeReport, probe_connection
from postroom.errors import Conflict, InvalidSetting, NotFound
from postroom.helpdesk.connections import ConnectionInput
from postroom.service import Service
from postroom.store.models import Connection, ConnectionLog, Team
from postroom.store.secretbox import MASK
from postroom.web.deps import AdminUserDep, ServiceDep
from postroom.web.session import WebUser
from postroom.web.templating import render

router = APIRouter()

# The list shows a page of connections at a time (an installation has a handful; the bound keeps a page
# cheap whatever the number), the log the newest entries.
LIST_PAGE = 50
LOG_ENTRIES = 100
# Teams offered in the form's select; more than this many teams is not a help desk we expect.
TEAM_CHOICES = 500
# "Test connection" from the browser: each network step may take this long. Shorter than the API's
# default so that an unreachable server answers the admin within a reasonable wait.
TEST_TIMEOUT = 10.0

MODE_LABELS = {"imap": "IMAP", "pop3": "POP3", "forwarding": "Forwarding", "webhook": "Webhook"}
OUTBOUND_LABELS = {"smtp": "SMTP", "sendgrid": "SendGrid"}
STATUS_LABELS = {"RUNNING": "Running", "STARTING": "Starting", "ERROR": "Error", "STOPPED": "Stopped"}
INCOMING_ENCRYPTION = (("ssl", "SSL/TLS"), ("starttls", "STARTTLS"), ("none", "None (unencrypted)"))
SMTP_ENCRYPTION = (
    ("auto", "Auto (by port)"),
    ("ssl", "SSL/TLS"),
    ("starttls", "STARTTLS"),
    ("none", "None (unencrypted)"),
)
CONTENT_TYPES = (("text/plain", "text/plain"), ("text/html", "text/html (with an HTML part)"))
WEBHOOK_PROVIDERS = (("sendgrid", "SendGrid Inbound Parse"), ("mailgun", "Mailgun route"))

# -- the form's fields ---------------------------------------------------------------------------------

TEXT_FIELDS = (
    "name",
    "description",
    "mode",
    "outbound",
    "address",
    "username",
    "imap_server",
    "imap_port",
    "imap_encryption",
    "sent_folder",
    "smtp_server",
    "smtp_port",
    "smtp_encryption",
    "smtp_username",
    "reply_to",
    "oauth_client_id",
    "oauth_token_uri",
    "sendgrid_api_url",
    "webhook_provider",
    "response_delay_min",
    "response_delay_max",
    "team_id",
    "grouping",
)
SECRET_FIELDS = (
    "password",
    "smtp_password",
    "oauth_client_secret",
    "oauth_refresh_token",
    "sendgrid_api_key",
    "webhook_signing_key",
)
CHECKBOXES = (
    "validate_certificate",
    "mark_as_read",
    "unread_only",
    "save_to_sent",
    "delete_after_import",
    "oauth_enabled",
    "allow_plaintext_auth",
    "auto_assign",
)
# The settings the environment-variable configuration names (helpdesk.connections.ENV_ALIASES), sent in
# ``env``; the form shows them under those names.
ENV_FIELDS = {
    "EMAIL_NAME": "email_name",
    "IMAP_MAILBOX": "imap_mailbox",
    "MESSAGE_CONTENT_TYPE": "message_content_type",
    "SMTP_SIGNATURE": "smtp_signature",
    "EMAIL_MAX_ATTACHMENT_BYTES": "max_attachment_bytes",
    "CHECK_INTERVAL": "check_interval",
}
# Numbers that have a default and no "none": left empty, they keep the stored value (or take the default).
_KEEP_WHEN_EMPTY = ("EMAIL_MAX_ATTACHMENT_BYTES", "CHECK_INTERVAL")
# The per-mailbox settings shown from each mailbox of the view (comma-joined when mailboxes differ).
_MAILBOX_TEXT: tuple[str, ...] = (
    "address",
    "username",
    "imap_server",
    "imap_port",
    "imap_encryption",
    "sent_folder",
    "smtp_server",
    "smtp_port",
    "smtp_encryption",
    "smtp_username",
    "reply_to",
    "oauth_client_id",
    "oauth_token_uri",
    *SECRET_FIELDS[:4],
)

# Which fields apply to which connection: a rule name per field (the rest apply always). The template
# marks each group with the same rule (``data-when``) and settings.js shows and hides them as the mode,
# the outbound way and OAuth change; the server renders them shown or hidden the same way.
FIELD_RULES = {
    "username": "signs-in",
    "password": "password",
    "imap_server": "reads",
    "imap_port": "reads",
    "imap_encryption": "reads",
    "validate_certificate": "signs-in",
    "allow_plaintext_auth": "signs-in",
    "oauth_enabled": "signs-in",
    "mark_as_read": "imap",
    "unread_only": "imap",
    "save_to_sent": "imap-smtp",
    "sent_folder": "imap-smtp",
    "delete_after_import": "pop3",
    "smtp_server": "smtp",
    "smtp_port": "smtp",
    "smtp_encryption": "smtp",
    "smtp_username": "smtp",
    "smtp_password": "smtp-password",
    "sendgrid_api_key": "sendgrid",
    "sendgrid_api_url": "sendgrid",
    "webhook_provider": "webhook",
    "webhook_signing_key": "webhook",
    "oauth_client_id": "oauth",
    "oauth_client_secret": "oauth",
    "oauth_refresh_token": "oauth",
    "oauth_token_uri": "oauth",
    "IMAP_MAILBOX": "imap",
    "CHECK_INTERVAL": "reads",
}
# What a flag that does not apply is sent as, where leaving it stored would refuse the settings
# (delete_after_import is POP3 only; OAuth needs something to sign in to).
_OFF_WHEN_NOT_APPLICABLE = ("delete_after_import", "oauth_enabled")

# Service error fields → the form field that shows the error. POP3 connections name the incoming server
# pop3_*; the env settings are shown under their variable names.
_ERROR_FIELDS = {
    "pop3_server": "imap_server",
    "pop3_port": "imap_port",
    "pop3_encryption": "imap_encryption",
    **{field: name for name, field in ENV_FIELDS.items()},
    **{f"env.{name}": name for name in ENV_FIELDS},
}


def rules(mode: str, outbound: str, oauth: bool) -> dict[str, bool]:
    """Which groups of fields apply (the same table as ``static/js/settings.js``)."""
    reads = mode in ("imap", "pop3")
    smtp = outbound == "smtp"
    signs_in = reads or smtp
    return {
        "reads": reads,
        "imap": mode == "imap",
        "pop3": mode == "pop3",
        "forwarding": mode == "forwarding",
        "webhook": mode == "webhook",
        "smtp": smtp,
        "sendgrid": outbound == "sendgrid",
        "signs-in": signs_in,
        "password": signs_in and not oauth,
        "smtp-password": smtp and not oauth,
        "oauth": signs_in and oauth,
        "imap-smtp": mode == "imap" and smtp,
    }


def applies(field: str, shown: Mapping[str, bool]) -> bool:
    rule = FIELD_RULES.get(field)
    return rule is None or shown[rule]


FormValues = dict[str, Any]


def default_values() -> FormValues:
    """A new connection's form: the service's defaults, shown."""
    values: FormValues = {field: "" for field in (*TEXT_FIELDS, *SECRET_FIELDS)}
    values.update(
        mode="imap",
        outbound="smtp",
        imap_encryption="ssl",
        smtp_encryption="auto",
        grouping="thread",
        response_delay_min="0",
        response_delay_max="0",
    )
    values.update({flag: False for flag in CHECKBOXES})
    values.update(validate_certificate=True, mark_as_read=True, save_to_sent=True)
    values.update(
        EMAIL_NAME="",
        IMAP_MAILBOX="INBOX",
        MESSAGE_CONTENT_TYPE="text/plain",
        SMTP_SIGNATURE="",
        EMAIL_MAX_ATTACHMENT_BYTES="10485760",
        CHECK_INTERVAL="15",
    )
    return values


def _collapse(values: Sequence[object]) -> str:
    """One value when every mailbox has the same, else the comma-separated list the API takes."""
    texts = [str(v) for v in values]
    if not texts:
        return ""
    return texts[0] if len(set(texts)) == 1 else ", ".join(texts)


def _number(value: float | int) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def view_values(view: Mapping[str, Any]) -> FormValues:
    """The form of a stored connection, from the service's view (secrets masked)."""
    boxes: list[dict[str, Any]] = view["mailboxes"]
    values: FormValues = {
        "name": view["name"],
        "description": view["description"],
        "mode": view["mode"],
        "outbound": view["outbound"],
        "sendgrid_api_url": view["sendgrid_api_url"],
        "webhook_provider": view["webhook_provider"],
        "sendgrid_api_key": view["sendgrid_api_key"],
        "webhook_signing_key": view["webhook_signing_key"],
        "response_delay_min": _number(view["response_delay_min"]),
        "response_delay_max": _number(view["response_delay_max"]),
        "team_id": str(view["team_id"] or ""),
        "grouping": view["grouping"],
    }
    for field in _MAILBOX_TEXT:
        values[field] = _collapse([b[field] for b in boxes])
    # Several mailboxes: the addresses are the list itself, never collapsed into one.
    values["address"] = ", ".join(b["address"] for b in boxes)
    for flag in CHECKBOXES:
        if flag != "validate_certificate":
            values[flag] = bool(view[flag])
    certificate = view["validate_certificate"]
    # Mailboxes that differ: the checkbox shows "off" and is sent only when ticked (see _submitted).
    values["validate_certificate"] = bool(certificate)
    values["validate_certificate_mixed"] = certificate is None
    values["EMAIL_NAME"] = _collapse([b["email_name"] for b in boxes])
    values["IMAP_MAILBOX"] = _collapse([b["imap_mailbox"] for b in boxes])
    values["MESSAGE_CONTENT_TYPE"] = _collapse([b["message_content_type"] for b in boxes])
    values["SMTP_SIGNATURE"] = view["smtp_signature"]
    values["EMAIL_MAX_ATTACHMENT_BYTES"] = str(view["max_attachment_bytes"])
    values["CHECK_INTERVAL"] = _number(view["check_interval"])
    return values


def form_values(form: FormData) -> FormValues:
    """What the browser sent, in the form's own terms (text as typed, ticked boxes as True)."""
    values: FormValues = {}
    for field in (*TEXT_FIELDS, *SECRET_FIELDS, *ENV_FIELDS):
        raw = form.get(field)
        text = raw if isinstance(raw, str) else ""
        # Secrets and the signature keep their spaces; everything else is trimmed.
        values[field] = text if field in (*SECRET_FIELDS, "SMTP_SIGNATURE") else text.strip()
    for flag in CHECKBOXES:
        values[flag] = form.get(flag) is not None
    values["validate_certificate_mixed"] = form.get("validate_certificate_mixed") is not None
    for delay in ("response_delay_min", "response_delay_max"):
        values[delay] = values[delay] or "0"
    values["mode"] = values["mode"] if values["mode"] in MODE_LABELS else "imap"
    values["outbound"] = values["outbound"] if values["outbound"] in OUTBOUND_LABELS else "smtp"
    return values


def shown_rules(values: Mapping[str, Any]) -> dict[str, bool]:
    return rules(str(values["mode"]), str(values["outbound"]), bool(values["oauth_enabled"]))


def settings_payload(values: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The body for the service: what applies to the chosen mode; on an update only what changed.

    ``current`` is the stored connection's form (None when creating). Secrets left as shown (the mask) or
    emptied keep the stored ones, as in the API.
    """
    shown = shown_rules(values)
    creating = current is None
    payload: dict[str, Any] = {}
    env: dict[str, str] = {}

    def changed(field: str) -> bool:
        return creating or current is None or values[field] != current.get(field)

    for field in TEXT_FIELDS:
        if not applies(field, shown) or not changed(field):
            continue
        value = values[field]
        if field == "team_id":
            payload[field] = value or None
        elif value != "" or not creating:
            payload[field] = value
    for field in SECRET_FIELDS:
        value = values[field]
        if applies(field, shown) and value not in ("", MASK):
            payload[field] = value
    for flag in CHECKBOXES:
        value = bool(values[flag])
        if not applies(flag, shown):
            if flag in _OFF_WHEN_NOT_APPLICABLE and (creating or (current or {}).get(flag)):
                payload[flag] = False
            continue
        if flag == "validate_certificate" and values.get("validate_certificate_mixed") and not value:
            # Mailboxes with their own certificate settings: an unticked box leaves each as it is.
            continue
        if changed(flag):
            payload[flag] = value
    for name in ENV_FIELDS:
        value = values[name]
        if not applies(name, shown) or not changed(name):
            continue
        if value == "" and (creating or name in _KEEP_WHEN_EMPTY):
            continue
        env[name] = value
    if env:
        payload["env"] = env
    return payload


# -- errors next to their fields -----------------------------------------------------------------------


@dataclass
class FormErrors:
    fields: dict[str, str]
    general: list[str]

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def setting_error(field: str, reason: str, values: Mapping[str, Any]) -> FormErrors:
    """One refused setting, shown next to its field when the form shows that field, else above the form."""
    target = _ERROR_FIELDS.get(field, field)
    known = target in (*TEXT_FIELDS, *SECRET_FIELDS, *CHECKBOXES, *ENV_FIELDS)
    if known and applies(target, shown_rules(values)):
        return FormErrors({target: _sentence(reason)}, [])
    return FormErrors({}, [_sentence(f"{field}: {reason}")])


def validation_errors(error: ValidationError, values: Mapping[str, Any]) -> FormErrors:
    result = FormErrors({}, [])
    for item in error.errors():
        # Only the message: pydantic's error also carries the input, which may be a password.
        location = [str(part) for part in item["loc"]]
        field = ".".join(location[:2]) if location[:1] == ["env"] else (location[0] if location else "")
        found = setting_error(field, str(item["msg"]), values)
        result.fields.update({k: v for k, v in found.fields.items() if k not in result.fields})
        result.general.extend(found.general)
    return result


# -- reading -------------------------------------------------------------------------------------------


def _not_found(request: Request, user: WebUser, error: NotFound) -> Response:
    context = {"title": "No such inbox", "message": f"{_sentence(str(error))} It may have been deleted."}
    return render(request, "error.html", context, user=user, status_code=404)


def _row(connection: Connection) -> dict[str, Any]:
    addresses = [box.address for box in connection.mailboxes]
    return {
        "id": connection.id,
        "name": connection.name,
        "status": connection.status.value,
        "status_label": STATUS_LABELS[connection.status.value],
        "status_message": connection.status_message,
        "status_changed_at": connection.status_changed_at,
        "enabled": connection.enabled,
        "mode": MODE_LABELS[connection.mode.value],
        "outbound": OUTBOUND_LABELS[connection.outbound.value],
        "addresses": addresses,
    }


def _digest(rows: Sequence[Mapping[str, Any]]) -> str:
    """A short fingerprint of what a refreshed part shows: the same one means nothing to swap."""
    seen = repr([(r["id"], r["name"], r["status"], r["status_message"], r["enabled"], r["addresses"]) for r in rows])
    return hashlib.sha256(seen.encode()).hexdigest()[:16]


def _list_page(service: Service, after: int | None) -> dict[str, Any]:
    query = select(Connection).options(selectinload(Connection.mailboxes)).order_by(Connection.id)
    if after is not None:
        query = query.where(Connection.id > after)
    with service.db.read() as session:
        found = list(session.scalars(query.limit(LIST_PAGE + 1)).all())
        rows = [_row(c) for c in found[:LIST_PAGE]]
    next_after = rows[-1]["id"] if len(found) > LIST_PAGE else None
    return {"rows": rows, "after": after, "next_after": next_after, "digest": _digest(rows)}


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


@router.get("/settings")
def settings_home(user: AdminUserDep) -> Response:
    return RedirectResponse("/settings/inboxes", status_code=303)


@router.get("/settings/inboxes")
def inbox_list(request: Request, service: ServiceDep, user: AdminUserDep, after: int | None = None) -> Response:
    context = {"nav": "settings", "section": "inboxes", **_list_page(service, after)}
    context["deleted"] = request.query_params.get("deleted", "")
    return render(request, "settings/inbox_list.html", context, user=user)


@router.get("/settings/inboxes/rows")
def inbox_rows(
    request: Request, service: ServiceDep, user: AdminUserDep, after: int | None = None, digest: str = ""
) -> Response:
    """The list's rows, polled and fetched on live updates; 204 (htmx swaps nothing) when unchanged, so
    that a refresh never takes the keyboard focus from a button the admin is on."""
    page = _list_page(service, after)
    if digest and digest == page["digest"]:
        return Response(status_code=204)
    return render(request, "partials/inbox_rows.html", page, user=user)


def _teams(service: Service) -> list[dict[str, Any]]:
    with service.db.read() as session:
        teams = session.execute(select(Team.id, Team.name).order_by(Team.name).limit(TEAM_CHOICES)).all()
    return [{"id": str(team_id), "name": name} for team_id, name in teams]


def _form_page(
    request: Request,
    service: Service,
    user: WebUser,
    values: FormValues,
    *,
    view: Mapping[str, Any] | None = None,
    errors: FormErrors | None = None,
    report: ProbeReport | None = None,
    send_to: str = "",
    send_to_error: str = "",
    notice: str = "",
    status_code: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "nav": "settings",
        "section": "inboxes",
        "values": values,
        "shown": shown_rules(values),
        "errors": errors or FormErrors({}, []),
        "connection": view,
        "teams": _teams(service),
        "mode_labels": MODE_LABELS,
        "outbound_labels": OUTBOUND_LABELS,
        "incoming_encryption": INCOMING_ENCRYPTION,
        "smtp_encryption": SMTP_ENCRYPTION,
        "content_types": CONTENT_TYPES,
        "webhook_providers": list(WEBHOOK_PROVIDERS),
        "report": report,
        "send_to": send_to,
        "send_to_error": send_to_error,
        "notice": notice,
    }
    if view is not None:
        context["status"] = _status_of(view)
        context["digest"] = _digest([context["status"]])
        # The mailbox table shows what is stored, whatever the form (refused, perhaps) says now.
        context["stored"] = rules(str(view["mode"]), str(view["outbound"]), bool(view["oauth_enabled"]))
        webhook_path = view.get("webhook_path")
        context["webhook_url"] = f"{service.settings.base_url}{webhook_path}" if webhook_path else ""
    return render(request, "settings/inbox_form.html", context, user=user, status_code=status_code)


def _status_of(view: Mapping[str, Any]) -> dict[str, Any]:
    status = str(view["status"])
    return {
        "id": view["id"],
        "name": view["name"],
        "status": status,
        "status_label": STATUS_LABELS[status],
        "status_message": view["status_message"],
        "enabled": view["enabled"],
        "addresses": [b["address"] for b in view["mailboxes"]],
    }


def _connection_view(service: Service, connection_id: int) -> dict[str, Any]:
    with service.db.read() as session:
        return service.connections.view(service.connections.get(session, connection_id))


@router.get("/settings/inboxes/new")
def new_inbox(request: Request, service: ServiceDep, user: AdminUserDep, mode: str = "imap") -> Response:
    values = default_values()
    if mode in MODE_LABELS:
        values["mode"] = mode
    return _form_page(request, service, user, values)


@router.post("/settings/inboxes/new")
async def create_inbox(request: Request, service: ServiceDep, user: AdminUserDep) -> Response:
    form = await request.form()
    return await run_in_threadpool(_create, request, service, user, form_values(form), "refresh" in form)


def _create(request: Request, service: Service, user: WebUser, values: FormValues, refresh: bool) -> Response:
    if refresh:
        # Without JavaScript, "Show the fields for this mode" posts the form to draw it again, unsaved.
        return _form_page(request, service, user, values)
    try:
        spec = ConnectionInput.model_validate(settings_payload(values, None))
        with service.db.write() as session:
            connection = service.connections.create(session, spec)
            connection_id = connection.id
    except ValidationError as error:
        return _form_page(request, service, user, values, errors=validation_errors(error, values), status_code=422)
    except InvalidSetting as error:
        errors = setting_error(error.field, error.reason, values)
        return _form_page(request, service, user, values, errors=errors, status_code=422)
    except Conflict as error:
        return _form_page(request, service, user, values, errors=FormErrors({"name": _sentence(str(error))}, []))
    service.connections_changed()
    return RedirectResponse(f"/settings/inboxes/{connection_id}?saved=created", status_code=303)


_NOTICES = {
    "created": "The inbox was created. Press Start to begin reading its mail.",
    "saved": "Your changes were saved.",
}


@router.get("/settings/inboxes/{connection_id:int}")
def edit_inbox(request: Request, service: ServiceDep, user: AdminUserDep, connection_id: int) -> Response:
    try:
        view = _connection_view(service, connection_id)
    except NotFound as error:
        return _not_found(request, user, error)
    notice = _NOTICES.get(request.query_params.get("saved", ""), "")
    return _form_page(request, service, user, view_values(view), view=view, notice=notice)


@router.post("/settings/inboxes/{connection_id:int}")
async def update_inbox(request: Request, service: ServiceDep, user: AdminUserDep, connection_id: int) -> Response:
    form = await request.form()
    values = form_values(form)
    return await run_in_threadpool(_update, request, service, user, connection_id, values, "refresh" in form)


def _update(
    request: Request, service: Service, user: WebUser, connection_id: int, values: FormValues, refresh: bool
) -> Response:
    try:
        view = _connection_view(service, connection_id)
    except NotFound as error:
        return _not_found(request, user, error)
    if refresh:
        return _form_page(request, service, user, values, view=view)
    try:
        spec = ConnectionInput.model_validate(settings_payload(values, view_values(view)))
        with service.db.write() as session:
            service.connections.update(session, connection_id, spec)
    except ValidationError as error:
        errors = validation_errors(error, values)
        return _form_page(request, service, user, values, view=view, errors=errors, status_code=422)
    except InvalidSetting as error:
        errors = setting_error(error.field, error.reason, values)
        return _form_page(request, service, user, values, view=view, errors=errors, status_code=422)
    except Conflict as error:
        errors = FormErrors({"name": _sentence(str(error))}, [])
        return _form_page(request, service, user, values, view=view, errors=errors, status_code=409)
    except NotFound as error:
        return _not_found(request, user, error)
    service.connections_changed()
    return RedirectResponse(f"/settings/inboxes/{connection_id}?saved=saved", status_code=303)


# -- Start, Stop and the status --------------------------------------------------------------------------


def _status_response(request: Request, service: Service, user: WebUser, connection_id: int) -> Response:
    """After Start or Stop: the list's row or the inbox page's status panel (htmx), else back to the page."""
    where = request.headers.get("hx-target", "")
    if not _is_htmx(request):
        back = (
            "/settings/inboxes" if request.query_params.get("from") == "list" else f"/settings/inboxes/{connection_id}"
        )
        return RedirectResponse(back, status_code=303)
    with service.db.read() as session:
        row = _row(service.connections.get(session, connection_id))
    if where.startswith("inbox-row-"):
        return render(request, "partials/inbox_row.html", {"c": row}, user=user)
    return render(request, "partials/inbox_status.html", {"status": row, "digest": _digest([row])}, user=user)


@router.post("/settings/inboxes/{connection_id:int}/start")
def start_inbox(request: Request, service: ServiceDep, user: AdminUserDep, connection_id: int) -> Response:
    try:
        with service.db.write() as session:
            connection = service.connections.get(session, connection_id)
            service.connections.start(session, connection)
        service.connections_changed()
        return _status_response(request, service, user, connection_id)
    except NotFound as error:
        return _not_found(request, user, error)


@router.post("/settings/inboxes/{connection_id:int}/stop")
def stop_inbox(request: Request, service: ServiceDep, user: AdminUserDep, connection_id: int) -> Response:
    try:
        with service.db.write() as session:
            connection = service.connections.get(session, connection_id)
            service.connections.stop(session, connection)
        service.connections_changed()
        return _status_response(request, service, user, connection_id)
    except NotFound as error:
        return _not_found(request, user, error)


@router.get("/settings/inboxes/{connection_id:int}/status")
def inbox_status(
    request: Request, service: ServiceDep, user: AdminUserDep, connection_id: int, digest: str = ""
) -> Response:
    """The inbox page's status panel, polled and fetched on live updates (204 when unchanged)."""
    try:
        with service.db.read() as session:
            row = _row(service.connections.get(session, connection_id))
    except NotFound:
        # Deleted meanwhile: HX-Refresh lets the page say so rather than polling a ghost.
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    current = _digest([row])
    if digest == current:
        return Response(status_code=204)
    return render(request, "partials/inbox_status.html", {"status": row, "digest": current}, user=user)


# -- Test connection -------------------------------------------------------------------------------------


@router.post("/settings/inboxes/{connection_id:int}/test")
async def test_inbox(request: Request, service: ServiceDep, user: AdminUserDep, connection_id: int) -> Response:
    form = await request.form()
    raw = form.get("send_to")
    send_to = raw.strip() if isinstance(raw, str) else None
    # The probe signs in to every server, step by step: network I/O that must not hold the event loop.
    return await run_in_threadpool(_test, request, service, user, connection_id, send_to)


def _test(request: Request, service: Service, user: WebUser, connection_id: int, send_to: str | None) -> Response:
    report: ProbeReport | None = None
    send_to_error = ""
    if send_to is not None and not send_to:
        send_to_error = "Enter the address to send the test mail to."
    else:
        try:
            report = probe_connection(service.db, service.secrets, connection_id, send_to=send_to, timeout=TEST_TIMEOUT)
        except InvalidSetting as error:
            send_to_error = _sentence(error.reason)
        except NotFound as error:
            return _not_found(request, user, error)
    context = {"report": report, "send_to": send_to or "", "send_to_error": send_to_error, "id": connection_id}
    if _is_htmx(request):
        return render(request, "partials/inbox_test.html", context, user=user)
    try:
        view = _connection_view(service, connection_id)
    except NotFound as error:
        return _not_found(request, user, error)
    return _form_page(
        request,
        service,
        user,
        view_values(view),
        view=view,
        report=report,
        send_to=send_to or "",
        send_to_error=send_to_error,
    )


# -- Logs ----------------------------------------------------------------------------------------------


def _log_entries(service: Service, connection_id: int) -> dict[str, Any]:
    query = (
        select(ConnectionLog)
        .where(ConnectionLog.connection_id == connection_id)
        .order_by(ConnectionLog.id.desc())
        .limit(LOG_ENTRIES)
    )
    with service.db.read() as session:
        connection = service.connections.get(session, connection_id)
        name = connection.name
        entries = [
            {"id": r.id, "at": r.at, "level": r.level, "event": r.event, "message": r.message}
            for r in session.scalars(query).all()
        ]
    newest = str(entries[0]["id"]) if entries else "none"
    return {"id": connection_id, "name": name, "entries": entries, "digest": newest, "limit": LOG_ENTRIES}


@router.get("/settings/inboxes/{connection_id:int}/logs")
def inbox_logs(request: Request, service: ServiceDep, user: AdminUserDep, connection_id: int) -> Response:
    try:
        context = _log_entries(service, connection_id)
    except NotFound as error:
        return _not_found(request, user, error)
    return render(request, "settings/inbox_logs.html", {"nav": "settings", "section": "inboxes", **context}, user=user)


@router.get("/settings/inboxes/{connection_id:int}/logs/entries")
def inbox_log_entries(
    request: Request, service: ServiceDep, user: AdminUserDep, connection_id: int, digest: str = ""
) -> Response:
    """The newest log entries, polled every 2 s (204 when none is new)."""
    try:
        context = _log_entries(service, connection_id)
    except NotFound:
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    if digest == context["digest"]:
        return Response(status_code=204)
    return render(request, "partials/inbox_log_entries.html", context, user=user)


# -- Delete --------------------------------------------------------------------------------------------


@router.get("/settings/inboxes/{connection_id:int}/delete")
def delete_page(request: Request, service: ServiceDep, user: AdminUserDep, connection_id: int) -> Response:
    """The confirmation as a page of its own: without JavaScript, and after a mistyped name."""
    try:
        view = _connection_view(service, connection_id)
    except NotFound as error:
        return _not_found(request, user, error)
    context = {"nav": "settings", "section": "inboxes", "connection": view, "error": "", "typed": ""}
    return render(request, "settings/inbox_delete.html", context, user=user)


@router.post("/settings/inboxes/{connection_id:int}/delete")
async def delete_inbox(request: Request, service: ServiceDep, user: AdminUserDep, connection_id: int) -> Response:
    form = await request.form()
    raw = form.get("confirm_name")
    typed = raw.strip() if isinstance(raw, str) else ""
    return await run_in_threadpool(_delete, request, service, user, connection_id, typed)


def _delete(request: Request, service: Service, user: WebUser, connection_id: int, typed: str) -> Response:
    try:
        view = _connection_view(service, connection_id)
        with service.db.write() as session:
            service.connections.delete(session, connection_id, confirm_name=typed)
    except NotFound as error:
        return _not_found(request, user, error)
    except Conflict:
        problem = f"That is not the inbox's name: type {view['name']} exactly to delete it."
        context = {"nav": "settings", "section": "inboxes", "connection": view, "error": problem, "typed": typed}
        return render(request, "settings/inbox_delete.html", context, user=user, status_code=409)
    service.connections_changed()
    return RedirectResponse("/settings/inboxes?deleted=1", status_code=303)

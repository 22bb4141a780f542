"""/api/v1/inbound/{provider}/{key}: SendGrid Inbound Parse and Mailgun routes post received mail here.

No bearer token: the provider's signature is the authentication, checked against the connection's signing
key before anything is stored. ``key`` is the connection's ``inbound_key`` (mode ``webhook``, and its
``webhook_provider`` must be the one in the path). The answer is 200 only once the raw mail is committed;
every other answer makes the provider try again later (SendGrid for three days, Mailgun for eight hours),
so a failure here loses nothing.

A post is accepted once: its signed timestamp must lie within ``POSTROOM_WEBHOOK_MAX_AGE_SECONDS`` of our
clock, and its replay key (Mailgun's token, SendGrid's signature) is recorded in the database in the
transaction that stores the mail (:class:`~postroom.channels.inbound.WebhookReplays`). A stale or replayed
post is answered 401, as a forged one is: it is not the provider's (a retry the provider signs again has a
new timestamp and key), and the provider stops retrying after its hours or days anyway.

These endpoints are ``async``, unlike the rest of the API: a signature covers the exact request bytes,
which only the raw body stream gives; database work still runs in the thread pool.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request, status
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from postroom.api.deps import ServiceDep
from postroom.channels.inbound import InboundRawSink, WebhookReplays
from postroom.channels.logs import ConnectionEventLog
from postroom.errors import (
    ConfigurationError,
    WebhookRejected,
    WebhookTooLarge,
    display_protocol,
)
from postroom.service import Service
from postroom.sources.base import InboundMail
from postroom.sources.smtp_listener import InboundTarget
from postroom.sources.webhooks import (
    SENDGRID_SIGNATURE_HEADER,
    SENDGRID_TIMESTAMP_HEADER,
    ReplayKey,
    mailgun_replay_key,
    parse_mailgun,
    parse_sendgrid,
    sendgrid_replay_key,
    verify_mailgun,
    verify_sendgrid,
)
from postroom.store.models import Connection, ConnectionMode

log = structlog.get_logger(__name__)

router = APIRouter(tags=["inbound"])

# Form fields around the mail (envelope, headers again, charsets) and the multipart framing.
FORM_OVERHEAD_BYTES = 1024 * 1024
# A connection whose signing key is unusable says so in its log at most once a minute per process: every
# post hits it (the provider retries for days), and anyone who knows the URL may post.
MISCONFIGURED_LOG_INTERVAL = 60.0
_guard_lock = threading.Lock()


def _replays(request: Request, service: Service) -> WebhookReplays:
    # The keys live in the database; the object only paces the pruning of old ones, once per application
    # (and so per process), kept on the app rather than in a module global.
    state = request.app.state
    with _guard_lock:
        replays: WebhookReplays | None = getattr(state, "inbound_webhook_replays", None)
        if replays is None:
            replays = WebhookReplays(service.db, service.settings.webhook_max_age_seconds)
            state.inbound_webhook_replays = replays
    return replays


async def _read_body(request: Request, provider: str, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise WebhookTooLarge(provider, f"the request has {declared} bytes; at most {limit} are accepted")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WebhookTooLarge(provider, f"the request is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _connection(service: Service, provider: str, key: str) -> tuple[int, str]:
    """The connection id and its signing key (decrypted) for a webhook URL; 404 when there is none."""
    with service.db.read() as session:
        row = session.execute(
            select(Connection.id, Connection.webhook_provider, Connection.webhook_signing_key_enc).where(
                Connection.inbound_key == key, Connection.mode == ConnectionMode.WEBHOOK
            )
        ).one_or_none()
    if row is None or row.webhook_provider != provider:
        # The same answer for an unknown key and a key of another provider: a caller learns nothing.
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such inbound webhook")
    return int(row.id), service.secrets.decrypt(row.webhook_signing_key_enc)


def _store(service: Service, replays: WebhookReplays, connection_id: int, mail: InboundMail, replay: ReplayKey) -> int:
    sink = InboundRawSink(service.db, "webhook", on_stored=lambda count: service.pipeline.wake(), replays=replays)
    return sink.store(InboundTarget(connection_id=connection_id), mail, replay=replay)


def _rejected(exc: WebhookRejected, connection_id: int | None) -> HTTPException:
    log.warning(
        "inbound.webhook_rejected",
        provider=exc.provider,
        connection_id=connection_id,
        status=exc.status_code,
        reason=exc.reason,
    )
    return HTTPException(exc.status_code, exc.reason)


def _should_tell(request: Request, connection_id: int) -> bool:
    """Whether the connection's log should hear of its misconfiguration now (see MISCONFIGURED_LOG_INTERVAL)."""
    state = request.app.state
    now = time.monotonic()
    with _guard_lock:
        told: dict[int, float] | None = getattr(state, "inbound_misconfigured_told", None)
        if told is None:
            told = {}
            state.inbound_misconfigured_told = told
        last = told.get(connection_id)
        if last is not None and now - last < MISCONFIGURED_LOG_INTERVAL:
            return False
        told[connection_id] = now
        return True


def _tell_connection_log(service: Service, provider: str, connection_id: int, exc: ConfigurationError) -> None:
    ConnectionEventLog(service.db, connection_id)(
        "error",
        "webhook_misconfigured",
        f"{display_protocol(provider)} webhook: {exc}; every post is answered 503 and the provider retries"
        " later, so no mail is lost, but none arrives until the key is fixed",
    )


async def _misconfigured(
    request: Request, service: Service, exc: ConfigurationError, provider: str, connection_id: int
) -> HTTPException:
    # The stored key is unusable: the admin must fix it. A 5xx keeps the provider retrying meanwhile,
    # and the caller is not told what is wrong with our configuration. The admin reads the connection's
    # log, not the service log, so the cause goes there too (keys saved before they were validated on
    # save, or a provider changed in the database, still end here).
    log.error("inbound.webhook_misconfigured", provider=provider, connection_id=connection_id, error=str(exc))
    if _should_tell(request, connection_id):
        await run_in_threadpool(_tell_connection_log, service, provider, connection_id, exc)
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "this inbound webhook is not configured correctly")


@router.post("/inbound/sendgrid/{key}")
async def sendgrid_inbound(key: str, request: Request, service: ServiceDep) -> dict[str, Any]:
    """SendGrid Inbound Parse (raw mode, signed by a security policy)."""
    limit = service.settings.smtp_max_message_bytes
    connection_id, public_key = await run_in_threadpool(_connection, service, "sendgrid", key)
    try:
        body = await _read_body(request, "sendgrid", 2 * limit + FORM_OVERHEAD_BYTES)
        signature = request.headers.get(SENDGRID_SIGNATURE_HEADER)
        verify_sendgrid(
            public_key,
            body,
            signature,
            request.headers.get(SENDGRID_TIMESTAMP_HEADER),
            max_age=service.settings.webhook_max_age_seconds,
        )
        replay = sendgrid_replay_key(signature or "")
        mail = parse_sendgrid(body, request.headers.get("content-type", ""), limit)
        raw_id = await run_in_threadpool(_store, service, _replays(request, service), connection_id, mail, replay)
    except WebhookRejected as exc:
        raise _rejected(exc, connection_id) from None
    except ConfigurationError as exc:
        raise await _misconfigured(request, service, exc, "sendgrid", connection_id) from None
    return {"status": "stored", "raw_message_id": raw_id}


@router.post("/inbound/mailgun/{key}")
async def mailgun_inbound(key: str, request: Request, service: ServiceDep) -> dict[str, Any]:
    """Mailgun routes. Mailgun posts the raw MIME only to a URL that ends in ``mime``, so give the route
    ``forward("https://<this server>/api/v1/inbound/mailgun/<key>/mime")``; this form without it is accepted
    as well, but then Mailgun posts parsed fields, which are refused (400)."""
    return await _mailgun(key, request, service)


@router.post("/inbound/mailgun/{key}/mime", include_in_schema=False)
async def mailgun_inbound_mime(key: str, request: Request, service: ServiceDep) -> dict[str, Any]:
    # Mailgun posts raw MIME only to URLs ending in "mime"; this spelling lets the admin append it.
    return await _mailgun(key, request, service)


async def _mailgun(key: str, request: Request, service: ServiceDep) -> dict[str, Any]:
    limit = service.settings.smtp_max_message_bytes
    connection_id, signing_key = await run_in_threadpool(_connection, service, "mailgun", key)
    try:
        body = await _read_body(request, "mailgun", 2 * limit + FORM_OVERHEAD_BYTES)
        post = parse_mailgun(body, request.headers.get("content-type", ""))
        verify_mailgun(
            signing_key, post.timestamp, post.token, post.signature, max_age=service.settings.webhook_max_age_seconds
        )
        # A post refused for its content (400) has not used its token: the key is recorded only with the
        # mail, in one transaction, so a corrected or retried post is still accepted.
        mail = post.mail(limit)
        replay = mailgun_replay_key(post.token or "")
        raw_id = await run_in_threadpool(_store, service, _replays(request, service), connection_id, mail, replay)
    except WebhookRejected as exc:
        raise _rejected(exc, connection_id) from None
    except ConfigurationError as exc:
        raise await _misconfigured(request, service, exc, "mailgun", connection_id) from None
    return {"status": "stored", "raw_message_id": raw_id}

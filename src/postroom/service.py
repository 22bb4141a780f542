"""One Postroom process, assembled: database, blob store, pipeline, outbox, supervisor, event bus.

``postroom serve`` runs it under the HTTP API; ``postroom worker`` runs it alone; tests build it with
faster policies. Nothing here knows HTTP.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from postroom.channels.inbound import ForwardingResolver, InboundRawSink
from postroom.channels.runner import RunnerPolicy
from postroom.channels.supervisor import Supervisor, SupervisorPolicy
from postroom.helpdesk.connections import ConnectionService
from postroom.helpdesk.conversations import ConversationService
from postroom.helpdesk.invitations import InvitationService
from postroom.helpdesk.users import UserService
from postroom.jobs.leases import WorkerHeartbeat
from postroom.jobs.outbox import OutboxLimits, OutboxWorker, RetryPolicy, Sender
from postroom.pipeline.context import Event, PipelineServices
from postroom.pipeline.runner import PipelineRunner, RunnerLimits
from postroom.settings import Settings
from postroom.sources.smtp_listener import SessionLimits, SmtpListener
from postroom.store.blobs import LocalBlobStore
from postroom.store.db import Database
from postroom.store.migrate import upgrade
from postroom.store.secretbox import SecretBox
from postroom.transports import smtp

log = structlog.get_logger(__name__)

# How long a shutdown waits, after the supervisor stopped the connections, for their threads to finish.
_RUNNER_FINISH_SECONDS = 5.0

Subscriber = Callable[[Event], None]


class EventBus:
    """In-process subscribers to events, called after the transaction that produced them committed."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        with self._lock:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, events: list[Event]) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for event in events:
            for subscriber in subscribers:
                try:
                    subscriber(event)
                except Exception:
                    log.exception("events.subscriber_failed", kind=event.kind)


@dataclass(frozen=True)
class Policies:
    """Timings of the background work; tests shorten them."""

    retry: RetryPolicy = RetryPolicy()
    outbox: OutboxLimits = OutboxLimits()
    pipeline: RunnerLimits = RunnerLimits()
    supervisor: SupervisorPolicy = SupervisorPolicy()
    runner: RunnerPolicy = RunnerPolicy()
    sender: Sender = field(default=smtp.send)

    # The worker lease that says this process lives (jobs/leases.py: WorkerHeartbeat): renewed this
    # often, expiring after ``worker_lease_seconds`` without renewal. Four beats may fail (a database
    # restart) before a live process's claims are taken; a dead one's come back within 8 s.
    heartbeat_seconds: float = 2.0
    worker_lease_seconds: float = 8.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policies:
        """The defaults, with what the process settings say (POSTROOM_OUTBOX_POLL_SECONDS, …_LEASE_SECONDS,
        POSTROOM_PARSE_BUDGET_SECONDS)."""
        return cls(
            outbox=OutboxLimits(poll_seconds=settings.outbox_poll_seconds),
            supervisor=SupervisorPolicy(lease_seconds=settings.lease_seconds),
            pipeline=RunnerLimits(parse_budget_seconds=settings.parse_budget_seconds),
        )


def make_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Service:
    def __init__(self, settings: Settings, policies: Policies | None = None) -> None:
        self.settings = settings
        policies = policies or Policies.from_settings(settings)
        self.policies = policies
        settings.ensure_data_dir()
        self.worker_id = make_worker_id()
        self.db = Database(settings.resolved_database_url)
        self.secrets = SecretBox(settings.fernet_key())
        self.reply_token_key = settings.reply_token_key()
        self.blobs = LocalBlobStore(settings.attachments_dir)
        self.events = EventBus()
        # One per process: the hasher is stateless, and the dummy hash for unknown addresses is made once.
        self.users = UserService()
        self.connections = ConnectionService(self.secrets, settings.inbound_domain)
        self.conversations = ConversationService(self.reply_token_key)
        self.pipeline = PipelineRunner(
            self.db,
            PipelineServices(blobs=self.blobs, reply_token_key=self.reply_token_key),
            worker_id=self.worker_id,
            workers=settings.pipeline_workers,
            on_events=self.events.publish,
            limits=policies.pipeline,
        )
        self.outbox = OutboxWorker(
            self.db,
            self.secrets,
            worker_id=self.worker_id,
            sender=policies.sender,
            policy=policies.retry,
            limits=policies.outbox,
            on_events=self.events.publish,
        )
        self.supervisor = Supervisor(
            self.db,
            self.secrets,
            worker_id=self.worker_id,
            on_stored=lambda count: self.pipeline.wake(),
            policy=policies.supervisor,
            runner_policy=policies.runner,
        )
        self.heartbeat = WorkerHeartbeat(
            self.db, self.worker_id, every=policies.heartbeat_seconds, seconds=policies.worker_lease_seconds
        )
        self.workers_running = False
        self.listener: SmtpListener | None = None

    def migrate(self) -> None:
        upgrade(self.db)

    def start_workers(self) -> None:
        """Start reading mailboxes, processing mail and sending the outbox in background threads."""
        if self.workers_running:
            return
        # First: every claim this process makes names a worker whose lease is alive.
        self.heartbeat.start()
        try:
            self.heartbeat.forget_expired()
        except Exception:
            log.exception("service.forget_expired_leases_failed")
        self.pipeline.start()
        self.outbox.start()
        self.supervisor.start()
        self.workers_running = True
        log.info("service.workers_started", worker_id=self.worker_id)

    def stop_workers(self) -> None:
        """Stop the background work for a process shutdown; returns once it is over.

        The connections stay enabled with their status: the supervisor stops its runners (each logs
        "stopped") and then releases their leases, so another worker, or this one restarted, takes them at
        once. Sends in flight get the outbox's ``shutdown_grace`` meanwhile (signalled first, so that the two
        waits overlap); what is still running then goes back to ``queued`` or, if the server may have had
        it, to ``uncertain`` (:mod:`postroom.jobs.outbox`).
        """
        if not self.workers_running:
            return
        self.outbox.signal_stop()
        runners = list(self.supervisor.runners.values())
        self.supervisor.stop()
        # The supervisor lets go once a runner's readers are done, which may be just before the runner's own
        # thread logs "stopped": give it a moment, or the process ends first and the log never says so.
        deadline = time.monotonic() + _RUNNER_FINISH_SECONDS
        for runner in runners:
            runner.finished.wait(max(0.0, deadline - time.monotonic()))
        self.pipeline.stop()
        self.outbox.stop()
        self.heartbeat.stop()
        self.workers_running = False
        log.info("service.workers_stopped", worker_id=self.worker_id)

    def start_listener(self) -> SmtpListener | None:
        """Start the SMTP listener of forwarding-mode connections on POSTROOM_SMTP_BIND (unless turned off).

        It only accepts and stores, like the API's webhooks, so `postroom serve` runs it with or without
        workers; the pipeline of any worker picks up what it stored. Raises InvalidSetting when the TLS
        files (POSTROOM_SMTP_TLS_CERT/_KEY) cannot be used, and OSError when the address is taken.
        """
        bind = self.settings.smtp_host_port
        if bind is None or self.listener is not None:
            return self.listener
        host, port = bind
        settings = self.settings
        tls_context = settings.smtp_tls_context()
        self.listener = SmtpListener(
            host,
            port,
            ForwardingResolver(self.db, settings.inbound_domains),
            InboundRawSink(self.db, "smtp", on_stored=lambda count: self.pipeline.wake()),
            settings.smtp_max_message_bytes,
            hostname=settings.listener_hostname(),  # POSTROOM_SMTP_HOSTNAME: greeting, EHLO and Received lines
            tls_context=tls_context,
            require_tls=settings.smtp_require_tls,
            domain=settings.inbound_domains,
            limits=SessionLimits(
                max_sessions=settings.smtp_max_sessions,
                max_sessions_per_ip=settings.smtp_max_sessions_per_ip,
                idle_seconds=settings.smtp_idle_seconds,
                session_seconds=settings.smtp_session_seconds,
                junk_commands=settings.smtp_junk_commands,
            ),
        ).start()
        log.info(
            "service.smtp_listener_started",
            host=host,
            port=self.listener.port,
            starttls=tls_context is not None,
            require_tls=settings.smtp_require_tls,
        )
        return self.listener

    def close(self) -> None:
        """Stop listening and working (see :meth:`stop_workers`) and close the database; the shutdown path."""
        if self.listener is not None:
            self.listener.stop()
            self.listener = None
        self.stop_workers()
        self.db.dispose()

    # Hooks for the API: make in-process work happen now instead of at the next poll.

    def connections_changed(self) -> None:
        self.supervisor.wake()

    def invitations(self) -> InvitationService:
        """Invitations signed with this installation's key, their links under its public address."""
        settings = self.settings
        return InvitationService(
            settings.invitation_key(), settings.base_url, timedelta(hours=settings.invitation_hours), self.users
        )

    def outbox_changed(self) -> None:
        self.outbox.wake()

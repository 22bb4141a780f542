"""What a stage is and what it works on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.orm import Session

from postroom.mail.model import ParsedMessage
from postroom.store.blobs import BlobStore
from postroom.store.models import Connection, Contact, Conversation, Mailbox, Message, RawMessage, RawStatus


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened, emitted to subscribers after the transaction that made it commits."""

    kind: str  # conversation.created, message.received, message.sent, message.failed, message.bounced
    conversation_id: int | None = None
    message_id: int | None = None
    connection_id: int | None = None


@dataclass(frozen=True, slots=True)
class PipelineServices:
    """What stages need beyond the database session."""

    blobs: BlobStore
    reply_token_key: bytes


@dataclass(eq=False)
class Context:
    """One raw message on its way through the stages, inside one database transaction."""

    session: Session
    services: PipelineServices
    raw: RawMessage
    raw_bytes: bytes
    connection: Connection | None
    mailbox: Mailbox | None
    parsed: ParsedMessage | None = None
    contact: Contact | None = None
    conversation: Conversation | None = None
    new_conversation: bool = False
    message: Message | None = None
    outcome: RawStatus = RawStatus.DONE
    reason: str = ""
    stopped: bool = False
    events: list[Event] = field(default_factory=list)

    def stop(self, outcome: RawStatus, reason: str) -> None:
        """End the pipeline early for this message (a duplicate, a loop), with the reason recorded."""
        self.outcome = outcome
        self.reason = reason
        self.stopped = True

    def require_parsed(self) -> ParsedMessage:
        if self.parsed is None:
            raise RuntimeError("the parse stage must run before this stage")
        return self.parsed


class Stage(Protocol):
    """One named step of the pipeline. Raising quarantines the raw message with the error as reason."""

    @property
    def name(self) -> str: ...

    def __call__(self, ctx: Context) -> None: ...


@dataclass(frozen=True, slots=True)
class NamedStage:
    name: str
    run: Callable[[Context], None]

    def __call__(self, ctx: Context) -> None:
        self.run(ctx)


def stage(name: str) -> Callable[[Callable[[Context], None]], NamedStage]:
    """Declare a function as a pipeline stage: ``@stage("parse")``."""

    def wrap(fn: Callable[[Context], None]) -> NamedStage:
        return NamedStage(name, fn)

    return wrap

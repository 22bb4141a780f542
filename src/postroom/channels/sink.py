"""The raw store as seen by a source: commit fetched bytes and the cursor together, then wake the pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import insert, select, update

from postroom.mail.peek import peek_message_id
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.db import Database
from postroom.store.models import Mailbox, RawBody, RawMessage, RawStatus, utcnow

LOOKUP_CHUNK = 500


def imap_dedupe_key(uidvalidity: int, uid: int) -> str:
    return f"imap:{uidvalidity}:{uid}"


class MailboxSink:
    """A :class:`~postroom.sources.base.RawSink` for one mailbox on the database."""

    def __init__(self, db: Database, connection_id: int, mailbox_id: int, on_stored: Callable[[int], None]) -> None:
        self.db = db
        self.connection_id = connection_id
        self.mailbox_id = mailbox_id
        self.on_stored = on_stored

    def load_cursor(self) -> ImapCursor | None:
        with self.db.read() as session:
            row = session.execute(
                select(Mailbox.uidvalidity, Mailbox.last_uid).where(Mailbox.id == self.mailbox_id)
            ).one_or_none()
        if row is None or row.uidvalidity is None:
            return None
        return ImapCursor(uidvalidity=int(row.uidvalidity), last_uid=int(row.last_uid))

    def store(self, mails: Sequence[FetchedMail], cursor: ImapCursor) -> int:
        now = utcnow()
        with self.db.write() as session:
            keys = [imap_dedupe_key(cursor.uidvalidity, mail.uid) for mail in mails]
            known: set[str] = set()
            for i in range(0, len(keys), LOOKUP_CHUNK):
                chunk = keys[i : i + LOOKUP_CHUNK]
                known.update(
                    session.scalars(
                        select(RawMessage.dedupe_key).where(
                            RawMessage.mailbox_id == self.mailbox_id, RawMessage.dedupe_key.in_(chunk)
                        )
                    )
                )
            new = [(key, mail) for key, mail in zip(keys, mails, strict=True) if key not in known]
            rows = [
                {
                    "connection_id": self.connection_id,
                    "mailbox_id": self.mailbox_id,
                    "dedupe_key": key,
                    "origin": "imap",
                    "header_message_id": peek_message_id(mail.raw),
                    "size": len(mail.raw),
                    "received_at": now,
                    "status": RawStatus.PENDING,
                    "error": "",
                    "attempts": 0,
                }
                for key, mail in new
            ]
            if rows:
                ids = session.scalars(
                    insert(RawMessage).returning(RawMessage.id, sort_by_parameter_order=True), rows
                ).all()
                session.execute(
                    insert(RawBody), [{"raw_id": i, "data": mail.raw} for i, (_, mail) in zip(ids, new, strict=True)]
                )
            # The cursor moves in the same transaction as the bytes it covers (DESIGN §1).
            session.execute(
                update(Mailbox)
                .where(Mailbox.id == self.mailbox_id)
                .values(uidvalidity=cursor.uidvalidity, last_uid=cursor.last_uid)
            )
        if rows:
            self.on_stored(len(rows))
        return len(rows)

    def known_message_ids(self, message_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self.db.read() as session:
            for i in range(0, len(message_ids), LOOKUP_CHUNK):
                chunk = list(message_ids[i : i + LOOKUP_CHUNK])
                found.update(
                    mid
                    for mid in session.scalars(
                        select(RawMessage.header_message_id).where(
                            RawMessage.mailbox_id == self.mailbox_id, RawMessage.header_message_id.in_(chunk)
                        )
                    )
                    if mid is not None
                )
        return found

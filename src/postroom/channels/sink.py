"""The raw store as seen by a source: commit fetched bytes and the cursor together, then wake the pipeline."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from postroom.mail.peek import peek_message_id
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.db import Database
from postroom.store.models import Mailbox, RawBody, RawMessage, RawStatus, utcnow

LOOKUP_CHUNK = 500


def imap_dedupe_key(uidvalidity: int, uid: int) -> str:
    return f"imap:{uidvalidity}:{uid}"


def pop3_dedupe_key(uidl: str) -> str:
    """The raw store's key of a POP3 message: its unique-id, which a server keeps across sessions (RFC 1939 §7)."""
    return f"pop3:{uidl}"


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
        keyed = [(imap_dedupe_key(cursor.uidvalidity, mail.uid), mail.raw) for mail in mails]
        with self.db.write() as session:
            count = self._insert_new(session, "imap", keyed)
            # The cursor moves in the same transaction as the bytes it covers (DESIGN §1).
            session.execute(
                update(Mailbox)
                .where(Mailbox.id == self.mailbox_id)
                .values(uidvalidity=cursor.uidvalidity, last_uid=cursor.last_uid)
            )
        if count:
            self.on_stored(count)
        return count

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

    # ── POP3 (postroom.sources.pop3.Pop3Sink) ─────────────────────────────────────────────────────

    def stored_uidls(self, uidls: Sequence[str]) -> set[str]:
        """Which of these POP3 unique-ids this mailbox has already stored."""
        keys = {pop3_dedupe_key(uidl): uidl for uidl in uidls}
        found: set[str] = set()
        with self.db.read() as session:
            found.update(keys[key] for key in self._known_keys(session, list(keys)))
        return found

    def store_pop3(self, mails: Sequence[tuple[str, bytes]]) -> int:
        """Commit ``(uidl, raw)`` pairs not stored before, in one transaction; return how many were new.

        The dedupe key is the cursor of a POP3 mailbox: a message whose unique-id is stored is never
        stored again, whether the server still holds it (no DELE asked, or the session dropped before
        QUIT committed the DELE) or not.
        """
        # The first of repeated unique-ids wins: the unique constraint takes one per mailbox.
        by_key: dict[str, bytes] = {}
        for uidl, raw in mails:
            by_key.setdefault(pop3_dedupe_key(uidl), raw)
        with self.db.write() as session:
            count = self._insert_new(session, "pop3", list(by_key.items()))
        if count:
            self.on_stored(count)
        return count

    def _insert_new(self, session: Session, origin: str, keyed: Sequence[tuple[str, bytes]]) -> int:
        """Insert the mails whose dedupe keys this mailbox has not stored yet; return how many were new."""
        known = self._known_keys(session, [key for key, _ in keyed])
        new = [(key, raw) for key, raw in keyed if key not in known]
        if not new:
            return 0
        now = utcnow()
        rows = [
            {
                "connection_id": self.connection_id,
                "mailbox_id": self.mailbox_id,
                "dedupe_key": key,
                "origin": origin,
                "header_message_id": peek_message_id(raw),
                "size": len(raw),
                "received_at": now,
                "status": RawStatus.PENDING,
                "error": "",
                "attempts": 0,
            }
            for key, raw in new
        ]
        ids = session.scalars(insert(RawMessage).returning(RawMessage.id, sort_by_parameter_order=True), rows).all()
        session.execute(insert(RawBody), [{"raw_id": i, "data": raw} for i, (_, raw) in zip(ids, new, strict=True)])
        return len(new)

    def _known_keys(self, session: Session, keys: Sequence[str]) -> set[str]:
        known: set[str] = set()
        for i in range(0, len(keys), LOOKUP_CHUNK):
            chunk = list(keys[i : i + LOOKUP_CHUNK])
            known.update(
                session.scalars(
                    select(RawMessage.dedupe_key).where(
                        RawMessage.mailbox_id == self.mailbox_id, RawMessage.dedupe_key.in_(chunk)
                    )
                )
            )
        return known

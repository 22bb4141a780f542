"""Merging contacts waits for the pipeline's per-address keys, and loses nothing (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text

from postroom.helpdesk.contacts import ContactService
from postroom.jobs.locks import lock_key
from postroom.store.db import Database
from postroom.store.models import Contact, ContactAddress, Conversation


def _contacts(db: Database) -> tuple[int, int]:
    with db.write() as session:
        target = Contact(email="a@acme.test", name="", phone="")
        other = Contact(email="b@acme.test", name="Bea", phone="+1", notes="likes tea")
        other.addresses.append(ContactAddress(email="b@home.test"))
        session.add_all([target, other])
        session.flush()
        for contact in (target, other, other):
            session.add(Conversation(subject=f"of {contact.email}", contact_id=contact.id))
        return target.id, other.id


def test_merge_moves_everything_and_deletes_the_other(db: Database) -> None:
    target_id, other_id = _contacts(db)
    with db.write() as session:
        ContactService().merge(session, target_id, other_id)
    with db.read() as session:
        target = session.get(Contact, target_id)
        assert target is not None
        assert (target.name, target.phone, target.notes) == ("Bea", "+1", "likes tea")
        assert sorted(a.email for a in target.addresses) == ["b@acme.test", "b@home.test"]
        assert session.get(Contact, other_id) is None
        count = session.scalar(select(func.count()).where(Conversation.contact_id == target_id))
        assert count == 3


def test_merge_waits_for_a_mail_of_the_other_address_being_filed(db: Database) -> None:
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's single writer serialises without keys")
    target_id, other_id = _contacts(db)
    done = threading.Event()

    def merge() -> None:
        with db.write() as session:
            ContactService().merge(session, target_id, other_id)
        done.set()

    # What the pipeline's contact stage holds while it files a mail from the other's further address.
    with db.engine.connect() as holder, holder.begin():
        holder.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key("contact:b@home.test")})
        worker = threading.Thread(target=merge)
        worker.start()
        assert not done.wait(0.5), "the merge did not wait for the address's key"
    worker.join(10)
    assert done.is_set()

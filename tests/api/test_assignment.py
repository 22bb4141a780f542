"""Routing and automatic assignment of new conversations: the connection's team, round robin over its
members who can take work (enabled, available, under their cap), on SQLite and PostgreSQL, and with two
pipeline workers at once on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select, update
from test_work_model import add_user

from postroom.pipeline.context import Event
from postroom.service import Service
from postroom.sources.base import FetchedMail, ImapCursor
from postroom.store.models import Activity, Availability, Conversation, RawMessage, Team, User
from postroom.testing.mails import make_mail
from support import Api, Desk


class Routed:
    def __init__(self, desk: Desk, agents: int = 3) -> None:
        self.desk = desk
        self.service = desk.api.service
        self.events: list[Event] = []
        self.service.events.subscribe(self.events.append)
        self.agents = [add_user(self.service, f"Agent {i}", f"agent{i}@support.example") for i in range(agents)]
        self.team = desk.api.post("/teams", {"name": "Front", "member_ids": self.agents}, 201)["id"]
        self.sent = 0

    def route(self, **settings: Any) -> None:
        response = self.desk.api.client.patch(
            f"/api/v1/connections/{self.desk.connection['id']}", json={"team_id": self.team, **settings}
        )
        assert response.status_code == 200, response.text

    def mails(self, count: int) -> list[bytes]:
        made = []
        for _ in range(count):
            self.sent += 1
            made.append(make_mail(f"Question {self.sent}", sender=f"C{self.sent} <c{self.sent}@customer.example>"))
        return made

    def assignees(self) -> list[int | None]:
        with self.service.db.read() as session:
            return list(session.scalars(select(Conversation.assignee_id).order_by(Conversation.id)))

    def set_user(self, user_id: int, **values: Any) -> None:
        with self.service.db.write() as session:
            session.execute(update(User).where(User.id == user_id).values(**values))


def test_round_robin_skips_the_away_and_the_full_and_continues_when_they_come_back(
    make_service: Callable[..., Service], db_url: str
) -> None:
    routed = Routed(Desk(Api(make_service(db_url, start=False))))
    away, full, free = routed.agents
    # Without auto_assign the conversation only joins the team's queue.
    routed.route()
    routed.desk.deliver(*routed.mails(1))
    with routed.service.db.write() as session:
        [first] = session.scalars(select(Conversation)).all()
        assert (first.team_id, first.assignee_id) == (routed.team, None)
        first.assignee_id = full
    routed.set_user(full, max_open=1)
    routed.set_user(away, availability=Availability.AWAY)
    routed.route(auto_assign=True)
    routed.events.clear()

    routed.desk.deliver(*routed.mails(3))
    assert routed.assignees()[1:] == [free, free, free]
    assert [e.kind for e in routed.events].count("conversation.assigned") == 3
    with routed.service.db.read() as session:
        automatic = session.scalars(select(Activity).where(Activity.kind == "assignee")).all()
        assert [(a.actor_id, a.data["to"]) for a in automatic] == [(None, free)] * 3
        assert session.get(Team, routed.team).last_assigned_id == free  # type: ignore[union-attr]

    # The away agent is back; the full one is freed by resolving its conversation. The turn goes on
    # after the last one assigned (free, the highest id), so: away, full, free, away.
    routed.set_user(away, availability=Availability.AVAILABLE)
    response = routed.desk.api.client.patch(f"/api/v1/conversations/{first.id}", json={"status": "resolved"})
    assert response.status_code == 200
    routed.desk.deliver(*routed.mails(4))
    assert routed.assignees()[4:] == [away, full, free, away]
    # Disabled members and members with no room take nothing; nobody left: the conversation waits unassigned.
    routed.set_user(away, enabled=False)
    routed.set_user(free, availability=Availability.AWAY)  # full has 1 open now, at its cap
    routed.desk.deliver(*routed.mails(1))
    assert routed.assignees()[-1] is None


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_two_pipeline_workers_assign_each_conversation_once_and_skip_nobody(
    make_service: Callable[..., Service], db_url: str
) -> None:
    one = make_service(db_url, start=False)
    two = make_service(db_url, start=False)
    routed = Routed(Desk(Api(one)))
    routed.route(auto_assign=True)
    for mail in routed.mails(24):
        routed.desk.uid += 1
        routed.desk.sink.store([FetchedMail(uid=routed.desk.uid, raw=mail)], ImapCursor(1, routed.desk.uid))
    with one.db.read() as session:
        raw_ids = list(session.scalars(select(RawMessage.id).order_by(RawMessage.id)))
    # Interleaved batches, so that both workers create conversations of the same team at once.
    batches = {one: raw_ids[0::2], two: raw_ids[1::2]}
    for service, ids in batches.items():
        assert service.pipeline.claim_ids(ids) == ids
    errors: list[BaseException] = []

    def run(service: Service, ids: list[int]) -> None:
        try:
            for start in range(0, len(ids), 3):
                service.pipeline.process_batch(ids[start : start + 3])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in batches.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    assignees = routed.assignees()
    assert len(assignees) == 24
    # Round robin under the team's lock: 8 each, whatever the interleaving.
    assert Counter(assignees) == dict.fromkeys(routed.agents, 8)
    with one.db.read() as session:
        per_conversation = Counter(session.scalars(select(Activity.conversation_id).where(Activity.kind == "assignee")))
        assert sorted(per_conversation.values()) == [1] * 24
        # In commit order the turn goes round: every three consecutive assignments are the three agents.
        order = [
            a.data["to"]
            for a in session.scalars(select(Activity).where(Activity.kind == "assignee").order_by(Activity.id))
        ]
    assert all(sorted(order[i : i + 3]) == routed.agents for i in range(0, 24, 3))

"""Teams: named groups of users whose queue a connection's new conversations join (and, with
``auto_assign``, are shared round robin among, see :mod:`postroom.helpdesk.assignment`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from postroom.errors import Conflict, InvalidSetting, NotFound
from postroom.store.models import Team, TeamMember, User


class TeamService:
    def query(self) -> Select[Team]:
        return select(Team)

    def get(self, session: Session, team_id: int) -> Team:
        team = session.get(Team, team_id)
        if team is None:
            raise NotFound(f"no team {team_id}")
        return team

    def create(self, session: Session, name: str, member_ids: Sequence[int] = ()) -> Team:
        name = self._name(name)
        if session.scalar(select(Team.id).where(Team.name == name)) is not None:
            raise Conflict(f"a team named {name!r} exists already")
        team = Team(name=name)
        session.add(team)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise Conflict(f"a team named {name!r} exists already") from None
        for user_id in dict.fromkeys(member_ids):
            self.add_member(session, team.id, user_id)
        return team

    def rename(self, session: Session, team_id: int, name: str) -> Team:
        team = self.get(session, team_id)
        name = self._name(name)
        other = session.scalar(select(Team.id).where(Team.name == name, Team.id != team_id))
        if other is not None:
            raise Conflict(f"a team named {name!r} exists already")
        team.name = name
        session.flush()
        return team

    def delete(self, session: Session, team_id: int) -> None:
        # Conversations and connections of the team keep working: their team_id becomes NULL (ON DELETE
        # SET NULL), so the mail stays in the shared queue rather than disappearing with the team.
        session.delete(self.get(session, team_id))
        session.flush()

    def add_member(self, session: Session, team_id: int, user_id: int) -> None:
        self.get(session, team_id)
        if session.get(User, user_id) is None:
            raise InvalidSetting("user_id", f"no user {user_id}")
        if session.get(TeamMember, (team_id, user_id)) is None:
            session.add(TeamMember(team_id=team_id, user_id=user_id))
            session.flush()

    def remove_member(self, session: Session, team_id: int, user_id: int) -> None:
        self.get(session, team_id)
        result = session.execute(delete(TeamMember).where(TeamMember.team_id == team_id, TeamMember.user_id == user_id))
        if not getattr(result, "rowcount", 0):
            raise NotFound(f"user {user_id} is not a member of team {team_id}")

    def views(self, session: Session, teams: Sequence[Team]) -> list[dict[str, Any]]:
        ids = [t.id for t in teams]
        members: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
        if ids:
            rows = session.execute(
                select(TeamMember.team_id, User.id, User.name, User.email)
                .join(User, User.id == TeamMember.user_id)
                .where(TeamMember.team_id.in_(ids))
                .order_by(User.id)
            )
            for team_id, user_id, name, email in rows:
                members[team_id].append({"id": user_id, "name": name, "email": email})
        return [
            {
                "id": t.id,
                "name": t.name,
                "members": members[t.id],
                "last_assigned_id": t.last_assigned_id,
                "created_at": t.created_at.isoformat(),
            }
            for t in teams
        ]

    @staticmethod
    def _name(name: str) -> str:
        name = name.strip()
        if not name:
            raise InvalidSetting("name", "must not be empty")
        return name

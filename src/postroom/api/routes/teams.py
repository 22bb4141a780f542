"""/api/v1/teams: every user may list and read teams; administrators create, change and delete them and
their members."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response, status

from postroom.api.deps import AdminDep, ServiceDep
from postroom.api.pagination import Order, PageRequest, keyset_page, link_next, page_request
from postroom.api.schemas.work import TeamCreateIn, TeamMemberIn, TeamOut, TeamPage, TeamUpdateIn
from postroom.helpdesk.teams import TeamService
from postroom.store.models import Team

router = APIRouter(tags=["teams"])
teams = TeamService()
ORDER = (Order(Team.id),)


@router.get("/teams", response_model=TeamPage)
def list_teams(
    request: Request, response: Response, service: ServiceDep, page: Annotated[PageRequest, Depends(page_request)]
) -> dict[str, Any]:
    with service.db.read() as session:
        rows, next_cursor = keyset_page(session, teams.query(), ORDER, page)
        items = teams.views(session, rows)
    link_next(request, response, next_cursor)
    return {"items": items, "next_cursor": next_cursor}


@router.post("/teams", status_code=status.HTTP_201_CREATED, response_model=TeamOut)
def create_team(body: TeamCreateIn, service: ServiceDep, _admin: AdminDep) -> dict[str, Any]:
    with service.db.write() as session:
        team = teams.create(session, body.name, body.member_ids)
        return teams.views(session, [team])[0]


@router.get("/teams/{team_id}", response_model=TeamOut)
def get_team(team_id: int, service: ServiceDep) -> dict[str, Any]:
    with service.db.read() as session:
        return teams.views(session, [teams.get(session, team_id)])[0]


@router.patch("/teams/{team_id}", response_model=TeamOut)
def update_team(team_id: int, body: TeamUpdateIn, service: ServiceDep, _admin: AdminDep) -> dict[str, Any]:
    with service.db.write() as session:
        team = teams.rename(session, team_id, body.name) if body.name is not None else teams.get(session, team_id)
        return teams.views(session, [team])[0]


@router.delete("/teams/{team_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_team(team_id: int, service: ServiceDep, _admin: AdminDep) -> Response:
    with service.db.write() as session:
        teams.delete(session, team_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/teams/{team_id}/members", response_model=TeamOut)
def add_member(team_id: int, body: TeamMemberIn, service: ServiceDep, _admin: AdminDep) -> dict[str, Any]:
    with service.db.write() as session:
        teams.add_member(session, team_id, body.user_id)
        return teams.views(session, [teams.get(session, team_id)])[0]


@router.delete("/teams/{team_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
def remove_member(team_id: int, user_id: int, service: ServiceDep, _admin: AdminDep) -> Response:
    with service.db.write() as session:
        teams.remove_member(session, team_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

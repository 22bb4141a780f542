"""The agents' workspace: the conversation list (the home page), and the two actions its keys and buttons take.

``GET /`` shows one view (Mine, Unassigned, All, a team's, an inbox's) in one status, optionally narrowed
by a search, newest activity first, in keyset pages ("Older"). An htmx request that targets
``#conversation-list`` (the live refresh, see ``static/js/live.js``) gets that part of the page only.
``POST /conversations/{id}/resolve`` and ``POST /conversations/{id}/assign-to-me`` change a conversation
with the same service call as the API's PATCH; the page around them belongs to ``views/conversation.py``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from postroom.api.pagination import Order, PageRequest, keyset_page
from postroom.errors import InvalidSetting, NotFound
from postroom.helpdesk import listing, reads, search
from postroom.helpdesk.conversations import ConversationFilter
from postroom.service import Service
from postroom.store.models import Connection, Conversation, ConversationStatus, Team
from postroom.web.deps import ServiceDep, UserDep
from postroom.web.session import WebUser
from postroom.web.templating import render

router = APIRouter()

PAGE_SIZE = 50
# Teams and connections are configured by administrators, a handful each; the bound keeps the side
# navigation's cost fixed should an installation have many.
MAX_NAV_ITEMS = 100
LIST_TARGET = "conversation-list"

# Newest activity first; the id breaks ties, so a cursor names one place in the list (as in the API).
LIST_ORDER = (Order(Conversation.last_activity_at, descending=True), Order(Conversation.id, descending=True))

VIEWS = {"mine": "Mine", "unassigned": "Unassigned", "all": "All"}
STATUSES = {"open": "Open", "pending": "Pending", "snoozed": "Snoozed", "resolved": "Resolved", "any": "Any status"}


@dataclass(frozen=True, slots=True)
class ListQuery:
    """What the address asks the list to show (unknown values fall back to the defaults)."""

    view: str = "mine"
    status: str = "open"
    team: int | None = None
    inbox: int | None = None
    q: str = ""
    cursor: str = ""

    @classmethod
    def parse(cls, view: str, status: str, team: str, inbox: str, q: str, cursor: str) -> ListQuery:
        team_id = int(team) if team.isdigit() else None
        inbox_id = int(inbox) if inbox.isdigit() else None
        if (view == "team" and team_id is None) or (view == "inbox" and inbox_id is None):
            view = "mine"
        if view not in VIEWS and view not in ("team", "inbox"):
            view = "mine"
        return cls(
            view=view,
            status=status if status in STATUSES else "open",
            team=team_id if view == "team" else None,
            inbox=inbox_id if view == "inbox" else None,
            q=q.strip()[: search.MAX_QUERY_CHARS],
            cursor=cursor,
        )

    def url(self, **changes: Any) -> str:
        """The address of this list with ``changes`` (a new view or status starts at the first page)."""
        if {"view", "status", "team", "inbox", "q"} & changes.keys():
            changes.setdefault("cursor", "")
        target = dataclasses.replace(self, **changes)
        params: dict[str, Any] = {"view": target.view}
        if target.team is not None:
            params["team"] = target.team
        if target.inbox is not None:
            params["inbox"] = target.inbox
        if target.status != "open":
            params["status"] = target.status
        if target.q:
            params["q"] = target.q
        if target.cursor:
            params["cursor"] = target.cursor
        return "/?" + urlencode(params)

    def filter(self, user: WebUser) -> ConversationFilter:
        status = None if self.status == "any" else ConversationStatus(self.status)
        flt = ConversationFilter(status=status)
        if self.view == "mine":
            return dataclasses.replace(flt, assignee_id=user.user_id)
        if self.view == "unassigned":
            return dataclasses.replace(flt, unassigned=True)
        if self.view == "team":
            return dataclasses.replace(flt, team_id=self.team)
        if self.view == "inbox":
            return dataclasses.replace(flt, connection_id=self.inbox)
        return flt


@router.get("/")
def conversation_list(
    request: Request,
    service: ServiceDep,
    user: UserDep,
    view: str = "mine",
    status: str = "open",
    team: str = "",
    inbox: str = "",
    q: str = "",
    cursor: str = "",
) -> Response:
    query = ListQuery.parse(view, status, team, inbox, q, cursor)
    only_list = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == LIST_TARGET
    with service.db.read() as session:
        rows, next_cursor, query = _page(session, service, user, query)
        teams, inboxes = _navigation(session)
    title = _title(query, teams, inboxes)
    context = {
        "nav": "conversations",
        "rows": rows,
        "query": query,
        "list_url": query.url(),
        "next_url": query.url(cursor=next_cursor) if next_cursor else "",
        "first_url": query.url(cursor="") if query.cursor else "",
        "views": VIEWS,
        "statuses": STATUSES,
        "teams": teams,
        "inboxes": inboxes,
        "title": title,
    }
    name = "partials/list_rows.html" if only_list else "conversations.html"
    return render(request, name, context, user=user)


def _page(
    session: Session, service: Service, user: WebUser, query: ListQuery
) -> tuple[list[dict[str, Any]], str | None, ListQuery]:
    flt = query.filter(user)
    if query.q:
        flt = dataclasses.replace(flt, matching=search.conversations_matching(session, query.q))
    listed = service.conversations.list_query(flt)
    try:
        found, next_cursor = keyset_page(session, listed, LIST_ORDER, PageRequest(query.cursor or None, PAGE_SIZE))
    except InvalidSetting:
        # A cursor from a hand-edited address: show the first page rather than an error.
        query = dataclasses.replace(query, cursor="")
        found, next_cursor = keyset_page(session, listed, LIST_ORDER, PageRequest(None, PAGE_SIZE))
    ids = [c.id for c in found]
    summaries = service.conversations.summaries(session, found)
    snippets = listing.snippets(session, ids)
    names = listing.connection_names(session, {c.connection_id for c in found})
    unread = reads.unread_ids(session, user.user_id, ids)
    rows = [
        {
            **summary,
            "at": conversation.last_activity_at,
            "snippet": snippets.get(conversation.id, ""),
            "inbox": names.get(conversation.connection_id) if conversation.connection_id is not None else None,
            "unread": conversation.id in unread,
            "mine": conversation.assignee_id == user.user_id,
        }
        for conversation, summary in zip(found, summaries, strict=True)
    ]
    return rows, next_cursor, query


def _navigation(session: Session) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    # Every user may see every team (as in the API's GET /teams); connections are the inboxes.
    teams = [
        {"id": i, "name": n}
        for i, n in session.execute(select(Team.id, Team.name).order_by(Team.name).limit(MAX_NAV_ITEMS))
    ]
    inboxes = [
        {"id": i, "name": n}
        for i, n in session.execute(
            select(Connection.id, Connection.name).order_by(Connection.name).limit(MAX_NAV_ITEMS)
        )
    ]
    return teams, inboxes


def _title(query: ListQuery, teams: list[dict[str, Any]], inboxes: list[dict[str, Any]]) -> str:
    if query.view == "team":
        name = next((t["name"] for t in teams if t["id"] == query.team), "Team")
    elif query.view == "inbox":
        name = next((c["name"] for c in inboxes if c["id"] == query.inbox), "Inbox")
    else:
        name = VIEWS[query.view]
    return f"{name} · {STATUSES[query.status]}"


# -- actions from the list -------------------------------------------------------------------------


@router.post("/conversations/{conversation_id}/resolve")
def resolve(request: Request, conversation_id: int, service: ServiceDep, user: UserDep) -> Response:
    subject = _change(service, user, conversation_id, {"status": ConversationStatus.RESOLVED.value})
    return _done(request, f"Resolved: {subject}" if subject is not None else _gone(conversation_id))


@router.post("/conversations/{conversation_id}/assign-to-me")
def assign_to_me(request: Request, conversation_id: int, service: ServiceDep, user: UserDep) -> Response:
    subject = _change(service, user, conversation_id, {"assignee_id": user.user_id})
    return _done(request, f"Assigned to you: {subject}" if subject is not None else _gone(conversation_id))


def _change(service: Service, user: WebUser, conversation_id: int, changes: dict[str, Any]) -> str | None:
    """Apply ``changes`` as the API's PATCH does; the conversation's subject, or None when it is gone."""
    try:
        with service.db.write() as session:
            conversation, events = service.conversations.update(
                session, conversation_id, changes, actor_id=user.user_id
            )
            subject = conversation.subject or "(no subject)"
    except NotFound:
        return None
    service.events.publish(events)
    return subject


def _gone(conversation_id: int) -> str:
    return f"Conversation {conversation_id} no longer exists."


def _done(request: Request, message: str) -> Response:
    if request.headers.get("hx-request") == "true":
        # The list refreshes itself on this event (as on a live update) and the page says what happened;
        # JSON keeps the header ASCII whatever the subject.
        trigger = {"live-conversations": {"source": "action"}, "list-toast": {"text": message}}
        return Response(status_code=200, headers={"HX-Trigger": json.dumps(trigger)})
    # Without JavaScript the form posted the whole page: back to the list it came from.
    back = request.headers.get("referer", "")
    origin = f"{request.url.scheme}://{request.headers.get('host', '')}/"
    return RedirectResponse(back if back.startswith(origin) else "/", status_code=303)

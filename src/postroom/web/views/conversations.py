"""The agents' workspace: the conversation list (the home page)."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request, Response

from postroom.helpdesk import search
from postroom.helpdesk.conversations import ConversationFilter
from postroom.store.models import Conversation, ConversationStatus
from postroom.web.deps import ServiceDep, UserDep
from postroom.web.templating import render

router = APIRouter()

PAGE_SIZE = 50


@router.get("/")
def conversation_list(
    request: Request, service: ServiceDep, user: UserDep, view: str = "mine", q: str = ""
) -> Response:
    flt = ConversationFilter(status=ConversationStatus.OPEN)
    if view == "mine":
        flt = dataclasses.replace(flt, assignee_id=user.user_id)
    elif view == "unassigned":
        flt = dataclasses.replace(flt, unassigned=True)
    conversations = service.conversations
    with service.db.read() as session:
        if q.strip():
            flt = dataclasses.replace(flt, matching=search.conversations_matching(session, q))
        query = (
            conversations.list_query(flt)
            .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
            .limit(PAGE_SIZE)
        )
        rows = session.scalars(query).all()
        items = conversations.summaries(session, rows)
    return render(
        request, "conversations.html", {"nav": "conversations", "items": items, "view": view, "q": q}, user=user
    )

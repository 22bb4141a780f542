"""Mentions: the notes that name the signed-in user, newest first; seen once opened or marked so."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import update

from postroom.helpdesk import mentions
from postroom.store.models import Mention, utcnow
from postroom.web.deps import ServiceDep, UserDep
from postroom.web.templating import render

router = APIRouter()

PAGE_SIZE = 50


@router.get("/mentions")
def mentions_page(request: Request, service: ServiceDep, user: UserDep, before: int | None = None) -> Response:
    with service.db.read() as session:
        query = mentions.query(user.user_id).order_by(Mention.id.desc()).limit(PAGE_SIZE + 1)
        if before is not None:
            query = query.where(Mention.id < before)
        found = list(session.scalars(query))
        items = mentions.views(session, found[:PAGE_SIZE])
    older = items[-1].id if len(found) > PAGE_SIZE else None
    context = {"nav": "mentions", "items": items, "older": older}
    return render(request, "mentions.html", context, user=user)


@router.post("/mentions/seen")
def mark_all_seen(service: ServiceDep, user: UserDep) -> Response:
    with service.db.write() as session:
        session.execute(
            update(Mention)
            .where(Mention.user_id == user.user_id, Mention.seen_at.is_(None))
            .values(seen_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    return RedirectResponse("/mentions", status_code=303)

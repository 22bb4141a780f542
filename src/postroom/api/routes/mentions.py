"""/api/v1/mentions: the notes that name the signed-in user, newest first, and marking them seen."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from postroom.api.deps import PrincipalDep, ServiceDep
from postroom.api.pagination import Order, Page, PageRequest, keyset_page, link_next, page_request
from postroom.api.schemas.work import MentionOut
from postroom.helpdesk import mentions
from postroom.store.models import Mention

router = APIRouter(tags=["mentions"])
ORDER = (Order(Mention.id, descending=True),)


@router.get("/mentions", response_model=Page[MentionOut])
def list_mentions(
    request: Request,
    response: Response,
    service: ServiceDep,
    principal: PrincipalDep,
    page: Annotated[PageRequest, Depends(page_request)],
    seen: bool | None = None,
) -> Page[MentionOut]:
    """Your mentions, newest first; `seen=false` lists only those not yet seen."""
    with service.db.read() as session:
        stmt = mentions.query(principal.user_id, unseen_only=seen is False)
        if seen is True:
            stmt = stmt.where(Mention.seen_at.is_not(None))
        rows, next_cursor = keyset_page(session, stmt, ORDER, page)
        items = [MentionOut(**asdict(view)) for view in mentions.views(session, rows)]
    link_next(request, response, next_cursor)
    return Page(items=items, next_cursor=next_cursor)


@router.post("/mentions/{mention_id}/seen", response_model=MentionOut)
def mark_mention_seen(mention_id: int, service: ServiceDep, principal: PrincipalDep) -> MentionOut:
    """Mark one of your mentions seen (404 for a mention of someone else)."""
    with service.db.write() as session:
        mention = mentions.mark_seen(session, principal.user_id, mention_id)
        [view] = mentions.views(session, [mention])
        return MentionOut(**asdict(view))

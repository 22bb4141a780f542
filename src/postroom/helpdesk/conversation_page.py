"""What the conversation page shows beside the timeline, read in a few bounded queries.

``ConversationService.detail`` gives the timeline (messages, notes, activity entries in order). This
module adds what the agents' page needs around it: the words for each activity entry (names of the
people and teams it mentions), the side panel (contact, the contact's other conversations, the people
and teams one may assign to), the reply editor's sender and signature, and the document that shows an
HTML mail inside its sandboxed frame (quoted history cut off, ``cid:`` pictures pointed at the files
of the message, remote pictures restored only when the agent asked for them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import unquote

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from postroom.mail.html import REMOTE_PREFIX, html_to_text, sanitize_html
from postroom.mail.html_quotes import find_marks
from postroom.store.models import (
    Connection,
    Contact,
    Conversation,
    Customer,
    Mailbox,
    Team,
    User,
)

# Lists of choices stay bounded however large the installation grows; a desk with more agents than this
# assigns the rest through the API (the select would be unusable long before).
MAX_CHOICES = 300
OTHER_CONVERSATIONS = 10

_PLACEHOLDER = re.compile(r"\{\{\s*(sender_name|sender_email)\s*\}\}")
_LOOKS_HTML = re.compile(r"<[a-zA-Z][^>]*>")
# nh3 writes every attribute as name="value" (see mail.html), so its <img> tags read exactly like this.
_IMG_TAG = re.compile(r"<img\b[^>]*>")
_CID_SRC = re.compile(r'\ssrc="cid:([^"]*)"', re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Sender:
    """Where a reply of this conversation goes out from, and the signature it gets."""

    address: str
    name: str
    signature: str
    max_attachment_bytes: int


def sender(session: Session, conversation: Conversation) -> Sender | None:
    """The conversation's mailbox (replies always leave from it) and its connection's signature, filled in
    as the composer fills it when no other signer is named (the mailbox's From name)."""
    if conversation.mailbox_id is None:
        return None
    mailbox = session.get(Mailbox, conversation.mailbox_id)
    if mailbox is None:
        return None
    connection: Connection = mailbox.connection
    signature = connection.smtp_signature or ""
    if _LOOKS_HTML.search(signature):
        signature = html_to_text(signature)
    values = {"sender_name": mailbox.email_name, "sender_email": mailbox.address}
    signature = _PLACEHOLDER.sub(lambda m: values[m.group(1)], signature).strip()
    return Sender(mailbox.address, mailbox.email_name, signature, connection.max_attachment_bytes)


def side_panel(session: Session, conversation: Conversation) -> dict[str, Any]:
    """The contact card, the contact's latest other conversations, and the people and teams to assign to."""
    contact = None
    others: list[dict[str, Any]] = []
    if conversation.contact_id is not None:
        row = session.scalar(
            select(Contact).where(Contact.id == conversation.contact_id).options(selectinload(Contact.addresses))
        )
        if row is not None:
            customer = session.get(Customer, row.customer_id) if row.customer_id is not None else None
            contact = {
                "id": row.id,
                "name": row.name,
                "email": row.email,
                "addresses": [a.email for a in row.addresses],
                "phone": row.phone,
                "notes": row.notes,
                "customer": {"id": customer.id, "name": customer.name} if customer is not None else None,
            }
            others = [
                {"id": c.id, "subject": c.subject, "status": c.status.value, "last_activity_at": c.last_activity_at}
                for c in session.scalars(
                    select(Conversation)
                    .where(Conversation.contact_id == row.id, Conversation.id != conversation.id)
                    .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
                    .limit(OTHER_CONVERSATIONS)
                )
            ]
    users = [
        {"id": i, "name": name or email, "email": email}
        for i, name, email in session.execute(
            select(User.id, User.name, User.email)
            .where(User.enabled.is_(True))
            .order_by(User.name, User.id)
            # The current assignee stays choosable even when the list is cut.
            .limit(MAX_CHOICES)
        )
    ]
    if conversation.assignee_id is not None and all(u["id"] != conversation.assignee_id for u in users):
        assignee = session.get(User, conversation.assignee_id)
        if assignee is not None:
            users.append({"id": assignee.id, "name": assignee.name or assignee.email, "email": assignee.email})
    teams = [
        {"id": i, "name": name}
        for i, name in session.execute(select(Team.id, Team.name).order_by(Team.name).limit(MAX_CHOICES))
    ]
    if conversation.team_id is not None and all(t["id"] != conversation.team_id for t in teams):
        team = session.get(Team, conversation.team_id)
        if team is not None:
            teams.append({"id": team.id, "name": team.name})
    return {"contact": contact, "others": others, "users": users, "teams": teams}


def activity_names(session: Session, activities: Collection[Mapping[str, Any]]) -> dict[str, dict[int, str]]:
    """Names of the users and teams that activity entries refer to by id (one query each)."""
    user_ids: set[int] = set()
    team_ids: set[int] = set()
    for activity in activities:
        data = activity.get("data") or {}
        wanted = user_ids if activity["kind"] == "assignee" else team_ids if activity["kind"] == "team" else None
        if wanted is not None:
            wanted.update(v for v in (data.get("from"), data.get("to")) if isinstance(v, int))
    users: dict[int, str] = {}
    if user_ids:
        rows = session.execute(select(User.id, User.name, User.email).where(User.id.in_(user_ids)))
        users = {i: name or email for i, name, email in rows}
    teams: dict[int, str] = {}
    if team_ids:
        teams = {i: name for i, name in session.execute(select(Team.id, Team.name).where(Team.id.in_(team_ids)))}
    return {"users": users, "teams": teams}


def describe_activity(activity: Mapping[str, Any], names: Mapping[str, Mapping[int, str]]) -> str:
    """One activity entry in words, without its actor ("changed the status from open to resolved")."""
    kind = activity["kind"]
    data = activity.get("data") or {}
    before, after = data.get("from"), data.get("to")
    if kind == "status":
        until = data.get("snoozed_until")
        if after == "snoozed" and until:
            return f"snoozed the conversation until {until[:16].replace('T', ' ')} UTC"
        return f"changed the status from {before} to {after}"
    if kind == "priority":
        return f"changed the priority from {before} to {after}"
    if kind == "assignee":
        users = names.get("users", {})
        if after is None:
            why = " (user disabled)" if data.get("reason") == "user disabled" else ""
            return f"unassigned {users.get(before, 'the conversation') if before is not None else 'it'}{why}"
        return f"assigned it to {users.get(after, f'user {after}')}"
    if kind == "team":
        teams = names.get("teams", {})
        if after is None:
            return f"removed it from team {teams.get(before, str(before)) if isinstance(before, int) else before}"
        return f"moved it to team {teams.get(after, str(after)) if isinstance(after, int) else after}"
    if kind == "tags":
        return f"set the tags to {', '.join(after)}" if after else "removed every tag"
    if kind == "note":
        return "added a note"
    if kind == "delivery_retry":
        return f"sent a reply again after it was {before}"
    return str(kind).replace("_", " ")


def frame_document(
    html: str,
    *,
    whole: bool,
    load_images: bool,
    inline_url: Callable[[str], str | None],
) -> str:
    """The page shown in a message's sandboxed frame: the sanitised body in a small document of our own.

    ``whole`` False cuts the body where its quoted history or signature starts (the marks mail clients
    write, when they survived sanitising): the page shows that history as text under "Show quoted text".
    ``inline_url`` maps a Content-ID to the URL of the stored picture (None: dropped). ``load_images``
    moves the held-back remote picture URLs back into ``src``; the frame's own policy then allows
    fetching images, and only images, from the web.
    """
    body = html
    if not whole:
        marks = find_marks(body)
        cut = min(m for m in (marks.quote_at, marks.signature_at, len(body)) if m is not None)
        if 0 < cut < len(body):
            body = body[:cut]
    # Again, whatever happened before: the cut mends half-open tags, and a body stored by an older
    # version gets today's rules. The result holds no script, handler, style sheet or remote URL.
    body = sanitize_html(body)

    def picture(match: re.Match[str]) -> str:
        tag = match.group(0)

        def cid(found: re.Match[str]) -> str:
            url = inline_url(unquote(found.group(1)).strip().strip("<>"))
            return f' src="{escape(url, quote=True)}"' if url else ""

        tag = _CID_SRC.sub(cid, tag)
        if load_images:
            # Only the sanitiser's own held-back attributes, whose values it checked to be web addresses.
            tag = tag.replace(f" {REMOTE_PREFIX}src=", " src=").replace(f" {REMOTE_PREFIX}srcset=", " srcset=")
        return tag

    body = _IMG_TAG.sub(picture, body)
    return (
        '<!doctype html><html><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer"><base target="_blank">'
        f"<style>{FRAME_STYLE}</style></head><body>{body}</body></html>"
    )


# The frame's own look: the app's font and colours, pictures no wider than the frame.
FRAME_STYLE = (
    "html{font-size:15px}body{margin:0;padding:2px 4px;font-family:system-ui,-apple-system,'Segoe UI',Roboto,"
    "Arial,sans-serif;color:#1d2430;line-height:1.45;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
    "table{max-width:100%}a{color:#2c5fd6}blockquote{margin:.5em 0;padding-left:.75em;border-left:3px solid #c4cad3;"
    "color:#5d6778}pre{white-space:pre-wrap}"
)


def frame_height(text: str, has_pictures: bool) -> int:
    """A step (1-8) for the frame's height, guessed from the new text: a frame cannot say how tall it is
    without scripts, which it must not run. The reader can resize it."""
    lines = sum(1 + len(line) // 90 for line in text.splitlines()) if text else 1
    step = 1 + lines // 6
    if has_pictures:
        step += 3
    return max(1, min(8, step))

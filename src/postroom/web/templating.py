"""The Jinja2 environment of the web app and the one way views render a page.

Templates live in ``web/templates`` (one per page, partials under ``partials/``), autoescaped; a view
hands :func:`render` the page's name and its data, never markup. Every page gets ``user`` (the
signed-in person, or None), ``csrf`` (the value forms and htmx requests send back) and ``nav`` (which
part of the app is open).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.templating import Jinja2Templates

from postroom import __version__
from postroom.helpdesk import mentions
from postroom.service import Service
from postroom.web.session import WebUser, csrf_value, ensure_csrf_cookie

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def _ago(value: datetime | None, now: datetime | None = None) -> str:
    """A short age for lists ("3 min", "2 h", "5 d"); the full time goes in the element's title."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - value).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} d"


def _iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat(timespec="seconds")


def _size(value: int | None) -> str:
    if value is None:
        return ""
    for unit in ("B", "KB", "MB"):
        if value < 1024 or unit == "MB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value = value / 1024  # type: ignore[assignment]
    return f"{value} B"


templates.env.filters["ago"] = _ago
templates.env.filters["iso"] = _iso
templates.env.filters["size"] = _size
templates.env.globals["version"] = __version__


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    user: WebUser | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    service: Service = request.app.state.service
    unseen = 0
    if user is not None:
        # The top bar's count of notes that name the user and that they have not seen (an indexed count).
        with service.db.read() as session:
            unseen = mentions.unseen_count(session, user.user_id)
    data: dict[str, Any] = {
        "user": user,
        "csrf": csrf_value(request),
        "nav": "",
        "unseen_mentions": unseen,
        **(context or {}),
    }
    response = templates.TemplateResponse(request, name, data, status_code=status_code, headers=headers)
    ensure_csrf_cookie(request, response, service)
    return response

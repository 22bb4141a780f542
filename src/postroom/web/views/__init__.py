"""The web app's views, one module per page or group of pages; each has a ``router``."""

from __future__ import annotations

from fastapi import APIRouter

from postroom.web.views import (
    auth,
    conversation,
    conversations,
    events,
    mentions,
    settings_directory,
    settings_inboxes,
    settings_people,
    settings_quarantine,
)

ROUTERS: list[APIRouter] = [
    auth.router,
    conversations.router,
    conversation.router,
    events.router,
    mentions.router,
    settings_inboxes.router,
    settings_people.router,
    settings_directory.router,
    settings_quarantine.router,
]

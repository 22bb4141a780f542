"""Settings → Inboxes: connections, their status, Start/Stop, Test connection, logs, the form, delete."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

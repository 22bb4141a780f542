"""Server-sent events: new mail and status changes pushed to open pages."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

"""One conversation: its timeline, the reply editor and notes, the side panel, HTML mail in a sandboxed frame."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

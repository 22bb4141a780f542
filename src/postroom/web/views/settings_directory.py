"""Settings → Teams, and customers with their domains."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

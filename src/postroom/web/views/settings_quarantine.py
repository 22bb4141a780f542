"""Settings → Quarantine: raw mail that failed, its reason, download and Replay."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()

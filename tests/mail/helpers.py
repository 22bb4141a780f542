"""Shared helpers for the mail tests: where the corpora and our own fixtures live."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import CORPUS

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def corpus_dir(name: str) -> Path:
    """A corpus folder under ../shared/corpus, or a skip naming what is missing."""
    path = CORPUS / name
    if not (path / "manifest.jsonl").is_file():
        pytest.skip(f"corpus {name!r} not found at {path} (the shared corpora live beside the project)")
    return path


def fixture_bytes(*parts: str) -> bytes:
    return FIXTURES.joinpath(*parts).read_bytes()

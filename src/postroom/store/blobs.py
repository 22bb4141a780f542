"""Blob stores for attachment files, content-addressed by SHA-256 so the same file is stored once."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Protocol

from postroom.errors import NotFound


class BlobStore(Protocol):
    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store the bytes durably and return their key."""
        ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...


class LocalBlobStore:
    """Files under a directory: ``ab/cd/abcd…`` (two levels, so no directory grows too large)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise NotFound(f"no blob {key!r}")
        return self.root / key[:2] / key[2:4] / key

    def put(self, data: bytes, sha256: str | None = None) -> str:
        key = sha256 or hashlib.sha256(data).hexdigest()
        path = self._path(key)
        if path.exists():
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write to a temporary file and rename: a reader never sees half a file, and a crash leaves at
        # worst a stray temporary file, never a wrong blob under a valid key.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return key

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise NotFound(f"no blob {key!r}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

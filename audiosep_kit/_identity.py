"""Content identities: SHA-256 of files and of JSON-able records, the one way both are computed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def record_sha256(record: object) -> str:
    """SHA-256 (hex) of a JSON-able record, independent of dict key order."""
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def file_stat(path: str | Path) -> tuple[int, int] | None:
    """(size in bytes, modification time in ns) of a file, or None when it cannot be stat'ed.

    The cheap half of an input's identity: a resumed store re-checks it for every finished row and
    hashes the file again only where it changed.
    """
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns

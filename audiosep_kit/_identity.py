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

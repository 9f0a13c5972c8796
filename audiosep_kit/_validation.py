"""The one way this package checks a choice, a format version and writes a file atomically.

Every option with a fixed set of values is checked by :func:`check_choice`, so every such error reads
the same: "`name` must be one of {...}; got X." (scikit-learn's parameter validation). Every versioned
file (stores, caches, artifacts, reports) is refused the same way by :func:`check_format_version`, and
every small file that must never be seen half-written goes through :func:`atomic_write_text`.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import TypeVar

from audiosep_kit.errors import ConfigError

T = TypeVar("T")


def check_choice(name: str, value: T, allowed: Collection[T], *, error: type[Exception] = ConfigError) -> T:
    """Return ``value`` if it is one of ``allowed``; otherwise raise ``error`` listing the choices."""
    if value not in allowed:
        choices = ", ".join(repr(a) for a in allowed)
        raise error(f"`{name}` must be one of {{{choices}}}; got {value!r}.")
    return value


def check_format_version(
    found: object, supported: Collection[int], *, what: str, fix: str, error: type[Exception] = ConfigError
) -> int:
    """Return ``found`` as an int if it is a supported format version; otherwise raise ``error``.

    ``found`` may be an int or its string form (ONNX and AOTInductor metadata store strings).
    """
    version = int(found) if isinstance(found, str) and found.isdigit() else found
    if isinstance(version, bool) or not isinstance(version, int) or version not in supported:
        raise error(f"{what} has format_version {found!r}; this audiosep-kit reads {sorted(supported)}. {fix}")
    return version


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a fsynced temporary file and a rename, so readers see old or new."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path

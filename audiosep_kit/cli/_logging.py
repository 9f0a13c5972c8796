"""Progress lines on stderr for the commands: the library logs its long steps, a command shows them.

Library code never prints: export, compile, the feature cache and the evaluation loop log each long
step at INFO under the ``audiosep_kit`` logger. :func:`setup_progress` is how a command lets a person
see them, as ``[HH:MM:SS] message`` lines on stderr, by default only when stderr is a terminal (the
rule tqdm uses for the extraction bar). It touches only the ``audiosep_kit`` logger, never the root
logger, so an application embedding the toolkit keeps its own logging setup.
"""

from __future__ import annotations

import logging
import sys

__all__ = ["setup_progress", "progress_enabled"]

LOGGER_NAME = "audiosep_kit"
_FORMAT = "[%(asctime)s] %(message)s"
_DATE_FORMAT = "%H:%M:%S"


class _StderrHandler(logging.StreamHandler):
    """A handler that writes to whatever ``sys.stderr`` is when a line is emitted.

    Why not bind the stream once: click's test runner (and any caller redirecting stderr) swaps
    ``sys.stderr`` per invocation, and a handler holding the old, closed stream would fail later.
    """

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.set_name("audiosep_kit.progress")
        self.setFormatter(logging.Formatter(_FORMAT, _DATE_FORMAT))
        self.previous_level = logging.NOTSET

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def progress_enabled(enabled: bool | None) -> bool:
    """``enabled`` as given; ``None`` means "when stderr is a terminal"."""
    if enabled is not None:
        return enabled
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def _ours(logger: logging.Logger) -> list[_StderrHandler]:
    return [h for h in logger.handlers if isinstance(h, _StderrHandler)]


def setup_progress(enabled: bool | None = None) -> logging.Handler | None:
    """Show (or stop showing) the toolkit's progress lines on stderr; returns the handler, or None.

    Idempotent: a second call replaces the handler of the first rather than adding another, so
    commands invoked one after the other in one process (tests, scripts) never print lines twice.
    With progress disabled no handler is attached and the logger's level is left as it was.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for old in _ours(logger):
        logger.removeHandler(old)
        logger.setLevel(old.previous_level)
    if not progress_enabled(enabled):
        return None
    handler = _StderrHandler()
    handler.previous_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler

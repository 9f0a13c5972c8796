"""cli._logging: progress lines on stderr only when enabled, one handler at most, root logger untouched."""

from __future__ import annotations

import logging
import re

import pytest

from audiosep_kit.cli import _logging
from audiosep_kit.cli._logging import LOGGER_NAME, setup_progress


@pytest.fixture
def clean_logger():
    """Leave the toolkit logger as it was found, whatever a test attached."""
    logger = logging.getLogger(LOGGER_NAME)
    handlers, level = list(logger.handlers), logger.level
    yield logger
    setup_progress(False)
    logger.handlers[:] = handlers
    logger.setLevel(level)


def _ours(logger):
    return [h for h in logger.handlers if isinstance(h, _logging._StderrHandler)]


def test_disabled_adds_no_handler(clean_logger):
    assert setup_progress(False) is None
    assert _ours(clean_logger) == []


def test_default_follows_whether_stderr_is_a_terminal(clean_logger, monkeypatch):
    monkeypatch.setattr(_logging.sys.stderr, "isatty", lambda: False, raising=False)
    assert setup_progress(None) is None
    monkeypatch.setattr(_logging.sys.stderr, "isatty", lambda: True, raising=False)
    assert setup_progress(None) is not None


def test_idempotent_and_removable(clean_logger):
    setup_progress(True)
    setup_progress(True)
    assert len(_ours(clean_logger)) == 1
    assert clean_logger.getEffectiveLevel() <= logging.INFO
    setup_progress(False)
    assert _ours(clean_logger) == []


def test_root_logger_is_untouched(clean_logger):
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    setup_progress(True)
    assert root.handlers == handlers and root.level == level


def test_lines_are_terse_and_go_to_the_current_stderr(clean_logger, capsys):
    setup_progress(True)
    logging.getLogger("audiosep_kit.export._onnx").info("onnx: writing %s", "x.onnx")
    err = capsys.readouterr().err
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] onnx: writing x\.onnx\n", err)

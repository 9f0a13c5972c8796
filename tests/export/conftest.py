"""Fixtures for the export tests: Inductor's cache under tmp (labelled random weights: tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def export_inductor_cache(tmp_path_factory):
    """Send Inductor's compile cache under the session's tmp folder (tests write nowhere else)."""
    previous = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(tmp_path_factory.mktemp("inductor_cache"))
    yield Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    if previous is None:
        os.environ.pop("TORCHINDUCTOR_CACHE_DIR", None)
    else:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = previous

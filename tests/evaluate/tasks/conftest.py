"""Fixtures of the task-reader tests: the shared dataset samples, and a clean data-root environment.

A test that uses ``shared_data`` or ``seed_features`` is marked ``needs_shared`` automatically and
skips, with the reason, when ``../shared`` is absent; the other tests build their data under tmp_path.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from audiosep_kit.evaluate.tasks import DATA_ROOT_ENV

#: <repo>/../shared: the repo is /work/main, the shared test material /work/shared.
SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"


_SHARED_FIXTURES = {"shared_data", "seed_features"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _SHARED_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.needs_shared)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (the cut-down real dataset samples), or skip when it is absent."""
    data = SHARED / "data"
    if not data.is_dir():
        pytest.skip(f"../shared absent: the real dataset samples are expected at {data.resolve()}")
    return data


@pytest.fixture(scope="session")
def seed_features() -> Path:
    """``../shared/seed-features`` (the seed project's saved features), or skip when it is absent."""
    folder = SHARED / "seed-features"
    if not folder.is_dir():
        pytest.skip(f"../shared absent: the seed features are expected at {folder.resolve()}")
    return folder


@pytest.fixture(autouse=True)
def _no_data_root_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests pass their data roots explicitly; a root exported in the shell must not leak in."""
    monkeypatch.delenv(DATA_ROOT_ENV, raising=False)

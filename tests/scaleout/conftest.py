"""Fixtures of the multi-process tests: PostgreSQL schemas of their own (no SQLite: several
processes writing one SQLite file is not a distributed deployment)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import _postgres_database


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty PostgreSQL schema of this test's own, selected through search_path."""
    yield from _postgres_database(request)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder

"""Fixtures: a seeded temporary loan DB and the merged domain."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from actions import common
from actions.store.repository import LoanRepository
from actions.store.seed import seed
from tests.unit.dialogue.helpers import load_domain


@pytest.fixture(scope="session")
def domain() -> dict[str, Any]:
    return load_domain()


@pytest.fixture(scope="session")
def _seeded_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('loans') / 'loans.sqlite'}"
    repo = LoanRepository(url)
    seed(repo)
    repo.dispose()
    return url


@pytest.fixture
def loan_db(_seeded_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Points the action server's settings at the seeded DB for one test."""
    monkeypatch.setenv("LOAN_DB_URL", _seeded_url)
    common.repository.cache_clear()
    yield _seeded_url
    common.repository.cache_clear()

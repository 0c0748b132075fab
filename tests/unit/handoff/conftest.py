"""Shared fixtures for the gateway-core tests: a temp SQLite store, the real policy file,
settings from a test environment, and a clock the tests move by hand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from handoff.policy import Policy
from handoff.service import HandoffService
from handoff.settings import Settings
from handoff.store import Store

REPO = Path(__file__).resolve().parents[3]
POLICY_FILE = REPO / "config" / "handoff.yml"
# 10:00 in Shanghai on a Monday: inside the default service hours 09:00-21:00.
START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
PASSWORD = "correct horse battery"


class FakeClock:
    """A clock that only moves when a test says so."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def policy() -> Policy:
    return Policy.load(POLICY_FILE)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.from_env(
        {
            "HANDOFF_VAR_DIR": str(tmp_path / "var"),
            "HANDOFF_DB_URL": f"sqlite:///{tmp_path / 'var' / 'handoff.sqlite'}",
            "HANDOFF_GRACE_SECONDS": "30",
            "HANDOFF_BORROWER_RATE": "1000/60",
            "HANDOFF_AGENT_RATE": "1000/60",
        }
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.db_url)
    yield s
    s.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(store: Store, policy: Policy, settings: Settings, clock: FakeClock) -> HandoffService:
    return HandoffService(store, policy, settings, clock)

"""Reuse the gateway-core fixtures (temp SQLite store, real policy, hand-moved clock)."""

from tests.unit.handoff.conftest import (  # noqa: F401
    PASSWORD,
    START,
    FakeClock,
    clock,
    policy,
    service,
    settings,
    store,
)

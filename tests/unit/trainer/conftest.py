"""The gateway-core fixtures (temp SQLite store, real policy, hand-moved clock) reused for the
trainer inbox, which reads the gateway's transcripts."""

from tests.unit.handoff.conftest import (  # noqa: F401
    PASSWORD,
    FakeClock,
    clock,
    policy,
    service,
    settings,
    store,
)

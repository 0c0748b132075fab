"""Readiness: can this node do its work right now? `/healthz` says only that the process
runs (liveness); `/readyz` also pings the database and, when configured, Redis, so an
operator or load balancer sees which dependency is down during an outage (503) and that it
came back (200) without anyone restarting the gateway (docs/gateway.md, "Faults").
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from handoff.errors import StoreUnavailable
from handoff.store import Store

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2.0
OK, DOWN, NOT_USED = "ok", "unavailable", "not_used"


def _ping_database(store: Store) -> None:
    with store.read() as conn:
        conn.exec_driver_sql("SELECT 1")


async def readiness(store: Store, manager: Any,
                    timeout: float = CHECK_TIMEOUT_SECONDS) -> tuple[bool, dict[str, str]]:
    """(ready, body) where body names each dependency's state."""
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(asyncio.to_thread(_ping_database, store), timeout)
        checks["database"] = OK
    except (StoreUnavailable, asyncio.TimeoutError) as exc:
        log.warning("readiness: database %s", type(exc).__name__)
        checks["database"] = DOWN
    redis = getattr(manager, "redis", None)  # python-socketio's AsyncRedisManager client
    if redis is None:
        checks["redis"] = NOT_USED
    else:
        try:
            await asyncio.wait_for(redis.ping(), timeout)
            checks["redis"] = OK
        except Exception as exc:  # redis-py raises several unrelated types when down
            log.warning("readiness: redis %s", type(exc).__name__)
            checks["redis"] = DOWN
    ready = all(state != DOWN for state in checks.values())
    return ready, {"status": "ready" if ready else "unavailable", **checks}

"""Where the gateway runs its synchronous store work: on the event loop, or in a thread.

The service is synchronous (SQLAlchemy). Against a networked database (PostgreSQL) a call
waits on the network, so it runs in a worker thread and the event loop keeps serving. Against
the embedded SQLite file a call is a few hundred microseconds of CPU with no network wait
(WAL, no fsync per commit): handing it to a thread and back cost more than the work itself.
Measured with the benchmark's gateway-stub (docs/benchmarks.md): the gateway's CPU per
message halved and its throughput doubled when SQLite calls ran on the loop, because every
hop meant two thread switches and a fight for the GIL with the loop thread.

Work that is slow by design (password hashing at login, dashboard figures over long ranges)
stays on threads whatever this says; see handoff/app.py. The price of the loop: while another
process writes the same SQLite file (the admin CLI, `loanbot inbox export` marking items) the
gateway waits for that transaction; those are short. For long maintenance on a live SQLite
gateway, set HANDOFF_STORE_CALLS=thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
StoreRunner = Callable[..., Awaitable[Any]]


async def on_loop(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run `fn` right here, on the event loop (no thread hop)."""
    return fn(*args, **kwargs)


def store_runner(mode: str, is_sqlite: bool) -> StoreRunner:
    """`auto`: on the loop for SQLite, threads otherwise; `loop` or `thread` force one."""
    if mode == "loop" or (mode == "auto" and is_sqlite):
        return on_loop
    if mode in ("thread", "auto"):
        return asyncio.to_thread
    raise ValueError(f"unknown store call mode {mode!r}")

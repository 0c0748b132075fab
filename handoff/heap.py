"""Python's cyclic garbage collector set for a long-running server process.

With Python's defaults a young collection runs every 700 allocations; objects of live
conversations that survive two of them are promoted, and every few seconds that triggers a
full collection, which walks every object in the process (modules, the app, the store, Rasa's
model) while the event loop waits. Measured under load (gateway-x2, 50 borrowers; docs/
benchmarks.md, session 9): a full collection stopped each Rasa for ≈ 440 ms about every 20 s,
and the gateway for ≈ 50–70 ms (up to ≈ 190 ms while closed sockets were still kept).

The objects alive once a server has started stay alive for its whole life, so `settle`
collects once and freezes them (`gc.freeze`: the collector no longer walks them), and lets
5,000 allocations pass between young collections. Measured the same way, per 20 s: each
Rasa's collections ≈ 0.5 s → 0.05–0.09 s, the longest 440 → ≤ 25 ms; the gateway's
0.56 → 0.30 s, the longest 68 → 22 ms. (20,000 collected slightly less in Rasa but paused
longer: up to 103 ms in Rasa, 42 ms in the gateway.)
"""

from __future__ import annotations

import gc

# Allocations between young collections once settled (Python's default is 700).
YOUNG_THRESHOLD = 5_000


def settle(young_threshold: int = YOUNG_THRESHOLD, *, collected: bool = False) -> bool:
    """Collect, freeze what is alive now, and set the young threshold; 0 (or less) leaves
    Python's collector as it is. Call it once the process has built what it keeps;
    `collected=True` when the caller has just run a full collection itself."""
    if young_threshold <= 0:
        return False
    if not collected:
        gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(young_threshold, middle, old)
    return True

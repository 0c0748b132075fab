"""Per-session message rate limit for borrowers: a token bucket per key, in memory.

Why a bucket: a person typing sends a few messages in a quick run and then pauses; a bucket
lets that run through (`burst`) and holds a flood to the long-run rate (`count` per
`per_seconds`). Values come from `limits` in config/handoff.yml (env overrides in
handoff/settings.py).

A refused message is **not stored**: storing it would let a flood fill the store, the
agent's screen and Rasa's queue, which is what the limit exists to prevent. The borrower is
told (error `rate_limited` with `retry_after`, a polite Chinese sentence) and may send it
again; a retried `client_msg_id` of a message that *was* stored is answered as a duplicate
before the limit is consulted, so retries of accepted messages are never refused.

Pure apart from the lock: the clock is injected. Per process on purpose (flood protection of
this gateway, not an account quota).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from handoff.errors import RateLimited
from handoff.settings import RateLimit

MAX_KEYS = 100_000


def slow_down_message(retry_after: float) -> str:
    """What the borrower reads when a message is refused for speed."""
    seconds = max(1, math.ceil(retry_after))
    return f"您发送消息的速度有点快，请稍等{seconds}秒后再发送，感谢您的理解。"


@dataclass(slots=True)
class TokenBucket:
    """`capacity` tokens, refilled continuously at `refill_per_second`; one message costs one."""

    capacity: float
    refill_per_second: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, capacity: float, refill_per_second: float, now: float) -> TokenBucket:
        if capacity < 1 or refill_per_second <= 0:
            raise ValueError("a bucket needs capacity >= 1 and a positive refill rate")
        return cls(capacity, refill_per_second, capacity, now)

    def take(self, now: float) -> float:
        """Take one token: 0.0 when allowed, else the seconds until one is available (nothing
        is taken then, so a refused attempt does not push the wait further out)."""
        elapsed = max(0.0, now - self.updated)  # a clock that steps back refills nothing
        self.tokens = min(self.capacity, self.tokens + elapsed * self.refill_per_second)
        self.updated = max(self.updated, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.refill_per_second

    def is_full(self, now: float) -> bool:
        elapsed = max(0.0, now - self.updated)
        return self.tokens + elapsed * self.refill_per_second >= self.capacity


class BucketLimiter:
    """A token bucket per key (a borrower session); thread-safe, bounded in memory.

    Same interface as policy.RateLimiter: `check(key)` returns or raises RateLimited, whose
    Chinese message is polite and says how long to wait.
    """

    def __init__(
        self,
        limit: RateLimit,
        monotonic: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.capacity = float(limit.burst or limit.count)
        self.refill_per_second = limit.count / limit.per_seconds
        self._monotonic = monotonic
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        """Count one message for `key`; raise RateLimited (counting nothing) when over."""
        now = self._monotonic()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = TokenBucket.full(self.capacity, self.refill_per_second, now)
                self._buckets[key] = bucket
            self._buckets.move_to_end(key)
            wait = bucket.take(now)
            if len(self._buckets) > self._max_keys:
                self._forget(now)
        if wait > 0:
            err = RateLimited(wait)
            err.message_zh = slow_down_message(wait)
            raise err

    def __len__(self) -> int:
        return len(self._buckets)

    def _forget(self, now: float) -> None:
        """Drop refilled buckets (they hold no state a new full bucket would not), then the
        least recently used ones if a flood of distinct keys still overflows the table."""
        for key in [k for k, b in self._buckets.items() if b.is_full(now)]:
            del self._buckets[key]
        while len(self._buckets) > self._max_keys * 0.9:  # headroom: no scan per message
            self._buckets.popitem(last=False)

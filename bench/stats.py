"""Latency/throughput arithmetic for one load level (pure)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None for no samples."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Turn(NamedTuple):
    """One borrower message: when it was sent and when its first reply arrived (monotonic s)."""

    sent: float
    answered: float | None  # None: no reply within the turn timeout
    kind: str = ""

    @property
    def latency(self) -> float | None:
        return None if self.answered is None else self.answered - self.sent


@dataclass
class LevelResult:
    """Everything measured at one concurrency level for one system.

    Throughput counts replies that arrived inside the window; latencies are of the messages
    *sent* inside the window, waited for to the end (so slow turns are not cut off the tail).
    """

    system: str
    concurrency: int
    start: float
    end: float
    # Each turn as a plain tuple (sent, answered, kind) until the report: the collector stops
    # tracking an exact tuple of numbers and strings once it has survived a young collection.
    # A level keeps tens of thousands; as tracked objects they made the load generator's own
    # middle collections pause it (up to 74 ms in session 9), in the latencies it measures.
    log: list[tuple[float, float | None, str]] = field(default_factory=list)
    handoffs: list[float] = field(default_factory=list)  # trigger sent -> agent notified (s)
    handoffs_after_reply: list[float] = field(default_factory=list)  # bot reply -> agent (s)
    errors: int = 0
    texts: set[str] = field(default_factory=set)
    cpu_seconds: dict[str, float] = field(default_factory=dict)

    def record(self, sent: float, answered: float | None, kind: str = "") -> None:
        self.log.append((sent, answered, kind))

    @property
    def turns(self) -> list[Turn]:
        return [Turn(*entry) for entry in self.log]

    @property
    def window_seconds(self) -> float:
        return max(0.0, self.end - self.start)

    @property
    def measured(self) -> list[Turn]:
        return [t for t in self.turns if self.start <= t.sent < self.end]

    @property
    def latencies(self) -> list[float]:
        return [t.latency for t in self.measured if t.latency is not None]

    @property
    def timeouts(self) -> int:
        return sum(1 for t in self.measured if t.answered is None)

    @property
    def throughput(self) -> float:
        done = sum(1 for t in self.turns
                   if t.answered is not None and self.start <= t.answered < self.end)
        return done / self.window_seconds if self.window_seconds else 0.0

    @property
    def answered_total(self) -> int:
        """Every answered turn of the level, warm-up included (what the CPU times cover)."""
        return sum(1 for t in self.turns if t.answered is not None)

    def p(self, q: float) -> float | None:
        return percentile(self.latencies, q)

    def handoff_p(self, q: float) -> float | None:
        return percentile(self.handoffs, q)

    def summary(self) -> dict[str, Any]:
        return {
            "system": self.system, "concurrency": self.concurrency,
            "messages": len(self.measured), "msg_per_s": round(self.throughput, 1),
            "p50_ms": ms(self.p(50)), "p95_ms": ms(self.p(95)), "p99_ms": ms(self.p(99)),
            "timeouts": self.timeouts, "errors": self.errors,
            "handoffs": len(self.handoffs), "handoff_p50_ms": ms(self.handoff_p(50)),
            "handoff_p99_ms": ms(self.handoff_p(99)),
            "handoff_gw_p50_ms": ms(percentile(self.handoffs_after_reply, 50)),
            "handoff_gw_p99_ms": ms(percentile(self.handoffs_after_reply, 99)),
            "distinct_texts": len(self.texts),
            "cpu_seconds": {k: round(v, 1) for k, v in self.cpu_seconds.items()},
            "answered_total": self.answered_total,
            "cpu_ms_per_msg": round(1000 * sum(self.cpu_seconds.values())
                                    / self.answered_total, 1) if self.answered_total else None,
        }


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)

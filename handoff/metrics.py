"""Prometheus text exposition of the dashboard figures (GET /metrics).

The same computation as the dashboard, over all time (counters only ever grow) plus the queue
right now (gauges), so a scrape and the dashboard never disagree about a definition.
Per-text figures (top unresolved messages) are left out: unbounded label values.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

PREFIX = "loanbot_"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{key}="{_escape(str(val))}"' for key, val in labels.items())
    return "{" + inner + "}"


def _number(value: float | int | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "NaN"
    if isinstance(value, float) and math.isinf(value):
        return "+Inf"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _family(name: str, kind: str, help_text: str,
            samples: Iterable[tuple[str, Mapping[str, str], float | int | None]]) -> list[str]:
    lines = [f"# HELP {PREFIX}{name} {help_text}", f"# TYPE {PREFIX}{name} {kind}"]
    for suffix, labels, value in samples:
        lines.append(f"{PREFIX}{name}{suffix}{_labels(labels)} {_number(value)}")
    return lines


def _histogram(name: str, help_text: str, dist: Mapping[str, Any]) -> list[str]:
    samples: list[tuple[str, Mapping[str, str], float | int | None]] = []
    running = 0
    for bucket in dist["buckets"]:
        running += int(bucket["count"])
        le = "+Inf" if bucket["le"] is None else _number(float(bucket["le"]))
        samples.append(("_bucket", {"le": le}, running))
    samples.append(("_sum", {}, float(dist["sum"])))
    samples.append(("_count", {}, int(dist["count"])))
    return _family(name, "histogram", help_text, samples)


def render(figures: Mapping[str, Any],
           rasa_calls: Mapping[str, tuple[int, int]] | None = None) -> str:
    """Prometheus text format (version 0.0.4) from dashboard.compute() output, plus this
    node's Rasa calls in flight (RasaClient.calls_now) when given."""
    lines: list[str] = []
    lines += _family("conversations_total", "counter",
                     "Conversations (sessions) started.",
                     [("", {}, figures["conversations"])])
    lines += _family("conversations_contained_total", "counter",
                     "Conversations never handed to a human.",
                     [("", {}, figures["contained"])])
    lines += _family("containment_ratio", "gauge",
                     "Contained conversations / all conversations.",
                     [("", {}, figures["containment_rate"])])
    lines += _family("handoffs_total", "counter", "Handoffs from the bot to the queue, by reason.",
                     [("", {"reason": r}, n) for r, n in figures["handoffs_by_reason"].items()])
    queue = figures["queue_now"]
    lines += _family("queue_length", "gauge", "Sessions waiting for an agent now, by skill.",
                     [("", {"skill": s}, n) for s, n in queue["by_skill"].items()]
                     or [("", {"skill": "general"}, 0)])
    lines += _family("queue_longest_wait_seconds", "gauge",
                     "Longest current wait in the queue.",
                     [("", {}, queue["longest_wait_seconds"])])
    lines += _histogram("queue_wait_seconds", "Queue entry to claim, per claim.",
                        figures["waiting"])
    lines += _histogram("handle_seconds", "Claim to close, return to bot or transfer.",
                        figures["handle"])
    distribution = figures["csat"]["distribution"]
    lines += _family("csat_ratings_total", "counter", "Borrower satisfaction ratings by score.",
                     [("", {"score": s}, n) for s, n in distribution.items()])
    lines += _family("csat_average", "gauge", "Average satisfaction score (1-5).",
                     [("", {}, figures["csat"]["average"])])
    if rasa_calls is not None:
        lines += _family(
            "rasa_calls", "gauge",
            "Calls from this gateway node to each Rasa instance now: running, or waiting for "
            "one of its connections (HANDOFF_RASA_CONNECTIONS).",
            [("", {"instance": instance, "state": state}, n)
             for instance, (running, waiting) in rasa_calls.items()
             for state, n in (("running", running), ("waiting", waiting))])
    return "\n".join(lines) + "\n"

"""The collector settled once a server has started (handoff/heap.py).

Each case runs in a fresh interpreter: the collector's generations and thresholds belong to
the whole process, and the test process is shared by every test."""

from __future__ import annotations

import json
import subprocess
import sys

from handoff.settings import Settings


def in_fresh_process(code: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    lines = out.stdout.strip().splitlines()
    return {**json.loads(lines[-2]), **json.loads(lines[-1])}


PROBE = """
import gc, json
from handoff import heap
kept = [[i] for i in range(200_000)]      # what a server builds and keeps (tracked)
garbage = []
for _ in range(1000):                          # cycles to be collected before freezing
    a = []; a.append(a); garbage.append(a)
del garbage, a
settled = heap.settle({threshold}{extra})
print(json.dumps({{"settled": settled, "threshold": gc.get_threshold(),
                  "frozen": gc.get_freeze_count(), "garbage_left": gc.collect()}}))
gc.unfreeze()
print(json.dumps({{"garbage_frozen": gc.collect()}}))
"""


def test_settle_freezes_what_lives_and_raises_the_young_threshold() -> None:
    baseline = in_fresh_process(PROBE.format(threshold=0, extra=''))
    settled = in_fresh_process(PROBE.format(threshold=20_000, extra=''))
    assert baseline["settled"] is False
    assert baseline["frozen"] == 0
    assert baseline["threshold"] == [700, 10, 10]
    assert settled["settled"] is True
    assert settled["threshold"] == [20_000, 10, 10]
    frozen = settled["frozen"]
    assert isinstance(frozen, int) and frozen >= 200_000  # the kept objects, out of sight
    assert baseline["garbage_left"] >= 1000  # the cycles, for the collector to find
    assert settled["garbage_left"] == 0
    assert settled["garbage_frozen"] == 0  # collected before freezing, not frozen


def test_a_caller_that_has_just_collected_is_not_collected_for_again() -> None:
    """`collected=True` skips settle's own full collection (the caller ran one): what is
    there is frozen as it is, garbage the caller left included."""
    settled = in_fresh_process(PROBE.format(threshold=20_000, extra=", collected=True"))
    assert settled["settled"] is True
    assert settled["garbage_frozen"] >= 1000  # not collected by settle: frozen with the rest


def test_the_gateway_settles_by_default_and_0_leaves_the_collector_alone() -> None:
    assert Settings.from_env({}).gc_young_threshold == 5_000
    assert Settings.from_env({"HANDOFF_GC_YOUNG_THRESHOLD": "0"}).gc_young_threshold == 0

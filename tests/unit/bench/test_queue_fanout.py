"""`python -m bench.queue_fanout` measures what it says: the queue it builds has the waiting
borrowers and busy agents asked for, and each hand-off's effects reach every online agent and
the borrowers whose place it changes."""

from __future__ import annotations

import pytest

from bench import queue_fanout


def test_the_queue_is_built_as_asked() -> None:
    with queue_fanout.service_with_queue(waiting=57, agents=4, seed=3) as (service, _, _):
        everyone = service.queue_snapshot("agent001")  # may claim every skill the run uses
        assert everyone.total == 57 and len(everyone.entries) == 50  # HANDOFF_QUEUE_VIEW_LIMIT
        for i in range(4):
            assert len(service.queue_snapshot(f"agent{i:03d}").held) == 1  # all busy
        texts = {e.preview for e in everyone.entries}
        assert len(texts) > 1  # the borrowers' messages vary


def test_a_measured_handoff_tells_every_agent_and_only_its_borrower() -> None:
    result = queue_fanout.measure(waiting=9, agents=4, rounds=1, seed=3)
    # 4 agents' snapshots, and the new borrower's notice and status: a complaint joins at
    # the back of its skill's queue, so no waiting borrower's place changes
    assert result.handoff_effects == 4 + 2
    # a failed verification goes ahead of waiting general-skill borrowers of lower priority
    result = queue_fanout.measure(waiting=9, agents=4, rounds=5, seed=3)
    assert 4 + 2 < result.handoff_effects < 4 + 2 + 9
    assert result.handoff_agent_bytes > result.handoff_borrower_bytes > 0
    assert 0 < result.handoff_cpu_ms_p50 <= result.handoff_cpu_ms_p95
    assert result.close_cpu_ms_p50 > 0 and result.claim_cpu_ms_p50 > 0


def test_command_line_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert queue_fanout.main(["--waiting", "3", "--agents", "2", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 3 | 2 |" in out and "python -m bench.queue_fanout" in out

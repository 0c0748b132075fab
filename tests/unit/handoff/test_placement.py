"""Placing sessions on Rasa instances: the least busy instance for a new session, the same
instance for every later call, the hash when idle or when asked for."""

from __future__ import annotations

import pytest

from handoff.placement import HASH, LEAST_BUSY, Placement
from handoff.sharding import rank

NODES = ["http://rasa-1:5005", "http://rasa-2:5005", "http://rasa-3:5005"]


def _sessions(n: int) -> list[str]:
    return [f"session-{i:04d}-0123456789abcdef" for i in range(n)]


def test_hash_mode_is_the_rendezvous_rank_whatever_the_load() -> None:
    placement = Placement(HASH)
    for session in _sessions(20):
        busy = {rank(session, NODES)[0]: 50}
        assert placement.instances_for(session, NODES, busy) == rank(session, NODES)
    assert len(placement) == 0


def test_an_idle_system_places_by_the_hash() -> None:
    placement = Placement(LEAST_BUSY)
    for session in _sessions(20):
        assert placement.instances_for(session, NODES, {}) == rank(session, NODES)


def test_a_new_session_goes_to_the_least_busy_instance_and_stays_there() -> None:
    placement = Placement(LEAST_BUSY)
    session = _sessions(1)[0]
    owner, runner_up, last = rank(session, NODES)
    load = {owner: 9, runner_up: 4, last: 2}
    assert placement.instances_for(session, NODES, load) == [last, owner, runner_up]
    # later calls: the same instance first, however the load has moved
    for load in ({owner: 0, runner_up: 0, last: 30}, {}, {last: 1}):
        assert placement.instances_for(session, NODES, load) == [last, owner, runner_up]
    assert placement.chosen(session) == last


def test_equal_load_prefers_the_earlier_in_the_sessions_rank() -> None:
    placement = Placement(LEAST_BUSY)
    session = _sessions(1)[0]
    owner, runner_up, last = rank(session, NODES)
    assert placement.instances_for(session, NODES, {owner: 3, runner_up: 1, last: 1})[0] \
        == runner_up


def test_sessions_spread_to_balance_the_load() -> None:
    placement = Placement(LEAST_BUSY)
    load = dict.fromkeys(NODES[:2], 0)
    for session in _sessions(40):   # each session keeps one call outstanding
        load[placement.instances_for(session, NODES[:2], load)[0]] += 1
    assert sorted(load.values()) == [20, 20]


def test_an_instance_taken_out_of_the_list_moves_its_sessions() -> None:
    placement = Placement(LEAST_BUSY)
    session = _sessions(1)[0]
    owner = rank(session, NODES)[0]
    placement.instances_for(session, NODES, {})
    others = [n for n in NODES if n != owner]
    assert placement.instances_for(session, others, {others[0]: 5})[0] == others[1]
    assert placement.chosen(session) == others[1]


def test_the_least_recently_used_choice_goes_first_when_full() -> None:
    placement = Placement(LEAST_BUSY, capacity=3)
    a, b, c, d = _sessions(4)
    for session in (a, b, c):
        placement.instances_for(session, NODES, {})
    placement.instances_for(a, NODES, {})          # a used again: b is now the oldest
    placement.instances_for(d, NODES, {})
    assert len(placement) == 3
    assert placement.chosen(b) is None
    assert all(placement.chosen(s) is not None for s in (a, c, d))


def test_one_instance_needs_no_choice() -> None:
    placement = Placement(LEAST_BUSY)
    assert placement.instances_for("s", NODES[:1], {NODES[0]: 99}) == NODES[:1]
    assert len(placement) == 0


@pytest.mark.parametrize("mode, capacity", [("round-robin", 10), (LEAST_BUSY, 0)])
def test_bad_settings_are_refused(mode: str, capacity: int) -> None:
    with pytest.raises(ValueError):
        Placement(mode, capacity)


def test_a_session_answered_by_a_fall_back_moves_there() -> None:
    placement = Placement(LEAST_BUSY)
    session = _sessions(1)[0]
    owner, runner_up, last = rank(session, NODES)
    placement.instances_for(session, NODES, {})
    placement.moved(session, runner_up)
    assert placement.instances_for(session, NODES, {}) == [runner_up, owner, last]
    hashed = Placement(HASH)
    hashed.moved(session, runner_up)
    assert hashed.instances_for(session, NODES, {}) == [owner, runner_up, last]
    assert len(hashed) == 0

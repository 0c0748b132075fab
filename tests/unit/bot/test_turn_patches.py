"""The per-turn patches of bot/tuning.py that stand in for Rasa's own code (DIET's batch and its
numpy prediction, the count vectors, the rule search, the empty-domain check, slot copies, the
past states and applied events continued, event classes by name), all at once: whole
conversations of the real model, with the project's actions, give the same answers and the same
parses (confidences to float32 rounding: DIET's sums run in numpy's order)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("rasa")

from rasa.core.policies.rule_policy import RulePolicy  # noqa: E402
from rasa.nlu.classifiers.diet_classifier import DIETClassifier  # noqa: E402
from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (  # noqa: E402
    CountVectorsFeaturizer,
)
from rasa.shared.core.domain import Domain  # noqa: E402
from rasa.shared.core.events import Event  # noqa: E402
from rasa.shared.core.slots import Slot  # noqa: E402
from rasa.shared.core.trackers import DialogueStateTracker  # noqa: E402

from bench.utterances import conversations  # noqa: E402
from bot import (  # noqa: E402
    applied_events,
    count_vectors,
    diet_batch,
    diet_forward,
    event_types,
    past_states,
    rule_matching,
    slot_copy,
    tuning,
)
from tests.stack import seed_loan_db  # noqa: E402
from tests.unit.bot.conversation_agent import conversation_agent, talk  # noqa: E402
from tests.unit.bot.patching import all_restored  # noqa: E402

PATCHED = [(DIETClassifier, "_predict", diet_batch._ORIGINAL),
           (DIETClassifier, "_predict", diet_forward._ORIGINAL),
           (CountVectorsFeaturizer, "_create_features", count_vectors._ORIGINAL),
           (RulePolicy, "_get_possible_keys", rule_matching._ORIGINAL),
           (Domain, "is_empty", None),
           (Slot, "__copy__", slot_copy._MARK),
           (Domain, "states_for_tracker_history", past_states._ORIGINAL),
           (Event, "resolve_by_type", event_types._ORIGINAL),
           (Event, "__init_subclass__", None),
           (DialogueStateTracker, "applied_events", applied_events._ORIGINAL)]


@pytest.fixture()
def restore_rasa() -> Iterator[None]:
    with all_restored(*PATCHED):
        yield
    slot_copy._plain.clear()
    past_states._folds.clear()
    event_types.forget()
    applied_events._folds.clear()


def answers_only(outputs: list[Any]) -> list[Any]:
    """Parses as they are; the bot's messages without whom they were for."""
    return [[{k: v for k, v in m.items() if k != "recipient_id"} for m in out]
            if isinstance(out, list) else out for out in outputs]


def test_same_parses_and_answers_with_the_patches(
        trained_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        restore_rasa: None) -> None:
    turns = [c.turns for c in itertools.islice(conversations(29), 60)]
    agent = conversation_agent(trained_model, tmp_path / "rasa", monkeypatch)
    theirs = answers_only(talk(agent, turns, "rasa"))

    ours_db = tmp_path / "ours"
    ours_db.mkdir()
    monkeypatch.setenv("LOAN_DB_URL", seed_loan_db(ours_db))  # a fresh store: same answers
    # the installers themselves: tuning.apply() installs each patch once per process
    diet_batch.install()
    diet_forward.install()
    count_vectors.install()
    rule_matching.install()
    tuning.compare_with_empty_domain_built_once()
    slot_copy.install()
    past_states.install()
    event_types.install()
    applied_events.install()
    for owner, name, marker in PATCHED:
        assert marker is None or marker in owner.__dict__, name
    ours = answers_only(talk(agent, turns, "ours"))
    assert len(ours) == len(theirs) > 250
    assert sum(1 for out in theirs if isinstance(out, list) and out) > 100
    assert [without_confidences(o) for o in ours] == [without_confidences(t) for t in theirs]
    assert confidences(ours) == pytest.approx(confidences(theirs), abs=1e-5)


def without_confidences(out: Any) -> Any:
    if not isinstance(out, dict):
        return out
    return {**out, "intent": out["intent"]["name"],
            "intent_ranking": [r["name"] for r in out["intent_ranking"]]}


def confidences(outputs: list[Any]) -> list[float]:
    return [r["confidence"] for out in outputs if isinstance(out, dict)
            for r in [out["intent"], *out["intent_ranking"]]]

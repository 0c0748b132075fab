"""bot/lean_model_load.py: DIET loaded without a training step has Rasa's weights and parses."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.utterances import conversations
from bot import lean_model_load

tf = pytest.importorskip("tensorflow")
from rasa.core.agent import Agent  # noqa: E402
from rasa.utils.tensorflow.models import RasaModel  # noqa: E402

from tests.unit.bot.conversation_agent import parses  # noqa: E402
from tests.unit.bot.patching import restored  # noqa: E402


@pytest.fixture()
def restore_rasa() -> Iterator[None]:
    with restored(RasaModel, "load", lean_model_load._ORIGINAL):
        yield


def _diet(agent: Any) -> Any:
    found = [node._component for node in agent.processor.graph_runner._instantiated_nodes.values()
             if type(node._component).__name__ == "DIETClassifier"]
    assert len(found) == 1
    return found[0].model


def _weights(model: Any) -> dict[str, np.ndarray]:
    return {w.name: w.numpy() for w in model.weights}


def test_same_weights_and_parses_of_the_real_model(trained_model: Path,
                                                   restore_rasa: None) -> None:
    texts = [t for c in itertools.islice(conversations(11), 40) for t in c.turns]
    texts += ["", "？？？", "a" * 500, "借" + "9" * 40 + "万", "謝謝，我想問利率"]
    plain_agent = Agent.load(str(trained_model))
    plain_model = _diet(plain_agent)
    plain = parses(plain_agent, texts)

    lean_model_load.install()
    lean_model_load.install()  # twice is once
    lean_agent = Agent.load(str(trained_model))
    lean_model = _diet(lean_agent)

    assert plain_model.optimizer is not None  # Rasa's load trained a step
    assert lean_model.optimizer is None       # this one did not
    ours, theirs = _weights(lean_model), _weights(plain_model)
    assert list(ours) == list(theirs) and len(ours) > 10
    for name, value in theirs.items():
        assert np.array_equal(ours[name], value), name
    lean = parses(lean_agent, texts)
    assert len(lean) == len(plain) > 80
    assert lean == plain


def test_a_variable_missing_from_the_checkpoint_means_rasas_own_load(
        trained_model: Path, restore_rasa: None, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """A model whose prediction creates a variable its checkpoint lacks must not be served
    with that variable's random initial value."""
    from rasa.nlu.classifiers.diet_classifier import DIET

    prepare = DIET.prepare_for_predict

    def prepare_with_a_new_variable(self: Any) -> None:
        prepare(self)
        self.not_in_the_checkpoint = tf.Variable(tf.ones((2,)), name="not_in_the_checkpoint")

    monkeypatch.setattr(DIET, "prepare_for_predict", prepare_with_a_new_variable)
    lean_model_load.install()
    model = _diet(Agent.load(str(trained_model)))
    assert model.optimizer is not None  # built by Rasa's own load, after the lean one failed
    assert "loading it as Rasa does" in caplog.text
    assert "not_in_the_checkpoint" in caplog.text


def test_fine_tuning_keeps_rasas_load(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[Any, ...]] = []

    def original(cls: Any, *args: Any) -> str:
        seen.append(args)
        return "rasa's"

    monkeypatch.setattr(RasaModel, lean_model_load._ORIGINAL, classmethod(original),
                        raising=False)
    assert lean_model_load.lean_load(RasaModel, "file", "example", "predict", True) == "rasa's"
    assert lean_model_load.lean_load(RasaModel, "file", "example", None, False) == "rasa's"
    assert seen == [("file", "example", "predict", True), ("file", "example", None, False)]

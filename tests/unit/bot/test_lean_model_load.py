"""bot/lean_model_load.py: DIET loaded without a training step has Rasa's weights and parses."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.utterances import conversations
from bot import diet_forward, lean_model_load

tf = pytest.importorskip("tensorflow")
from rasa.core.agent import Agent  # noqa: E402
from rasa.nlu.classifiers.diet_classifier import DIETClassifier  # noqa: E402
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
    # TensorFlow predicts here (bot.diet_forward is not installed): traced at load, as by Rasa
    assert lean_model._tf_predict_step is not None
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


def test_with_numpy_predicting_nothing_is_traced_and_tensorflow_still_answers_alike(
        trained_model: Path, restore_rasa: None) -> None:
    """With bot/diet_forward.py computing the model's predictions, the load runs its first
    prediction eagerly and traces nothing. A prediction that does go through TensorFlow
    afterwards traces the function then, and answers as the model Rasa loaded."""
    texts = [t for c in itertools.islice(conversations(12), 25) for t in c.turns]
    texts += ["？？？", "借" + "9" * 40 + "万", "謝謝，我想問利率"]
    assert not hasattr(DIETClassifier, diet_forward._ORIGINAL), "an earlier test left it"
    plain_agent = Agent.load(str(trained_model))
    plain = parses(plain_agent, texts)

    lean_model_load.install()
    with restored(DIETClassifier, "_predict", diet_forward._ORIGINAL):
        diet_forward.install()
        lean_agent = Agent.load(str(trained_model))
        lean_model = _diet(lean_agent)
        assert lean_model.prepared_for_prediction and lean_model._tf_predict_step is None
        assert diet_forward.predicts(lean_model)
        assert not lean_model._run_eagerly  # the eager first prediction left it as it was
        served = parses(lean_agent, texts)
        assert lean_model._tf_predict_step is None  # numpy served every parse

    ours, theirs = _weights(lean_model), _weights(_diet(plain_agent))
    assert list(ours) == list(theirs)
    for name, value in theirs.items():
        assert np.array_equal(ours[name], value), name
    through_tensorflow = parses(lean_agent, texts)  # bot.diet_forward gone: TensorFlow's path
    assert lean_model._tf_predict_step is not None
    assert through_tensorflow == plain
    assert [p["intent"]["name"] for p in served] == [p["intent"]["name"] for p in plain]


@pytest.mark.parametrize("numpy_predicts", [True, False])
def test_the_prediction_function_is_traced_at_load_only_where_tensorflow_predicts(
        numpy_predicts: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    class Model:
        _run_eagerly = None
        _tf_predict_step = None

        def run_inference(self, example: Any) -> None:
            calls.append((example, self._run_eagerly))

    monkeypatch.setattr(lean_model_load, "_numpy_predicts", lambda model: numpy_predicts)
    model = Model()
    lean_model_load._first_prediction(model, "example")
    traced = [("example", None)] if not numpy_predicts else []
    assert calls == [("example", True), *traced]
    assert model._run_eagerly is None

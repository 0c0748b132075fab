"""bot/diet_batch.py: DIET's batch for one message is the batch Rasa builds, array for array,
and the parses are Rasa's."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("rasa")

from rasa.nlu.classifiers.diet_classifier import DIETClassifier  # noqa: E402
from rasa.shared.nlu.training_data.features import Features  # noqa: E402
from rasa.shared.nlu.training_data.message import Message  # noqa: E402
from rasa.utils.tensorflow.models import RasaModel  # noqa: E402

from bench.utterances import conversations  # noqa: E402
from bot import diet_batch  # noqa: E402
from tests.unit.bot.conversation_agent import parses  # noqa: E402
from tests.unit.bot.patching import restored  # noqa: E402
from tests.unit.bot.test_fast_inference import coo  # noqa: E402

RASAS = DIETClassifier._predict
TEXTS = [t for c in itertools.islice(conversations(23), 60) for t in c.turns] + [
    "", " ", "？？？", "🙏🙏", "借" + "9" * 60 + "万", "謝謝，我想問利率", "a" * 400,
    "<script>x</script>"]


@pytest.fixture(scope="module")
def agent(trained_model: Path) -> Any:
    from rasa.core.agent import Agent

    return Agent.load(str(trained_model))


@pytest.fixture()
def restore_diet() -> Iterator[None]:
    with restored(DIETClassifier, "_predict", diet_batch._ORIGINAL):
        yield


def test_the_batch_is_rasas_array_for_array(agent: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fed: list[Any] = []
    pairs: list[tuple[Any, Any]] = []
    rasa_predict = RasaModel._rasa_predict

    def feeding(self: Any, batch_in: Any) -> Any:
        fed.append(batch_in)
        return rasa_predict(self, batch_in)

    def predicting(self: Any, message: Any) -> Any:
        ours = diet_batch.message_batch(message, self.component_config.get("featurizers"))
        fed.clear()
        out = RASAS(self, message)
        pairs.append((ours, fed[0] if fed else None))
        return out

    monkeypatch.setattr(RasaModel, "_rasa_predict", feeding)
    monkeypatch.setattr(DIETClassifier, "_predict", predicting)
    parses(agent, TEXTS)
    assert len(pairs) == len(TEXTS)
    built = 0
    for ours, theirs in pairs:
        if ours is None:  # then Rasa's own code runs
            continue
        assert theirs is not None and len(ours) == len(theirs) == 8
        for mine, rasas in zip(ours, theirs, strict=True):
            assert type(mine) is type(rasas)
            assert mine.dtype == rasas.dtype and mine.shape == rasas.shape
            assert np.array_equal(mine, rasas)
        built += 1
    assert built >= len(TEXTS) - 3  # all but texts without any token


def test_the_parses_are_rasas(agent: Any, restore_diet: None) -> None:
    theirs = parses(agent, TEXTS)
    diet_batch.install()
    diet_batch.install()  # twice is once
    assert DIETClassifier.__dict__[diet_batch._ORIGINAL] is RASAS
    assert parses(agent, TEXTS) == theirs


def sparse(kind: str, rows: int) -> Features:
    matrix = scipy.sparse.coo_matrix(np.ones((rows, 3)))
    return Features(matrix, kind, "text", "CountVectorsFeaturizer")


def test_anything_but_two_sparse_matrices_is_left_to_rasa() -> None:
    def message(*features: Features, text: str | None = "借款") -> Message:
        made = Message(data={"text": text} if text is not None else {})
        for feature in features:
            made.add_features(feature)
        return made

    assert diet_batch.message_batch(message(sparse("sequence", 2), sparse("sentence", 1)),
                                    None) is not None
    dense = Features(np.ones((1, 4)), "sentence", "text", "Dense")
    assert diet_batch.message_batch(
        message(sparse("sequence", 2), sparse("sentence", 1), dense), None) is None
    assert diet_batch.message_batch(message(sparse("sentence", 1)), None) is None
    assert diet_batch.message_batch(message(), None) is None
    assert diet_batch.message_batch(
        message(sparse("sequence", 2), sparse("sentence", 1), text=None), None) is None
    assert diet_batch.message_batch(
        message(sparse("sequence", 0), sparse("sentence", 1)), None) is None


def test_a_model_with_other_inputs_keeps_rasas_batch(agent: Any, restore_diet: None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = agent.processor.graph_runner._instantiated_nodes.values()
    diet = next(n._component for n in nodes if type(n._component) is DIETClassifier)
    assert diet_batch._prediction_keys_are_text_only(diet)
    theirs = parses(agent, TEXTS[:5])
    signature = dict(diet.model.data_signature)
    signature["text"] = {**signature["text"], "extra": signature["text"]["mask"]}
    monkeypatch.setattr(diet.model, "data_signature", signature)
    assert not diet_batch._prediction_keys_are_text_only(diet)
    monkeypatch.setattr(diet_batch, "message_batch", lambda *a: pytest.fail("built"))
    diet_batch.install()
    assert parses(agent, TEXTS[:5]) == theirs


def rasas_values(matrices: list[Any]) -> list[np.ndarray]:
    """Rasa's arrays for a batch of one message whose matrices Rasa joined."""
    from rasa.utils.tensorflow.data_generator import RasaDataGenerator
    from rasa.utils.tensorflow.model_data import FeatureArray, ragged_array_to_ndarray

    joined = scipy.sparse.hstack(matrices) if len(matrices) > 1 else matrices[0]
    batch = FeatureArray(ragged_array_to_ndarray([joined]), number_of_dimensions=3)
    return RasaDataGenerator._scipy_matrix_to_values(batch)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 4).flatmap(lambda rows: st.lists(coo(rows), min_size=1, max_size=4)))
def test_joined_matrices_give_rasas_arrays(matrices: list[Any]) -> None:
    ours = diet_batch._sparse_values(matrices)
    assert ours is not None
    for mine, rasas in zip(ours, rasas_values(matrices), strict=True):
        assert mine.dtype == rasas.dtype and mine.shape == rasas.shape
        assert np.array_equal(mine, rasas)


def test_matrices_rasa_would_not_join_are_left_to_rasa() -> None:
    two, three = scipy.sparse.coo_matrix(np.ones((2, 2))), scipy.sparse.coo_matrix(np.ones((3, 2)))
    assert diet_batch._sparse_values([two, three]) is None
    assert diet_batch._sparse_values([two, scipy.sparse.csr_matrix(np.ones((2, 2)))]) is None
    with pytest.raises(ValueError, match="sequence dimensions do not match"):
        Features(two, "sequence", "text", "a").combine_with_features(
            Features(three, "sequence", "text", "b"))

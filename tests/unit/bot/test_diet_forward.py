"""bot/diet_forward.py: DIET's prediction in numpy equals TensorFlow's to float32 rounding, for
the real model and for a small model of another shape; what it does not compute goes to Rasa."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("rasa")

import tensorflow as tf  # noqa: E402
from rasa.nlu.classifiers.diet_classifier import DIETClassifier  # noqa: E402
from rasa.utils.tensorflow.models import RasaModel  # noqa: E402
from rasa.utils.tensorflow.transformer import TransformerEncoder  # noqa: E402

from bench.utterances import conversations  # noqa: E402
from bot import diet_batch, diet_forward  # noqa: E402
from tests.unit.bot.conversation_agent import parses  # noqa: E402
from tests.unit.bot.patching import restored  # noqa: E402

TEXTS = [t for c in itertools.islice(conversations(31), 60) for t in c.turns] + [
    "", " ", "？？？", "🙏🙏", "借" + "9" * 60 + "万", "謝謝，我想問利率", "a" * 400,
    "<script>x</script>", "我" * 300]
SCORE_TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def agent(trained_model: Path) -> Any:
    from rasa.core.agent import Agent

    return Agent.load(str(trained_model))


@pytest.fixture()
def restore_diet() -> Iterator[None]:
    with restored(DIETClassifier, "_predict", diet_forward._ORIGINAL):
        yield


def batches_of(agent: Any, texts: list[str]) -> tuple[Any, list[Any]]:
    """The DIET model of the agent, and the batch of each text that has one."""
    found: list[Any] = []
    models: list[Any] = []
    before = DIETClassifier._predict

    def capture(self: Any, message: Any) -> Any:
        batch = diet_batch.message_batch(message, self.component_config.get("featurizers"))
        if batch is not None:
            found.append(batch)
            models.append(self.model)
        return before(self, message)

    DIETClassifier._predict = capture
    try:
        parses(agent, texts)
    finally:
        DIETClassifier._predict = before
    assert models and all(m is models[0] for m in models)
    return models[0], found


def assert_same_ranking(ours: np.ndarray, theirs: np.ndarray) -> None:
    """The same intent first, and the same order wherever TensorFlow's scores are apart."""
    assert int(np.argmax(ours)) == int(np.argmax(theirs))
    order = np.argsort(-theirs, kind="stable")
    gaps = -np.diff(theirs[order])
    for i, gap in enumerate(gaps):
        if gap > 2 * SCORE_TOLERANCE:
            assert ours[order[i]] > ours[order[i + 1]]


def assert_equal_to_tensorflow(model: Any, batches: list[Any]) -> None:
    forward = diet_forward.forward_for(model)
    assert forward is not None
    for batch in batches:
        theirs = RasaModel._rasa_predict(model, batch)
        ours = forward.predict(batch)
        lean = forward.predict(batch, diagnostics=False)
        assert ours is not None and lean is not None
        assert set(ours) == set(theirs) and set(lean) == {"i_scores"}
        for got in (ours["i_scores"], lean["i_scores"]):
            assert got.dtype == theirs["i_scores"].dtype == np.float32
            assert got.shape == theirs["i_scores"].shape
            np.testing.assert_allclose(got, theirs["i_scores"], atol=SCORE_TOLERANCE, rtol=0)
            assert_same_ranking(got[0], theirs["i_scores"][0])
        for key, tolerance in (("text_transformed", 1e-4), ("attention_weights", 1e-5)):
            mine, rasas = ours["diagnostic_data"][key], theirs["diagnostic_data"][key]
            assert mine.dtype == rasas.dtype and mine.shape == rasas.shape, key
            np.testing.assert_allclose(mine, rasas, atol=tolerance, rtol=0, err_msg=key)


def test_the_real_models_outputs_are_tensorflows(agent: Any) -> None:
    model, batches = batches_of(agent, TEXTS)
    assert len(batches) >= len(TEXTS) - 3  # all but texts without any token
    assert max(int(b[6][1]) for b in batches) > diet_forward.KEPT_POSITIONS  # "我" * 300
    assert_equal_to_tensorflow(model, batches)


def test_parses_are_rasas(agent: Any, restore_diet: None) -> None:
    theirs = parses(agent, TEXTS)
    calls: list[bool] = []
    predict = diet_forward.DietForward.predict

    def counting(self: Any, batch: Any, diagnostics: bool = True) -> Any:
        calls.append(diagnostics)
        return predict(self, batch, diagnostics)

    diet_forward.install()
    try:
        diet_forward.DietForward.predict = counting  # type: ignore[method-assign]
        ours = parses(agent, TEXTS)
    finally:
        diet_forward.DietForward.predict = predict  # type: ignore[method-assign]
    assert len(calls) >= len(TEXTS) - 3 and not any(calls)  # serving asks for no diagnostics
    for mine, rasas in zip(ours, theirs, strict=True):
        assert mine["text"] == rasas["text"] and mine["entities"] == rasas["entities"]
        assert mine["intent"]["name"] == rasas["intent"]["name"]
        assert mine["intent"]["confidence"] == pytest.approx(rasas["intent"]["confidence"],
                                                             abs=SCORE_TOLERANCE)
        assert [r["name"] for r in mine["intent_ranking"]] == [
            r["name"] for r in rasas["intent_ranking"]]
        assert [r["confidence"] for r in mine["intent_ranking"]] == pytest.approx(
            [r["confidence"] for r in rasas["intent_ranking"]], abs=SCORE_TOLERANCE)


def test_diagnostic_data_when_rasa_asks_for_it(agent: Any, restore_diet: None,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    model, batches = batches_of(agent, ["借5万分12期等额本息每月还多少"])
    classifier = next(node for node in _diet_classifiers(agent))
    context = dataclasses.replace(classifier._execution_context,
                                  should_add_diagnostic_data=True)
    monkeypatch.setattr(classifier, "_execution_context", context)
    diet_forward.install()
    message = _featurised_message(agent, "借5万分12期等额本息每月还多少")
    out = classifier._predict(message)
    theirs = RasaModel._rasa_predict(model, batches[0])
    assert set(out["diagnostic_data"]) == {"attention_weights", "text_transformed"}
    np.testing.assert_allclose(out["diagnostic_data"]["text_transformed"],
                               theirs["diagnostic_data"]["text_transformed"], atol=1e-4)


def _diet_classifiers(agent: Any) -> Iterator[Any]:
    runner = agent.processor.graph_runner
    for node in runner._instantiated_nodes.values():
        component = getattr(node, "_component", None)
        if type(component) is DIETClassifier:
            yield component


def _featurised_message(agent: Any, text: str) -> Any:
    """The message as it reaches DIET: every component before DIET run on it."""
    found: list[Any] = []
    before = DIETClassifier._predict

    def capture(self: Any, message: Any) -> Any:
        found.append(message)
        return before(self, message)

    DIETClassifier._predict = capture
    try:
        parses(agent, [text])
    finally:
        DIETClassifier._predict = before
    return found[0]


@pytest.mark.parametrize("change", [
    lambda m: m.config.__setitem__("entity_recognition", True),
    lambda m: setattr(m._tf_layers["sequence_layer.text"]._tf_layers["transformer"]
                      ._enc_layers[0]._mha, "use_key_relative_position", True),
    lambda m: setattr(m._tf_layers["sequence_layer.text"]._tf_layers["transformer"],
                      "unidirectional", True),
    lambda m: setattr(m._tf_layers["sequence_layer.text"], "_has_transformer", False),
    lambda m: setattr(m._tf_layers[f"loss.{m.label_name}"], "similarity_type", "cosine"),
    lambda m: setattr(m._tf_layers["embed.text"]._dense, "activation", tf.nn.relu),
], ids=["entities", "relative-attention", "unidirectional", "no-transformer", "cosine",
        "relu"])
def test_models_it_does_not_compute_go_to_rasa(agent: Any, restore_diet: None,
                                               monkeypatch: pytest.MonkeyPatch,
                                               change: Any) -> None:
    model, _ = batches_of(agent, ["利率多少"])
    message = _featurised_message(agent, "利率多少")
    classifier = next(_diet_classifiers(agent))
    diet_forward.install()
    rasa_calls: list[Any] = []
    tensorflow = RasaModel._rasa_predict

    def spying(self: Any, batch: Any) -> Any:
        rasa_calls.append(batch)
        return tensorflow(self, batch)

    monkeypatch.setattr(RasaModel, "_rasa_predict", spying)
    classifier._predict(message)
    assert not rasa_calls  # numpy, as it is

    saved = _attributes(model)
    try:
        change(model)
        with pytest.raises(diet_forward.Unsupported):
            diet_forward.DietForward.of(model)
        model.__dict__.pop(diet_forward._KEPT, None)
        assert diet_forward.forward_for(model) is None
        classifier._predict(message)
        assert len(rasa_calls) == 1  # Rasa's TensorFlow path
    finally:
        _restore(model, saved)
        model.__dict__.pop(diet_forward._KEPT, None)
    assert diet_forward.forward_for(model) is not None


def _attributes(model: Any) -> list[tuple[Any, str, Any]]:
    sequence = model._tf_layers["sequence_layer.text"]
    transformer = sequence._tf_layers["transformer"]
    mha = transformer._enc_layers[0]._mha
    loss = model._tf_layers[f"loss.{model.label_name}"]
    dense = model._tf_layers["embed.text"]._dense
    return [(model.config, "entity_recognition", model.config["entity_recognition"]),
            (mha, "use_key_relative_position", mha.use_key_relative_position),
            (transformer, "unidirectional", transformer.unidirectional),
            (sequence, "_has_transformer", sequence._has_transformer),
            (loss, "similarity_type", loss.similarity_type),
            (dense, "activation", dense.activation)]


def _restore(model: Any, saved: list[tuple[Any, str, Any]]) -> None:
    for owner, name, value in saved:
        if isinstance(owner, dict):
            owner[name] = value
        else:
            setattr(owner, name, value)


def test_batches_it_does_not_compute(agent: Any) -> None:
    model, batches = batches_of(agent, ["借5万分12期"])
    forward = diet_forward.forward_for(model)
    assert forward is not None
    batch = batches[0]
    two = list(batch)
    two[3] = np.array([2, 1, batch[3][2]])  # a batch of two sentences
    wrong_length = list(batch)
    wrong_length[7] = np.asarray(batch[7]) + np.float32(1)
    for odd in (batch[:7], tuple(two), tuple(wrong_length),
                tuple(tf.constant(a) for a in batch)):
        assert forward.predict(odd) is None
    assert forward.predict(batch) is not None


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-8, 8, width=32), min_size=1, max_size=64))
def test_gelu_is_tensorflows(values: list[float]) -> None:
    x = np.array(values, dtype=np.float32)
    np.testing.assert_allclose(diet_forward.gelu(x), tf.nn.gelu(x).numpy(), atol=1e-6)
    assert diet_forward.gelu(x).dtype == np.float32


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(2, 40), st.integers(0, 2**31 - 1))
def test_layer_norm_is_keras(rows: int, units: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(rows, units)) * rng.uniform(0.01, 50)).astype(np.float32)
    layer = tf.keras.layers.LayerNormalization(epsilon=1e-6)
    layer.build((None, None, units))  # as in DIET: (batch, length, units)
    layer.gamma.assign(rng.normal(size=units).astype(np.float32))
    layer.beta.assign(rng.normal(size=units).astype(np.float32))
    ours = diet_forward._layer_norm(layer)(x)
    np.testing.assert_allclose(ours, layer(x[None]).numpy()[0], atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("units, length", [(128, 1), (128, 300), (16, 37)])
def test_positional_encoding_is_rasas(units: int, length: int) -> None:
    encoder = TransformerEncoder(1, units, 4, units * 4, 0.0)
    angles = np.asarray(encoder._angles).astype(np.float32)
    theirs = encoder._positional_encoding(length).numpy()[0]
    np.testing.assert_allclose(diet_forward._positional_encoding(angles, length), theirs,
                               atol=2e-5)


def test_another_shape_of_model(tmp_path: Path, restore_diet: None) -> None:
    """Two transformer layers, two hidden layers and other widths: trained briefly here."""
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
        CountVectorsFeaturizer,
    )
    from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    (tmp_path / "model").mkdir()
    storage = LocalModelStorage(tmp_path / "model")
    context = ExecutionContext(GraphSchema({}), "test")
    examples = {"greet": ["hello there", "hi", "good morning friend", "hey hey"],
                "rate": ["what is the rate", "interest rate please", "how much interest"],
                "repay": ["repay my loan", "monthly payment amount", "pay back early"]}
    data = TrainingData([Message(data={"text": t, "intent": i})
                         for i, texts in examples.items() for t in texts])
    tokenizer = WhitespaceTokenizer.create(WhitespaceTokenizer.get_default_config(),
                                           storage, Resource("tok"), context)
    featurizer = CountVectorsFeaturizer.create(
        {**CountVectorsFeaturizer.get_default_config(), "analyzer": "char_wb",
         "min_ngram": 1, "max_ngram": 3}, storage, Resource("cvf"), context)
    diet = DIETClassifier.create(
        {**DIETClassifier.get_default_config(), "epochs": 2, "random_seed": 3,
         "number_of_transformer_layers": 2, "transformer_size": 24, "number_of_attention_heads": 3,
         "hidden_layers_sizes": {"text": [40, 32], "label": []}, "entity_recognition": False},
        storage, Resource("diet"), context)
    tokenizer.process_training_data(data)
    featurizer.train(data)
    featurizer.process_training_data(data)
    diet.train(data)

    texts = ["hello", "what is the interest rate for a loan", "pay", "zzz unknown words",
             "repay early and pay back the monthly amount please"]
    messages = [Message(data={"text": t}) for t in texts]
    tokenizer.process(messages)
    featurizer.process(messages)
    batches = [diet_batch.message_batch(m, None) for m in messages]
    assert all(b is not None for b in batches)
    RasaModel._rasa_predict(diet.model, batches[0])  # prepares it, as the first parse does
    forward = diet_forward.forward_for(diet.model)
    assert forward is not None and len(forward.encoder_layers) == 2 and len(forward.hidden) == 2
    assert_equal_to_tensorflow(diet.model, batches)

    # the optimiser leaves weights where a randomly connected layer's mask is 0; the layer
    # zeroes them on every call, and so must the numpy pass
    from rasa.utils.tensorflow.layers import RandomlyConnectedDense

    masked = [layer for layer in diet.model._flatten_layers()
              if isinstance(layer, RandomlyConnectedDense) and layer.kernel_mask is not None]
    assert len(masked) >= 2 * 6 + 2
    for layer in masked:
        layer.kernel.assign(layer.kernel + (1.0 - layer.kernel_mask) * 0.5)
    diet.model.__dict__.pop(diet_forward._KEPT)
    assert_equal_to_tensorflow(diet.model, batches)

    rasas = _processed(diet, tokenizer, featurizer, texts)
    diet_forward.install()
    ours = _processed(diet, tokenizer, featurizer, texts)
    for mine, rasa_parse in zip(ours, rasas, strict=True):
        assert mine["intent"]["name"] == rasa_parse["intent"]["name"]
        assert [r["name"] for r in mine["intent_ranking"]] == [
            r["name"] for r in rasa_parse["intent_ranking"]]
        assert [r["confidence"] for r in mine["intent_ranking"]] == pytest.approx(
            [r["confidence"] for r in rasa_parse["intent_ranking"]], abs=SCORE_TOLERANCE)


def _processed(diet: Any, tokenizer: Any, featurizer: Any, texts: list[str]) -> list[Any]:
    from rasa.shared.nlu.training_data.message import Message

    messages = [Message(data={"text": t}) for t in texts]
    tokenizer.process(messages)
    featurizer.process(messages)
    return [{"intent": m.get("intent"), "intent_ranking": m.get("intent_ranking")}
            for m in diet.process(messages)]

"""bot/fast_inference.py: the lean paths give exactly what Rasa's own code gives: the same
sparse matrices (entries, order, dtypes), and the same parses of the real trained model."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse import coo_matrix, csr_matrix, hstack

from bot import fast_inference

pytest.importorskip("rasa")

from rasa.shared.nlu.training_data.features import Features  # noqa: E402
from rasa.utils.tensorflow.models import RasaModel  # noqa: E402

from bench.utterances import conversations  # noqa: E402

DTYPES = [np.float32, np.float64, np.int64, np.int32]


@st.composite
def coo(draw: st.DrawFn, rows: int) -> coo_matrix:
    cols = draw(st.integers(0, 6))
    count = draw(st.integers(0, 8)) if rows and cols else 0
    at = st.tuples(st.integers(0, max(rows - 1, 0)), st.integers(0, max(cols - 1, 0)))
    cells = draw(st.lists(at, min_size=count, max_size=count))
    dtype = draw(st.sampled_from(DTYPES))
    data = np.array(draw(st.lists(st.integers(-5, 5), min_size=count, max_size=count)),
                    dtype=dtype)
    row = np.array([r for r, _ in cells], dtype=np.int32)
    col = np.array([c for _, c in cells], dtype=np.int32)
    return coo_matrix((data, (row, col)), shape=(rows, cols))


def same(fast: Any, slow: Any) -> None:
    assert type(fast) is type(slow)
    assert fast.shape == slow.shape and fast.dtype == slow.dtype
    for part in ("data", "row", "col"):
        a, b = getattr(fast, part), getattr(slow, part)
        assert a.dtype == b.dtype and np.array_equal(a, b), part


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 5).flatmap(lambda rows: st.tuples(coo(rows), coo(rows))))
def test_hstack_of_two_coo_matrices_is_scipys(pair: tuple[coo_matrix, coo_matrix]) -> None:
    left, right = pair
    same(fast_inference.hstack_coo(left, right), hstack([left, right]))


def test_anything_else_goes_to_scipy() -> None:
    a = csr_matrix(np.eye(2, dtype=np.float32))
    b = coo_matrix(np.ones((2, 1), dtype=np.float64))
    result = fast_inference.hstack_coo(a, b)
    expected = hstack([a, b])
    assert type(result) is type(expected)
    assert np.array_equal(result.toarray(), expected.toarray())


def test_features_combine_as_rasa_does() -> None:
    original = Features.__dict__["_combine_sparse_features"]
    left = coo_matrix(np.array([[1, 0], [0, 2]], dtype=np.float32))
    right = coo_matrix(np.array([[0, 3, 0], [4, 0, 5]], dtype=np.float32))
    ours = Features(left, "sequence", "text", "a")
    theirs = Features(left, "sequence", "text", "a")
    fast_inference.combine_sparse_features(ours, Features(right, "sequence", "text", "b"))
    original(theirs, Features(right, "sequence", "text", "b"))
    same(ours.features, theirs.features)
    with pytest.raises(ValueError, match="sequence dimensions do not match"):
        fast_inference.combine_sparse_features(
            ours, Features(coo_matrix((3, 1)), "sequence", "text", "c"))


@pytest.fixture()
def restore_rasa() -> Iterator[None]:
    predict = RasaModel.__dict__["_rasa_predict"]
    combine = Features.__dict__["_combine_sparse_features"]
    try:
        yield
    finally:
        RasaModel._rasa_predict = predict  # type: ignore[method-assign]
        Features._combine_sparse_features = combine  # type: ignore[method-assign]


def _parses(agent: Any, texts: list[str]) -> list[Any]:
    async def parse() -> list[Any]:
        return [await agent.parse_message(text) for text in texts]

    return asyncio.run(parse())


def test_same_parses_of_the_real_model(trained_model: Path, restore_rasa: None) -> None:
    from rasa.core.agent import Agent

    texts = [t for c in itertools.islice(conversations(9), 60) for t in c.turns]
    texts += ["", "？？？", "a" * 500, "借" + "9" * 40 + "万"]
    plain = _parses(Agent.load(str(trained_model)), texts)
    fast_inference.install()
    agent = Agent.load(str(trained_model))
    lean = _parses(agent, texts)
    assert len(lean) == len(plain) > 100
    assert lean == plain
    # the lean path really ran (not Rasa's own after the first call)
    diet = [node for node in agent.processor.graph_runner._instantiated_nodes.values()
            if type(node._component).__name__ == "DIETClassifier"]
    assert diet and fast_inference._CONCRETE in diet[0]._component.model.__dict__


_NUMPY_DTYPES = [np.float64, np.float32, np.int64, np.int32, np.bool_]


def _outcome(convert: Any) -> Any:
    try:
        tensors = convert()
    except Exception as err:  # noqa: BLE001 - the kind of failure is what is compared
        return type(err)
    return [(t.dtype, tuple(t.shape), t.device, t.numpy().tolist()) for t in tensors]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_NUMPY_DTYPES), st.sampled_from(_NUMPY_DTYPES),
                          st.lists(st.floats(-1e12, 1e12), max_size=6),
                          st.sampled_from([(-1,), (1, -1), (-1, 1, 1)])),
                min_size=1, max_size=4))
def test_batch_tensors_are_tensorflows_conversion(
        items: list[tuple[Any, Any, list[float], tuple[int, ...]]]) -> None:
    tf = pytest.importorskip("tensorflow")
    values = [np.asarray(raw, dtype=source).reshape(shape) for source, _, raw, shape in items]
    dtypes = [tf.as_dtype(target) for _, target, _, _ in items]
    ours = _outcome(lambda: fast_inference.batch_tensors(values, dtypes))
    theirs = _outcome(lambda: [tf.convert_to_tensor(v, dtype=d)
                               for v, d in zip(values, dtypes, strict=True)])
    assert ours == theirs


def test_batch_tensors_of_other_values_go_to_tensorflow() -> None:
    tf = pytest.importorskip("tensorflow")
    from rasa.utils.tensorflow.model_data import FeatureArray

    feature_array = FeatureArray(np.array([np.zeros((2, 3), np.float32)]), number_of_dimensions=3)
    values = [[1, 2], 3.5, tf.constant([1, 2], tf.int64), feature_array]
    dtypes = [tf.int64, tf.float32, tf.int64, tf.float32]
    assert _outcome(lambda: fast_inference.batch_tensors(values, dtypes)) == _outcome(
        lambda: [tf.convert_to_tensor(v, dtype=d) for v, d in zip(values, dtypes, strict=True)])
    with pytest.raises(ValueError):  # as tf.convert_to_tensor: a tensor is not cast
        fast_inference.batch_tensors([tf.constant([1], tf.int64)], [tf.int32])

"""bot/count_vectors.py: the count-vector matrices are scikit-learn's, entry for entry, for
the trained model's vectorizers and for others, and the featurizer's output is Rasa's."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.feature_extraction.text import CountVectorizer

pytest.importorskip("rasa")

from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (  # noqa: E402
    CountVectorsFeaturizer,
)

from bench.utterances import conversations  # noqa: E402
from bot import count_vectors  # noqa: E402
from tests.unit.bot.patching import restored  # noqa: E402

RASAS = CountVectorsFeaturizer._create_features
CORPUS = ["借 5 万 分 12 期", "等额本息 每月 还 多少", "利率 是 多少", "hello world 12", "謝謝 你"]


@pytest.fixture(scope="module")
def model_featurizers(trained_model: Path) -> list[Any]:
    from rasa.core.agent import Agent

    agent = Agent.load(str(trained_model))
    nodes = agent.processor.graph_runner._instantiated_nodes.values()  # type: ignore[union-attr]
    found = [n._component for n in nodes if type(n._component) is CountVectorsFeaturizer]
    assert len(found) == 2
    return found


@pytest.fixture()
def restore_featurizer() -> Iterator[None]:
    with restored(CountVectorsFeaturizer, "_create_features", count_vectors._ORIGINAL):
        yield


def same(ours: Any, theirs: Any) -> None:
    assert type(ours) is type(theirs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    assert ours.has_canonical_format == theirs.has_canonical_format
    for part in ("row", "col", "data"):
        a, b = getattr(ours, part), getattr(theirs, part)
        assert a.dtype == b.dtype and np.array_equal(a, b), part


def fitted(**options: Any) -> CountVectorizer:
    return CountVectorizer(**options).fit(CORPUS)


OTHERS = [fitted(), fitted(analyzer="char", ngram_range=(1, 3)), fitted(binary=True),
          fitted(analyzer="char_wb", ngram_range=(2, 4), lowercase=False),
          fitted(token_pattern=r"(?u)\b\w+\b", ngram_range=(1, 2))]
WORDS = st.text(alphabet=st.sampled_from(list("借款利率多少每月还万元期謝謝你好 ab12AB?？,。\t")),
                max_size=12)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, len(OTHERS) - 1), st.lists(WORDS, max_size=6))
def test_other_vectorizers_random_documents(which: int, documents: list[str]) -> None:
    vectorizer = OTHERS[which]
    same(count_vectors.count_matrix(vectorizer, documents),
         count_vectors._sklearn_count_matrix(vectorizer, documents))


def test_the_models_vectorizers_on_the_benchmarks_messages(model_featurizers: list[Any]) -> None:
    import jieba

    texts = [t for c in itertools.islice(conversations(17), 150) for t in c.turns]
    texts += ["", " ", "？？？", "借" + "9" * 60 + "万", "謝謝，我想問利率", "a" * 300]
    compared = 0
    for featurizer in model_featurizers:
        vectorizer = featurizer.vectorizers["text"]
        for text in texts:
            tokens = [t for t in jieba.lcut(text) if t.strip()]
            for documents in (tokens, [" ".join(tokens)]):
                same(count_vectors.count_matrix(vectorizer, documents),
                     count_vectors._sklearn_count_matrix(vectorizer, documents))
                compared += 1
    assert compared > 1000


def test_what_it_cannot_do_goes_to_scikit_learn() -> None:
    with pytest.raises(NotFittedError):
        count_vectors.count_matrix(CountVectorizer(), ["借款"])
    with pytest.raises(ValueError, match="Iterable over raw text documents expected"):
        count_vectors.count_matrix(OTHERS[0], "借款")  # type: ignore[arg-type]

    class Lowered(CountVectorizer):
        def build_analyzer(self) -> Any:
            return lambda doc: [doc.lower()]

    vectorizer = Lowered().fit(["A", "b"])
    same(count_vectors.count_matrix(vectorizer, ["A"]),
         count_vectors._sklearn_count_matrix(vectorizer, ["A"]))


def test_a_refitted_or_reconfigured_vectorizer_gets_a_new_analyzer() -> None:
    vectorizer = CountVectorizer(analyzer="char").fit(["ab"])
    first = count_vectors.count_matrix(vectorizer, ["abc"])
    assert first.nnz == 2
    vectorizer.set_params(analyzer="word").fit(["ab cd"])
    same(count_vectors.count_matrix(vectorizer, ["ab cd ab"]),
         count_vectors._sklearn_count_matrix(vectorizer, ["ab cd ab"]))
    vectorizer.set_params(lowercase=False)  # not refitted: scikit-learn's analyzer changes too
    same(count_vectors.count_matrix(vectorizer, ["AB cd"]),
         count_vectors._sklearn_count_matrix(vectorizer, ["AB cd"]))
    assert count_vectors.count_matrix(vectorizer, ["AB cd"]).nnz == 1


def test_the_featurizers_output_is_rasas(model_featurizers: list[Any],
                                         restore_featurizer: None) -> None:
    count_vectors.install()
    count_vectors.install()  # twice is once
    assert CountVectorsFeaturizer.__dict__[count_vectors._ORIGINAL] is RASAS
    tokens = [["借", "5", "万"], [], ["等额本息"], ["謝謝", "你"]]
    for featurizer in model_featurizers:
        for attribute in ("text", "response", "action_text", "intent"):
            try:
                theirs = RASAS(featurizer, attribute, tokens)
            except NotFittedError:  # no training data had this attribute
                with pytest.raises(NotFittedError):
                    featurizer._create_features(attribute, tokens)
                continue
            ours = featurizer._create_features(attribute, tokens)
            assert len(ours) == len(theirs) == 2
            for mine, rasa in zip(ours, theirs, strict=True):
                assert len(mine) == len(rasa)
                for a, b in zip(mine, rasa, strict=True):
                    if b is None:
                        assert a is None
                    else:
                        same(a, b)


def test_repeated_features_are_counted_or_marked() -> None:
    documents = ["多少 多少 利率 多少", "hello hello"]
    counted = count_vectors.count_matrix(OTHERS[0], documents)
    marked = count_vectors.count_matrix(OTHERS[2], documents)  # binary=True
    same(counted, count_vectors._sklearn_count_matrix(OTHERS[0], documents))
    same(marked, count_vectors._sklearn_count_matrix(OTHERS[2], documents))
    assert sorted(counted.data.tolist()) == [1, 2, 3]
    assert marked.data.tolist() == [1, 1, 1]

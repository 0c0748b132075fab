"""The count-vector featurizers' matrices for one message, without scikit-learn's per-call
set-up.

Rasa 3.6's `CountVectorsFeaturizer` featurizes a message with two `CountVectorizer.transform`
calls per featurizer (the tokens one per row, then the joined text as one row), each followed
by `sort_indices()` and `tocoo()`. For a few tokens most of a call is set-up, not counting:
the fitted check, a new analyzer (a compiled token pattern, a preprocessor, partials), a CSR
matrix built and validated, then converted and validated again as COO. Two featurizers make
four such calls per message (≈ 0.6 ms of a ≈ 10 ms turn, docs/benchmarks.md, session 12).

`count_matrix` gives the same COO matrix: the vectorizer's own analyzer (built once per fitted
vocabulary and parameters, and reused), scikit-learn's counting (out-of-vocabulary features
skipped, each row's columns ascending as `sort_indices` leaves them, `binary` honoured), the
vectorizer's dtype, and scipy's COO constructor with the index arrays `tocoo` would give it.
Anything unusual (not a plain fitted `CountVectorizer`, a string instead of a list) goes to
scikit-learn. A unit test compares matrices (entries, order, dtypes, shape, format flags) with
scikit-learn's for random texts and the benchmark's messages, with both analyzers the pipeline
uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import coo_matrix

_ANALYZER = "_loanbot_analyzer"
_ORIGINAL = "_loanbot_original_create_features"


# the parameters `CountVectorizer.build_analyzer` reads
_ANALYZER_PARAMETERS = ("input", "encoding", "decode_error", "strip_accents", "lowercase",
                        "preprocessor", "tokenizer", "stop_words", "token_pattern",
                        "ngram_range", "analyzer")


def _analyzer(vectorizer: Any) -> Any:
    """The vectorizer's analyzer, rebuilt whenever it is fitted anew or its parameters
    change (as scikit-learn builds it on every call)."""
    kept = vectorizer.__dict__.get(_ANALYZER)
    vocabulary = vectorizer.vocabulary_
    parameters = tuple(getattr(vectorizer, name) for name in _ANALYZER_PARAMETERS)
    if kept is None or kept[0] is not vocabulary or kept[1] != parameters:
        kept = (vocabulary, parameters, vectorizer.build_analyzer())
        vectorizer.__dict__[_ANALYZER] = kept
    return kept[2]


def _sklearn_count_matrix(vectorizer: Any, documents: list[str]) -> Any:
    matrix = vectorizer.transform(documents)
    matrix.sort_indices()
    return matrix.tocoo()


def count_matrix(vectorizer: Any, documents: list[str]) -> Any:
    """`vectorizer.transform(documents)`, indices sorted, as COO (Rasa's steps)."""
    from sklearn.feature_extraction.text import CountVectorizer

    vocabulary = vectorizer.__dict__.get("vocabulary_")
    if (type(vectorizer) is not CountVectorizer or not isinstance(documents, list)
            or not vocabulary):
        return _sklearn_count_matrix(vectorizer, documents)
    analyze = _analyzer(vectorizer)
    rows: list[int] = []
    columns: list[int] = []
    counts: list[int] = []
    for row, document in enumerate(documents):
        counter: dict[Any, int] = {}
        for feature in analyze(document):
            index = vocabulary.get(feature)
            if index is None:
                continue
            counter[index] = counter.get(index, 0) + 1
        for index in sorted(counter):
            rows.append(row)
            columns.append(index)
            counts.append(counter[index])
    if len(rows) > np.iinfo(np.int32).max:  # scikit-learn would switch to int64 indices
        return _sklearn_count_matrix(vectorizer, documents)
    data = np.array(counts, dtype=np.intc).astype(vectorizer.dtype)
    if vectorizer.binary:
        data.fill(1)
    return coo_matrix(
        (data, (np.array(rows, dtype=np.int32), np.array(columns, dtype=np.int32))),
        shape=(len(documents), len(vocabulary)),
        copy=False,
        dtype=vectorizer.dtype,
    )


def create_features(self: Any, attribute: str, all_tokens: list[list[str]]) -> Any:
    """Rasa's `CountVectorsFeaturizer._create_features` with `count_matrix`."""
    from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES

    if not self.vectorizers.get(attribute):
        return [None], [None]
    vectorizer = self.vectorizers[attribute]
    sequence_features: list[Any] = []
    sentence_features: list[Any] = []
    for tokens in all_tokens:
        if not tokens:
            sequence_features.append(None)
            sentence_features.append(None)
            continue
        sequence_features.append(count_matrix(vectorizer, tokens))
        if attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            sentence_features.append(count_matrix(vectorizer, [" ".join(tokens)]))
        else:
            sentence_features.append(None)
    return sequence_features, sentence_features


def install() -> None:
    from rasa.nlu.featurizers.sparse_featurizer.count_vectors_featurizer import (
        CountVectorsFeaturizer,
    )

    if hasattr(CountVectorsFeaturizer, _ORIGINAL):
        return
    setattr(CountVectorsFeaturizer, _ORIGINAL, CountVectorsFeaturizer._create_features)
    CountVectorsFeaturizer._create_features = create_features

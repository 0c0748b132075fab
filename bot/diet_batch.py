"""DIET's input for one message built straight from the message's sparse feature matrices,
instead of through Rasa's training-data machinery.

To classify one message, Rasa 3.6's `DIETClassifier._predict` joins the message's sparse
matrices (a deep copy of the first featurizer's, then `hstack` with each next one, for the
sequence and again for the sentence), builds a `RasaModelData` for a list of one (surface the
attributes, deep-copy "fake" zero features nobody uses, ragged arrays, masks, lengths, sort),
wraps it in a Keras data generator and slices the one batch back out: ≈ 0.65 ms per message,
measured, against ≈ 0.07 ms for the same arrays made here (docs/benchmarks.md, session 12).
For a message whose text has sparse sequence and sentence features only (the pipeline's count
vectors and regex features), that batch is always the same eight arrays, in the model data's
sorted key order (text: mask, sentence, sequence, sequence_lengths):

- the mask, `ones((1, 1, 1), float32)` (the text has features);
- for the sentence and then the sequence matrices, what Rasa's `_scipy_matrix_to_values` makes
  of their join for a batch of one (`_sparse_values`): `[0, row, column]` per entry as int64
  (columns shifted by the widths of the matrices before), the values as float32, and the shape
  `[1, rows, columns]` as int64;
- the number of tokens as float32, kept as Rasa's `FeatureArray`.

`message_batch` returns those, or None for anything else (no features, dense features, a join
Rasa would refuse, a subclass, a model whose prediction data has other keys), and `_predict`
then runs Rasa's own code. The batch goes to the model's `_rasa_predict`, as Rasa's
`run_inference` does for its one batch. Unit tests compare the arrays with Rasa's batch for the
benchmark's messages and edge cases, the joins with scipy's for random matrices, and the
parses with Rasa's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse._sputils import upcast

_ORIGINAL = "_loanbot_original_predict"
# the prediction data's text sub-keys, in the sorted order Rasa's model data gives them
TEXT_SUB_KEYS = ("mask", "sentence", "sequence", "sequence_lengths")


def _sparse_values(matrices: list[Any]) -> list[np.ndarray] | None:
    """What Rasa's `_scipy_matrix_to_values` makes of a batch of one message's matrices of one
    type once Rasa has joined them (`Message._combine_features`: `hstack` one after another),
    computed from the matrices without building the joined one: each entry's `[0, row,
    column + the widths before it]` as int64, the values (first in the joined matrix's dtype)
    as float32, and `[1, rows, columns]` as int64. None where Rasa's join would raise (the
    row counts differ) or a matrix is not COO."""
    rows = matrices[0].shape[0]
    if any(m.format != "coo" or m.shape[0] != rows for m in matrices):
        return None
    nnz = sum(m.nnz for m in matrices)
    indices = np.zeros((nnz, 3), dtype=np.int64)
    data = np.empty(nnz, dtype=upcast(*(m.dtype for m in matrices)))
    start = width = 0
    for m in matrices:
        end = start + m.nnz
        indices[start:end, 1] = m.row
        np.add(m.col, width, out=indices[start:end, 2], dtype=np.int64)
        data[start:end] = m.data
        start, width = end, width + m.shape[1]
    shape = np.array((1, rows, width), dtype=np.int64)
    return [indices, data.astype(np.float32), shape]


def message_batch(message: Any, featurizers: list[str] | None) -> tuple[Any, ...] | None:
    """The batch Rasa would feed DIET for this one message, or None if it is not the simple
    case (then Rasa's own code runs)."""
    from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, FEATURE_TYPE_SEQUENCE, TEXT
    from rasa.utils.tensorflow.model_data import FeatureArray

    if TEXT not in message.data:
        return None
    sequences: list[Any] = []
    sentences: list[Any] = []
    for feature in message.features:  # Message._filter_sparse_features, in its order
        if feature.attribute != TEXT or (featurizers and feature.origin not in featurizers):
            continue
        if not feature.is_sparse():
            return None  # dense features: Rasa's batch has more arrays
        if feature.type == FEATURE_TYPE_SEQUENCE:
            sequences.append(feature.features)
        elif feature.type == FEATURE_TYPE_SENTENCE:
            sentences.append(feature.features)
    if not sequences or not sentences or sequences[0].shape[0] == 0:
        return None
    sentence, sequence = _sparse_values(sentences), _sparse_values(sequences)
    if sentence is None or sequence is None:
        return None
    lengths = FeatureArray(np.array([sequences[0].shape[0]]),
                           number_of_dimensions=1).astype(np.float32)
    return (np.ones((1, 1, 1), dtype=np.float32), *sentence, *sequence, lengths)


def sparse_text_features_only(text: Any) -> bool:
    """A text signature with exactly the sub-keys `message_batch` builds, and one sparse
    sentence and one sparse sequence feature."""
    if tuple(sorted(text.keys())) != TEXT_SUB_KEYS:
        return False
    return (len(text["sentence"]) == 1 and text["sentence"][0].is_sparse
            and len(text["sequence"]) == 1 and text["sequence"][0].is_sparse)


def _prediction_keys_are_text_only(classifier: Any) -> bool:
    """The model predicts from text alone, with the sub-keys `message_batch` builds."""
    signature = getattr(classifier.model, "data_signature", None)
    if not signature or "text" not in signature:
        return False
    return sparse_text_features_only(signature["text"])


def install() -> None:
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier

    if hasattr(DIETClassifier, _ORIGINAL):
        return
    original = DIETClassifier._predict

    def _predict(self: Any, message: Any) -> Any:
        if (type(self) is not DIETClassifier or self.model is None
                or not _prediction_keys_are_text_only(self)):
            return original(self, message)
        batch = message_batch(message, self.component_config.get("featurizers"))
        if batch is None:
            return original(self, message)
        return self.model._rasa_predict(batch)

    setattr(DIETClassifier, _ORIGINAL, original)
    DIETClassifier._predict = _predict

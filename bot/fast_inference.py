"""Two per-message costs of Rasa 3.6's NLU that buy nothing, removed (measured in
docs/benchmarks.md: tuned Rasa 13.8 -> 12.6 ms of CPU per turn with both; the direct call
alone took a parse from 7.8 to 6.9 ms in a micro-benchmark).

- `RasaModel._rasa_predict` (DIET, and any other Rasa TensorFlow model): Rasa wraps the
  prediction step in a `tf.function` with a fixed input signature, then calls it through
  TensorFlow's generic dispatch every time: argument binding, structure flattening, signature
  casting, tracing-cache lookup. With a fixed signature there is exactly one concrete
  function; the `_rasa_predict` that `make_lean_rasa_predict` builds calls it directly with
  the batch converted to the signature's dtypes: the same graph, the same inputs, the same
  outputs. A numpy array of the batch becomes a tensor through the step that
  `tf.convert_to_tensor` ends in for arrays in eager mode (`convert_to_eager_tensor`, under
  `constant`): the same tensor without six layers of dispatch (≈ 0.2 → 0.09 ms per batch
  of DIET's eight inputs); anything else still goes through `tf.convert_to_tensor`. Rasa's
  eager mode, a model not yet prepared, or the first call (which builds the function) go
  through Rasa's own code.
- `Features._combine_sparse_features`: every message's sparse features from the three
  featurizers are joined with `scipy.sparse.hstack`, whose general block-matrix code costs
  more than the join. For two COO matrices `hstack_coo` does what `bmat` does for them
  (same dtype promotion, same index dtype, same entry order, same `coo_matrix`); anything
  else still goes to scipy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.sparse import coo_matrix, hstack
from scipy.sparse._sputils import get_index_dtype, upcast

_CONCRETE = "_loanbot_concrete_predict"
# what get_index_dtype(maxval=...) returns up to int32's maximum (np.iinfo per call is not free)
_SMALL_INDEX = get_index_dtype(maxval=0)
_INT32_MAX = int(np.iinfo(np.int32).max)


def hstack_coo(left: Any, right: Any) -> Any:
    """`scipy.sparse.hstack([left, right])`, without the general machinery for two COOs."""
    if type(left) is not coo_matrix or type(right) is not coo_matrix or (
        left.shape[0] != right.shape[0]
    ):
        return hstack([left, right])
    shape = (left.shape[0], left.shape[1] + right.shape[1])
    nnz = left.nnz + right.nnz
    data = np.empty(nnz, dtype=upcast(left.dtype, right.dtype))
    idx_dtype = _SMALL_INDEX if max(shape) <= _INT32_MAX else get_index_dtype(maxval=max(shape))
    row = np.empty(nnz, dtype=idx_dtype)
    col = np.empty(nnz, dtype=idx_dtype)
    first = slice(0, left.nnz)
    data[first] = left.data
    np.add(left.row, 0, out=row[first], dtype=idx_dtype)
    np.add(left.col, 0, out=col[first], dtype=idx_dtype)
    second = slice(left.nnz, nnz)
    data[second] = right.data
    np.add(right.row, 0, out=row[second], dtype=idx_dtype)
    np.add(right.col, left.shape[1], out=col[second], dtype=idx_dtype)
    return coo_matrix((data, (row, col)), shape=shape)


def combine_sparse_features(self: Any, additional_features: Any) -> None:
    """Rasa's Features._combine_sparse_features with hstack_coo."""
    if self.features.shape[0] != additional_features.features.shape[0]:
        raise ValueError(
            f"Cannot combine sparse features as sequence dimensions do not "
            f"match: {self.features.shape[0]} != "
            f"{additional_features.features.shape[0]}."
        )
    self.features = hstack_coo(self.features, additional_features.features)
    self._cached_fingerprint = None


def batch_tensors(values: Any, dtypes: list[Any]) -> list[Any]:
    """`[tf.convert_to_tensor(v, dtype=d) for v, d in zip(values, dtypes)]`, numpy arrays
    converted by the step that call ends in for them in eager mode."""
    import tensorflow as tf
    from tensorflow.python.eager import context
    from tensorflow.python.framework.constant_op import convert_to_eager_tensor

    if not context.executing_eagerly():
        return [tf.convert_to_tensor(v, dtype=d) for v, d in zip(values, dtypes, strict=True)]
    ctx = context.context()
    return [convert_to_eager_tensor(v, ctx, d) if isinstance(v, np.ndarray)
            else tf.convert_to_tensor(v, dtype=d) for v, d in zip(values, dtypes, strict=True)]


def make_lean_rasa_predict(original: Any) -> Any:
    """RasaModel._rasa_predict calling the one concrete prediction function directly."""
    from keras.utils import tf_utils
    from rasa.shared.constants import DIAGNOSTIC_DATA
    from tensorflow.python.util import nest

    def _rasa_predict(self: Any, batch_in: Any) -> Any:
        self._training = False  # as Rasa's own _rasa_predict
        step = self._tf_predict_step
        if self._run_eagerly or not self.prepared_for_prediction or step is None:
            return original(self, batch_in)
        kept = self.__dict__.get(_CONCRETE)
        if kept is None or kept[0] is not step:
            concrete = step.get_concrete_function()
            specs = nest.flatten(concrete.structured_input_signature[0][0])
            kept = (step, concrete, [spec.dtype for spec in specs])
            self.__dict__[_CONCRETE] = kept
        _, concrete, dtypes = kept
        if len(batch_in) != len(dtypes):
            return original(self, batch_in)
        tensors = batch_tensors(batch_in, dtypes)
        outputs = tf_utils.sync_to_numpy_or_python_type(
            concrete._call_flat(tensors, concrete.captured_inputs)
        )
        if DIAGNOSTIC_DATA in outputs:
            outputs[DIAGNOSTIC_DATA] = self._empty_lists_to_none_in_dict(
                outputs[DIAGNOSTIC_DATA]
            )
        return outputs

    return _rasa_predict


def install() -> None:
    from rasa.shared.nlu.training_data.features import Features
    from rasa.utils.tensorflow.models import RasaModel

    RasaModel._rasa_predict = make_lean_rasa_predict(RasaModel._rasa_predict)
    Features._combine_sparse_features = combine_sparse_features

"""DIET's prediction for one message computed with numpy from the model's own weights, instead
of through TensorFlow.

Measured (docs/benchmarks.md, session 13): the concrete TensorFlow function of DIET's
prediction step costs ≈ 1.3–1.8 ms of CPU per message, a third of a parse, for a transformer
of one layer over ≈ 15 positions. Most of it is TensorFlow's per-op dispatch, its thread
pools and the `kernel.assign(kernel * kernel_mask)` that every `RandomlyConnectedDense` runs
on each call (a no-op once the mask is applied). The same arithmetic in numpy is a few dozen
small array operations.

`DietForward.of(model)` reads the weights of a prepared `DIET` once, checking on the way that
every layer on the prediction path is of a kind written out here (sparse-to-dense layers,
randomly connected dense layers with no activation or an exact GELU, layer normalisation, a
bidirectional transformer of any number of layers without relative attention, the text
embedding, the inner-product similarity and softmax that Rasa 3.6 requires of DIET); anything
else (entity recognition, dense features, no transformer...) raises `Unsupported` and Rasa's
TensorFlow path runs. `predict` returns what `RasaModel._rasa_predict` returns for a batch of
one message whose text has only sparse sequence and sentence features (the batch
`bot/diet_batch.py` builds): the intent confidences and the diagnostic data (the transformer's
output and its attention weights), as float32 arrays of the same shapes. When Rasa does not
ask for diagnostic data (serving never does), only the confidences, for which the last
transformer layer is needed at the sentence's position only: ≈ 0.33 ms per message in all.

The results equal TensorFlow's to float32 rounding, not bit for bit: the sums run in another
order (OpenBLAS's, not Eigen's). The unit tests compare every output with TensorFlow's for the
benchmark's messages and edge cases (confidences within 1e-5, the same intent ranking) and the
whole conversations' parses and answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import erf

_KEPT = "_loanbot_diet_forward"
_ORIGINAL = "_loanbot_predict_before_numpy"
_SQRT_HALF = np.float32(1.0 / math.sqrt(2.0))
# positions whose encoding is computed once (a message has rarely more than 60 tokens)
KEPT_POSITIONS = 256


class Unsupported(Exception):
    """The model has a layer or a setting this module does not compute; Rasa's path runs."""


def gelu(x: np.ndarray) -> np.ndarray:
    """`tf.nn.gelu(x)` with its default `approximate=False`: x * Φ(x)."""
    return np.float32(0.5) * x * (np.float32(1.0) + erf(x * _SQRT_HALF))


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Dense:
    """A Keras dense layer's arithmetic: the kernel as the layer uses it (a randomly connected
    layer multiplies it by its mask on every call), the bias, and whether GELU follows."""

    kernel: np.ndarray
    bias: np.ndarray | None
    gelu: bool

    def __call__(self, x: np.ndarray) -> np.ndarray:
        y = x @ self.kernel
        if self.bias is not None:
            y += self.bias
        return gelu(y) if self.gelu else y


@dataclass(frozen=True)
class LayerNorm:
    """`tf.keras.layers.LayerNormalization` over the last axis (its unfused path, which Keras
    takes for an epsilon below 1.001e-5)."""

    gamma: np.ndarray
    beta: np.ndarray
    epsilon: np.float32

    def __call__(self, x: np.ndarray) -> np.ndarray:
        scale = np.float32(1.0 / x.shape[-1])
        mean = x.sum(axis=-1, keepdims=True) * scale
        centred = x - mean
        variance = (centred * centred).sum(axis=-1, keepdims=True) * scale
        inverse = self.gamma / np.sqrt(variance + self.epsilon)
        return x * inverse + (self.beta - mean * inverse)


@dataclass(frozen=True)
class EncoderLayer:
    """One `TransformerEncoderLayer`: pre-norm self-attention and a GELU feed-forward net, each
    added back to its input."""

    attention_norm: LayerNorm
    query: Dense
    key: Dense
    value: Dense
    output: Dense
    heads: int
    ffn_norm: LayerNorm
    ffn_hidden: Dense
    ffn_out: Dense

    def __call__(self, x: np.ndarray, last_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """x (length, units) → (x', attention weights (heads, queries, length)); a batch of
        one has no padding, so the pad mask adds nothing. `last_only`: the output and weights
        for the last position only (all positions still attended to)."""
        length, units = x.shape
        depth = units // self.heads
        normed = self.attention_norm(x)
        queries = normed[-1:] if last_only else normed
        q = self.query(queries).reshape(len(queries), self.heads, depth).transpose(1, 0, 2)
        k = self.key(normed).reshape(length, self.heads, depth).transpose(1, 0, 2)
        v = self.value(normed).reshape(length, self.heads, depth).transpose(1, 0, 2)
        logits = (q @ k.transpose(0, 2, 1)) / np.sqrt(np.float32(depth))
        weights = softmax(logits)
        attended = (weights @ v).transpose(1, 0, 2).reshape(len(queries), units)
        x = (x[-1:] if last_only else x) + self.output(attended)
        x = x + self.ffn_out(self.ffn_hidden(self.ffn_norm(x)))
        return x, weights


@dataclass(frozen=True)
class SparseToDense:
    """`DenseForSparse`: a sparse matrix times the kernel, plus the bias."""

    kernel: np.ndarray
    bias: np.ndarray | None

    def __call__(self, indices: np.ndarray, values: np.ndarray, rows: int) -> np.ndarray:
        """indices (nnz, 3) of a batch of one: [0, row, column]."""
        entries = len(values)
        spread = np.zeros((rows, entries), dtype=np.float32)  # each entry in its own column
        spread[indices[:, 1], np.arange(entries)] = values
        out = spread @ self.kernel[indices[:, 2]]
        if self.bias is not None:
            out += self.bias
        return out


@dataclass(frozen=True)
class DietForward:
    """The prediction path of one prepared DIET model, in numpy."""

    sequence_to_dense: SparseToDense
    sentence_to_dense: SparseToDense
    hidden: tuple[Dense, ...]
    embedding: Dense  # the transformer's input projection
    angles: np.ndarray
    positions: np.ndarray  # the positional encoding of the first KEPT_POSITIONS
    encoder_layers: tuple[EncoderLayer, ...]
    final_norm: LayerNorm
    text_embed: Dense
    labels_embed: np.ndarray

    @classmethod
    def of(cls, model: Any) -> DietForward:
        return _read(model)

    def predict(self, batch_in: tuple[Any, ...], diagnostics: bool = True
                ) -> dict[str, Any] | None:
        """What Rasa's `_rasa_predict` returns for this batch, or None if it is not a batch of
        one message with the eight arrays of text-only sparse features. Without `diagnostics`
        only the intent confidences, which need the last transformer layer at the sentence's
        position only: the rest of that layer is skipped (two thirds of the arithmetic)."""
        from rasa.shared.constants import DIAGNOSTIC_DATA

        if len(batch_in) != 8 or not all(isinstance(a, np.ndarray) for a in batch_in):
            return None
        _, sent_idx, sent_val, sent_shape, seq_idx, seq_val, seq_shape, lengths = batch_in
        if (sent_shape.shape != (3,) or seq_shape.shape != (3,) or sent_shape[0] != 1
                or seq_shape[0] != 1 or sent_shape[1] != 1 or lengths.shape != (1,)):
            return None
        tokens = int(seq_shape[1])
        if tokens < 1 or lengths[0] != tokens:
            return None
        sequence = self.sequence_to_dense(seq_idx, seq_val.astype(np.float32, copy=False),
                                          tokens)
        sentence = self.sentence_to_dense(sent_idx, sent_val.astype(np.float32, copy=False), 1)
        x = np.concatenate([sequence, sentence])  # the sentence after the last token
        for hidden in self.hidden:
            x = hidden(x)
        x = self.embedding(x) * np.sqrt(np.float32(self.embedding.kernel.shape[1]))
        length = x.shape[0]
        x = x + (self.positions[:length] if length <= len(self.positions)
                 else _positional_encoding(self.angles, length))
        weights = []
        last = len(self.encoder_layers) - 1
        for i, encoder in enumerate(self.encoder_layers):
            x, w = encoder(x, last_only=not diagnostics and i == last)
            weights.append(w)
        x = gelu(self.final_norm(x))
        sentence_vector = self.text_embed(x[-1])  # the last position: the sentence
        similarities = (sentence_vector[None, :] * self.labels_embed).sum(axis=-1)
        scores = softmax(similarities)[None]
        if not diagnostics:
            return {"i_scores": scores}
        return {
            DIAGNOSTIC_DATA: {
                # (1, layers, heads, length, length), as Rasa stacks them
                "attention_weights": np.stack(weights)[None],
                "text_transformed": x[None],
            },
            "i_scores": scores,
        }


def _positional_encoding(angles: np.ndarray, length: int) -> np.ndarray:
    """`TransformerEncoder._positional_encoding`: sin on even units, cos on odd ones."""
    rads = np.arange(length, dtype=np.float32)[:, None] * angles
    encoding = np.empty_like(rads)
    encoding[:, 0::2] = np.sin(rads[:, 0::2])
    encoding[:, 1::2] = np.cos(rads[:, 1::2])
    return encoding


def _array(variable: Any) -> np.ndarray:
    return np.array(variable.numpy(), dtype=np.float32)


def _dense(layer: Any, *, exact_type: bool = True) -> Dense:
    """A Keras Dense (or Rasa's RandomlyConnectedDense) as `Dense`."""
    import keras
    import tensorflow as tf
    from rasa.utils.tensorflow.layers import RandomlyConnectedDense

    if type(layer) not in (keras.layers.Dense, RandomlyConnectedDense):
        raise Unsupported(f"layer {type(layer).__name__}")
    if layer.activation is keras.activations.linear:
        use_gelu = False
    elif layer.activation is tf.nn.gelu:
        use_gelu = True
    else:
        raise Unsupported(f"activation {layer.activation}")
    kernel = _array(layer.kernel)
    mask = getattr(layer, "kernel_mask", None)
    if mask is not None:
        kernel = kernel * _array(mask)
    bias = _array(layer.bias) if layer.use_bias else None
    return Dense(kernel, bias, use_gelu)


def _ffnn(layer: Any) -> tuple[Dense, ...]:
    """Rasa's `Ffnn`: its dense layers in order (dropout does nothing at prediction)."""
    import keras
    from rasa.utils.tensorflow.layers import Ffnn

    if type(layer) is not Ffnn:
        raise Unsupported(f"layer {type(layer).__name__}")
    kept = []
    for sub in layer._ffn_layers:
        if isinstance(sub, keras.layers.Dropout):
            continue
        kept.append(_dense(sub))
    return tuple(kept)


def _layer_norm(layer: Any) -> LayerNorm:
    import keras

    if type(layer) is not keras.layers.LayerNormalization or list(layer.axis) not in (
        [-1], [2]) or not layer.center or not layer.scale:
        raise Unsupported("layer normalisation")
    return LayerNorm(_array(layer.gamma), _array(layer.beta), np.float32(layer.epsilon))


def _sparse_to_dense(combining: Any, feature_type: str) -> SparseToDense:
    from rasa.utils.tensorflow.layers import DenseForSparse
    from rasa.utils.tensorflow.rasa_layers import ConcatenateSparseDenseFeatures

    layer = combining._tf_layers.get(f"sparse_dense.{feature_type}")
    if type(layer) is not ConcatenateSparseDenseFeatures:
        raise Unsupported(f"no sparse {feature_type} features")
    dense = layer._tf_layers.get(ConcatenateSparseDenseFeatures.SPARSE_TO_DENSE)
    if type(dense) is not DenseForSparse or dense.activation is not _linear():
        raise Unsupported("sparse-to-dense layer")
    return SparseToDense(_array(dense.kernel), _array(dense.bias) if dense.use_bias else None)


def _linear() -> Any:
    import keras

    return keras.activations.linear


def _encoder_layer(layer: Any) -> EncoderLayer:
    from rasa.utils.tensorflow.transformer import MultiHeadAttention, TransformerEncoderLayer

    mha = layer._mha
    if type(layer) is not TransformerEncoderLayer or type(mha) is not MultiHeadAttention:
        raise Unsupported("encoder layer")
    if mha.unidirectional or mha.use_key_relative_position or mha.use_value_relative_position:
        raise Unsupported("relative or unidirectional attention")
    norm, hidden, _, out, _ = layer._ffn_layers
    return EncoderLayer(
        attention_norm=_layer_norm(layer._layer_norm),
        query=_dense(mha._query_dense_layer), key=_dense(mha._key_dense_layer),
        value=_dense(mha._value_dense_layer), output=_dense(mha._output_dense_layer),
        heads=int(mha.num_heads), ffn_norm=_layer_norm(norm), ffn_hidden=_dense(hidden),
        ffn_out=_dense(out))


def _read(model: Any) -> DietForward:
    """The weights of a prepared DIET on its prediction path, or `Unsupported`."""
    from rasa.nlu.classifiers.diet_classifier import DIET
    from rasa.utils.tensorflow.constants import (
        ENTITY_RECOGNITION,
        INNER,
        INTENT_CLASSIFICATION,
        SOFTMAX,
    )
    from rasa.utils.tensorflow.layers import Embed
    from rasa.utils.tensorflow.rasa_layers import RasaFeatureCombiningLayer, RasaSequenceLayer
    from rasa.utils.tensorflow.transformer import TransformerEncoder

    from bot.diet_batch import sparse_text_features_only

    if type(model) is not DIET:
        raise Unsupported(f"model {type(model).__name__}")
    if not model.config[INTENT_CLASSIFICATION] or model.config[ENTITY_RECOGNITION]:
        raise Unsupported("entity recognition or no intent classification")
    signature = model.predict_data_signature
    if set(signature) != {"text"} or not sparse_text_features_only(signature["text"]):
        raise Unsupported("prediction data other than sparse text features")
    if model.all_labels_embed is None:
        raise Unsupported("not prepared for prediction")

    sequence_layer = model._tf_layers.get("sequence_layer.text")
    if type(sequence_layer) is not RasaSequenceLayer:
        raise Unsupported("sequence layer")
    combining = sequence_layer._tf_layers[RasaSequenceLayer.FEATURE_COMBINING]
    if type(combining) is not RasaFeatureCombiningLayer:
        raise Unsupported("feature combining layer")
    if any(name.startswith("unify_dims") for name in combining._tf_layers):
        raise Unsupported("sequence and sentence features of different widths")
    transformer = sequence_layer._tf_layers[RasaSequenceLayer.TRANSFORMER]
    if not sequence_layer._has_transformer or type(transformer) is not TransformerEncoder or (
            transformer.unidirectional):
        raise Unsupported("no transformer, or a unidirectional one")
    angles = np.asarray(transformer._angles).astype(np.float32)

    embed = model._tf_layers.get("embed.text")
    if type(embed) is not Embed:
        raise Unsupported("text embedding")
    loss = model._tf_layers.get(f"loss.{model.label_name}")
    # what Rasa 3.6 allows DIET (train_utils._check_confidence_setting)
    if getattr(loss, "similarity_type", None) != INNER or (
            getattr(loss, "model_confidence", None) != SOFTMAX):
        raise Unsupported("similarity other than the inner product, confidence not softmax")
    return DietForward(
        sequence_to_dense=_sparse_to_dense(combining, "sequence"),
        sentence_to_dense=_sparse_to_dense(combining, "sentence"),
        hidden=_ffnn(sequence_layer._tf_layers[RasaSequenceLayer.FFNN]),
        embedding=_dense(transformer._embedding), angles=angles,
        positions=_positional_encoding(angles, KEPT_POSITIONS),
        encoder_layers=tuple(_encoder_layer(layer) for layer in transformer._enc_layers),
        final_norm=_layer_norm(transformer._layer_norm),
        text_embed=_dense(embed._dense),
        labels_embed=np.array(model.all_labels_embed.numpy(), dtype=np.float32))


def forward_for(model: Any) -> DietForward | None:
    """The model's numpy forward pass, read once per prepared label embedding; None if the
    model is not one this module computes."""
    labels = model.all_labels_embed
    kept = model.__dict__.get(_KEPT)
    if kept is not None and kept[0] is labels:
        return kept[1]
    try:
        forward: DietForward | None = DietForward.of(model)
    except Unsupported:
        forward = None
    model.__dict__[_KEPT] = (labels, forward)
    return forward


def predicts(model: Any) -> bool:
    """Whether the installed patch computes this prepared model's predictions (for
    bot/lean_model_load.py, which then need not trace TensorFlow's prediction function)."""
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier

    return hasattr(DIETClassifier, _ORIGINAL) and forward_for(model) is not None


def install() -> None:
    """`DIETClassifier._predict` through numpy where the model and the message allow it."""
    from rasa.nlu.classifiers.diet_classifier import DIETClassifier

    from bot.diet_batch import message_batch

    if hasattr(DIETClassifier, _ORIGINAL):
        return
    original = DIETClassifier._predict

    def _predict(self: Any, message: Any) -> Any:
        model = self.model
        if (type(self) is DIETClassifier and model is not None
                and model.prepared_for_prediction and not model._run_eagerly):
            forward = forward_for(model)
            batch = None if forward is None else message_batch(
                message, self.component_config.get("featurizers"))
            if forward is not None and batch is not None:
                diagnostics = bool(self._execution_context.should_add_diagnostic_data)
                out = forward.predict(batch, diagnostics=diagnostics)
                if out is not None:
                    model._training = False  # as Rasa's `_rasa_predict`
                    return out
        return original(self, message)

    setattr(DIETClassifier, _ORIGINAL, original)
    DIETClassifier._predict = _predict
    one_blas_thread()


_blas_limit: list[Any] = []


def one_blas_thread() -> None:
    """numpy's OpenBLAS on one thread in this process. With its default (a thread per core)
    the forward pass's small products are split across threads that then spin waiting for
    work: measured, twice the CPU for the same wall time (0.31 ms of wall, 0.62 ms of CPU per
    message), on cores the other processes need."""
    from threadpoolctl import threadpool_limits

    if not _blas_limit:
        _blas_limit.append(threadpool_limits(limits=1, user_api="blas"))

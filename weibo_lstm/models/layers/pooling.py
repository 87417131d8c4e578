"""Masked pooling of a sequence of vectors into one vector."""

from __future__ import annotations

import keras
import tensorflow as tf

POOLING_MODES = ("mean", "max", "mean_max", "attention")


@keras.saving.register_keras_serializable(package="weibo_lstm")
class MaskedPooling(keras.layers.Layer):
    """Pools `[batch, time, features]` over the unmasked time steps.

    Modes:
        * `mean`: average of the unmasked steps.
        * `max`: element-wise maximum of the unmasked steps.
        * `mean_max`: both, concatenated (`2 × features`).
        * `attention`: `softmax_t(v · tanh(W x_t + b))`-weighted sum of the steps,
          masked steps excluded (additive attention, `attention_units` wide).

    A row must have at least one unmasked step (the tokenizer guarantees it).

    Args:
        mode: one of `POOLING_MODES`.
        attention_units: width of the attention scorer (mode `attention`).
        **kwargs: `keras.layers.Layer` arguments.

    Example:

    >>> pool = MaskedPooling("mean_max")
    >>> x = tf.constant([[[1.0], [3.0], [100.0]]])
    >>> pool(x, mask=tf.constant([[True, True, False]])).numpy().tolist()
    [[2.0, 3.0]]
    """

    def __init__(self, mode: str = "mean", attention_units: int = 64, **kwargs):
        super().__init__(**kwargs)
        if mode not in POOLING_MODES:
            raise ValueError(
                f"Argument `mode` must be one of {POOLING_MODES}. Received: mode={mode!r}"
            )
        self.mode = mode
        self.attention_units = int(attention_units)
        self.supports_masking = True
        if mode == "attention":
            # Keras does not hand a layer's dtype policy down to the layers it creates.
            self.scorer = keras.layers.Dense(
                self.attention_units, activation="tanh", dtype=self.dtype_policy, name="scorer"
            )
            self.score = keras.layers.Dense(
                1, use_bias=False, dtype=self.dtype_policy, name="score"
            )

    def build(self, input_shape):
        if self.mode == "attention":
            self.scorer.build(input_shape)
            self.score.build((*input_shape[:-1], self.attention_units))

    def call(self, inputs, mask=None):
        if mask is None:
            mask = tf.ones(tf.shape(inputs)[:2], tf.bool)
        weights = tf.cast(mask, inputs.dtype)[..., None]
        if self.mode == "attention":
            scores = self.score(self.scorer(inputs))
            scores = tf.where(mask[..., None], scores, tf.cast(-1e9, scores.dtype))
            return tf.reduce_sum(tf.nn.softmax(scores, axis=1) * inputs, axis=1)
        mean = tf.reduce_sum(inputs * weights, axis=1) / tf.maximum(
            tf.reduce_sum(weights, axis=1), 1.0
        )
        if self.mode == "mean":
            return mean
        maximum = tf.reduce_max(tf.where(mask[..., None], inputs, inputs.dtype.min), axis=1)
        if self.mode == "max":
            return maximum
        return tf.concat([mean, maximum], axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        features = input_shape[-1] * (2 if self.mode == "mean_max" else 1)
        return (input_shape[0], features)

    def get_config(self) -> dict:
        return {**super().get_config(), "mode": self.mode, "attention_units": self.attention_units}

"""Batch normalization whose statistics are shared by all replicas, masks included."""

from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="weibo_lstm")
class SyncBatchNormalization(keras.layers.BatchNormalization):
    """`BatchNormalization` with batch statistics all-reduced across replicas.

    In training, each replica computes masked sums `Σx`, `Σx²` and counts over its
    local batch, and one `all_reduce(SUM)` of the three turns them into the mean and
    variance of the global batch. N replicas with batch B/N then normalise exactly as
    one replica with batch B does, which keeps `DistributedTrainer` runs independent
    of the replica count.

    Keras's own `BatchNormalization(synchronized=True)` skips the synchronisation
    when a mask is present (the output of `LSTM(return_sequences=True)` after a
    `mask_zero` embedding always has one), so it cannot serve `WeiboLSTM`.

    Outside a multi-replica context this is plain masked batch normalization.

    Example:

    >>> layer = SyncBatchNormalization()
    >>> x = tf.constant([[[1.0], [3.0], [100.0]]])
    >>> mask = tf.constant([[True, True, False]])
    >>> y = layer(x, training=True, mask=mask)
    >>> [round(float(v), 3) for v in y[0, :2, 0]]
    [-1.0, 1.0]
    """

    def __init__(self, **kwargs):
        kwargs.pop("synchronized", None)
        super().__init__(synchronized=True, **kwargs)

    def _moments(self, inputs, mask):
        if mask is None:
            weights = tf.ones_like(inputs[..., :1])
        else:
            weights = tf.expand_dims(tf.cast(mask, inputs.dtype), -1)
        weights = tf.broadcast_to(weights, tf.shape(inputs))
        axes = self._reduction_axes
        sums = tf.stack(
            [
                tf.reduce_sum(inputs * weights, axes),
                tf.reduce_sum(tf.square(inputs) * weights, axes),
                tf.reduce_sum(weights, axes),
            ]
        )
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            sums = replica.all_reduce(tf.distribute.ReduceOp.SUM, sums)
        total, total_sq, count = tf.unstack(sums)
        mean = tf.math.divide_no_nan(total, count)
        variance = tf.maximum(tf.math.divide_no_nan(total_sq, count) - tf.square(mean), 0.0)
        return mean, variance

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("synchronized", None)
        return config

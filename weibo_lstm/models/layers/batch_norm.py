"""Batch normalization that behaves the same on one replica or many."""

from __future__ import annotations

import keras
import tensorflow as tf

#: Batch renormalization's limits `(rmax, dmax)` on the corrections `r` and `d` (the
#: final values of Ioffe, 2017).
RENORM_CLIPPING = (3.0, 5.0)
#: Momentum of the moving statistics under batch renormalization: they normalise in
#: training, so they must follow features that change quickly at the short budgets'
#: learning rates (0.99 lagged: waimai_10k training accuracy stayed near 0.7).
RENORM_MOMENTUM = 0.9


@keras.saving.register_keras_serializable(package="weibo_lstm")
class DistributedBatchNormalization(keras.layers.BatchNormalization):
    """`BatchNormalization` whose state stays identical on every replica.

    Two problems of Keras 3's `BatchNormalization` in a custom `strategy.run` loop
    (measured with TF 2.21 / Keras 3.15, see tests/test_model.py):

    * Its moving mean and variance are created with aggregation `NONE`, so under
      `MirroredStrategy` each replica silently keeps its own moving statistics;
      reading the variable shows replica 0's, while replica 1 evaluates with its
      own. Here they are created with aggregation `MEAN`: each update averages the
      replicas' batch statistics, and all replicas hold the same values.
    * `synchronized=True` is skipped whenever a mask is present (always, after an
      `LSTM(return_sequences=True)` on a `mask_zero` embedding). Here, with
      `synchronized=True`, each replica computes masked sums `Σx`, `Σx²` and
      counts, and one `all_reduce(SUM)` of the three gives the moments of the
      global batch: N replicas with batch B/N then normalise exactly as one replica
      with batch B.

    * Its moving variance starts at 1.0 and moves 1 % per step (momentum 0.99).
      The outputs of the seed's LSTMs vary by ~1e-3, so for the first ~700 steps
      inference divides by a standard deviation up to 30× too large (measured on
      waimai_10k: 0.22 vs 0.0003-0.003 after 150 steps), which made the seed's
      validation accuracy erratic on short runs. Here the moving statistics start
      at zero and the first training batch sets them outright (a moving variance
      that is zero in every channel means "never updated"); later updates are the
      usual exponential average.

    * Batches that are not i.i.d. (length buckets) make batch statistics a
      feature of the batch: `renormalize = True` (`use_batch_renormalization`)
      switches training to batch renormalization (Ioffe, 2017), which normalises
      with the moving statistics as inference does.

    With `synchronized=False` (the default, as in the seed) training normalises
    with each replica's own batch statistics. On one replica both modes are plain
    masked batch normalization.

    Args:
        synchronized: compute batch statistics over the global batch.
        **kwargs: `keras.layers.BatchNormalization` arguments.

    Example:

    >>> layer = DistributedBatchNormalization()
    >>> x = tf.constant([[[1.0], [3.0], [100.0]]])
    >>> mask = tf.constant([[True, True, False]])
    >>> y = layer(x, training=True, mask=mask)
    >>> [round(float(v), 3) for v in y[0, :2, 0]]
    [-1.0, 1.0]
    """

    def __init__(self, synchronized: bool = False, **kwargs):
        kwargs.setdefault("moving_variance_initializer", "zeros")
        super().__init__(**kwargs)
        # Keras's own flag stays False: `_moments` below does the synchronisation.
        self.synchronize_moments = bool(synchronized)
        # Set by `weibo_lstm.training.precise_bn` while it recomputes the moving statistics:
        # variables (Σx, Σx², count) that training-mode calls add their global
        # batch sums to instead of updating the moving averages.
        self.statistics_accumulator = None
        # Set by `use_batch_renormalization` (the trainer, for length buckets): training
        # normalises with the moving statistics (see `_renormalize`).
        self.renormalize = False

    def add_weight(self, *args, **kwargs):
        if not kwargs.get("trainable", True):  # moving mean / variance
            kwargs.setdefault("aggregation", "mean")
        return super().add_weight(*args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        if self.statistics_accumulator is not None:
            x = tf.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
            return self._accumulate(x, mask)
        if not training or not self.trainable or self.renorm:
            return super().call(inputs, training=training, mask=mask)
        # Keras's training branch, except for the moving statistics' first update.
        x = tf.cast(inputs, keras.backend.result_type(inputs.dtype, "float32"))
        mean, variance = self._moments(x, mask)
        # Zero moving variance everywhere means "never updated": take the batch's
        # statistics outright instead of averaging them into the initial values.
        fresh = tf.reduce_all(tf.equal(self.moving_variance, 0.0))
        if self.renormalize:
            return self._renormalize(x, mean, variance, fresh)
        momentum = tf.where(fresh, 0.0, self.momentum)
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum + variance * (1.0 - momentum))
        return self._normalize(x, mean, variance)

    def _renormalize(self, x, mean, variance, fresh):
        """Batch renormalization (Ioffe, 2017) for batches that are not i.i.d.

        `(x − μ_B) / σ_B · r + d` with `r = σ_B / σ`, `d = (μ_B − μ) / σ` (no gradient,
        clipped to `[1/rmax, rmax]` and `[−dmax, dmax]`) equals `(x − μ) / σ`: the
        moving statistics normalise in training as at inference, while gradients
        still see the batch's. The moving variance tracks `σ_B² + (μ_B − μ)²`, the
        variance around the moving mean, so the spread *between* length bands is in
        it too.
        """
        rmax, dmax = RENORM_CLIPPING
        std = tf.sqrt(self.moving_variance + self.epsilon)
        batch_std = tf.sqrt(variance + self.epsilon)
        r = tf.stop_gradient(tf.clip_by_value(batch_std / std, 1.0 / rmax, rmax))
        d = tf.stop_gradient(tf.clip_by_value((mean - self.moving_mean) / std, -dmax, dmax))
        r, d = tf.where(fresh, tf.ones_like(r), r), tf.where(fresh, tf.zeros_like(d), d)
        # y = γ((x − μ_B)/σ_B · r + d) + β as one batch normalisation with adjusted moments.
        adjusted_std = batch_std / r
        adjusted_mean = mean - d * adjusted_std
        momentum = tf.where(fresh, 0.0, RENORM_MOMENTUM)
        spread = variance + tf.where(fresh, 0.0, tf.square(mean - self.moving_mean))
        self.moving_mean.assign(self.moving_mean * momentum + mean * (1.0 - momentum))
        self.moving_variance.assign(self.moving_variance * momentum + spread * (1.0 - momentum))
        return self._normalize(x, adjusted_mean, tf.square(adjusted_std) - self.epsilon)

    def _accumulate(self, x, mask):
        total, total_sq, count = self._global_sums(x, mask)
        for variable, value in zip(
            self.statistics_accumulator, (total, total_sq, count), strict=True
        ):
            variable.assign_add(tf.cast(value, variable.dtype))
        return self._normalize(x, *_moments_from_sums(total, total_sq, count))

    def _normalize(self, x, mean, variance):
        outputs = keras.ops.batch_normalization(
            x,
            mean,
            variance,
            axis=self.axis,
            offset=tf.cast(self.beta, x.dtype) if self.center else None,
            scale=tf.cast(self.gamma, x.dtype) if self.scale else None,
            epsilon=self.epsilon,
        )
        return tf.cast(outputs, self.compute_dtype)

    def _moments(self, inputs, mask):
        replica = tf.distribute.get_replica_context()
        if not self.synchronize_moments or replica is None or replica.num_replicas_in_sync == 1:
            return super()._moments(inputs, mask)
        total, total_sq, count = self._global_sums(inputs, mask)
        return _moments_from_sums(total, total_sq, count)

    def _global_sums(self, inputs, mask):
        """Masked `Σx`, `Σx²` and count per channel over every replica's batch."""
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
        return tf.unstack(sums)

    def get_config(self) -> dict:
        config = super().get_config()
        config["synchronized"] = self.synchronize_moments
        return config


def _moments_from_sums(total, total_sq, count):
    """Mean and (non-negative) variance from `Σx`, `Σx²` and the count."""
    mean = tf.math.divide_no_nan(total, count)
    return mean, tf.maximum(tf.math.divide_no_nan(total_sq, count) - tf.square(mean), 0.0)


def batch_norm_layers(model: keras.layers.Layer) -> list[DistributedBatchNormalization]:
    """Every `DistributedBatchNormalization` layer inside `model`."""
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, DistributedBatchNormalization)
    ]


def plain_batch_norm_layers(model: keras.layers.Layer) -> list[keras.layers.BatchNormalization]:
    """Keras `BatchNormalization` layers in `model` that are not `DistributedBatchNormalization`.

    Such layers can neither renormalise nor take precise statistics, so a model with
    them must not train on length buckets (`DistributedTrainer` falls back to
    shuffled batches).

    Example:

    >>> model = keras.Sequential([keras.layers.BatchNormalization(), DistributedBatchNormalization()])
    >>> [type(layer).__name__ for layer in plain_batch_norm_layers(model)]
    ['BatchNormalization']
    """
    return [
        layer
        for layer in model._flatten_layers(include_self=True, recursive=True)
        if isinstance(layer, keras.layers.BatchNormalization)
        and not isinstance(layer, DistributedBatchNormalization)
    ]


def use_batch_renormalization(model: keras.layers.Layer, enabled: bool = True) -> int:
    """Makes every `DistributedBatchNormalization` in `model` renormalise in training.

    For batches that are not i.i.d. samples of the data, such as length buckets:
    each BatchNorm layer then normalises a training batch as inference would, with
    the moving statistics (`_renormalize`), instead of with the batch's own. Takes
    effect in calls traced afterwards; inference is unchanged.

    Returns:
        How many layers were switched.

    Example:

    >>> model = keras.Sequential([keras.Input((3,)), DistributedBatchNormalization()])
    >>> use_batch_renormalization(model), model.layers[0].renormalize
    (1, True)
    """
    layers = batch_norm_layers(model)
    for layer in layers:
        layer.renormalize = bool(enabled)
    return len(layers)


def has_batch_norm(model: keras.layers.Layer) -> bool:
    """Whether `model` (or any layer inside it) is a BatchNormalization layer.

    Trained with length buckets, such a model normalises each batch with the
    statistics of one length band and learns features relative to the band, which
    inference does not see (waimai_10k, seed model, 4 epochs: validation accuracy
    0.62 with buckets, 0.89 without); `DistributedTrainer` therefore trains it with
    batch renormalization on buckets that are not stratified by class
    (`use_batch_renormalization`) and recomputes the moving statistics after each
    epoch (`TrainerOptions.precise_bn_batches`, `weibo_lstm.training.precise_bn`).

    Example:

    >>> has_batch_norm(keras.Sequential([keras.layers.BatchNormalization()]))
    True
    """
    if isinstance(model, keras.layers.BatchNormalization):
        return True
    return any(has_batch_norm(sub) for sub in getattr(model, "layers", ()) if sub is not model)

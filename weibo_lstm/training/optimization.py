"""The optimizer and learning-rate schedule `DistributedTrainer` builds from its options.

Public so that a caller can build the same thing and change it before training (for
example an optimizer per group of variables with its own rate) and pass it in as
`DistributedTrainer(optimizer=...)`, created under `strategy.scope()`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import keras
import tensorflow as tf

from weibo_lstm.training.schedules import WarmupCosineDecay

logger = logging.getLogger("weibo_lstm")


def learning_rate_schedule(
    options, *, num_replicas: int, steps_per_epoch: int, scale: float = 1.0
) -> WarmupCosineDecay:
    """The warmup + cosine schedule over the whole run that `options` describe.

    peak = `options.peak_learning_rate(num_replicas)` × `scale`; the rate rises
    linearly from `initial_lr_fraction` × peak to peak over `warmup_epochs`, then
    follows a cosine to `min_lr_fraction` × peak at the last step (`epochs` ×
    `steps_per_epoch`).

    Args:
        options: a `TrainerOptions`.
        num_replicas: replicas in sync (the peak is scaled by `options.lr_scaling`).
        steps_per_epoch: optimizer steps per epoch.
        scale: multiplies the peak (e.g. 0.1 for a pretrained encoder's variables).

    Example:

    >>> from weibo_lstm.training.trainer import TrainerOptions
    >>> schedule = learning_rate_schedule(
    ...     TrainerOptions(epochs=2, learning_rate=1e-3, warmup_epochs=1, lr_scaling="none"),
    ...     num_replicas=1, steps_per_epoch=10)
    >>> round(float(schedule(10)), 6), round(float(schedule(20)), 6)
    (0.001, 0.0)
    """
    o = options
    peak = o.peak_learning_rate(num_replicas) * scale
    total = o.epochs * steps_per_epoch
    warmup = round(o.warmup_epochs * steps_per_epoch)
    if warmup >= total:
        logger.warning(
            "warmup_epochs=%s covers the whole run of %d epochs; warming up for %d of %d steps",
            o.warmup_epochs,
            o.epochs,
            total - 1,
            total,
        )
        warmup = total - 1
    return WarmupCosineDecay(
        peak * o.initial_lr_fraction, peak, warmup, total, alpha=o.min_lr_fraction
    )


def clip_by_global_norm_across_replicas(
    gradients: list[tf.Tensor], clip_norm: float, *, loss_scale=1.0
) -> list[tf.Tensor]:
    """This replica's `gradients`, scaled so that their sum over the replicas has
    global L2 norm at most `clip_norm` (`tf.clip_by_global_norm` of the sum).

    Call it in a replica context, before the optimizer's all-reduce: the sum of the
    returned gradients over the replicas is the clipped sum. The norm is that of the
    sum divided by `loss_scale`, so a float16 run clips the same gradient as a float32
    one. A non-finite norm leaves the gradients non-finite (the step is undone).

    Example:

    >>> g = clip_by_global_norm_across_replicas([tf.constant([3.0]), tf.constant([4.0])], 1.0)
    >>> [round(float(t[0]), 3) for t in g]
    [0.6, 0.8]
    """
    context = tf.distribute.get_replica_context()
    total = gradients
    if context is not None and context.num_replicas_in_sync > 1:
        total = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
    norm = tf.linalg.global_norm(total) / tf.cast(loss_scale, tf.float32)
    factor = clip_norm / tf.maximum(norm, clip_norm)
    return [g * tf.cast(factor, g.dtype) for g in gradients]


def build_optimizer(
    options, *, num_replicas: int, steps_per_epoch: int
) -> keras.optimizers.Optimizer:
    """Adam with `learning_rate_schedule(options, ...)`: the trainer's default.

    Call it under the trainer's `strategy.scope()` (Keras's optimizer captures the
    current strategy when it is created).
    """
    schedule = learning_rate_schedule(
        options, num_replicas=num_replicas, steps_per_epoch=steps_per_epoch
    )
    return keras.optimizers.Adam(schedule)


@keras.saving.register_keras_serializable(package="weibo_lstm")
class EncoderAdam(keras.optimizers.Adam):
    """Adam with a lower learning rate for the encoder, which starts frozen.

    For a variable of `encoder_variables`, the update uses

        lr_encoder(step) = 0                                  if step < frozen_steps
                           encoder_lr_multiplier * lr(step)   otherwise

    and every other variable the schedule's `lr(step)`. Adam is invariant to a
    scaling of the gradients, so the rate itself must be scaled. A frozen variable's
    moments still accumulate, so it resumes with calibrated step sizes.

    Args:
        encoder_variables: the variables that get the lower rate (e.g. the weights of
            `WeiboLSTM.encoder_layers()`).
        encoder_lr_multiplier: factor on the learning rate of the encoder.
        frozen_steps: optimizer steps during which the encoder does not move.
        **kwargs: `keras.optimizers.Adam` arguments (`learning_rate`, …).

    Example:

    >>> from weibo_lstm.models.backbone import WeiboLSTM
    >>> model = WeiboLSTM(20, lstm_units=(4,), dense_units=0, batch_norm=False)
    >>> model.build()
    >>> encoder = [w for layer in model.encoder_layers() for w in layer.trainable_weights]
    >>> optimizer = EncoderAdam(encoder_variables=encoder, frozen_steps=1)
    >>> before = [np.array(w) for w in model.trainable_weights]
    >>> with tf.GradientTape() as tape:
    ...     loss = tf.reduce_sum(model(np.array([[3, 4]]), training=True)[:, 0])
    >>> _ = optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights),
    ...                                   model.trainable_weights))
    >>> [bool((np.array(w) != b).any()) for w, b in zip(model.trainable_weights, before)]
    [False, False, False, False, True, True]
    """

    def __init__(
        self,
        *,
        encoder_variables: Iterable = (),
        encoder_lr_multiplier: float = 1.0,
        frozen_steps: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if encoder_lr_multiplier < 0:
            raise ValueError(
                "Argument `encoder_lr_multiplier` must be >= 0. "
                f"Received: encoder_lr_multiplier={encoder_lr_multiplier}"
            )
        if frozen_steps < 0:
            raise ValueError(
                f"Argument `frozen_steps` must be >= 0. Received: frozen_steps={frozen_steps}"
            )
        self.encoder_lr_multiplier = float(encoder_lr_multiplier)
        self.frozen_steps = int(frozen_steps)
        self._encoder_keys = {self._var_key(v) for v in encoder_variables}

    def update_step(self, gradient, variable, learning_rate):
        if self._var_key(variable) in self._encoder_keys:
            factor = tf.where(self.iterations < self.frozen_steps, 0.0, self.encoder_lr_multiplier)
            learning_rate = tf.cast(learning_rate, factor.dtype) * factor
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {"encoder_lr_multiplier": self.encoder_lr_multiplier, "frozen_steps": self.frozen_steps}
        )
        return config

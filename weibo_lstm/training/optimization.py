"""The optimizer and learning-rate schedule `DistributedTrainer` builds from its options.

Public so that a caller can build the same thing and change it before training (for
example an optimizer per group of variables with its own rate) and pass it in as
`DistributedTrainer(optimizer=...)`, created under `strategy.scope()`.
"""

from __future__ import annotations

import logging

import keras
import tensorflow as tf

from weibo_lstm.training.schedules import WarmupCosineDecay

logger = logging.getLogger("weibo_lstm")


def learning_rate_schedule(
    options, *, num_replicas: int, steps_per_epoch: int, epochs: int
) -> WarmupCosineDecay:
    """The warmup + cosine schedule over a run of `epochs` epochs.

    peak = `options.peak_learning_rate(num_replicas)`; the rate rises
    linearly from `initial_lr_fraction` × peak to peak over `warmup_epochs`, then
    follows a cosine to `min_lr_fraction` × peak at the last step (`epochs` ×
    `steps_per_epoch`).

    Args:
        options: a `TrainerOptions`.
        num_replicas: replicas in sync (the peak is scaled by `options.lr_scaling`).
        steps_per_epoch: optimizer steps per epoch.
        epochs: the run's epochs (`ControllerOptions.epochs`).

    Example:

    >>> from weibo_lstm.training.options import TrainerOptions
    >>> schedule = learning_rate_schedule(
    ...     TrainerOptions(learning_rate=1e-3, warmup_epochs=1, lr_scaling="none"),
    ...     num_replicas=1, steps_per_epoch=10, epochs=2)
    >>> round(float(schedule(10)), 6), round(float(schedule(20)), 6)
    (0.001, 0.0)
    """
    o = options
    peak = o.peak_learning_rate(num_replicas)
    total = epochs * steps_per_epoch
    warmup = round(o.warmup_epochs * steps_per_epoch)
    if warmup >= total:
        logger.warning(
            "warmup_epochs=%s covers the whole run of %d epochs; warming up for %d of %d steps",
            o.warmup_epochs,
            epochs,
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
    options, *, num_replicas: int, steps_per_epoch: int, epochs: int
) -> keras.optimizers.Optimizer:
    """Adam with `learning_rate_schedule(options, ...)`: the trainer's default.

    Call it under the trainer's `strategy.scope()` (Keras's optimizer captures the
    current strategy when it is created).
    """
    schedule = learning_rate_schedule(
        options, num_replicas=num_replicas, steps_per_epoch=steps_per_epoch, epochs=epochs
    )
    return keras.optimizers.Adam(schedule)

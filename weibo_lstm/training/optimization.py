"""The optimizer and learning-rate schedule `DistributedTrainer` builds from its options.

Public so that a caller can build the same thing and change it before training (for
example an optimizer per group of variables with its own rate) and pass it in as
`DistributedTrainer(optimizer=...)`, created under `strategy.scope()`.
"""

from __future__ import annotations

import logging

import keras

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

"""Learning-rate schedules."""

from __future__ import annotations

import math

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="weibo_lstm")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from `initial_lr` to `target_lr`, then cosine decay.

    With `w = warmup_steps`, `d = decay_steps` and `p = min(1, (step - w) / (d - w))`:

        lr(step) = initial_lr + (target_lr - initial_lr) * step / w        if step < w
        lr(step) = target_lr * (alpha + (1 - alpha) * 0.5 * (1 + cos(pi * p)))  otherwise

    so the rate reaches `target_lr` at `step = w`, falls to `alpha * target_lr` at
    `step = d`, and stays there. `alpha = 0` is the seed's schedule.

    Args:
        initial_lr: rate at step 0.
        target_lr: peak rate, reached at the end of warmup.
        warmup_steps: length of the linear warmup (0 starts at `target_lr`).
        decay_steps: step at which the cosine reaches its floor; `> warmup_steps`.
        alpha: floor as a fraction of `target_lr`, in [0, 1].
        name: schedule name.

    Example:

    >>> schedule = WarmupCosineDecay(1e-4, 1e-3, warmup_steps=10, decay_steps=110)
    >>> [round(float(schedule(s)), 6) for s in (0, 5, 10, 60, 110, 200)]
    [0.0001, 0.00055, 0.001, 0.0005, 0.0, 0.0]
    """

    def __init__(
        self,
        initial_lr: float,
        target_lr: float,
        warmup_steps: int,
        decay_steps: int,
        alpha: float = 0.0,
        name: str = "WarmupCosineDecay",
    ):
        super().__init__()
        for arg, value in (("initial_lr", initial_lr), ("target_lr", target_lr)):
            if not value >= 0:
                raise ValueError(f"Argument `{arg}` must be >= 0. Received: {arg}={value}")
        if warmup_steps < 0:
            raise ValueError(
                f"Argument `warmup_steps` must be >= 0. Received: warmup_steps={warmup_steps}"
            )
        if decay_steps <= warmup_steps:
            raise ValueError(
                "Argument `decay_steps` must be > `warmup_steps`. Received: "
                f"decay_steps={decay_steps}, warmup_steps={warmup_steps}"
            )
        if not 0 <= alpha <= 1:
            raise ValueError(f"Argument `alpha` must be in [0, 1]. Received: alpha={alpha}")
        self.initial_lr = float(initial_lr)
        self.target_lr = float(target_lr)
        self.warmup_steps = int(warmup_steps)
        self.decay_steps = int(decay_steps)
        self.alpha = float(alpha)
        self.name = name

    def __call__(self, step):
        with tf.name_scope(self.name):
            step = tf.cast(step, tf.float32)
            warmup = float(max(self.warmup_steps, 1))
            warmup_lr = self.initial_lr + (self.target_lr - self.initial_lr) * step / warmup
            progress = (step - self.warmup_steps) / float(self.decay_steps - self.warmup_steps)
            progress = tf.clip_by_value(progress, 0.0, 1.0)
            cosine = 0.5 * (1.0 + tf.cos(math.pi * progress))
            decay_lr = self.target_lr * (self.alpha + (1.0 - self.alpha) * cosine)
            return tf.where(step < self.warmup_steps, warmup_lr, decay_lr)

    def get_config(self) -> dict:
        return {
            "initial_lr": self.initial_lr,
            "target_lr": self.target_lr,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "alpha": self.alpha,
            "name": self.name,
        }

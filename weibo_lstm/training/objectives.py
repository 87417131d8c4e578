"""Objectives: the task-specific part of a training step, passed to `DistributedTrainer`.

The trainer owns distribution (replica steps, the all-reduce, the step loop, exact
evaluation) and knows nothing about classes or tokens. An `Objective` turns one
per-replica batch into a per-example loss and a vector of summed statistics; the
trainer sums those statistics over replicas and steps (exactly, in float64) and asks
the objective to turn the sums into metrics. A classifier and a language model train
on the same loop this way.
"""

from __future__ import annotations

import abc

import keras
import numpy as np
import tensorflow as tf


class Objective(abc.ABC):
    """What the trainer minimises and measures for one task.

    Subclasses set `stat_names` and implement `__call__` and `metrics`.

    Attributes:
        stat_names: names of the statistics `__call__` returns; the trainer sums
            them over replicas and steps (never averages), so a metric that is a
            ratio is computed in `metrics` from exact sums.
        monitor: the validation metric that selects the best epoch by default.
        mode: `"max"` or `"min"`: whether a larger `monitor` is better.
    """

    stat_names: tuple[str, ...] = ()
    monitor: str = "val_loss"
    mode: str = "min"

    @abc.abstractmethod
    def __call__(
        self, model: keras.Model, batch: dict, training: bool
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Runs `model` on one per-replica batch.

        Args:
            model: the model being trained.
            batch: `ids` `[b, T]` int32 (0 = padding, right-padded), `labels` `[b]`
                int32, `weights` `[b]` float32 (0 for rows that only fill the last
                batch), `index` `[b]` int64.
            training: training mode (dropout on, BatchNorm batch statistics).

        Returns:
            `(per_example_loss [b], stats [len(stat_names)])`, both float32. The
            trainer averages the loss over the global batch with `weights`; the
            statistics must already leave out rows whose weight is 0.
        """

    @abc.abstractmethod
    def metrics(self, stats: np.ndarray, prefix: str = "") -> dict[str, float]:
        """Metrics from statistics summed over replicas and steps, keys prefixed."""

    def predict(self, model: keras.Model, batch: dict) -> tf.Tensor:
        """Per-row outputs for `DistributedTrainer.predict` (default: the model's)."""
        return model(batch["ids"], training=False)


class ClassificationObjective(Objective):
    """Cross-entropy over classes; loss, accuracy, precision and recall of class 1.

    Args:
        label_smoothing: cross-entropy label smoothing.
        from_logits: the model outputs logits rather than probabilities
            (`predict` then applies a softmax).

    Raises:
        ValueError: `label_smoothing` is out of range.

    Example:

    >>> objective = ClassificationObjective()
    >>> model = lambda ids, training: tf.constant([[0.2, 0.8], [0.9, 0.1], [0.5, 0.5]])
    >>> batch = {"ids": tf.zeros([3, 1], tf.int32), "labels": tf.constant([1, 1, 0]),
    ...          "weights": tf.constant([1.0, 1.0, 0.0])}
    >>> loss, stats = objective(model, batch, training=False)
    >>> objective.metrics(stats.numpy())["accuracy"]
    0.5
    """

    stat_names = ("loss_sum", "count", "correct", "true_pos", "false_pos", "false_neg")
    monitor = "val_accuracy"
    mode = "max"

    def __init__(
        self,
        *,
        label_smoothing: float = 0.0,
        from_logits: bool = False,
    ):
        if not 0 <= label_smoothing < 1:
            raise ValueError(
                "Argument `label_smoothing` must be in [0, 1). "
                f"Received: label_smoothing={label_smoothing}"
            )
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def _loss(self, labels, outputs):
        return keras.losses.categorical_crossentropy(
            tf.one_hot(labels, tf.shape(outputs)[-1]),
            outputs,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def __call__(self, model, batch, training):
        labels = batch["labels"]
        outputs = model(batch["ids"], training=training)
        per_example_loss = self._loss(labels, outputs)
        mask = tf.cast(batch["weights"] > 0, tf.float32)
        predicted = tf.cast(tf.argmax(outputs, axis=-1), labels.dtype)
        actual_pos = tf.cast(labels == 1, tf.float32)
        predicted_pos = tf.cast(predicted == 1, tf.float32)
        stats = tf.stack(
            [
                tf.reduce_sum(tf.cast(per_example_loss, tf.float32) * mask),
                tf.reduce_sum(mask),
                tf.reduce_sum(tf.cast(predicted == labels, tf.float32) * mask),
                tf.reduce_sum(actual_pos * predicted_pos * mask),
                tf.reduce_sum((1 - actual_pos) * predicted_pos * mask),
                tf.reduce_sum(actual_pos * (1 - predicted_pos) * mask),
            ]
        )
        return per_example_loss, stats

    def metrics(self, stats, prefix=""):
        s = dict(zip(self.stat_names, np.asarray(stats, np.float64).tolist(), strict=True))
        count = max(s["count"], 1.0)
        predicted_pos = s["true_pos"] + s["false_pos"]
        actual_pos = s["true_pos"] + s["false_neg"]
        return {
            f"{prefix}loss": s["loss_sum"] / count,
            f"{prefix}accuracy": s["correct"] / count,
            f"{prefix}precision": s["true_pos"] / predicted_pos if predicted_pos else 0.0,
            f"{prefix}recall": s["true_pos"] / actual_pos if actual_pos else 0.0,
        }

    def predict(self, model, batch):
        outputs = model(batch["ids"], training=False)
        return tf.nn.softmax(outputs) if self.from_logits else outputs

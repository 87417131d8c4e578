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

from weibo_lstm.errors import check_argument


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
    """Cross-entropy over classes; loss, accuracy, precision, recall and macro-F1.

    With two classes, `precision` and `recall` are those of class 1 (积极), as in the
    seed; with more, their macro averages. `macro_f1` is the mean of the classes' F1.

    A batch may say which classes each row's label was chosen among (`expressible`,
    from a corpus with a coarser label set, `LabeledTexts.expressible`): the row's
    loss is then the likelihood of its label among those classes,
    `−log(p_y / Σ_{k expressible} p_k)`, and it counts as correct when its label is the
    most probable of them. Batches without `expressible` train on the plain
    cross-entropy.

    Args:
        num_classes: the model's classes.
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

    monitor = "val_accuracy"
    mode = "max"

    def __init__(
        self,
        *,
        num_classes: int = 2,
        label_smoothing: float = 0.0,
        from_logits: bool = False,
    ):
        check_argument("num_classes", num_classes, num_classes >= 2, ">= 2")
        check_argument("label_smoothing", label_smoothing, 0 <= label_smoothing < 1, "in [0, 1)")
        self.num_classes = int(num_classes)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)
        if self.num_classes == 2:  # the seed's statistics, summed as they always were
            self.stat_names = ("loss_sum", "count", "correct", "true_pos", "false_pos", "false_neg")
        else:
            self.stat_names = (
                "loss_sum",
                "count",
                "correct",
                *(
                    f"{kind}_{k}"
                    for kind in ("true", "predicted", "actual")
                    for k in range(num_classes)
                ),
            )

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
        scores = outputs
        if "expressible" in batch:
            per_example_loss, scores = self._partial(
                per_example_loss, outputs, batch["expressible"]
            )
        mask = tf.cast(batch["weights"] > 0, tf.float32)
        predicted = tf.cast(tf.argmax(scores, axis=-1), labels.dtype)
        totals = [
            tf.reduce_sum(tf.cast(per_example_loss, tf.float32) * mask),
            tf.reduce_sum(mask),
            tf.reduce_sum(tf.cast(predicted == labels, tf.float32) * mask),
        ]
        if self.num_classes == 2:
            actual_pos = tf.cast(labels == 1, tf.float32)
            predicted_pos = tf.cast(predicted == 1, tf.float32)
            totals += [
                tf.reduce_sum(actual_pos * predicted_pos * mask),
                tf.reduce_sum((1 - actual_pos) * predicted_pos * mask),
                tf.reduce_sum(actual_pos * (1 - predicted_pos) * mask),
            ]
            return per_example_loss, tf.stack(totals)
        actual = tf.one_hot(labels, self.num_classes) * mask[:, None]
        guessed = tf.one_hot(predicted, self.num_classes) * mask[:, None]
        counts = [
            tf.reduce_sum(actual * guessed, 0),
            tf.reduce_sum(guessed, 0),
            tf.reduce_sum(actual, 0),
        ]
        return per_example_loss, tf.concat([tf.stack(totals), *counts], 0)

    def _partial(self, loss, outputs, expressible):
        """The loss renormalised over each row's expressible classes, and the scores
        its prediction takes the argmax of (the other classes masked out)."""
        probabilities = tf.nn.softmax(outputs) if self.from_logits else outputs
        probabilities = tf.cast(probabilities, tf.float32)
        expressible = tf.cast(expressible, tf.float32)
        within = tf.reduce_sum(probabilities * expressible, axis=-1)
        loss = tf.cast(loss, tf.float32) + tf.math.log(tf.maximum(within, 1e-7))
        return loss, tf.where(expressible > 0, probabilities, -1.0)

    def metrics(self, stats, prefix=""):
        stats = np.asarray(stats, np.float64)
        count = max(stats[1], 1.0)
        if self.num_classes == 2:
            s = dict(zip(self.stat_names, stats.tolist(), strict=True))
            true = np.array([s["correct"] - s["true_pos"], s["true_pos"]])
            predicted = np.array(
                [s["count"] - s["true_pos"] - s["false_pos"], s["true_pos"] + s["false_pos"]]
            )
            actual = np.array(
                [s["count"] - s["true_pos"] - s["false_neg"], s["true_pos"] + s["false_neg"]]
            )
        else:
            true, predicted, actual = stats[3:].reshape(3, self.num_classes)
        precision = np.divide(true, predicted, out=np.zeros_like(true), where=predicted > 0)
        recall = np.divide(true, actual, out=np.zeros_like(true), where=actual > 0)
        total = precision + recall
        f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(true), where=total > 0)
        binary = self.num_classes == 2
        return {
            f"{prefix}loss": float(stats[0] / count),
            f"{prefix}accuracy": float(stats[2] / count),
            f"{prefix}precision": float(precision[1] if binary else precision.mean()),
            f"{prefix}recall": float(recall[1] if binary else recall.mean()),
            f"{prefix}macro_f1": float(f1.mean()),
        }

    def predict(self, model, batch):
        outputs = model(batch["ids"], training=False)
        return tf.nn.softmax(outputs) if self.from_logits else outputs

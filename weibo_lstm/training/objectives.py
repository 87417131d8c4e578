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
import inspect

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


def adversarial_perturbation(gradient: tf.Tensor, mask: tf.Tensor, epsilon: float) -> tf.Tensor:
    """The adversarial perturbation `epsilon * g / ||g||_2` of each example.

    The L2 norm is taken per example over the whole `[T, D]` sequence, after the
    padding positions of `g` are set to 0 (Miyato, Dai & Goodfellow 2017). A row
    whose gradient is 0 everywhere gets a zero perturbation (no NaN). `g` is first
    divided by its largest absolute value per example, so a tiny gradient does not
    underflow when squared.

    Args:
        gradient: `g` `[b, T, D]`, the gradient of the loss w.r.t. the embeddings.
        mask: `[b, T]`, true (or 1) at real tokens.
        epsilon: the L2 norm of each example's perturbation.

    Returns:
        `[b, T, D]` float32, with no gradient flowing back into `gradient`.

    Example:

    >>> g = tf.constant([[[3.0, 0.0], [0.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    >>> r = adversarial_perturbation(g, tf.constant([[1, 1], [1, 0]]), 2.0)
    >>> r.numpy().astype("float64").round(3).tolist()
    [[[1.2, 0.0], [0.0, 1.6]], [[0.0, 0.0], [0.0, 0.0]]]
    """
    g = tf.stop_gradient(tf.cast(gradient, tf.float32))
    g *= tf.cast(mask, tf.float32)[:, :, tf.newaxis]
    g = tf.math.divide_no_nan(g, tf.reduce_max(tf.abs(g), axis=[1, 2], keepdims=True))
    norm = tf.sqrt(tf.reduce_sum(tf.square(g), axis=[1, 2], keepdims=True))
    return epsilon * tf.math.divide_no_nan(g, norm)


class ClassificationObjective(Objective):
    """Cross-entropy over classes; loss, accuracy, precision and recall of class 1.

    With `adversarial_epsilon > 0`, training adds adversarial training on the
    embeddings (Miyato, Dai & Goodfellow 2017, "Adversarial Training Methods for
    Semi-Supervised Text Classification"): the per-example loss becomes
    `L(x) + L(x + r_adv)`, where `x` is the model's input embedding sequence and
    `r_adv = epsilon * g / ||g||_2` (`adversarial_perturbation`), `g` the gradient of
    the batch's weighted clean loss w.r.t. `x`, treated as a constant. The model must
    accept a `perturbation` argument (`WeiboLSTM` does) and expose `input_width`. A
    training step then costs about twice as much (a second forward pass, and a
    backward pass to the embeddings). The statistics (loss, accuracy, …) are those
    of the clean outputs; evaluation and prediction ignore `adversarial_epsilon`.
    Dropout and token dropout draw separate masks in the clean and perturbed passes.
    Under `"mixed_float16"` the gradient `g` is of the unscaled loss: where it
    underflows to 0 in float16, that example gets no perturbation.

    Args:
        label_smoothing: cross-entropy label smoothing.
        from_logits: the model outputs logits rather than probabilities
            (`predict` then applies a softmax).
        adversarial_epsilon: L2 norm of each example's adversarial perturbation of
            the embeddings in training (0: off, no extra cost).

    Raises:
        ValueError: an argument is out of range; or, when called in training with
            `adversarial_epsilon > 0`, the model has no `perturbation` argument.

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
        adversarial_epsilon: float = 0.0,
    ):
        if not 0 <= label_smoothing < 1:
            raise ValueError(
                "Argument `label_smoothing` must be in [0, 1). "
                f"Received: label_smoothing={label_smoothing}"
            )
        if not adversarial_epsilon >= 0:  # also refuses NaN
            raise ValueError(
                "Argument `adversarial_epsilon` must be >= 0. "
                f"Received: adversarial_epsilon={adversarial_epsilon}"
            )
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)
        self.adversarial_epsilon = float(adversarial_epsilon)

    def _loss(self, labels, outputs):
        return keras.losses.categorical_crossentropy(
            tf.one_hot(labels, tf.shape(outputs)[-1]),
            outputs,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def _adversarial(self, model, batch):
        """(clean outputs, clean per-example loss, adversarial per-example loss)."""
        call = getattr(model, "call", model)
        if "perturbation" not in inspect.signature(call).parameters:
            raise ValueError(
                "Argument `adversarial_epsilon` > 0 needs a model whose `call` takes a "
                f"`perturbation` argument (e.g. WeiboLSTM). Received: model={model!r}, "
                f"adversarial_epsilon={self.adversarial_epsilon}"
            )
        ids, labels = batch["ids"], batch["labels"]
        zero = tf.zeros(tf.concat([tf.shape(ids), [model.input_width]], axis=0))
        with tf.GradientTape() as tape:
            tape.watch(zero)
            outputs = model(ids, training=True, perturbation=zero)
            clean = self._loss(labels, outputs)
            weighted = tf.reduce_sum(tf.cast(clean, tf.float32) * batch["weights"])
        perturbation = adversarial_perturbation(
            tape.gradient(weighted, zero), ids != 0, self.adversarial_epsilon
        )
        adversarial = self._loss(labels, model(ids, training=True, perturbation=perturbation))
        return outputs, clean, adversarial

    def __call__(self, model, batch, training):
        labels = batch["labels"]
        if training and self.adversarial_epsilon > 0:
            outputs, clean_loss, adversarial_loss = self._adversarial(model, batch)
            per_example_loss = clean_loss + adversarial_loss
        else:
            outputs = model(batch["ids"], training=training)
            per_example_loss = clean_loss = self._loss(labels, outputs)
        mask = tf.cast(batch["weights"] > 0, tf.float32)
        predicted = tf.cast(tf.argmax(outputs, axis=-1), labels.dtype)
        actual_pos = tf.cast(labels == 1, tf.float32)
        predicted_pos = tf.cast(predicted == 1, tf.float32)
        stats = tf.stack(
            [
                tf.reduce_sum(tf.cast(clean_loss, tf.float32) * mask),
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

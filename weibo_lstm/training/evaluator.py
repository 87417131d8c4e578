"""DistributedEvaluator: exact evaluation and prediction under a strategy (Orbit's
`StandardEvaluator`).

    evaluate(examples)          # tf.function over the batches: sums and counts, every
                                # example once, whatever the replicas and batch
    predict(examples)           # per-row outputs, gathered, in the input order

Evaluation always buckets by length: inference does not depend on batch composition.
`trainer.DistributedTrainer` is an evaluator with the training loops on top.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training import input_pipeline as batching
from weibo_lstm.training.objectives import ClassificationObjective, Objective


class DistributedEvaluator:
    """Evaluates and predicts with a Keras model on every replica of a strategy.

    Args:
        model: a Keras model mapping int32 ids `[batch, time]` to what `objective`
            reads, built under `strategy.scope()` (or unbuilt).
        objective: the metrics and per-row outputs (None: a `ClassificationObjective`
            over the model's `num_classes`, 2 for a model without that attribute).
        strategy: the `tf.distribute.Strategy` the model's variables belong to.
        global_batch_size: examples per evaluation step across all replicas.
        pad_to: pad every batch to this length (None: to its longest row).

    Example:

    >>> from weibo_lstm import WeiboLSTM
    >>> rng = np.random.default_rng(0)
    >>> ids = [rng.integers(2, 20, rng.integers(1, 9)) for _ in range(10)]
    >>> examples = TokenizedExamples(
    ...     values=np.concatenate(ids).astype("int32"),
    ...     row_splits=np.cumsum([0] + [len(r) for r in ids]),
    ...     labels=np.zeros(10, "int32"))
    >>> evaluator = DistributedEvaluator(model=WeiboLSTM(20, lstm_units=(4,), dense_units=0),
    ...     strategy=tf.distribute.get_strategy(), global_batch_size=4)
    >>> evaluator.predict(examples).shape, sorted(evaluator.evaluate(examples))
    ((10, 2), ['accuracy', 'loss', 'macro_f1', 'precision', 'recall'])
    """

    def __init__(
        self,
        *,
        model: keras.Model,
        objective: Objective | None = None,
        strategy: tf.distribute.Strategy,
        global_batch_size: int,
        pad_to: int | None = None,
    ):
        self.model = model
        if objective is None:
            objective = ClassificationObjective(num_classes=getattr(model, "num_classes", 2))
        self.objective = objective
        self.strategy = strategy
        self.eval_global_batch_size = global_batch_size
        self.pad_to = pad_to
        self._eval_loop_fn = None
        self._predict_fn = None

    def _replica_eval_step(self, batch):
        return self.objective(self.model, batch, training=False)[1]

    def _replica_predict_step(self, batch):
        return self.objective.predict(self.model, batch), batch["index"]

    def _eval_loop(self):
        def loop(iterator, num_steps):
            total = tf.zeros([len(self.objective.stat_names)], tf.float64)
            for _ in tf.range(num_steps):
                stats = self.strategy.run(self._replica_eval_step, args=(next(iterator),))
                total += tf.cast(self.strategy.reduce("SUM", stats, axis=None), tf.float64)
            return total

        return tf.function(loop)

    def _eval_plan(self, examples: TokenizedExamples) -> np.ndarray:
        return batching.plan_epoch(
            examples.lengths,
            self.eval_global_batch_size,
            shuffle=False,
            bucket=True,
        )

    def evaluate(self, examples: TokenizedExamples, prefix: str = "") -> dict[str, float]:
        """Exact metrics: every example counts once, whatever the replicas and batch.

        The examples are what they are: tokenized texts are truncated to the
        tokenizer's `max_length`, as in training, whereas prediction from raw text
        (`weibo_lstm.serving.export.serving_function`) reads long texts in windows.

        Returns:
            The objective's metrics (for classification: `loss`, the mean
            cross-entropy without regularisation, `accuracy`, and `precision` /
            `recall` of class 1), keys prefixed with `prefix`.
        """
        if self._eval_loop_fn is None:
            self._eval_loop_fn = self._eval_loop()
        plan = self._eval_plan(examples)
        dataset = batching.distribute(self.strategy, examples, plan, pad_to=self.pad_to)
        iterator = iter(dataset)
        stats = self._eval_loop_fn(iterator, tf.constant(len(plan))).numpy()
        batching.drain(iterator)
        return self.objective.metrics(stats, prefix)

    def predict(self, examples: TokenizedExamples) -> np.ndarray:
        """The objective's per-row outputs `[n, ...]` (class probabilities), in input order,
        of the examples as given (truncated texts: see `evaluate`)."""
        if self._predict_fn is None:

            def step(iterator):
                outputs, index = self.strategy.run(
                    self._replica_predict_step, args=(next(iterator),)
                )
                return self.strategy.gather(outputs, axis=0), self.strategy.gather(index, axis=0)

            self._predict_fn = tf.function(step)
        plan = self._eval_plan(examples)
        iterator = iter(batching.distribute(self.strategy, examples, plan, pad_to=self.pad_to))
        probabilities, indices = [], []
        for _ in range(len(plan)):
            outputs, index = self._predict_fn(iterator)
            probabilities.append(outputs.numpy())
            indices.append(index.numpy())
        batching.drain(iterator)
        probabilities, indices = np.concatenate(probabilities), np.concatenate(indices)
        result = np.zeros((len(examples), *probabilities.shape[1:]), probabilities.dtype)
        real = indices != batching.PADDING_ROW
        result[indices[real]] = probabilities[real]
        return result

"""Precise BatchNorm: moving statistics recomputed on batches drawn like inference batches.

The moving averages that BatchNorm uses at inference are exponential averages over
recent batches, taken while the weights changed; on length buckets each of those
batches holds one length band. Precise BN (pycls `compute_precise_bn_stats`,
detectron2 `PreciseBN`; Wu & Johnson, "Rethinking 'Batch' in BatchNorm", 2021)
replaces them after training by the population statistics of a few hundred freshly
shuffled training batches: a forward pass without dropout and without any weight
update, in which BatchNorm normalises with each batch's own statistics.

Every `DistributedBatchNormalization` layer adds the masked sums `Σx`, `Σx²` and the
count of its inputs, all-reduced over the global batch, into accumulators; the moving
mean and variance become `Σx / n` and `Σx² / n − mean²`. With the same global batches
the result is the same on one replica or many (and on every worker of a cluster).

For a model trained with batch renormalization (on length buckets,
`batch_norm.use_batch_renormalization`) the batches are shuffled too, and BatchNorm
normalises with their statistics, as pycls does. Measured on waimai_10k (seed model,
4 epochs, validation accuracy; one seed, so ±0.5 points is noise): 0.895 with up to
200 shuffled batches (all 74 there), 0.888 with 50 (the default: cheaper), 0.888
without; exact statistics from length buckets normalised with the moving statistics,
one pass per layer, 0.885 with 50 (and 0.876 in a single pass, whose deeper layers see their
predecessors' old statistics). Averaged over four training seeds: 0.8886 with 50
batches, 0.8911 with all 74, 0.8921 on shuffled batches without buckets
(benchmarks/README.md, "BatchNorm on length buckets").
"""

from __future__ import annotations

import logging

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.models.layers.batch_norm import batch_norm_layers
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training import input_pipeline as batching

logger = logging.getLogger("weibo_lstm")


class PreciseBatchNorm:
    """Recomputes a model's BatchNorm moving statistics; reusable across epochs.

    The accumulators and the traced forward loop are made on the first call and
    reused (reset to zero) by later ones, so an epoch pays only the forward passes.

    Args:
        model: a built model whose BatchNorm layers are `DistributedBatchNormalization`.
        strategy: the strategy the model's variables belong to.
        global_batch_size: rows per batch across all replicas (the training batch).
        num_batches: how many full batches to use (fewer if the data has fewer).
    """

    def __init__(
        self,
        model: keras.Model,
        *,
        strategy: tf.distribute.Strategy,
        global_batch_size: int,
        num_batches: int = 200,
    ):
        self.model, self.strategy = model, strategy
        self.global_batch_size, self.num_batches = global_batch_size, num_batches
        self.layers = batch_norm_layers(model)
        self._accumulators = None
        self._run = None

    def _build(self):
        with self.strategy.scope():
            self._accumulators = [
                [
                    tf.Variable(
                        tf.zeros(layer.moving_mean.shape, tf.float64),
                        trainable=False,
                        synchronization=tf.VariableSynchronization.ON_WRITE,
                        # Every replica adds the same all-reduced sums.
                        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
                    )
                    for _ in ("sum", "sum_of_squares", "count")
                ]
                for layer in self.layers
            ]

        def forward(batch):
            # Inference mode (no dropout), except that BatchNorm normalises with the
            # batch's statistics while it adds them up.
            self.model(batch["ids"], training=False)

        @tf.function
        def run(iterator, num_steps):
            for _ in tf.range(num_steps):
                self.strategy.run(forward, args=(next(iterator),))

        self._run = run

    def __call__(self, examples: TokenizedExamples, *, seed: int = 0, epoch: int = 0) -> int:
        """Sets the moving statistics from batches of `examples`; returns how many.

        The batches are a pure function of `seed` and `epoch`, so every worker of a
        cluster and a resumed run draw the same ones. Returns 0 (and does nothing)
        for a model without BatchNorm.
        """
        if not self.layers:
            return 0
        if self._run is None:
            self._build()
        plan = batching.plan_epoch(
            examples.lengths,
            self.global_batch_size,
            seed=seed,
            epoch=epoch,
            shuffle=True,
            bucket=False,
        )
        full = plan[(plan != batching.PADDING_ROW).all(axis=1)]
        plan = full[: self.num_batches] if len(full) else plan[:1]
        for accumulator in self._accumulators:
            for variable in accumulator:
                variable.assign(tf.zeros_like(variable))
        # The layers read this Python attribute when the loop is traced (first call).
        for layer, accumulator in zip(self.layers, self._accumulators, strict=True):
            layer.statistics_accumulator = accumulator
        try:
            iterator = iter(batching.distribute(self.strategy, examples, plan))
            self._run(iterator, tf.constant(len(plan)))
            batching.drain(iterator)
        finally:
            for layer in self.layers:
                layer.statistics_accumulator = None
        for layer, (total, total_sq, count) in zip(self.layers, self._accumulators, strict=True):
            count = np.maximum(count.numpy(), 1.0)
            mean = total.numpy() / count
            variance = np.maximum(total_sq.numpy() / count - mean**2, 0.0)
            layer.moving_mean.assign(mean)
            layer.moving_variance.assign(variance)
        logger.debug("Precise BatchNorm: %d layers from %d batches", len(self.layers), len(plan))
        return len(plan)

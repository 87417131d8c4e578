"""DistributedTrainer: an explicit `strategy.run` training loop in Orbit's shape.

The runner (this module) owns the replica steps and the loops over them:

    train_loop_begin()          # reset the summed statistics
    train(iterator, n)          # tf.function: n × strategy.run(_replica_train_step)
    train_loop_end() -> dict    # the objective's metrics from the sums
    evaluate(examples)          # exact: sums and counts, every example once
    predict(examples)           # per-row outputs, in the input order

(the last two from `evaluator.DistributedEvaluator`, which it extends).

A `controller.Controller` given this trainer drives it through the epochs and fires
the `actions` around the loop (best weights, early stopping, checkpoints, TensorBoard,
progress, SIGTERM); `fit` is the shortcut
`Controller(trainer, options).fit(train, validation)`.
The loss and metrics come from an `objectives.Objective`, so the same loop trains a
classifier or a language model.

A step whose loss or gradients are not finite is undone (model and optimizer
variables keep their values from before it) and ends the `train` call, which reports
it; the controller then stops the run with `NonFiniteError` or skips the step and goes
on (`ControllerOptions.on_nonfinite`). A model with the
`"mixed_float16"` dtype policy trains with dynamic loss scaling
(`weibo_lstm.training.mixed_precision`): a step the loss scaler skips is not a non-finite step.
"""

from __future__ import annotations

import dataclasses
import logging

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.distribute.runtime import Runtime
from weibo_lstm.errors import NonFiniteError, Preempted
from weibo_lstm.models.layers.batch_norm import (
    has_batch_norm,
    plain_batch_norm_layers,
    use_batch_renormalization,
)
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training import input_pipeline as batching
from weibo_lstm.training import mixed_precision
from weibo_lstm.training.controller_options import ControllerOptions
from weibo_lstm.training.evaluator import DistributedEvaluator
from weibo_lstm.training.history import History
from weibo_lstm.training.objectives import Objective
from weibo_lstm.training.optimization import (
    build_optimizer,
    clip_by_global_norm_across_replicas,
)
from weibo_lstm.training.options import TrainerOptions

__all__ = [
    "ControllerOptions",
    "DistributedTrainer",
    "NonFiniteError",
    "Preempted",
    "TrainerOptions",
]

logger = logging.getLogger("weibo_lstm")

# Per-replica flags sent along with the statistics: non-finite loss, non-finite gradients.
_FLAGS = ("nonfinite_loss", "nonfinite_gradients")


class DistributedTrainer(DistributedEvaluator):
    """Trains a Keras model with an explicit data-parallel loop.

    Each step runs `_replica_train_step` on every replica with `strategy.run`; the
    loss is averaged over the *global* batch (`tf.nn.compute_average_loss`), so the
    gradients that the optimizer all-reduces (SUM) across replicas equal those of one
    replica seeing the whole batch. `steps_per_loop` steps run inside one
    `tf.function` call (`tf.range` over the distributed iterator).

    Args:
        model: a Keras model mapping int32 ids `[batch, time]` to whatever
            `objective` reads (class probabilities for the default objective).
            Unbuilt, or built under `strategy.scope()`.
        objective: the loss and metrics (`weibo_lstm.training.objectives.Objective`);
            None: a `ClassificationObjective` over the model's `num_classes`.
        optimizer: a Keras optimizer created under `strategy.scope()`, or None to
            build one with `optimization.build_optimizer` from the options in `build`.
            For a `"mixed_float16"` model, `build` wraps it in a
            `keras.optimizers.LossScaleOptimizer` (unless it is one).
        strategy: a `tf.distribute.Strategy`; None: `Runtime.create().strategy`
            (all GPUs, else the CPU; a cluster with `TF_CONFIG`).
        options: `TrainerOptions` (the epochs and everything around the step loops
            are the controller's: `ControllerOptions`, given to `fit`).

    Attributes:
        runtime: this process's place in the cluster (`runtime.Runtime`).

    Example:

    >>> from weibo_lstm import WeiboLSTM
    >>> rng = np.random.default_rng(0)
    >>> ids = [rng.integers(2, 20, rng.integers(1, 9)) for _ in range(64)]
    >>> examples = TokenizedExamples(
    ...     values=np.concatenate(ids).astype("int32"),
    ...     row_splits=np.cumsum([0] + [len(r) for r in ids]),
    ...     labels=np.array([int(r[0] > 10) for r in ids], "int32"))
    >>> trainer = DistributedTrainer(
    ...     model=WeiboLSTM(20, lstm_units=(8,), dense_units=0),
    ...     options=TrainerOptions(batch_size=16, warmup_epochs=1))
    >>> history = trainer.fit(examples, examples, ControllerOptions(epochs=2, quiet=True))
    >>> len(history.epochs), history.best_epoch in (1, 2)
    (2, True)
    """

    def __init__(
        self,
        *,
        model: keras.Model,
        objective: Objective | None = None,
        optimizer: keras.optimizers.Optimizer | None = None,
        strategy: tf.distribute.Strategy | None = None,
        options: TrainerOptions | None = None,
    ):
        self.runtime = Runtime(strategy) if strategy is not None else Runtime.create()
        self.options = options = options or TrainerOptions()
        replicas = self.runtime.strategy.num_replicas_in_sync
        self.global_batch_size = options.global_batch(replicas)
        super().__init__(
            model=model,
            objective=objective,
            strategy=self.runtime.strategy,
            global_batch_size=(
                options.eval_batch_size * replicas
                if options.eval_batch_size
                else 4 * self.global_batch_size
            ),
            pad_to=options.pad_to,
        )
        self.optimizer = optimizer
        _check_optimizer_scope(optimizer, self.strategy)
        # Length buckets are not i.i.d. batches: BatchNorm must not see their statistics.
        plain = plain_batch_norm_layers(model)
        if self.options.bucket_by_length and plain:
            logger.warning(
                "%s has keras.layers.BatchNormalization layers (%s), which cannot "
                "renormalise on length buckets: training on shuffled batches instead. "
                "Use weibo_lstm.DistributedBatchNormalization to keep length buckets.",
                type(model).__name__,
                ", ".join(layer.name for layer in plain),
            )
            self.options = dataclasses.replace(self.options, bucket_by_length=False)
        # BatchNorm on length buckets: unstratified buckets and precise statistics,
        # and batch renormalization unless the options turn it off.
        self.buckets_batch_norm = self.options.bucket_by_length and has_batch_norm(model)
        self.renormalizes_batch_norm = (
            self.buckets_batch_norm and self.options.batch_renormalization
        )
        self._train_loop_fn = None
        self.train_stats = np.zeros(len(self.objective.stat_names))
        #: Whether the optimizer is a `LossScaleOptimizer` (set by `build`).
        self.loss_scaling = False

    @property
    def is_chief(self) -> bool:
        return self.runtime.is_chief

    def build(self, examples: TokenizedExamples, steps_per_epoch: int, epochs: int) -> None:
        """Builds the model (on two rows of `examples`) and the optimizer's variables.

        Without an optimizer given, creates `optimization.build_optimizer(options,
        ...)`, whose schedule spans `epochs` × `steps_per_epoch` steps. `fit` calls
        it; call it yourself before `train` or before restoring a checkpoint.

        Raises:
            ValueError: if model variables exist that were created outside
                `strategy.scope()`.
        """
        with self.strategy.scope():
            if not self.model.built:
                self.model(examples.rows(np.arange(min(2, len(examples)))).to_tensor())
            outside = [
                v.path
                for v in self.model.weights
                if not self.strategy.extended.variable_created_in_scope(v.value)
            ]
            if outside:
                raise ValueError(
                    "Model variables were created outside `strategy.scope()` "
                    f"(e.g. {outside[0]}); build the model under the trainer's strategy scope "
                    "or pass an unbuilt model"
                )
            if self.optimizer is None:
                self.optimizer = build_optimizer(
                    self.options,
                    num_replicas=self.strategy.num_replicas_in_sync,
                    steps_per_epoch=steps_per_epoch,
                    epochs=epochs,
                )
            if mixed_precision.needs_loss_scaling(self.model):
                self.optimizer = mixed_precision.loss_scale_optimizer(self.optimizer)
            self.loss_scaling = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
            self.optimizer.build(self.model.trainable_variables)

    # ----------------------------------------------------------------- per replica
    def _replica_train_step(self, batch):
        with tf.GradientTape() as tape:
            per_example_loss, stats = self.objective(self.model, batch, training=True)
            loss = tf.nn.compute_average_loss(
                per_example_loss,
                sample_weight=batch["weights"],
                global_batch_size=self.global_batch_size,
            )
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
            scaled_loss = self.optimizer.scale_loss(loss)  # × the loss scale under float16
        gradients = tape.gradient(scaled_loss, self.model.trainable_variables)
        # Embedding gradients arrive as IndexedSlices whose row count varies per
        # replica and step; all-gathering them inside the `tf.range` loop reuses
        # collective instance keys with changing shapes, which aborts the step.
        gradients = [tf.convert_to_tensor(g) for g in gradients]
        if self.loss_scaling:
            # Overflowing scaled gradients are normal in float16: the optimizer skips
            # the step and halves the scale. Only a non-finite loss is ours to judge.
            gradients = mixed_precision.agree_on_overflow(gradients)
            nonfinite_gradients = tf.constant(False)
        else:
            nonfinite_gradients = ~tf.reduce_all(
                [tf.reduce_all(tf.math.is_finite(g)) for g in gradients]
            )
        if self.options.clip_global_norm is not None:
            loss_scale = self.optimizer.dynamic_scale if self.loss_scaling else 1.0
            gradients = clip_by_global_norm_across_replicas(
                gradients, self.options.clip_global_norm, loss_scale=loss_scale
            )
        # Gradients are all-reduced (SUM) across replicas by the optimizer (which
        # also unscales them under loss scaling). A non-finite step is applied too,
        # and undone in `_train_loop` (a `tf.cond` around `apply_gradients` would
        # put its all-reduce inside a branch).
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables, strict=True))
        flags = [~tf.math.is_finite(loss), nonfinite_gradients]
        return tf.concat([stats, tf.cast(flags, tf.float32)], axis=0)

    # ----------------------------------------------------------------- cross replica
    def _train_loop(self):
        # Everything a step may change, except the dropout seeds (which just move on)
        # and the loss scale (its halving after an overflow must stay).
        guarded = [*self.model.weights, *mixed_precision.learned_variables(self.optimizer)]
        num_stats = len(self.objective.stat_names)

        def loop(iterator, num_steps):
            total = tf.zeros([num_stats], tf.float64)
            nonfinite = tf.zeros([len(_FLAGS) + 1], tf.float64)  # steps; by flag
            steps = tf.constant(0)
            for _ in tf.range(num_steps):
                if nonfinite[0] > 0:  # the caller decides what a non-finite step does
                    break
                before = [tf.identity(v.value) for v in guarded]
                out = self.strategy.run(self._replica_train_step, args=(next(iterator),))
                out = tf.cast(self.strategy.reduce("SUM", out, axis=None), tf.float64)
                bad = out[num_stats:] > 0  # on any replica: every replica agrees
                finite = ~tf.reduce_any(bad)
                # Undo a non-finite step on every replica (cross-replica assignments
                # of mirrored variables; no collective involved).
                for variable, value in zip(guarded, before, strict=True):
                    variable.assign(tf.where(finite, variable.value, value))
                total += tf.where(finite, out[:num_stats], tf.zeros_like(total))
                nonfinite += tf.cast(tf.concat([[~finite], bad], 0), tf.float64)
                steps += 1
            return total, nonfinite, steps

        return tf.function(loop)

    def plan_epoch(self, train: TokenizedExamples, epoch: int) -> np.ndarray:
        """The global batches of training epoch `epoch`, a pure function of `(seed, epoch)`.

        With `bucket_by_length`, length buckets in which each window of batches keeps
        its class mix; for a model with BatchNorm, buckets without that stratification
        (sorted by length within a window regardless of class: stratified buckets
        would pair long posts of one class with short posts of the other in a batch)
        and batch renormalization in training (`batch_norm.use_batch_renormalization`)
        unless `batch_renormalization` is off.
        """
        return batching.plan_epoch(
            train.lengths,
            self.global_batch_size,
            seed=self.options.seed,
            epoch=epoch,
            bucket=self.options.bucket_by_length,
            labels=None if self.buckets_batch_norm else train.labels,
        )

    def train_loop_begin(self, stats: np.ndarray | None = None) -> None:
        """Resets the summed training statistics (to `stats`: a resumed epoch's sums)."""
        self.train_stats = np.zeros(len(self.objective.stat_names))
        if stats is not None:
            self.train_stats += stats

    def train(self, iterator, num_steps: int) -> dict[str, int]:
        """Runs up to `num_steps` training steps in one `tf.function` call.

        Args:
            iterator: over `batching.distribute(...)` batches.
            num_steps: steps to run (the first call traces; later calls with another
                number reuse the trace).

        The call ends early after a non-finite step, which is undone; the caller
        stops there or calls `train` again for the remaining steps (the iterator
        moves on, so the data order stays the same).

        Returns:
            `steps` run (the non-finite one included), `nonfinite_steps` (0 or 1),
            and whether it had a `nonfinite_loss` or `nonfinite_gradients`.
        """
        if self._train_loop_fn is None:
            if self.renormalizes_batch_norm:
                use_batch_renormalization(self.model)
            self._train_loop_fn = self._train_loop()
        total, nonfinite, steps = self._train_loop_fn(iterator, tf.constant(num_steps))
        self.train_stats += total.numpy()
        nonfinite = nonfinite.numpy().astype(int)
        return {
            "steps": int(steps.numpy()),
            "nonfinite_steps": int(nonfinite[0]),
            **{name: int(n) for name, n in zip(_FLAGS, nonfinite[1:], strict=True)},
        }

    def train_loop_end(self) -> dict[str, float]:
        """Training metrics since `train_loop_begin`, reduced over all replicas.

        Under dynamic loss scaling (float16) also `loss_scale`: the scale at the end
        of the loop (halved by each overflow, doubled after 2,000 finite steps).
        """
        metrics = self.objective.metrics(self.train_stats)
        if self.loss_scaling:
            metrics["loss_scale"] = float(self.optimizer.dynamic_scale.numpy())
        return metrics

    # ----------------------------------------------------------------- outer loop
    def fit(
        self,
        train: TokenizedExamples,
        validation: TokenizedExamples | None = None,
        options: ControllerOptions | None = None,
    ) -> History:
        """Trains for `options.epochs` epochs and leaves the best weights in the model.

        The shortcut for `Controller(self, options).fit(train, validation)`.

        After each epoch the validation set (if given) is evaluated exactly; when
        `options.monitor` improves, all model weights (BatchNorm statistics included)
        are copied to host memory. At the end they are restored, so the model holds
        the best epoch's weights without any file round trip. Without validation data
        the last epoch is kept.

        With `options.checkpoint_dir`, the run is saved every `checkpoint_every_steps`
        steps and at the end of each epoch, and a later `fit` on the same data with
        the same batch and seed resumes from the newest checkpoint: the interrupted
        epoch's plan is rebuilt from `(seed, epoch)` and its finished steps skipped,
        the dropout seeds and optimizer state are restored, and the history, best
        weights and patience continue. On CPU the final weights equal those of an
        uninterrupted run bit for bit.

        A SIGTERM during `fit` (in the main thread) stops every worker at the next
        loop boundary, after a checkpoint at that step (see `preemption`).

        Args:
            train: the training examples.
            validation: the examples that pick the best epoch (None: the last).
            options: the outer loop's options (None: `ControllerOptions()`).

        Raises:
            NonFiniteError: with `on_nonfinite="stop"`, at the first non-finite step
                (the model keeps its weights from before that step); with `"skip"`,
                when every step of an epoch was non-finite; and whenever the weights
                themselves are not finite at a checkpoint or epoch end.
            CheckpointError: a checkpoint cannot be written, or the newest one was
                written for other data, batch size, seed or model.
            Preempted: SIGTERM arrived; the checkpoint (if any) is written.
        """
        # The controller drives this trainer (Orbit's direction); this is a shortcut.
        from weibo_lstm.training.controller import Controller

        return Controller(self, options).fit(train, validation)


def _check_optimizer_scope(optimizer, strategy: tf.distribute.Strategy) -> None:
    # Keras's TF optimizer captures the strategy that is current when it is created;
    # one made outside the scope would not all-reduce gradients.
    if optimizer is None:
        return
    created_in = getattr(optimizer, "_distribution_strategy", strategy)
    if created_in is not strategy:
        raise ValueError(
            "The optimizer was created outside `strategy.scope()`; create it inside "
            "`with trainer_strategy.scope():` or pass optimizer=None"
        )

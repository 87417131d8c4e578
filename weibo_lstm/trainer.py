"""DistributedTrainer: an explicit `strategy.run` training loop in Orbit's shape.

fit()                       # host: epochs, validation, best weights, logging
  train_loop_begin()        # reset accumulated metrics
  train_step(iterator, n)   # tf.function: n × strategy.run(_replica_train_step)
  train_loop_end() -> dict  # metrics reduced over replicas and steps
  evaluate(validation)      # exact: sums and counts, every example once
  checkpoint                # TrainingCheckpoint: every N steps and each epoch end

A step whose loss or gradients are not finite is undone (model and optimizer
variables keep their values from before it) and either stops the run with
`NonFiniteError` or is skipped and counted (`options.on_nonfinite`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm import batching
from weibo_lstm.batching import TokenizedExamples
from weibo_lstm.checkpointing import FitState, TrainingCheckpoint, restore_fit_state
from weibo_lstm.cluster import disagreements
from weibo_lstm.distribution import default_strategy, device_kind, is_chief, task_id
from weibo_lstm.errors import CheckpointError, NonFiniteError
from weibo_lstm.history import History, log_epoch
from weibo_lstm.objectives import ClassificationObjective, Objective
from weibo_lstm.schedules import WarmupCosineDecay

logger = logging.getLogger("weibo_lstm")

# Per-replica flags sent along with the statistics: non-finite loss, non-finite gradients.
_FLAGS = ("nonfinite_loss", "nonfinite_gradients")


@dataclasses.dataclass(frozen=True)
class TrainerOptions:
    """Options of `DistributedTrainer`.

    Attributes:
        epochs: passes over the training set.
        batch_size: examples per replica per step; the global batch is this
            times `strategy.num_replicas_in_sync`.
        learning_rate: peak learning rate for one replica, scaled by
            `lr_scaling` (used only when the trainer builds the optimizer).
        lr_scaling: `"sqrt"` (peak = base × √replicas, the seed's rule), `"linear"`
            (base × replicas) or `"none"`.
        initial_lr_fraction: warmup starts at this fraction of the peak rate.
        warmup_epochs: linear warmup length; then cosine decay to the last step.
        min_lr_fraction: floor of the cosine decay as a fraction of the peak.
        steps_per_loop: training steps per `tf.function` call; None picks 50 on CPU
            and 200 on GPU (capped by the epoch length).
        monitor: metric that selects the best epoch (`val_accuracy`, `val_loss`, …);
            None: the objective's (`val_accuracy` for classification).
        mode: `"max"` or `"min"`: whether a larger `monitor` is better; None: the
            objective's.
        patience: stop after this many epochs without improvement (None: never).
        seed: shuffling seed (the data order of epoch e is a function of seed and e).
        bucket_by_length: batch similar lengths together and pad per batch (False:
            shuffle freely; pad per batch, or to `pad_to` if set). None (default):
            bucket unless the model has BatchNormalization layers, whose training
            statistics would then come from one length band at a time and no
            longer match the moving averages used at inference (measured on
            waimai_10k with the seed model: validation accuracy 0.60 with buckets,
            0.90 without). Evaluation always buckets: inference does not depend
            on batch composition.
        pad_to: pad every batch to this length (the seed pipeline pads to 180).
        eval_batch_size: per-replica batch for evaluation and prediction
            (None: 4 × `batch_size`).
        quiet: no tqdm progress bar (otherwise the chief shows one on a terminal).
        summary_dir: write TensorBoard scalars here (chief only; None: off).
        on_nonfinite: what a step with a non-finite loss or gradient does; it is
            undone either way. `"stop"` raises `NonFiniteError`; `"skip"` goes on
            and counts it (`skipped_steps` in each epoch's history entry).
        checkpoint_dir: save resumable checkpoints here (None: none). With
            `fresh`, `fit` continues from the newest one, mid-epoch if need be.
        checkpoint_every_steps: also save every this many optimizer steps (on a
            `steps_per_loop` boundary; loops are cut to meet it); None: only at
            the end of each epoch.
        keep_checkpoints: how many recent checkpoints to keep.
        fresh: delete the checkpoints in `checkpoint_dir` and start from scratch
            (default: continue from the newest one).
    """

    epochs: int = 15
    batch_size: int = 64
    learning_rate: float = 1e-4
    lr_scaling: str = "sqrt"
    initial_lr_fraction: float = 0.1
    warmup_epochs: float = 3.0
    min_lr_fraction: float = 0.0
    steps_per_loop: int | None = None
    monitor: str | None = None
    mode: str | None = None
    patience: int | None = None
    seed: int = 42
    bucket_by_length: bool | None = None
    pad_to: int | None = None
    eval_batch_size: int | None = None
    quiet: bool = False
    summary_dir: str | None = None
    on_nonfinite: str = "stop"
    checkpoint_dir: str | None = None
    checkpoint_every_steps: int | None = 200
    keep_checkpoints: int = 3
    fresh: bool = False

    def __post_init__(self):
        def check(name, ok, expected):
            if not ok:
                raise ValueError(
                    f"Argument `{name}` must be {expected}. Received: {name}={getattr(self, name)!r}"
                )

        check("epochs", self.epochs >= 1, ">= 1")
        check("batch_size", self.batch_size >= 1, ">= 1")
        check("learning_rate", self.learning_rate > 0, "> 0")
        check(
            "lr_scaling",
            self.lr_scaling in ("sqrt", "linear", "none"),
            "'sqrt', 'linear' or 'none'",
        )
        check("initial_lr_fraction", 0 <= self.initial_lr_fraction <= 1, "in [0, 1]")
        check("warmup_epochs", self.warmup_epochs >= 0, ">= 0")
        check("min_lr_fraction", 0 <= self.min_lr_fraction <= 1, "in [0, 1]")
        check("steps_per_loop", self.steps_per_loop is None or self.steps_per_loop >= 1, ">= 1")
        check("mode", self.mode in (None, "max", "min"), "'max', 'min' or None")
        check("patience", self.patience is None or self.patience >= 1, ">= 1 or None")
        check("pad_to", self.pad_to is None or self.pad_to >= 1, ">= 1 or None")
        check("eval_batch_size", self.eval_batch_size is None or self.eval_batch_size >= 1, ">= 1")
        check("on_nonfinite", self.on_nonfinite in ("stop", "skip"), "'stop' or 'skip'")
        check(
            "checkpoint_every_steps",
            self.checkpoint_every_steps is None or self.checkpoint_every_steps >= 1,
            ">= 1 or None",
        )
        check("keep_checkpoints", self.keep_checkpoints >= 1, ">= 1")

    def peak_learning_rate(self, num_replicas: int) -> float:
        """`learning_rate` scaled for `num_replicas` replicas by `lr_scaling`."""
        factor = {"sqrt": math.sqrt(num_replicas), "linear": num_replicas, "none": 1.0}
        return self.learning_rate * factor[self.lr_scaling]


class DistributedTrainer:
    """Trains a Keras classifier with an explicit data-parallel loop.

    Each step runs `_replica_train_step` on every replica with `strategy.run`; the
    loss is averaged over the *global* batch (`tf.nn.compute_average_loss`), so the
    gradients that the optimizer all-reduces (SUM) across replicas equal those of one
    replica seeing the whole batch. `steps_per_loop` steps run inside one
    `tf.function` call (`tf.range` over the distributed iterator).

    Args:
        model: a Keras model mapping int32 ids `[batch, time]` to class
            whatever `objective` reads (class probabilities for the default
            objective). Unbuilt, or built under `strategy.scope()`.
        objective: the loss and metrics (`weibo_lstm.objectives.Objective`);
            None: `ClassificationObjective()`.
        optimizer: a Keras optimizer created under `strategy.scope()`, or None to
            build Adam with `WarmupCosineDecay` from the options in `fit`.
        strategy: a `tf.distribute.Strategy`; None uses `default_strategy()`.
        options: `TrainerOptions`.

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
    ...     options=TrainerOptions(epochs=2, batch_size=16, warmup_epochs=1, quiet=True))
    >>> history = trainer.fit(examples, examples)
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
        self.strategy = strategy or default_strategy()
        self.options = options or TrainerOptions()
        self.model = model
        self.objective = objective or ClassificationObjective()
        self.monitor = self.options.monitor or self.objective.monitor
        self.mode = self.options.mode or self.objective.mode
        self.optimizer = optimizer
        self.is_chief = is_chief(self.strategy)
        replicas = self.strategy.num_replicas_in_sync
        self.global_batch_size = self.options.batch_size * replicas
        self.eval_global_batch_size = (
            self.options.eval_batch_size or 4 * self.options.batch_size
        ) * replicas
        if optimizer is not None:
            # Keras's TF optimizer captures the strategy that is current when it is
            # created; one made outside the scope would not all-reduce gradients.
            created_in = getattr(optimizer, "_distribution_strategy", self.strategy)
            if created_in is not self.strategy:
                raise ValueError(
                    "The optimizer was created outside `strategy.scope()`; create it inside "
                    "`with trainer_strategy.scope():` or pass optimizer=None"
                )
        self.bucketing = (
            self.options.bucket_by_length
            if self.options.bucket_by_length is not None
            else not _has_batch_norm(model)
        )
        self._train_loop_fn = None
        self._eval_loop_fn = None
        self._predict_fn = None
        self._train_stats = np.zeros(len(self.objective.stat_names))

    # ----------------------------------------------------------------- building
    def _build(self, examples: TokenizedExamples, steps_per_epoch: int) -> None:
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
                self.optimizer = keras.optimizers.Adam(self._schedule(steps_per_epoch))
            self.optimizer.build(self.model.trainable_variables)

    def _schedule(self, steps_per_epoch: int) -> WarmupCosineDecay:
        o = self.options
        peak = o.peak_learning_rate(self.strategy.num_replicas_in_sync)
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
        gradients = tape.gradient(loss, self.model.trainable_variables)
        # Embedding gradients arrive as IndexedSlices whose row count varies per
        # replica and step; all-gathering them inside the `tf.range` loop reuses
        # collective instance keys with changing shapes, which aborts the step.
        gradients = [tf.convert_to_tensor(g) for g in gradients]
        # Gradients are all-reduced (SUM) across replicas by the optimizer. A
        # non-finite step is applied too, and undone in `_train_loop` (a `tf.cond`
        # around `apply_gradients` would put its all-reduce inside a branch).
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables, strict=True))
        flags = [
            ~tf.math.is_finite(loss),
            ~tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in gradients]),
        ]
        return tf.concat([stats, tf.cast(flags, tf.float32)], axis=0)

    def _replica_eval_step(self, batch):
        return self.objective(self.model, batch, training=False)[1]

    def _replica_predict_step(self, batch):
        return self.objective.predict(self.model, batch), batch["index"]

    # ----------------------------------------------------------------- cross replica
    def _loop(self, replica_fn):
        def loop(iterator, num_steps):
            total = tf.zeros([len(self.objective.stat_names)], tf.float64)
            for _ in tf.range(num_steps):
                stats = self.strategy.run(replica_fn, args=(next(iterator),))
                total += tf.cast(self.strategy.reduce("SUM", stats, axis=None), tf.float64)
            return total

        return tf.function(loop)

    def _train_loop(self):
        # Everything a step may change, except the dropout seeds (which just move on).
        guarded = [*self.model.weights, *self.optimizer.variables]
        stop = self.options.on_nonfinite == "stop"
        num_stats = len(self.objective.stat_names)

        def loop(iterator, num_steps):
            total = tf.zeros([num_stats], tf.float64)
            nonfinite = tf.zeros([len(_FLAGS) + 1], tf.float64)  # steps; by flag
            steps = tf.constant(0)
            for _ in tf.range(num_steps):
                if stop and nonfinite[0] > 0:
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

    def train_loop_begin(self) -> None:
        """Resets the metrics accumulated over training steps."""
        self._train_stats = np.zeros(len(self.objective.stat_names))

    def train_step(self, iterator, num_steps: int) -> dict[str, int]:
        """Runs up to `num_steps` training steps in one `tf.function` call.

        With `on_nonfinite="stop"` the call ends early after a non-finite step.

        Returns:
            `steps` run, `nonfinite_steps` (undone), and how many of them had a
            `nonfinite_loss` or `nonfinite_gradients`.
        """
        if self._train_loop_fn is None:
            self._train_loop_fn = self._train_loop()
        total, nonfinite, steps = self._train_loop_fn(iterator, tf.constant(num_steps))
        self._train_stats += total.numpy()
        nonfinite = nonfinite.numpy().astype(int)
        return {
            "steps": int(steps.numpy()),
            "nonfinite_steps": int(nonfinite[0]),
            **{name: int(n) for name, n in zip(_FLAGS, nonfinite[1:], strict=True)},
        }

    def train_loop_end(self) -> dict[str, float]:
        """Training metrics since `train_loop_begin`, reduced over all replicas."""
        return self.objective.metrics(self._train_stats)

    # ----------------------------------------------------------------- evaluation
    def _eval_plan(self, examples: TokenizedExamples) -> np.ndarray:
        return batching.plan_epoch(
            examples.lengths,
            self.eval_global_batch_size,
            shuffle=False,
            bucket=True,
        )

    def evaluate(self, examples: TokenizedExamples, prefix: str = "") -> dict[str, float]:
        """Exact metrics: every example counts once, whatever the replicas and batch.

        Returns:
            `loss` (mean cross-entropy, without regularisation), `accuracy`, and
            `precision` / `recall` of class 1, keys prefixed with `prefix`.
        """
        if self._eval_loop_fn is None:
            self._eval_loop_fn = self._loop(self._replica_eval_step)
        plan = self._eval_plan(examples)
        dataset = batching.distribute(self.strategy, examples, plan, pad_to=self.options.pad_to)
        iterator = iter(dataset)
        stats = self._eval_loop_fn(iterator, tf.constant(len(plan))).numpy()
        batching.finish(iterator)
        return self.objective.metrics(stats, prefix)

    def predict(self, examples: TokenizedExamples) -> np.ndarray:
        """Class probabilities `[n, classes]`, in the order of `examples`."""
        if self._predict_fn is None:

            def step(iterator):
                outputs, index = self.strategy.run(
                    self._replica_predict_step, args=(next(iterator),)
                )
                return self.strategy.gather(outputs, axis=0), self.strategy.gather(index, axis=0)

            self._predict_fn = tf.function(step)
        plan = self._eval_plan(examples)
        iterator = iter(
            batching.distribute(self.strategy, examples, plan, pad_to=self.options.pad_to)
        )
        probabilities, indices = [], []
        for _ in range(len(plan)):
            outputs, index = self._predict_fn(iterator)
            probabilities.append(outputs.numpy())
            indices.append(index.numpy())
        batching.finish(iterator)
        probabilities, indices = np.concatenate(probabilities), np.concatenate(indices)
        result = np.zeros((len(examples), probabilities.shape[1]), np.float32)
        real = indices != batching.PADDING_ROW
        result[indices[real]] = probabilities[real]
        return result

    # ----------------------------------------------------------------- outer loop
    def fit(
        self,
        train: TokenizedExamples,
        validation: TokenizedExamples | None = None,
    ) -> History:
        """Trains for `options.epochs` epochs and leaves the best weights in the model.

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

        Raises:
            NonFiniteError: with `on_nonfinite="stop"`, at the first non-finite step
                (the model keeps its weights from before that step); with `"skip"`,
                when every step of an epoch was non-finite; and whenever the weights
                themselves are not finite at a checkpoint or epoch end.
            CheckpointError: a checkpoint cannot be written, or the newest one was
                written for other data, batch size, seed or model.
        """
        o = self.options
        steps_per_epoch = max(1, -(-len(train) // self.global_batch_size))
        self._build(train, steps_per_epoch)
        steps_per_loop = min(
            o.steps_per_loop or _default_steps_per_loop(self.strategy), steps_per_epoch
        )
        logger.info(
            "Training %d examples for %d epochs: %d replica(s) on %s, global batch %d, "
            "%d steps/epoch, %d steps per loop, %s",
            len(train),
            o.epochs,
            self.strategy.num_replicas_in_sync,
            device_kind(self.strategy),
            self.global_batch_size,
            steps_per_epoch,
            steps_per_loop,
            "length buckets"
            if self.bucketing
            else "shuffled batches"
            + (" (BatchNorm: no length buckets)" if o.bucket_by_length is None else ""),
        )
        checkpoint = self._open_checkpoint()
        signature = {
            "examples": len(train),
            "global_batch_size": self.global_batch_size,
            "seed": o.seed,
            "bucket_by_length": self.bucketing,
            # Variables are restored by position: their shapes must match too.
            "variables": [f"{v.dtype}{list(v.shape)}" for v in self.model.variables],
        }
        state = FitState()
        if checkpoint is not None:
            state = (
                restore_fit_state(
                    checkpoint,
                    signature=signature,
                    epochs=o.epochs,
                    steps_per_epoch=steps_per_epoch,
                    resume=not o.fresh,
                )
                or state
            )
            restored = state.global_step(steps_per_epoch)
            if disagreements(self.strategy, {"restored step": restored}):
                raise CheckpointError(
                    f"the workers of the cluster restored different checkpoints ({task_id(self.strategy)}: "
                    f"step {restored}): the checkpoint directory must be one that every worker can "
                    "read (a shared file system), or start all workers fresh"
                )
        state.signature = signature
        history = state.history
        writer = _summary_writer(o.summary_dir) if o.summary_dir and self.is_chief else None
        while state.epoch <= o.epochs and not history.stopped_early:
            entry = self._train_epoch(train, state, steps_per_epoch, steps_per_loop, checkpoint)
            evaluation_start = time.perf_counter()
            if validation is not None:
                entry.update(self.evaluate(validation, prefix="val_"))
            entry["epoch_time"] = state.epoch_time + time.perf_counter() - evaluation_start
            history.epochs.append(entry)
            log_epoch(entry, o.epochs)
            if writer is not None:
                with writer.as_default(step=state.epoch):
                    for key, value in entry.items():
                        if key != "epoch":
                            tf.summary.scalar(key, value)
                writer.flush()
            self._end_epoch(state, entry, validation is not None)
            if checkpoint is not None:
                self._save(checkpoint, state, steps_per_epoch)
        if state.best_weights is not None:
            for variable, value in zip(self.model.weights, state.best_weights, strict=True):
                variable.assign(value)
            logger.info("Restored the weights of epoch %d", history.best_epoch)
        return history

    def _train_epoch(self, train, state, steps_per_epoch, steps_per_loop, checkpoint) -> dict:
        """Runs the rest of epoch `state.epoch` from step `state.step`; its train entry."""
        o = self.options
        clock = time.perf_counter() - state.epoch_time
        plan = batching.plan_epoch(
            train.lengths,
            self.global_batch_size,
            seed=o.seed,
            epoch=state.epoch,
            bucket=self.bucketing,
            labels=train.labels,
        )
        dataset = batching.distribute(
            self.strategy,
            train,
            plan,
            weights=batching.loss_weights(plan),
            pad_to=o.pad_to,
            skip_steps=state.step,
        )
        iterator = iter(dataset)
        self.train_loop_begin()
        if state.train_stats.size:
            self._train_stats += state.train_stats
        every = o.checkpoint_every_steps if checkpoint is not None else None
        with _progress(
            self.is_chief and not o.quiet, steps_per_epoch, state.epoch, o.epochs, state.step
        ) as bar:
            while state.step < steps_per_epoch:
                global_step = state.global_step(steps_per_epoch)
                n = min(steps_per_loop, steps_per_epoch - state.step)
                if every:
                    n = min(n, every - global_step % every)
                result = self.train_step(iterator, n)
                state.step += result["steps"]
                state.skipped_steps += result["nonfinite_steps"]
                state.train_stats = self._train_stats.copy()
                state.epoch_time = time.perf_counter() - clock
                if result["nonfinite_steps"] and o.on_nonfinite == "stop":
                    what = "loss" if result["nonfinite_loss"] else "gradients (the loss was finite)"
                    raise NonFiniteError(
                        f"non-finite {what} at epoch {state.epoch}, step {state.step} of "
                        f"{steps_per_epoch}: training stopped, and the model keeps its weights "
                        "from before that step. Lower the learning rate or check the data, or "
                        "skip such steps with on_nonfinite='skip' (--on-nonfinite skip)"
                    )
                if bar is not None:
                    logs = self.train_loop_end()
                    bar.update(result["steps"])
                    shown = dict(list(logs.items())[:2])
                    bar.set_postfix(
                        **{k: f"{v:.4f}" for k, v in shown.items()},
                        ex_s=f"{state.step * self.global_batch_size / state.epoch_time:.0f}",
                    )
                done = state.global_step(steps_per_epoch)
                if every and done % every == 0 and state.step < steps_per_epoch:
                    self._save(checkpoint, state, steps_per_epoch)
        if state.step >= steps_per_epoch:
            batching.finish(iterator)
        if state.skipped_steps:
            if state.skipped_steps == steps_per_epoch:
                raise NonFiniteError(
                    f"every step of epoch {state.epoch} had a non-finite loss or gradients; "
                    "lower the learning rate or check the data"
                )
            logger.warning(
                "epoch %d: skipped %d of %d steps with a non-finite loss or gradients",
                state.epoch,
                state.skipped_steps,
                steps_per_epoch,
            )
        entry = {"epoch": state.epoch, **self.train_loop_end()}
        entry["learning_rate"] = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))
        entry["examples_per_second"] = len(train) / state.epoch_time
        entry["skipped_steps"] = state.skipped_steps
        return entry

    def _end_epoch(self, state: FitState, entry: dict, validated: bool) -> None:
        """Best weights, patience, and the move to the next epoch."""
        o = self.options
        history = state.history
        weights = [np.array(v.numpy()) for v in self.model.weights]
        if not all(np.isfinite(w).all() for w in weights):
            raise NonFiniteError(
                f"the model weights are not finite after epoch {state.epoch}; they are "
                "neither kept as the best nor checkpointed"
            )
        monitored = entry.get(self.monitor if validated else "loss")
        if monitored is None:
            raise ValueError(
                f"options.monitor={self.monitor!r} is not a metric; have {sorted(entry)}"
            )
        if not validated:
            improved = True
        elif not math.isfinite(monitored):
            improved = False
        else:
            improved = state.best_value is None or (
                monitored > state.best_value if self.mode == "max" else monitored < state.best_value
            )
        if improved:
            state.best_value, state.waited, state.best_weights = monitored, 0, weights
            history.best_epoch, history.best_metrics = state.epoch, entry
        else:
            state.waited += 1
            if o.patience is not None and state.waited >= o.patience:
                logger.info(
                    "Early stopping: %s has not improved for %d epochs", self.monitor, state.waited
                )
                history.stopped_early = True
        state.next_epoch()

    # ----------------------------------------------------------------- checkpoints
    def _open_checkpoint(self) -> TrainingCheckpoint | None:
        if self.options.checkpoint_dir is None:
            return None
        return TrainingCheckpoint(
            self.options.checkpoint_dir,
            model=self.model,
            optimizer=self.optimizer,
            max_to_keep=self.options.keep_checkpoints,
            is_chief=self.is_chief,
            task=task_id(self.strategy),
        )

    def _save(self, checkpoint: TrainingCheckpoint, state: FitState, steps_per_epoch: int):
        if not all(np.isfinite(v.numpy()).all() for v in self.model.weights):
            raise NonFiniteError(
                f"the model weights are not finite at epoch {state.epoch}, step {state.step}; "
                f"not checkpointed over {checkpoint.latest}"
            )
        saved = state.to_json()
        saved["epochs"] = self.options.epochs
        checkpoint.save(state.global_step(steps_per_epoch), saved, state.best_weights)


def _has_batch_norm(layer) -> bool:
    if isinstance(layer, keras.layers.BatchNormalization):
        return True
    return any(_has_batch_norm(sub) for sub in getattr(layer, "layers", ()) if sub is not layer)


def _summary_writer(directory: str):
    try:
        import tensorboard  # noqa: F401  (tf.summary needs it since TF 2.21)
    except ImportError:
        logger.info('TensorBoard scalars skipped: pip install "weibo-lstm[tensorboard]"')
        return None
    return tf.summary.create_file_writer(directory)


def _default_steps_per_loop(strategy) -> int:
    return 200 if device_kind(strategy) == "GPU" else 50


class _progress:
    """A tqdm bar as a context manager, or None when disabled."""

    def __init__(self, enabled, total, epoch, epochs, initial=0):
        self.enabled, self.total, self.desc = enabled, total, f"epoch {epoch}/{epochs}"
        self.initial = initial
        self.bar = None

    def __enter__(self):
        import sys

        enabled = self.enabled and sys.stderr.isatty()
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=self.total, initial=self.initial, desc=self.desc, unit="step", leave=False
            )
        return self.bar

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()

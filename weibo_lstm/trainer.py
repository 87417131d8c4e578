"""DistributedTrainer: an explicit `strategy.run` training loop in Orbit's shape.

fit()                       # host: epochs, validation, best weights, logging
  train_loop_begin()        # reset accumulated metrics
  train_step(iterator, n)   # tf.function: n × strategy.run(_replica_train_step)
  train_loop_end() -> dict  # metrics reduced over replicas and steps
  evaluate(validation)      # exact: sums and counts, every example once
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
from weibo_lstm.distribution import default_strategy, device_kind, is_chief
from weibo_lstm.schedules import WarmupCosineDecay

logger = logging.getLogger("weibo_lstm")

# Per-step statistics, summed over replicas and steps: the metrics derive from them.
_STATS = ("loss_sum", "count", "correct", "true_pos", "false_pos", "false_neg")


@dataclasses.dataclass(frozen=True)
class TrainerOptions:
    """Options of `DistributedTrainer`.

    Attributes:
        epochs: passes over the training set.
        per_replica_batch_size: examples per replica per step; the global batch is
            this times `strategy.num_replicas_in_sync`.
        base_learning_rate: peak learning rate for one replica, scaled by
            `lr_scaling` (used only when the trainer builds the optimizer).
        lr_scaling: `"sqrt"` (peak = base × √replicas, the seed's rule), `"linear"`
            (base × replicas) or `"none"`.
        initial_lr_fraction: warmup starts at this fraction of the peak rate.
        warmup_epochs: linear warmup length; then cosine decay to the last step.
        min_lr_fraction: floor of the cosine decay as a fraction of the peak.
        steps_per_loop: training steps per `tf.function` call; None picks 50 on CPU
            and 200 on GPU (capped by the epoch length).
        monitor: metric that selects the best epoch (`val_accuracy`, `val_loss`, …).
        mode: `"max"` or `"min"`: whether a larger `monitor` is better.
        patience: stop after this many epochs without improvement (None: never).
        seed: shuffling seed (the data order of epoch e is a function of seed and e).
        bucket_by_length: batch similar lengths together and pad per batch (False:
            shuffle freely; pad per batch, or to `pad_to` if set).
        pad_to: pad every batch to this length (the seed pipeline pads to 180).
        label_smoothing: cross-entropy label smoothing.
        from_logits: the model outputs logits rather than probabilities.
        eval_batch_size: per-replica batch for evaluation and prediction
            (None: 4 × `per_replica_batch_size`).
        progress_bar: show a tqdm bar on the chief (None: only on a terminal).
        summary_dir: write TensorBoard scalars here (chief only; None: off).
    """

    epochs: int = 15
    per_replica_batch_size: int = 64
    base_learning_rate: float = 1e-4
    lr_scaling: str = "sqrt"
    initial_lr_fraction: float = 0.1
    warmup_epochs: float = 3.0
    min_lr_fraction: float = 0.0
    steps_per_loop: int | None = None
    monitor: str = "val_accuracy"
    mode: str = "max"
    patience: int | None = None
    seed: int = 42
    bucket_by_length: bool = True
    pad_to: int | None = None
    label_smoothing: float = 0.0
    from_logits: bool = False
    eval_batch_size: int | None = None
    progress_bar: bool | None = None
    summary_dir: str | None = None

    def __post_init__(self):
        def check(name, ok, expected):
            if not ok:
                raise ValueError(
                    f"Argument `{name}` must be {expected}. Received: {name}={getattr(self, name)!r}"
                )

        check("epochs", self.epochs >= 1, ">= 1")
        check("per_replica_batch_size", self.per_replica_batch_size >= 1, ">= 1")
        check("base_learning_rate", self.base_learning_rate > 0, "> 0")
        check(
            "lr_scaling",
            self.lr_scaling in ("sqrt", "linear", "none"),
            "'sqrt', 'linear' or 'none'",
        )
        check("initial_lr_fraction", 0 <= self.initial_lr_fraction <= 1, "in [0, 1]")
        check("warmup_epochs", self.warmup_epochs >= 0, ">= 0")
        check("min_lr_fraction", 0 <= self.min_lr_fraction <= 1, "in [0, 1]")
        check("steps_per_loop", self.steps_per_loop is None or self.steps_per_loop >= 1, ">= 1")
        check("mode", self.mode in ("max", "min"), "'max' or 'min'")
        check("patience", self.patience is None or self.patience >= 1, ">= 1 or None")
        check("pad_to", self.pad_to is None or self.pad_to >= 1, ">= 1 or None")
        check("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)")
        check("eval_batch_size", self.eval_batch_size is None or self.eval_batch_size >= 1, ">= 1")

    def peak_learning_rate(self, num_replicas: int) -> float:
        """`base_learning_rate` scaled for `num_replicas` replicas by `lr_scaling`."""
        factor = {"sqrt": math.sqrt(num_replicas), "linear": num_replicas, "none": 1.0}
        return self.base_learning_rate * factor[self.lr_scaling]


@dataclasses.dataclass
class History:
    """What `fit` did.

    Attributes:
        epochs: one dict per epoch: `epoch` (1-based), train metrics (`loss`,
            `accuracy`, `precision`, `recall`), validation metrics (`val_` prefix),
            `learning_rate`, `epoch_time`, `examples_per_second`.
        best_epoch: 1-based epoch whose weights the model holds after `fit`.
        best_metrics: that epoch's entry of `epochs`.
        stopped_early: whether `patience` ended training.
    """

    epochs: list[dict] = dataclasses.field(default_factory=list)
    best_epoch: int | None = None
    best_metrics: dict | None = None
    stopped_early: bool = False

    def series(self, key: str) -> list[float]:
        """One metric over epochs."""
        return [entry.get(key, math.nan) for entry in self.epochs]


def metrics_from_stats(stats: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Loss, accuracy, precision and recall (class 1) from summed statistics."""
    s = dict(zip(_STATS, np.asarray(stats, np.float64), strict=True))
    count = max(s["count"], 1.0)
    predicted_pos = s["true_pos"] + s["false_pos"]
    actual_pos = s["true_pos"] + s["false_neg"]
    return {
        f"{prefix}loss": s["loss_sum"] / count,
        f"{prefix}accuracy": s["correct"] / count,
        f"{prefix}precision": s["true_pos"] / predicted_pos if predicted_pos else 0.0,
        f"{prefix}recall": s["true_pos"] / actual_pos if actual_pos else 0.0,
    }


class DistributedTrainer:
    """Trains a Keras classifier with an explicit data-parallel loop.

    Each step runs `_replica_train_step` on every replica with `strategy.run`; the
    loss is averaged over the *global* batch (`tf.nn.compute_average_loss`), so the
    gradients that the optimizer all-reduces (SUM) across replicas equal those of one
    replica seeing the whole batch. `steps_per_loop` steps run inside one
    `tf.function` call (`tf.range` over the distributed iterator).

    Args:
        model: a Keras model mapping int32 ids `[batch, time]` to class
            probabilities (or logits with `from_logits`). Unbuilt, or built under
            `strategy.scope()`.
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
    ...     options=TrainerOptions(epochs=2, per_replica_batch_size=16, warmup_epochs=1,
    ...                            progress_bar=False))
    >>> history = trainer.fit(examples, examples)
    >>> len(history.epochs), history.best_epoch in (1, 2)
    (2, True)
    """

    def __init__(
        self,
        *,
        model: keras.Model,
        optimizer: keras.optimizers.Optimizer | None = None,
        strategy: tf.distribute.Strategy | None = None,
        options: TrainerOptions | None = None,
    ):
        self.strategy = strategy or default_strategy()
        self.options = options or TrainerOptions()
        self.model = model
        self.optimizer = optimizer
        self.is_chief = is_chief(self.strategy)
        replicas = self.strategy.num_replicas_in_sync
        self.global_batch_size = self.options.per_replica_batch_size * replicas
        self.eval_global_batch_size = (
            self.options.eval_batch_size or 4 * self.options.per_replica_batch_size
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
        self._train_loop_fn = None
        self._eval_loop_fn = None
        self._predict_fn = None
        self._train_stats = np.zeros(len(_STATS))

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
    def _per_example_loss(self, labels, outputs):
        one_hot = tf.one_hot(labels, tf.shape(outputs)[-1])
        return keras.losses.categorical_crossentropy(
            one_hot,
            outputs,
            from_logits=self.options.from_logits,
            label_smoothing=self.options.label_smoothing,
        )

    def _replica_train_step(self, batch):
        ids, labels, weights = batch["ids"], batch["labels"], batch["weights"]
        with tf.GradientTape() as tape:
            outputs = self.model(ids, training=True)
            per_example_loss = self._per_example_loss(labels, outputs)
            loss = tf.nn.compute_average_loss(
                per_example_loss, sample_weight=weights, global_batch_size=self.global_batch_size
            )
            if self.model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
        gradients = tape.gradient(loss, self.model.trainable_variables)
        # Embedding gradients arrive as IndexedSlices whose row count varies per
        # replica and step; all-gathering them inside the `tf.range` loop reuses
        # collective instance keys with changing shapes, which aborts the step.
        gradients = [tf.convert_to_tensor(g) for g in gradients]
        # Gradients are all-reduced (SUM) across replicas by the optimizer.
        self.optimizer.apply_gradients(zip(gradients, self.model.trainable_variables, strict=True))
        return _batch_stats(labels, outputs, per_example_loss, weights > 0)

    def _replica_eval_step(self, batch):
        outputs = self.model(batch["ids"], training=False)
        per_example_loss = self._per_example_loss(batch["labels"], outputs)
        return _batch_stats(batch["labels"], outputs, per_example_loss, batch["weights"] > 0)

    def _replica_predict_step(self, batch):
        outputs = self.model(batch["ids"], training=False)
        if self.options.from_logits:
            outputs = tf.nn.softmax(outputs)
        return outputs, batch["index"]

    # ----------------------------------------------------------------- cross replica
    def _loop(self, replica_fn):
        def loop(iterator, num_steps):
            total = tf.zeros([len(_STATS)], tf.float64)
            for _ in tf.range(num_steps):
                stats = self.strategy.run(replica_fn, args=(next(iterator),))
                total += tf.cast(self.strategy.reduce("SUM", stats, axis=None), tf.float64)
            return total

        return tf.function(loop)

    def train_loop_begin(self) -> None:
        """Resets the metrics accumulated over training steps."""
        self._train_stats = np.zeros(len(_STATS))

    def train_step(self, iterator, num_steps: int) -> None:
        """Runs `num_steps` training steps in one `tf.function` call."""
        if self._train_loop_fn is None:
            self._train_loop_fn = self._loop(self._replica_train_step)
        self._train_stats += self._train_loop_fn(iterator, tf.constant(num_steps)).numpy()

    def train_loop_end(self) -> dict[str, float]:
        """Training metrics since `train_loop_begin`, reduced over all replicas."""
        return metrics_from_stats(self._train_stats)

    # ----------------------------------------------------------------- evaluation
    def _eval_plan(self, examples: TokenizedExamples) -> np.ndarray:
        return batching.plan_epoch(
            examples.lengths,
            self.eval_global_batch_size,
            shuffle=False,
            bucket=self.options.bucket_by_length,
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
        stats = self._eval_loop_fn(iter(dataset), tf.constant(len(plan))).numpy()
        return metrics_from_stats(stats, prefix)

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
        """
        o = self.options
        steps_per_epoch = max(1, -(-len(train) // self.global_batch_size))
        self._build(train, steps_per_epoch)
        steps_per_loop = min(
            o.steps_per_loop or _default_steps_per_loop(self.strategy), steps_per_epoch
        )
        history = History()
        best_value, best_weights, waited = None, None, 0
        writer = _summary_writer(o.summary_dir) if o.summary_dir and self.is_chief else None
        logger.info(
            "Training %d examples for %d epochs: %d replica(s) on %s, global batch %d, "
            "%d steps/epoch, %d steps per loop",
            len(train),
            o.epochs,
            self.strategy.num_replicas_in_sync,
            device_kind(self.strategy),
            self.global_batch_size,
            steps_per_epoch,
            steps_per_loop,
        )
        for epoch in range(1, o.epochs + 1):
            start = time.perf_counter()
            plan = batching.plan_epoch(
                train.lengths,
                self.global_batch_size,
                seed=o.seed,
                epoch=epoch,
                bucket=o.bucket_by_length,
                labels=train.labels,
            )
            dataset = batching.distribute(
                self.strategy, train, plan, weights=batching.loss_weights(plan), pad_to=o.pad_to
            )
            iterator = iter(dataset)
            self.train_loop_begin()
            with _progress(
                self.is_chief and o.progress_bar, steps_per_epoch, epoch, o.epochs
            ) as bar:
                for done in range(0, steps_per_epoch, steps_per_loop):
                    n = min(steps_per_loop, steps_per_epoch - done)
                    self.train_step(iterator, n)
                    if bar is not None:
                        seen = self._train_stats[1]
                        logs = self.train_loop_end()
                        bar.update(n)
                        bar.set_postfix(
                            loss=f"{logs['loss']:.4f}",
                            acc=f"{logs['accuracy']:.4f}",
                            ex_s=f"{seen / (time.perf_counter() - start):.0f}",
                        )
            train_time = time.perf_counter() - start
            entry = {"epoch": epoch, **self.train_loop_end()}
            entry["learning_rate"] = float(keras.ops.convert_to_numpy(self.optimizer.learning_rate))
            entry["examples_per_second"] = len(train) / train_time
            if validation is not None:
                entry.update(self.evaluate(validation, prefix="val_"))
            entry["epoch_time"] = time.perf_counter() - start
            history.epochs.append(entry)
            _log_epoch(entry, o.epochs)
            if writer is not None:
                with writer.as_default(step=epoch):
                    for key, value in entry.items():
                        if key != "epoch":
                            tf.summary.scalar(key, value)
                writer.flush()

            monitored = entry.get(o.monitor if validation is not None else "loss")
            if monitored is None:
                raise ValueError(
                    f"options.monitor={o.monitor!r} is not a metric; have {sorted(entry)}"
                )
            if validation is None:
                improved = True
            elif not math.isfinite(monitored):
                improved = False
            else:
                improved = best_value is None or (
                    monitored > best_value if o.mode == "max" else monitored < best_value
                )
            if improved:
                best_value, waited = monitored, 0
                best_weights = [np.array(v.numpy()) for v in self.model.weights]
                history.best_epoch, history.best_metrics = epoch, entry
            else:
                waited += 1
                if o.patience is not None and waited >= o.patience:
                    logger.info(
                        "Early stopping: %s has not improved for %d epochs", o.monitor, waited
                    )
                    history.stopped_early = True
                    break
        if best_weights is not None:
            for variable, value in zip(self.model.weights, best_weights, strict=True):
                variable.assign(value)
            logger.info("Restored the weights of epoch %d", history.best_epoch)
        return history


def _batch_stats(labels, outputs, per_example_loss, mask):
    mask = tf.cast(mask, tf.float32)
    predicted = tf.cast(tf.argmax(outputs, axis=-1), labels.dtype)
    actual_pos = tf.cast(labels == 1, tf.float32)
    predicted_pos = tf.cast(predicted == 1, tf.float32)
    return tf.stack(
        [
            tf.reduce_sum(per_example_loss * mask),
            tf.reduce_sum(mask),
            tf.reduce_sum(tf.cast(predicted == labels, tf.float32) * mask),
            tf.reduce_sum(actual_pos * predicted_pos * mask),
            tf.reduce_sum((1 - actual_pos) * predicted_pos * mask),
            tf.reduce_sum(actual_pos * (1 - predicted_pos) * mask),
        ]
    )


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

    def __init__(self, enabled, total, epoch, epochs):
        self.enabled, self.total, self.desc = enabled, total, f"epoch {epoch}/{epochs}"
        self.bar = None

    def __enter__(self):
        import sys

        enabled = self.enabled if self.enabled is not None else sys.stderr.isatty()
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=self.desc, unit="step", leave=False)
        return self.bar

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


def _log_epoch(entry: dict, epochs: int) -> None:
    parts = [f"epoch {entry['epoch']}/{epochs}"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "val_precision", "val_recall"):
        if key in entry:
            parts.append(f"{key} {entry[key]:.4f}")
    parts.append(f"lr {entry['learning_rate']:.2e}")
    parts.append(f"{entry['examples_per_second']:.0f} ex/s")
    parts.append(f"{entry['epoch_time']:.1f}s")
    logger.info(" - ".join(parts))

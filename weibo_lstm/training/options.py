"""TrainerOptions: every knob of `DistributedTrainer`, one frozen dataclass."""

from __future__ import annotations

import dataclasses
import math

#: The `--mixed-precision` modes (`weibo_lstm.training.mixed_precision`).
MIXED_PRECISION_MODES = ("off", "float16", "bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainerOptions:
    """Options of `DistributedTrainer`.

    Attributes:
        epochs: passes over the training set.
        batch_size: examples per replica per step; the global batch is this times
            the number of replicas (GPUs, or `--replicas`, of every worker). Not
            used when `global_batch_size` is set.
        global_batch_size: examples per step across all replicas, whatever their
            number (each replica takes this / replicas, which must divide it); the
            learning rate is then this batch's and `lr_scaling` does not apply.
            None: `batch_size` × replicas.
        learning_rate: peak learning rate for one replica, scaled by
            `lr_scaling` (used only when the trainer builds the optimizer); with
            `global_batch_size`, the peak rate itself.
        lr_scaling: `"sqrt"` (peak = base × √replicas, the seed's rule), `"linear"`
            (base × replicas) or `"none"`; not used with `global_batch_size`.
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
        seed: shuffling seed (the data order of epoch e is a function of seed and e);
            `pretrain` also seeds its text subset, split, weights and sampled softmax with it.
        bucket_by_length: batch similar lengths together and pad per batch (False:
            shuffle freely; pad per batch, or to `pad_to` if set). A model with
            BatchNormalization trains with buckets too, with batch renormalization
            and buckets not stratified by class (`DistributedTrainer.plan_epoch`),
            and `precise_bn_batches`. Evaluation always buckets: inference does not
            depend on batch composition.
        batch_renormalization: for a model with BatchNormalization trained with
            length buckets, normalise with the moving statistics in training (batch
            renormalization, Ioffe 2017): a batch of one length band has statistics
            of its own. False: each batch's own statistics, which suffice when the
            batches are large (thousands of posts).
        pad_to: pad every batch to this length (the seed pipeline pads to 180).
        precise_bn_batches: for a model with BatchNormalization trained with
            length buckets: after each epoch's training, before validation,
            recompute the moving statistics from this many shuffled training
            batches (`weibo_lstm.training.precise_bn`); 0: keep the moving averages.
            Without buckets the moving averages are kept either way.
        eval_batch_size: per-replica batch for evaluation and prediction
            (None: 4 × the training batch).
        quiet: no tqdm progress bar (otherwise the chief shows one on a terminal).
        summary_dir: write TensorBoard scalars here (chief only; None: off).
        on_nonfinite: what a step with a non-finite loss or gradient does; it is
            undone either way. `"stop"` ends the run (exit status 3); `"skip"` goes on
            and counts it (`skipped_steps` in each epoch's history entry). A
            float16 step skipped by dynamic loss scaling is not such a step.
        checkpoint_dir: save resumable checkpoints here (None: none). A run
            continues from the newest one there, mid-epoch if need be, unless
            `fresh` is set.
        checkpoint_every_steps: also save every this many optimizer steps (on a
            `steps_per_loop` boundary; loops are cut to meet it); None: only at
            the end of each epoch.
        keep_checkpoints: how many recent checkpoints to keep.
        fresh: delete the checkpoints in `checkpoint_dir` and start from scratch
            (default: continue from the newest one).
        clip_global_norm: clip each step's gradient (summed over the replicas, without
            the float16 loss scale) to this global L2 norm; the update is then exactly
            one replica's at the global batch. Keras's `global_clipnorm` would clip
            each replica's part before the all-reduce instead. Costs one more
            all-reduce of the gradients per step on more than one replica. None: off.
        adversarial_epsilon: adversarial training on the embeddings (Miyato et al.
            2017): the L2 norm of each example's worst-case perturbation of its
            embedding sequence, whose loss is added to the clean loss; 0: off. A
            training step costs about twice as much when on. Used by the default
            objective (`ClassificationObjective(adversarial_epsilon=...)`).
        emoticon_dropout: share of the training posts whose emoticons are removed,
            for labels that were derived from emoticons (distant supervision): the
            model must learn the words too. None: 0.5 when the training labels follow
            the emoticons (`weibo_lstm.data.emoticons.emoticon_audit`, e.g.
            weibo_senti_100k), else 0. Used by `SentimentClassifier.fit`.
    """

    epochs: int = 15
    batch_size: int = 64
    global_batch_size: int | None = None
    learning_rate: float = 1e-4
    lr_scaling: str = dataclasses.field(
        default="sqrt", metadata={"choices": ("sqrt", "linear", "none")}
    )
    initial_lr_fraction: float = 0.1
    warmup_epochs: float = 3.0
    min_lr_fraction: float = 0.0
    steps_per_loop: int | None = None
    monitor: str | None = None
    mode: str | None = dataclasses.field(default=None, metadata={"choices": ("max", "min")})
    patience: int | None = None
    seed: int = 42
    bucket_by_length: bool = True
    batch_renormalization: bool = True
    pad_to: int | None = None
    precise_bn_batches: int = 50
    eval_batch_size: int | None = None
    quiet: bool = False
    summary_dir: str | None = None
    on_nonfinite: str = dataclasses.field(default="stop", metadata={"choices": ("stop", "skip")})
    checkpoint_dir: str | None = dataclasses.field(default=None, metadata={"metavar": "DIR"})
    checkpoint_every_steps: int | None = 200
    keep_checkpoints: int = 3
    fresh: bool = False
    clip_global_norm: float | None = None
    adversarial_epsilon: float = 0.0
    emoticon_dropout: float | None = None

    def __post_init__(self):
        def check(name, ok, expected):
            if not ok:
                raise ValueError(
                    f"Argument `{name}` must be {expected}. Received: {name}={getattr(self, name)!r}"
                )

        check("epochs", self.epochs >= 1, ">= 1")
        check("batch_size", self.batch_size >= 1, ">= 1")
        check(
            "global_batch_size",
            self.global_batch_size is None or self.global_batch_size >= 1,
            ">= 1 or None",
        )
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
        check("precise_bn_batches", self.precise_bn_batches >= 0, ">= 0")
        check("on_nonfinite", self.on_nonfinite in ("stop", "skip"), "'stop' or 'skip'")
        check(
            "checkpoint_every_steps",
            self.checkpoint_every_steps is None or self.checkpoint_every_steps >= 1,
            ">= 1 or None",
        )
        check("keep_checkpoints", self.keep_checkpoints >= 1, ">= 1")
        check(
            "clip_global_norm",
            self.clip_global_norm is None or self.clip_global_norm > 0,
            "> 0 or None",
        )
        check("adversarial_epsilon", self.adversarial_epsilon >= 0, ">= 0")
        check(
            "emoticon_dropout",
            self.emoticon_dropout is None or 0 <= self.emoticon_dropout <= 1,
            "in [0, 1] or None",
        )

    def global_batch(self, num_replicas: int) -> int:
        """Examples per step across `num_replicas` replicas.

        Raises:
            ValueError: `global_batch_size` is not a multiple of `num_replicas`.
        """
        if self.global_batch_size is None:
            return self.batch_size * num_replicas
        if self.global_batch_size % num_replicas:
            raise ValueError(
                f"Argument `global_batch_size` must be a multiple of the {num_replicas} "
                f"replicas. Received: global_batch_size={self.global_batch_size}"
            )
        return self.global_batch_size

    def peak_learning_rate(self, num_replicas: int) -> float:
        """`learning_rate` scaled for `num_replicas` replicas by `lr_scaling` (with a
        fixed `global_batch_size`: `learning_rate`, which the replicas do not change)."""
        if self.global_batch_size is not None:
            return self.learning_rate
        factor = {"sqrt": math.sqrt(num_replicas), "linear": num_replicas, "none": 1.0}
        return self.learning_rate * factor[self.lr_scaling]

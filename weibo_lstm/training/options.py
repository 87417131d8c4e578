"""TrainerOptions: what the runner needs (the replica step, the optimizer, the input).

The outer loop's options (epochs, validation, checkpoints, ...) are
`controller_options.ControllerOptions`; `option_groups` routes flat keyword
arguments to the two.
"""

from __future__ import annotations

import dataclasses
import math

from weibo_lstm.errors import check_argument, check_fields

#: The `--mixed-precision` modes (`weibo_lstm.training.mixed_precision`).
MIXED_PRECISION_MODES = ("off", "float16", "bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainerOptions:
    """Options of `DistributedTrainer`: its replica step, optimizer and input pipeline.

    Attributes:
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
        eval_batch_size: per-replica batch for evaluation and prediction
            (None: 4 × the training batch).
        clip_global_norm: clip each step's gradient (summed over the replicas, without
            the float16 loss scale) to this global L2 norm; the update is then exactly
            one replica's at the global batch. Keras's `global_clipnorm` would clip
            each replica's part before the all-reduce instead. Costs one more
            all-reduce of the gradients per step on more than one replica. None: off.
    """

    batch_size: int = 64
    global_batch_size: int | None = None
    learning_rate: float = 1e-4
    lr_scaling: str = dataclasses.field(
        default="sqrt", metadata={"choices": ("sqrt", "linear", "none")}
    )
    initial_lr_fraction: float = 0.1
    warmup_epochs: float = 3.0
    min_lr_fraction: float = 0.0
    seed: int = 42
    bucket_by_length: bool = True
    batch_renormalization: bool = True
    pad_to: int | None = None
    eval_batch_size: int | None = None
    clip_global_norm: float | None = None

    def __post_init__(self):
        check_fields(
            self,
            batch_size=(self.batch_size >= 1, ">= 1"),
            global_batch_size=(_none_or(self.global_batch_size, 1), ">= 1 or None"),
            learning_rate=(self.learning_rate > 0, "> 0"),
            lr_scaling=(
                self.lr_scaling in ("sqrt", "linear", "none"),
                "'sqrt', 'linear' or 'none'",
            ),
            initial_lr_fraction=(0 <= self.initial_lr_fraction <= 1, "in [0, 1]"),
            warmup_epochs=(self.warmup_epochs >= 0, ">= 0"),
            min_lr_fraction=(0 <= self.min_lr_fraction <= 1, "in [0, 1]"),
            pad_to=(_none_or(self.pad_to, 1), ">= 1 or None"),
            eval_batch_size=(_none_or(self.eval_batch_size, 1), ">= 1 or None"),
            clip_global_norm=(
                self.clip_global_norm is None or self.clip_global_norm > 0,
                "> 0 or None",
            ),
        )

    def global_batch(self, num_replicas: int) -> int:
        """Examples per step across `num_replicas` replicas.

        Raises:
            ConfigError: `global_batch_size` is not a multiple of `num_replicas`.
        """
        if self.global_batch_size is None:
            return self.batch_size * num_replicas
        check_argument(
            "global_batch_size",
            self.global_batch_size,
            self.global_batch_size % num_replicas == 0,
            f"a multiple of the {num_replicas} replicas",
        )
        return self.global_batch_size

    def peak_learning_rate(self, num_replicas: int) -> float:
        """`learning_rate` scaled for `num_replicas` replicas by `lr_scaling` (with a
        fixed `global_batch_size`: `learning_rate`, which the replicas do not change)."""
        if self.global_batch_size is not None:
            return self.learning_rate
        factor = {"sqrt": math.sqrt(num_replicas), "linear": num_replicas, "none": 1.0}
        return self.learning_rate * factor[self.lr_scaling]


def _none_or(value: float | None, minimum: float) -> bool:
    """Whether `value` is None or at least `minimum` (False for NaN)."""
    return value is None or value >= minimum

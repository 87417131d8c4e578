"""ControllerOptions: what the outer loop needs (epochs, validation, checkpoints, ...).

The runner's options (batch, optimizer, input) are `options.TrainerOptions`;
`option_groups` routes flat keyword arguments to the two.
"""

from __future__ import annotations

import dataclasses

from weibo_lstm.errors import check_fields


@dataclasses.dataclass(frozen=True)
class ControllerOptions:
    """Options of `Controller`: the epochs and the services around the step loops.

    Attributes:
        epochs: passes over the training set.
        steps_per_loop: training steps per `tf.function` call; None picks 50 on CPU
            and 200 on GPU (capped by the epoch length).
        monitor: metric that selects the best epoch (`val_accuracy`, `val_loss`, …);
            None: the objective's (`val_accuracy` for classification).
        mode: `"max"` or `"min"`: whether a larger `monitor` is better; None: the
            objective's.
        patience: stop after this many epochs without improvement (None: never).
        precise_bn_batches: for a model with BatchNormalization trained with
            length buckets: after each epoch's training, before validation,
            recompute the moving statistics from this many shuffled training
            batches (`weibo_lstm.training.precise_bn`); 0: keep the moving averages.
            Without buckets the moving averages are kept either way.
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
    """

    epochs: int = 15
    steps_per_loop: int | None = None
    monitor: str | None = None
    mode: str | None = dataclasses.field(default=None, metadata={"choices": ("max", "min")})
    patience: int | None = None
    precise_bn_batches: int = 50
    quiet: bool = False
    summary_dir: str | None = None
    on_nonfinite: str = dataclasses.field(default="stop", metadata={"choices": ("stop", "skip")})
    checkpoint_dir: str | None = dataclasses.field(default=None, metadata={"metavar": "DIR"})
    checkpoint_every_steps: int | None = 200
    keep_checkpoints: int = 3
    fresh: bool = False

    def __post_init__(self):
        check_fields(
            self,
            epochs=(self.epochs >= 1, ">= 1"),
            steps_per_loop=(self.steps_per_loop is None or self.steps_per_loop >= 1, ">= 1"),
            mode=(self.mode in (None, "max", "min"), "'max', 'min' or None"),
            patience=(self.patience is None or self.patience >= 1, ">= 1 or None"),
            precise_bn_batches=(self.precise_bn_batches >= 0, ">= 0"),
            on_nonfinite=(self.on_nonfinite in ("stop", "skip"), "'stop' or 'skip'"),
            checkpoint_every_steps=(
                self.checkpoint_every_steps is None or self.checkpoint_every_steps >= 1,
                ">= 1 or None",
            ),
            keep_checkpoints=(self.keep_checkpoints >= 1, ">= 1"),
        )

"""Controller: the outer training loop (epochs of step loops, validation, actions).

    build, restore the newest checkpoint   # Controller(trainer).fit(train, validation)
    for each epoch:                        # from `state`: a resumed run starts mid-epoch
        actions.on_epoch_begin
        while steps are left:
            trainer.train(iterator, n)     # n ≤ steps_per_loop, cut at checkpoint steps
            actions.on_loop_end            # progress, periodic checkpoint, SIGTERM
        precise BatchNorm statistics       # a BatchNorm model trained with buckets
        trainer.evaluate(validation)
        actions.on_epoch_end               # TensorBoard, best weights, patience, checkpoint
    actions.on_fit_end                     # the best weights back into the model

The controller reads its own `ControllerOptions` (epochs, validation, checkpoints,
...); the trainer has its `TrainerOptions`. It owns the epoch plan (a pure function of
`(seed, epoch)`, so a resumed epoch rebuilds it and skips its finished steps) and the
non-finite policy: `trainer.train` ends at a non-finite step (undone), and the
controller stops the run or calls it again for the loop's remaining steps. Everything
else around the loop is an `Action`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import keras

from weibo_lstm.errors import CheckpointError, NonFiniteError
from weibo_lstm.preprocessing.tokenized_examples import TokenizedExamples
from weibo_lstm.training import actions
from weibo_lstm.training import input_pipeline as batching
from weibo_lstm.training.actions import Action
from weibo_lstm.training.checkpointing import FitState, TrainingCheckpoint, restore_fit_state
from weibo_lstm.training.controller_options import ControllerOptions
from weibo_lstm.training.history import History, log_epoch
from weibo_lstm.training.precise_bn import PreciseBatchNorm
from weibo_lstm.training.preemption import PreemptionWatcher

logger = logging.getLogger("weibo_lstm")


class Controller:
    """Drives the trainer it is given through `options.epochs`, with actions around it.

    As Orbit's `Controller`: the trainer (a `DistributedTrainer`, the runner) owns the
    steps (`train_loop_begin`, `train`, `train_loop_end`, `evaluate`); the
    controller owns the epochs, the epoch plans, validation, precise BatchNorm and
    the non-finite policy, and fires the actions, one small object per service:
    progress bar, TensorBoard, best weights, early stopping, checkpoints, SIGTERM.

    Args:
        trainer: the runner.
        options: `ControllerOptions` (None: the defaults).
        actions: extra actions, called after the default ones (which come from
            `options`) at every hook.

    Attributes:
        monitor: the metric that picks the best epoch (`options.monitor`, else the
            objective's).
        mode: `"max"` or `"min"` (`options.mode`, else the objective's).

    Example:

    >>> from weibo_lstm import TrainerOptions, WeiboLSTM
    >>> from weibo_lstm.training.trainer import DistributedTrainer
    >>> ids = [np.arange(2, 2 + n) for n in range(1, 33)]
    >>> examples = TokenizedExamples(np.concatenate(ids).astype("int32"),
    ...     np.cumsum([0] + [len(r) for r in ids]), np.arange(32, dtype="int32") % 2)
    >>> trainer = DistributedTrainer(model=WeiboLSTM(40, lstm_units=(4,), dense_units=0),
    ...     options=TrainerOptions(batch_size=16))
    >>> controller = Controller(trainer, ControllerOptions(epochs=1, quiet=True))
    >>> len(controller.fit(examples, examples).epochs)
    1
    """

    def __init__(
        self,
        trainer,
        options: ControllerOptions | None = None,
        *,
        actions: Sequence[Action] = (),
    ):
        self.trainer, self.extra_actions = trainer, list(actions)
        self.options = o = options or ControllerOptions()
        self.monitor = o.monitor or trainer.objective.monitor
        self.mode = o.mode or trainer.objective.mode
        self.precise_bn = (
            PreciseBatchNorm(
                trainer.model,
                strategy=trainer.strategy,
                global_batch_size=trainer.global_batch_size,
                num_batches=o.precise_bn_batches,
            )
            if o.precise_bn_batches and trainer.buckets_batch_norm
            else None
        )
        self.actions: list[Action] = []
        self.steps_per_epoch = self.steps_per_loop = 0
        self.cut_every: int | None = None

    def fit(self, train: TokenizedExamples, validation: TokenizedExamples | None) -> History:
        """Builds the trainer, resumes from its newest checkpoint, and runs the epochs.

        See `DistributedTrainer.fit` for what the run keeps, saves and raises.
        """
        trainer, o = self.trainer, self.options
        self.steps_per_epoch = max(1, -(-len(train) // trainer.global_batch_size))
        # From the start: a SIGTERM while building or restoring stops at the first loop.
        with PreemptionWatcher() as watcher:
            trainer.build(train, self.steps_per_epoch, o.epochs)
            self.steps_per_loop = min(
                o.steps_per_loop or (200 if trainer.runtime.device_kind == "GPU" else 50),
                self.steps_per_epoch,
            )
            self._log_start(len(train))
            state, checkpoints = FitState(), None
            if o.checkpoint_dir is not None:
                checkpoint = TrainingCheckpoint(
                    o.checkpoint_dir,
                    model=trainer.model,
                    optimizer=trainer.optimizer,
                    max_to_keep=o.keep_checkpoints,
                    runtime=trainer.runtime,
                )
                state = _restore(trainer, o, checkpoint, train, self.steps_per_epoch)
                checkpoints = actions.SaveCheckpoints(
                    checkpoint,
                    model=trainer.model,
                    steps_per_epoch=self.steps_per_epoch,
                    epochs=o.epochs,
                    every_steps=o.checkpoint_every_steps,
                )
                self.cut_every = o.checkpoint_every_steps
            state.signature = _signature(trainer, train)
            self.actions = [
                *self._default_actions(watcher, checkpoints, validation is not None),
                *self.extra_actions,
            ]
            return self.run(train, validation, state)

    def _default_actions(self, watcher, checkpoints, validated: bool) -> list[Action]:
        trainer, o = self.trainer, self.options
        chief = trainer.runtime.is_chief
        return [
            *(
                [actions.ProgressBar(trainer, self.steps_per_epoch, o.epochs)]
                if chief and not o.quiet
                else []
            ),
            *([actions.TensorBoardScalars(o.summary_dir)] if chief and o.summary_dir else []),
            actions.KeepBestWeights(trainer.model, self.monitor, self.mode, validated),
            *(
                [actions.EarlyStopping(o.patience, self.monitor, self.mode, validated)]
                if o.patience
                else []
            ),
            *([actions.StillImproving(self.monitor, o.epochs)] if validated else []),
            *([checkpoints] if checkpoints else []),
            actions.SaveCheckpointIfPreempted(
                watcher, trainer.runtime, checkpoints, self.steps_per_epoch
            ),
        ]

    def run(
        self, train: TokenizedExamples, validation: TokenizedExamples | None, state: FitState
    ) -> History:
        """Trains from `state` to the last epoch (or an early stop) with `self.actions`."""
        epochs, seed = self.options.epochs, self.trainer.options.seed
        history = state.history
        # The training examples become tensors once; each epoch only indexes them.
        datasets = batching.EpochDatasets(
            self.trainer.strategy, train, pad_to=self.trainer.options.pad_to
        )
        try:
            while state.epoch <= epochs and not history.stopped_early:
                entry = self._train_epoch(datasets, state)
                evaluation_start = time.perf_counter()
                if self.precise_bn is not None:
                    self.precise_bn(train, seed=seed, epoch=state.epoch)
                if validation is not None:
                    entry.update(self.trainer.evaluate(validation, prefix="val_"))
                entry["epoch_time"] = state.epoch_time + time.perf_counter() - evaluation_start
                history.epochs.append(entry)
                log_epoch(entry, epochs)
                state.next_epoch()
                for action in self.actions:
                    action.on_epoch_end(state, entry)
            for action in self.actions:
                action.on_fit_end(state)
        finally:
            for action in self.actions:
                action.close()
        return history

    def _train_epoch(self, datasets: batching.EpochDatasets, state: FitState) -> dict:
        """Runs the rest of epoch `state.epoch` from step `state.step`; its train entry."""
        trainer, train = self.trainer, datasets.examples
        clock = time.perf_counter() - state.epoch_time
        plan = trainer.plan_epoch(train, state.epoch)
        iterator = iter(
            datasets.distribute(plan, weights=batching.loss_weights(plan), skip_steps=state.step)
        )
        trainer.train_loop_begin(state.train_stats if state.train_stats.size else None)
        for action in self.actions:
            action.on_epoch_begin(state)
        while state.step < self.steps_per_epoch:
            self._train_loop(iterator, state, clock)
        batching.drain(iterator)
        self._check_skipped_steps(state)
        entry = {"epoch": state.epoch, **trainer.train_loop_end()}
        entry["learning_rate"] = float(keras.ops.convert_to_numpy(trainer.optimizer.learning_rate))
        entry["examples_per_second"] = len(train) / state.epoch_time
        entry["skipped_steps"] = state.skipped_steps
        return entry

    def _train_loop(self, iterator, state: FitState, clock: float) -> None:
        """One loop of up to `steps_per_loop` steps (`trainer.train`), then the loop actions.

        `trainer.train` ends at a non-finite step: with `on_nonfinite="stop"` that ends
        the run; with `"skip"` the loop's remaining steps run in another call.
        """
        n = min(self.steps_per_loop, self.steps_per_epoch - state.step)
        if self.cut_every:
            n = min(n, self.cut_every - state.global_step(self.steps_per_epoch) % self.cut_every)
        while n > 0:
            result = self.trainer.train(iterator, n)
            n -= result["steps"]
            state.step += result["steps"]
            state.skipped_steps += result["nonfinite_steps"]
            state.train_stats = self.trainer.train_stats.copy()
            state.epoch_time = time.perf_counter() - clock
            if result["nonfinite_steps"] and self.options.on_nonfinite == "stop":
                what = "loss" if result["nonfinite_loss"] else "gradients (the loss was finite)"
                raise NonFiniteError(
                    f"non-finite {what} at epoch {state.epoch}, step {state.step} of "
                    f"{self.steps_per_epoch}: training stopped, and the model keeps its weights "
                    "from before that step. Lower the learning rate or check the data, or "
                    "skip such steps with on_nonfinite='skip' (--on-nonfinite skip)"
                )
        for action in self.actions:
            action.on_loop_end(state)

    def _log_start(self, examples: int) -> None:
        trainer = self.trainer
        logger.info(
            "Training %d examples for %d epochs: %d replica(s) on %s, global batch %d, "
            "%d steps/epoch, %d steps per loop, %s",
            examples,
            self.options.epochs,
            trainer.strategy.num_replicas_in_sync,
            trainer.runtime.device_kind,
            trainer.global_batch_size,
            self.steps_per_epoch,
            self.steps_per_loop,
            "length buckets" if trainer.options.bucket_by_length else "shuffled batches",
        )

    def _check_skipped_steps(self, state: FitState) -> None:
        if not state.skipped_steps:
            return
        if state.skipped_steps == self.steps_per_epoch:
            raise NonFiniteError(
                f"every step of epoch {state.epoch} had a non-finite loss or gradients; "
                "lower the learning rate or check the data"
            )
        logger.warning(
            "epoch %d: skipped %d of %d steps with a non-finite loss or gradients",
            *(state.epoch, state.skipped_steps, self.steps_per_epoch),
        )


def _signature(trainer, train: TokenizedExamples) -> dict:
    """What a checkpoint must match to be resumed by this run."""
    return {
        "examples": len(train),
        "global_batch_size": trainer.global_batch_size,
        "seed": trainer.options.seed,
        "bucket_by_length": trainer.options.bucket_by_length,
        # Variables are restored by position: their shapes must match too.
        "variables": [f"{v.dtype}{list(v.shape)}" for v in trainer.model.variables],
    }


def _restore(
    trainer, options: ControllerOptions, checkpoint, train, steps_per_epoch: int
) -> FitState:
    """The state in the newest checkpoint (restored into the variables), or a fresh one."""
    state = restore_fit_state(
        checkpoint,
        signature=_signature(trainer, train),
        epochs=options.epochs,
        steps_per_epoch=steps_per_epoch,
        resume=not options.fresh,
    )
    state = state or FitState()
    restored = state.global_step(steps_per_epoch)
    if trainer.runtime.disagreements({"restored step": restored}):
        raise CheckpointError(
            f"the workers of the cluster restored different checkpoints ({trainer.runtime.task}: "
            f"step {restored}): the checkpoint directory must be one that every worker can "
            "read (a shared file system), or start all workers fresh"
        )
    return state

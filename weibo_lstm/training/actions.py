"""Actions: the services around the training loop, one small object each.

`Controller` runs the epochs; after every loop of steps and every epoch it calls the
actions in order (Orbit's `actions/` in spirit). Each implements only the hooks it
needs; all read and update the shared `FitState`, which is what a checkpoint holds.

    on_epoch_begin(state)        before the first loop of an epoch
    on_loop_end(state)           after each `trainer.train(iterator, n)` call
    on_epoch_end(state, entry)   after validation; `state` already points at the next epoch
    on_fit_end(state)            after the last epoch (not after an error)
    close()                      always, last
"""

from __future__ import annotations

import logging
import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from weibo_lstm.distribute.runtime import Runtime
from weibo_lstm.errors import NonFiniteError, Preempted
from weibo_lstm.training.checkpointing import FitState, TrainingCheckpoint
from weibo_lstm.training.preemption import PreemptionWatcher

logger = logging.getLogger("weibo_lstm")


class Action:
    """Base class: every hook does nothing."""

    def on_epoch_begin(self, state: FitState) -> None:
        pass

    def on_loop_end(self, state: FitState) -> None:
        pass

    def on_epoch_end(self, state: FitState, entry: dict) -> None:
        pass

    def on_fit_end(self, state: FitState) -> None:
        pass

    def close(self) -> None:
        pass


def _finite_weights(model: keras.Model) -> list[np.ndarray] | None:
    weights = [np.array(v.numpy()) for v in model.weights]
    return weights if all(np.isfinite(w).all() for w in weights) else None


class KeepBestWeights(Action):
    """Copies every weight (BatchNorm statistics too) to host memory when `monitor` improves.

    At the end the model gets them back, so it holds the best epoch's weights
    without any file round trip. Without validation data every epoch counts as an
    improvement (the last one is kept). Also counts the epochs without improvement
    (`state.waited`) for `EarlyStopping`.
    """

    def __init__(self, model: keras.Model, monitor: str, mode: str, validated: bool):
        self.model, self.monitor, self.mode, self.validated = model, monitor, mode, validated

    def on_epoch_end(self, state, entry):
        weights = _finite_weights(self.model)
        if weights is None:
            raise NonFiniteError(
                f"the model weights are not finite after epoch {entry['epoch']}; they are "
                "neither kept as the best nor checkpointed"
            )
        monitored = entry.get(self.monitor if self.validated else "loss")
        if monitored is None:
            raise ValueError(
                f"options.monitor={self.monitor!r} is not a metric; have {sorted(entry)}"
            )
        if not self.validated:
            improved = True
        elif not math.isfinite(monitored):
            improved = False
        else:
            best = state.best_value
            improved = best is None or (
                monitored > best if self.mode == "max" else monitored < best
            )
        if improved:
            state.best_value, state.waited, state.best_weights = monitored, 0, weights
            state.history.best_epoch, state.history.best_metrics = entry["epoch"], entry
        else:
            state.waited += 1

    def on_fit_end(self, state):
        if state.best_weights is not None:
            for variable, value in zip(self.model.weights, state.best_weights, strict=True):
                variable.assign(value)
            logger.info("Restored the weights of epoch %d", state.history.best_epoch)


class EarlyStopping(Action):
    """Ends training after `patience` epochs without improvement (after `KeepBestWeights`)."""

    def __init__(self, patience: int, monitor: str):
        self.patience, self.monitor = patience, monitor

    def on_epoch_end(self, state, entry):
        if state.waited >= self.patience:
            logger.info(
                "Early stopping: %s has not improved for %d epochs", self.monitor, state.waited
            )
            state.history.stopped_early = True


class SaveCheckpoints(Action):
    """Saves every `every_steps` optimizer steps within an epoch and at each epoch end.

    Args:
        checkpoint: where to save.
        model: its weights are checked: non-finite weights are never saved over a
            good checkpoint.
        steps_per_epoch: to number checkpoints by global step.
        epochs: recorded with the state (a resumed run with other epochs warns).
        every_steps: None: only at epoch ends. The controller cuts its loops so
            that one ends on every multiple.
    """

    def __init__(
        self,
        checkpoint: TrainingCheckpoint,
        *,
        model: keras.Model,
        steps_per_epoch: int,
        epochs: int,
        every_steps: int | None,
    ):
        self.checkpoint, self.model = checkpoint, model
        self.steps_per_epoch, self.epochs, self.every_steps = steps_per_epoch, epochs, every_steps
        self.last_saved: int | None = None

    def on_loop_end(self, state):
        done = state.global_step(self.steps_per_epoch)
        if self.every_steps and done % self.every_steps == 0 and state.step < self.steps_per_epoch:
            self.save(state)

    def on_epoch_end(self, state, entry):
        self.save(state)

    def save(self, state: FitState) -> str:
        """Saves `state` (unless this step is saved already); returns the checkpoint's path."""
        step = state.global_step(self.steps_per_epoch)
        if step == self.last_saved:
            return self.checkpoint.latest
        if _finite_weights(self.model) is None:
            raise NonFiniteError(
                f"the model weights are not finite at epoch {state.epoch}, step {state.step}; "
                f"not checkpointed over {self.checkpoint.latest}"
            )
        saved = state.to_json()
        saved["epochs"] = self.epochs
        self.checkpoint.save(step, saved, state.best_weights)
        self.last_saved = step
        return os.path.join(self.checkpoint.directory, f"ckpt-{step}")


class SaveCheckpointIfPreempted(Action):
    """After a SIGTERM on any worker: every worker saves at the same step and raises `Preempted`.

    The workers agree with one all-reduce of the "stop requested" flag after every
    loop (nothing in one process), so they stop at the same step even when only one
    of them got the signal. Place it after `SaveCheckpoints`.
    """

    def __init__(
        self,
        watcher: PreemptionWatcher,
        runtime: Runtime,
        checkpoints: SaveCheckpoints | None,
        steps_per_epoch: int,
    ):
        self.watcher, self.runtime, self.checkpoints = watcher, runtime, checkpoints
        self.steps_per_epoch = steps_per_epoch

    def on_loop_end(self, state):
        self._stop_if_requested(state)

    def on_epoch_end(self, state, entry):
        self._stop_if_requested(state)

    def _stop_if_requested(self, state: FitState) -> None:
        if not self.runtime.any_worker(self.watcher.requested):
            return
        where = f"epoch {state.epoch}, step {state.step} of {self.steps_per_epoch}"
        what = "SIGTERM" if self.watcher.requested else "SIGTERM on another worker"
        if self.checkpoints is None:
            raise Preempted(
                f"{what}: stopped at {where}; nothing saved (no checkpoint directory: "
                "pass --checkpoint-dir / checkpoint_dir to resume after a preemption)"
            )
        path = self.checkpoints.save(state)
        raise Preempted(
            f"{what}: stopped at {where} and saved checkpoint {path}; run the same command "
            "again to resume",
            checkpoint=path,
        )


class TensorBoardScalars(Action):
    """Writes each epoch's entry as TensorBoard scalars (chief only; needs `tensorboard`)."""

    def __init__(self, directory: str):
        self.directory = directory
        self.writer = None
        try:
            import tensorboard  # noqa: F401  (tf.summary needs it since TF 2.21)
        except ImportError:
            logger.info('TensorBoard scalars skipped: pip install "weibo-lstm[tensorboard]"')
            return
        self.writer = tf.summary.create_file_writer(directory)

    def on_epoch_end(self, state, entry):
        if self.writer is None:
            return
        with self.writer.as_default(step=entry["epoch"]):
            for key, value in entry.items():
                if key != "epoch":
                    tf.summary.scalar(key, value)
        self.writer.flush()


class ProgressBar(Action):
    """A tqdm bar per epoch with the first two train metrics and examples/s (on a terminal).

    Args:
        trainer: the runner (its `train_loop_end()` metrics are shown).
        steps_per_epoch: the bar's length.
        epochs: for the bar's label.
    """

    def __init__(self, trainer, steps_per_epoch: int, epochs: int):
        self.trainer, self.steps_per_epoch, self.epochs = trainer, steps_per_epoch, epochs
        self.bar = None

    def on_epoch_begin(self, state):
        if not sys.stderr.isatty():
            return
        from tqdm.auto import tqdm

        self.bar = tqdm(
            total=self.steps_per_epoch,
            initial=state.step,
            desc=f"epoch {state.epoch}/{self.epochs}",
            unit="step",
            leave=False,
        )
        self.shown = state.step

    def on_loop_end(self, state):
        if self.bar is None:
            return
        self.bar.update(state.step - self.shown)
        self.shown = state.step
        logs = dict(list(self.trainer.train_loop_end().items())[:2])
        speed = state.step * self.trainer.global_batch_size / max(state.epoch_time, 1e-9)
        self.bar.set_postfix(**{k: f"{v:.4f}" for k, v in logs.items()}, ex_s=f"{speed:.0f}")

    def on_epoch_end(self, state, entry):
        self.close()

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

"""SaveCheckpoints: a resumable checkpoint every N steps and at each epoch end."""

from __future__ import annotations

import os

import keras

from weibo_lstm.errors import NonFiniteError
from weibo_lstm.training.actions.action import Action, finite_weights
from weibo_lstm.training.checkpointing import FitState, TrainingCheckpoint


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
        if finite_weights(self.model) is None:
            raise NonFiniteError(
                f"the model weights are not finite at epoch {state.epoch}, step {state.step}; "
                f"not checkpointed over {self.checkpoint.latest}"
            )
        saved = state.to_json()
        saved["epochs"] = self.epochs
        self.checkpoint.save(step, saved, state.best_weights)
        self.last_saved = step
        return os.path.join(self.checkpoint.directory, f"ckpt-{step}")
